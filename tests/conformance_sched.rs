//! Conformance of `deeprl::nets::schedule` with `torch.optim.lr_scheduler` (torch 2.15).
//!
//! Reads every `sched/*.json` file (format `torch_lr_scheduler_sequences`, see
//! `tests/data/conformance/README.md`, sections 0 and E) under `$DEEPRL_CONFORMANCE_DIR`, or
//! `tests/data/conformance` when the variable is unset. Each case is read generically: its
//! `scheduler` class picks the schedule, built through the serde [`ScheduleConfig`] from the
//! case's `scheduler_kwargs` (torch names, so an unknown kwarg is a parse error) and the
//! optimizer's lr. Every `lr[k]` and `momentum[k]` (the optimizer's own momentum where the
//! schedule sets none) must satisfy `|a - b| <= 1e-12 |b|`; ReduceLROnPlateau is fed
//! `metrics[k]` after step k, as torch's loop does.

use deeprl::nets::schedule::{ScheduleConfig, Scheduler};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

const REL_TOL: f64 = 1e-12;

#[derive(Debug, Deserialize)]
struct SchedFile {
    format: String,
    format_version: u32,
    scheduler: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Optimizer {
    class: String,
    lr: f64,
    momentum: f64,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    scheduler: String,
    optimizer: Optimizer,
    scheduler_kwargs: Map<String, Value>,
    n_steps: usize,
    lr: Vec<f64>,
    momentum: Vec<f64>,
    #[serde(default)]
    metrics: Option<Vec<f64>>,
}

fn data_dir() -> PathBuf {
    match std::env::var_os("DEEPRL_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance"),
    }
}

/// `kwargs` plus `extra`, failing if a key would be overwritten.
fn merged(kwargs: &Map<String, Value>, extra: Value, what: &str) -> Value {
    let mut out = kwargs.clone();
    let Value::Object(extra) = extra else { unreachable!("extra is an object literal") };
    for (k, v) in extra {
        assert!(!out.contains_key(&k), "{what}: kwarg `{k}` collides with a config key");
        out.insert(k, v);
    }
    Value::Object(out)
}

/// The `ScheduleConfig` JSON equivalent to `torch_class(opt(lr), **kwargs)`.
fn config_json(case: &Case, what: &str) -> Value {
    let lr = case.optimizer.lr;
    let kw = &case.scheduler_kwargs;
    let class = case.scheduler.rsplit('.').next().unwrap_or_default();
    match class {
        "ExponentialLR" => merged(kw, json!({"kind": "exponential", "lr": lr}), what),
        "StepLR" => merged(kw, json!({"kind": "step", "lr": lr}), what),
        "MultiStepLR" => merged(kw, json!({"kind": "multi_step", "lr": lr}), what),
        "OneCycleLR" => merged(kw, json!({"kind": "one_cycle"}), what),
        "ReduceLROnPlateau" => merged(kw, json!({"kind": "reduce_on_plateau", "lr": lr}), what),
        "LambdaLR" => {
            assert_eq!(kw.len(), 1, "{what}: LambdaLR takes only lr_lambda, got {kw:?}");
            let lambda = kw.get("lr_lambda").and_then(Value::as_object);
            let lambda = lambda.unwrap_or_else(|| panic!("{what}: no lr_lambda object in {kw:?}"));
            let kind = lambda.get("kind").and_then(Value::as_str);
            assert_eq!(kind, Some("power"), "{what}: unknown lr_lambda {lambda:?}");
            let mut params = lambda.clone();
            params.remove("kind");
            assert_eq!(params.len(), 2, "{what}: power lambda takes exactly s and c: {lambda:?}");
            merged(&params, json!({"kind": "power", "eta0": lr}), what)
        }
        other => panic!("{what}: unknown scheduler {other:?} ({})", case.scheduler),
    }
}

/// Checks one value and returns its relative deviation.
fn check(got: f64, want: f64, what: &str) -> f64 {
    let tol = if want == 0.0 { f64::MIN_POSITIVE } else { REL_TOL * want.abs() };
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, expected {want:e} (|diff| {:e}, rel {:e} > {REL_TOL:e})",
        (got - want).abs(),
        (got - want).abs() / want.abs()
    );
    if want == 0.0 {
        0.0
    } else {
        (got - want).abs() / want.abs()
    }
}

fn check_case(case: &Case, file: &Path) {
    let what = format!("{} case {}", file.display(), case.name);
    assert_eq!(case.optimizer.class, "torch.optim.SGD", "{what}: optimizer");
    assert_eq!(case.lr.len(), case.n_steps, "{what}: lr length");
    assert_eq!(case.momentum.len(), case.n_steps, "{what}: momentum length");
    let json = config_json(case, &what);
    let config: ScheduleConfig = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{what}: kwargs {json} do not parse: {e}"));
    let mut sched: Scheduler =
        config.build().unwrap_or_else(|e| panic!("{what}: {config:?} does not build: {e}"));
    let metrics = match (sched.is_metric_driven(), &case.metrics) {
        (true, Some(m)) => {
            assert_eq!(m.len(), case.n_steps, "{what}: metrics length");
            Some(m)
        }
        (true, None) => panic!("{what}: a metric-driven schedule without metrics"),
        (false, Some(_)) => panic!("{what}: metrics given to a step-driven schedule"),
        (false, None) => None,
    };
    let mut worst: f64 = 0.0;
    for k in 0..case.n_steps {
        let step = k as u64;
        worst = worst.max(check(sched.value(step), case.lr[k], &format!("{what}: lr[{k}]")));
        let momentum = sched.momentum(step).unwrap_or(case.optimizer.momentum);
        worst = worst.max(check(momentum, case.momentum[k], &format!("{what}: momentum[{k}]")));
        if let Some(m) = metrics {
            sched.observe(m[k]);
        }
    }
    eprintln!("{what}: largest relative deviation {worst:.1e}");
}

#[test]
fn lr_schedulers_match_torch() {
    let dir = data_dir().join("sched");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no sched/*.json files in {}", dir.display());
    let mut n_cases = 0;
    for path in &files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let file: SchedFile = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        assert_eq!(file.format, "torch_lr_scheduler_sequences", "{}", path.display());
        assert_eq!(file.format_version, 1, "{}", path.display());
        assert!(!file.cases.is_empty(), "{}: no cases", path.display());
        for case in &file.cases {
            assert_eq!(case.scheduler, file.scheduler, "{} case {}", path.display(), case.name);
            check_case(case, path);
            n_cases += 1;
        }
    }
    eprintln!("checked {n_cases} scheduler cases in {} files", files.len());
}
