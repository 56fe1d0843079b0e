//! Conformance of the optimizers' update rules with `torch.optim` (PyTorch 2.15): every case
//! of every file in `optim/` (README section D) is replayed in float64 and float32 from the
//! same initial parameters and gradients, and compared after every step within the README's
//! tolerances. Each case is replayed three ways: the update rule on plain slices, and `Optim`
//! over candle variables on its fused CPU path and on its tensor-op path (the one other
//! devices take). Set `DEEPRL_CONFORMANCE_DIR` to check another data set of the same format.

use candle_core::{Device, Tensor, Var, WithDType};
use candle_nn::Optimizer;
use deeprl::nets::optim::{
    AdagradConfig, AdamConfig, AdamaxConfig, NAdamConfig, Optim, OptimPath, OptimizerConfig,
    ParamState, RmsPropConfig, SgdConfig,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    match std::env::var_os("DEEPRL_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir).join("optim"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/optim"),
    }
}

type Params = BTreeMap<String, Vec<f64>>;

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    optimizer: String,
    hyperparameters: BTreeMap<String, Value>,
    param_names: Vec<String>,
    initial_params: Params,
    grads: Vec<Params>,
    params_after_step_float32: Vec<Params>,
    params_after_step_float64: Vec<Params>,
}

/// Reads the hyperparameters torch reports into our config, failing on anything unknown or
/// unsupported (torch's implementation switches must be their plain values).
fn config(case: &Case) -> OptimizerConfig {
    let h = &case.hyperparameters;
    let f = |k: &str| {
        h.get(k)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{}: missing number {k}", case.name))
    };
    let b = |k: &str| {
        h.get(k)
            .and_then(Value::as_bool)
            .unwrap_or_else(|| panic!("{}: missing flag {k}", case.name))
    };
    let betas = || {
        let v = h
            .get("betas")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{}: no betas", case.name));
        (v[0].as_f64().expect("beta1"), v[1].as_f64().expect("beta2"))
    };
    let known: &[&str] = match case.optimizer.as_str() {
        "torch.optim.SGD" => {
            &["lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"]
        }
        "torch.optim.Adagrad" => {
            &["lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value", "maximize"]
        }
        "torch.optim.RMSprop" => {
            &["lr", "momentum", "alpha", "eps", "centered", "weight_decay", "maximize"]
        }
        "torch.optim.Adam" | "torch.optim.AdamW" => {
            &["lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay"]
        }
        "torch.optim.Adamax" => &["lr", "betas", "eps", "weight_decay", "maximize"],
        "torch.optim.NAdam" => &[
            "lr",
            "betas",
            "eps",
            "weight_decay",
            "momentum_decay",
            "decoupled_weight_decay",
            "maximize",
        ],
        other => panic!("{}: unknown optimizer {other}", case.name),
    };
    for (k, v) in h {
        let switch = ["foreach", "fused", "capturable", "differentiable"].contains(&k.as_str());
        assert!(
            known.contains(&k.as_str()) || (switch && !v.as_bool().unwrap_or(false)),
            "{}: unsupported {k} = {v}",
            case.name
        );
    }
    let c = match case.optimizer.as_str() {
        "torch.optim.SGD" => OptimizerConfig::Sgd(SgdConfig {
            lr: f("lr"),
            momentum: f("momentum"),
            dampening: f("dampening"),
            weight_decay: f("weight_decay"),
            nesterov: b("nesterov"),
            maximize: b("maximize"),
        }),
        "torch.optim.Adagrad" => OptimizerConfig::Adagrad(AdagradConfig {
            lr: f("lr"),
            lr_decay: f("lr_decay"),
            weight_decay: f("weight_decay"),
            initial_accumulator_value: f("initial_accumulator_value"),
            eps: f("eps"),
            maximize: b("maximize"),
        }),
        "torch.optim.RMSprop" => OptimizerConfig::RmsProp(RmsPropConfig {
            lr: f("lr"),
            alpha: f("alpha"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            momentum: f("momentum"),
            centered: b("centered"),
            maximize: b("maximize"),
        }),
        "torch.optim.Adam" | "torch.optim.AdamW" => OptimizerConfig::Adam(AdamConfig {
            lr: f("lr"),
            betas: betas(),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            amsgrad: b("amsgrad"),
            maximize: b("maximize"),
            decoupled_weight_decay: b("decoupled_weight_decay"),
        }),
        "torch.optim.Adamax" => OptimizerConfig::Adamax(AdamaxConfig {
            lr: f("lr"),
            betas: betas(),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            maximize: b("maximize"),
        }),
        _ => OptimizerConfig::NAdam(NAdamConfig {
            lr: f("lr"),
            betas: betas(),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
            momentum_decay: f("momentum_decay"),
            decoupled_weight_decay: b("decoupled_weight_decay"),
            maximize: b("maximize"),
        }),
    };
    c.validate().unwrap_or_else(|e| panic!("{}: {e}", case.name));
    c
}

/// How a case is replayed.
#[derive(Debug, Clone, Copy)]
enum Runner {
    /// `OptimizerConfig::update` on plain vectors.
    Plain,
    /// `Optim` over candle variables on CPU, on the given path.
    Optim(OptimPath),
}

/// Replays a case with parameters of type `T`, checking `|a - b| <= abs + rel |b|` after
/// every step against `expected`; returns the largest error relative to the tolerance.
fn replay<T: num_traits::Float + WithDType + std::fmt::Debug>(
    case: &Case,
    expected: &[Params],
    abs: f64,
    rel: f64,
    runner: Runner,
) -> f64 {
    let config = config(case);
    let cast = |v: &[f64]| v.iter().map(|&x| T::from(x).expect("cast")).collect::<Vec<T>>();
    let mut params: Vec<Vec<T>> =
        case.param_names.iter().map(|n| cast(&case.initial_params[n])).collect();
    let mut states: Vec<ParamState<T>> = params.iter().map(|p| ParamState::new(p.len())).collect();
    let mut optim = match runner {
        Runner::Plain => None,
        Runner::Optim(path) => {
            let vars: Vec<Var> = params
                .iter()
                .map(|p| Var::from_slice(p, p.len(), &Device::Cpu).expect("var"))
                .collect();
            let mut loss = vars[0].sum_all().expect("sum");
            for v in &vars[1..] {
                loss = (loss + v.sum_all().expect("sum")).expect("add");
            }
            let store = loss.backward().expect("backward");
            let opt = Optim::with_path(vars.clone(), config, path).expect("optimizer");
            Some((vars, opt, store))
        }
    };
    let mut worst = 0.0f64;
    for (t, (grads, after)) in case.grads.iter().zip(expected).enumerate() {
        match &mut optim {
            None => {
                for (k, name) in case.param_names.iter().enumerate() {
                    config
                        .update(&mut params[k], &cast(&grads[name]), &mut states[k])
                        .expect("lengths match");
                }
            }
            Some((vars, opt, store)) => {
                for (var, name) in vars.iter().zip(&case.param_names) {
                    let g = Tensor::from_slice(&cast(&grads[name]), var.dims(), &Device::Cpu);
                    store.insert(var, g.expect("gradient"));
                }
                opt.step(store).expect("step");
                for (p, var) in params.iter_mut().zip(vars.iter()) {
                    *p = var.to_vec1::<T>().expect("values");
                }
            }
        }
        for (k, name) in case.param_names.iter().enumerate() {
            for (i, (&a, &b)) in params[k].iter().zip(&after[name]).enumerate() {
                let a = num_traits::ToPrimitive::to_f64(&a).expect("f64");
                let err = (a - b).abs();
                assert!(
                    err <= abs + rel * b.abs(),
                    "{} ({runner:?}) step {} {name}[{i}]: got {a}, torch {b} (|diff| {err:e})",
                    case.name,
                    t + 1
                );
                worst = worst.max(err / (abs + rel * b.abs()));
            }
        }
    }
    worst
}

#[test]
fn every_optimizer_case_matches_torch_in_float64_and_float32_on_every_path() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("optim conformance folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected the seven optimizer files, found {files:?}");
    let mut cases = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let file: File =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for case in &file.cases {
            assert_eq!(case.grads.len(), case.params_after_step_float64.len(), "{}", case.name);
            let runners = [
                Runner::Plain,
                Runner::Optim(OptimPath::Auto),
                Runner::Optim(OptimPath::TensorOps),
            ];
            for runner in runners {
                let w64 =
                    replay::<f64>(case, &case.params_after_step_float64, 1e-12, 1e-10, runner);
                let w32 = replay::<f32>(case, &case.params_after_step_float32, 1e-5, 1e-5, runner);
                eprintln!(
                    "{} ({runner:?}): worst error / tolerance: float64 {w64:.3}, float32 {w32:.3}",
                    case.name
                );
            }
            cases += 1;
        }
    }
    assert!(cases >= 20, "only {cases} cases");
}
