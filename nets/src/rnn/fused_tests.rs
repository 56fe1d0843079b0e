//! Tests of the fused CPU recurrence ([`super::fused`]): its backward pass against finite
//! differences (f64), and its outputs, final states and gradients against the generic
//! per-step candle path (f64 to rounding, f32 with saturating inputs), for the LSTM and the
//! GRU, with and without biases, both directions, stacked, one step, and with inputs or
//! states that need no gradient (the op then skips `dx`).

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Rnn, RnnConfig, RnnState};
use crate::gradcheck::check_gradients;

const CPU: Device = Device::Cpu;

/// Uniform(-scale, scale) values from a seeded generator.
fn rand_t(shape: &[usize], seed: u64, scale: f64, dtype: DType) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| scale * (2.0 * rng.random::<f64>() - 1.0)).collect();
    Tensor::from_vec(v, shape, &CPU).unwrap().to_dtype(dtype).unwrap()
}

fn rand_var(shape: &[usize], seed: u64, dtype: DType) -> Var {
    Var::from_tensor(&rand_t(shape, seed, 1.0, dtype)).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let v = |t: &Tensor| -> Vec<f64> {
        t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    };
    v(a).iter().zip(v(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Output, final states and every gradient of `sum(output * u)` for one layer stack.
struct Run {
    output: Tensor,
    h_n: Tensor,
    c_n: Option<Tensor>,
    /// The gradients of `vars` (input and states first, then the parameters), zeros where
    /// the graph gives none.
    grads: Vec<Tensor>,
}

fn run(layer: &Rnn, vm: &VarMap, x: &Tensor, state: Option<&RnnState>, extra: &[&Var]) -> Run {
    let o = layer.forward(x, state).unwrap();
    let u = rand_t(o.output.dims(), 77, 1.0, o.output.dtype());
    let g = (&o.output * &u).unwrap().sum_all().unwrap().backward().unwrap();
    let vars: Vec<Var> = extra.iter().map(|v| (*v).clone()).chain(vm.all_vars()).collect();
    let grads =
        vars.iter().map(|v| g.get(v).cloned().unwrap_or_else(|| v.zeros_like().unwrap())).collect();
    Run { output: o.output, h_n: o.state.h, c_n: o.state.c, grads }
}

fn configs() -> Vec<RnnConfig> {
    vec![
        RnnConfig::lstm(3, 5).with_layers(2).with_bidirectional(true),
        RnnConfig::lstm(4, 3).with_bias(false).with_batch_first(true),
        RnnConfig::gru(3, 5).with_layers(2).with_bidirectional(true),
        RnnConfig::gru(4, 3).with_bias(false).with_batch_first(true).with_bidirectional(true),
    ]
}

/// The input shape of `t` steps of `n` sequences: `(T, N, F)` or, batch-first, `(N, T, F)`.
fn input_shape(config: &RnnConfig, t: usize, n: usize) -> [usize; 3] {
    if config.batch_first {
        [n, t, config.input_size]
    } else {
        [t, n, config.input_size]
    }
}

/// Random initial states for `config` and a batch of `n`, as variables.
fn states(config: &RnnConfig, n: usize, seed: u64, dtype: DType) -> (Var, Option<Var>) {
    let shape = [config.num_layers * config.directions(), n, config.hidden_size];
    let h0 = rand_var(&shape, seed, dtype);
    let c0 = config.kind.has_cell_state().then(|| rand_var(&shape, seed + 1, dtype));
    (h0, c0)
}

/// The fused backward pass against central differences for every parameter, the input and
/// the initial states, on a loss that reads the outputs and the final states.
#[test]
fn fused_gradients_match_finite_differences() {
    for (i, config) in configs().into_iter().enumerate() {
        for t in [1, 4] {
            let seed = 10 * i as u64 + t as u64;
            let vm = VarMap::new();
            let layer = Rnn::seeded(config.clone(), &vm, "rnn", DType::F64, &CPU, seed).unwrap();
            let x = rand_var(&input_shape(&config, t, 2), seed + 100, DType::F64);
            let (h0, c0) = states(&config, 2, seed + 200, DType::F64);
            let state = RnnState {
                h: h0.as_tensor().clone(),
                c: c0.as_ref().map(|c| c.as_tensor().clone()),
            };
            let mut vars = vm.all_vars();
            vars.extend([x.clone(), h0.clone()]);
            vars.extend(c0.clone());
            let upstream = std::cell::OnceCell::new();
            let f = || -> Result<Tensor> {
                let o = layer.forward(x.as_tensor(), Some(&state))?;
                let mut parts = vec![o.output.flatten_all()?, o.state.h.flatten_all()?];
                parts.extend(o.state.c.map(|c| c.flatten_all()).transpose()?);
                let all = Tensor::cat(&parts, 0)?;
                let u = upstream.get_or_init(|| rand_t(all.dims(), 999, 1.0, DType::F64));
                all.mul(u)
            };
            let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
            assert!(report.passed(), "{config:?}, T = {t}: {report:?}");
        }
    }
}

/// Compares two runs: outputs and final states within `tol`, gradients within `gtol` times
/// the largest gradient magnitude (at least 1).
fn assert_agree(what: &str, a: &Run, b: &Run, tol: f64, gtol: f64) {
    assert!(
        max_diff(&a.output, &b.output) < tol,
        "{what}: output {}",
        max_diff(&a.output, &b.output)
    );
    assert!(max_diff(&a.h_n, &b.h_n) < tol, "{what}: h_n");
    match (&a.c_n, &b.c_n) {
        (Some(x), Some(y)) => assert!(max_diff(x, y) < tol, "{what}: c_n"),
        (None, None) => {}
        _ => panic!("{what}: c_n on one side only"),
    }
    assert_eq!(a.grads.len(), b.grads.len());
    for (i, (x, y)) in a.grads.iter().zip(&b.grads).enumerate() {
        let scale = max_abs(y).max(1.0);
        assert!(max_abs(y) > 0.0, "{what}: gradient {i} is zero on the generic path");
        assert!(
            max_diff(x, y) < gtol * scale,
            "{what}: gradient {i}: {} (scale {scale})",
            max_diff(x, y)
        );
    }
}

/// In f64 the fused path computes what the generic per-step ops compute, to rounding:
/// outputs, final states and the gradients of the input, the states and every parameter.
#[test]
fn fused_equals_generic_in_f64() {
    for (i, config) in configs().into_iter().enumerate() {
        for t in [1, 6] {
            let seed = 40 + 10 * i as u64 + t as u64;
            let vm = VarMap::new();
            let fused = Rnn::seeded(config.clone(), &vm, "", DType::F64, &CPU, seed).unwrap();
            let generic = fused.clone().with_fused_cpu(false);
            let x = rand_var(&input_shape(&config, t, 3), seed + 1, DType::F64);
            let (h0, c0) = states(&config, 3, seed + 2, DType::F64);
            let state = RnnState {
                h: h0.as_tensor().clone(),
                c: c0.as_ref().map(|c| c.as_tensor().clone()),
            };
            let mut extra = vec![&x, &h0];
            extra.extend(c0.as_ref());
            let a = run(&fused, &vm, x.as_tensor(), Some(&state), &extra);
            let b = run(&generic, &vm, x.as_tensor(), Some(&state), &extra);
            assert_agree(&format!("{config:?}, T = {t}"), &a, &b, 1e-12, 1e-12);
        }
    }
}

/// In f32, with inputs large enough to saturate the gates, the fast exponential of the fused
/// path stays within f32 accuracy of the generic path.
#[test]
fn fused_equals_generic_in_f32_with_saturating_inputs() {
    for (i, config) in configs().into_iter().enumerate() {
        let vm = VarMap::new();
        let fused = Rnn::seeded(config.clone(), &vm, "", DType::F32, &CPU, 60 + i as u64).unwrap();
        let generic = fused.clone().with_fused_cpu(false);
        let x =
            Var::from_tensor(&rand_t(&input_shape(&config, 9, 3), 61, 4.0, DType::F32)).unwrap();
        let a = run(&fused, &vm, x.as_tensor(), None, &[&x]);
        let b = run(&generic, &vm, x.as_tensor(), None, &[&x]);
        assert_agree(&format!("{config:?}"), &a, &b, 2e-6, 1e-5);
    }
}

/// An input that is a plain tensor (no gradient wanted, so the op skips `dx`) and zero
/// initial states: the parameter gradients still equal the generic path's, and the input
/// gets none.
#[test]
fn fused_without_input_gradient() {
    for config in [RnnConfig::lstm(4, 6), RnnConfig::gru(4, 6).with_bidirectional(true)] {
        let vm = VarMap::new();
        let fused = Rnn::seeded(config.clone(), &vm, "", DType::F64, &CPU, 70).unwrap();
        let generic = fused.clone().with_fused_cpu(false);
        let x = rand_t(&input_shape(&config, 5, 2), 71, 1.0, DType::F64);
        let a = run(&fused, &vm, &x, None, &[]);
        let b = run(&generic, &vm, &x, None, &[]);
        assert_agree(&format!("{config:?}"), &a, &b, 1e-12, 1e-12);
        let o = fused.forward(&x, None).unwrap();
        let grads = o.output.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none(), "{config:?}: the plain input got a gradient");
    }
}

/// A loss on the final cell state alone (the LSTM's `c_n` reaches the op's backward through
/// the shared state, not through the outputs): gradients against finite differences; and
/// backward passes repeated on the same graph, with and without `c_n`, give the generic
/// path's gradients each time (the hand-over is consumed by each pass).
#[test]
fn fused_lstm_final_cell_gradients() {
    let config = RnnConfig::lstm(3, 4).with_bidirectional(true);
    let vm = VarMap::new();
    let layer = Rnn::seeded(config.clone(), &vm, "", DType::F64, &CPU, 80).unwrap();
    let x = rand_var(&[5, 2, 3], 81, DType::F64);
    let mut vars = vm.all_vars();
    vars.push(x.clone());
    let f = || {
        layer.forward(x.as_tensor(), None)?.state.c.expect("an LSTM has c_n").mul(&rand_t(
            &[2, 2, 4],
            82,
            1.0,
            DType::F64,
        ))
    };
    let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
    assert!(report.passed(), "{report:?}");

    let generic = layer.clone().with_fused_cpu(false);
    let losses = |m: &Rnn| {
        let o = m.forward(x.as_tensor(), None).unwrap();
        let c = o.state.c.unwrap().sum_all().unwrap();
        let out = o.output.sqr().unwrap().sum_all().unwrap();
        (c.clone(), (c + out).unwrap(), o.output.sum_all().unwrap())
    };
    let (fc, fboth, fout) = losses(&layer);
    let (gc, gboth, gout) = losses(&generic);
    for _ in 0..2 {
        for (a, b) in [(&fc, &gc), (&fboth, &gboth), (&fout, &gout)] {
            let (ga, gb) = (a.backward().unwrap(), b.backward().unwrap());
            for v in &vars {
                let (va, vb) = (ga.get(v).unwrap(), gb.get(v).unwrap());
                assert!(max_diff(va, vb) < 1e-12, "{}", max_diff(va, vb));
            }
        }
    }
}

/// f32 at sizes that exercise every edge of the packed products (on CPUs with AVX-512):
/// batch rows not a multiple of the 8-row tile, gate widths not a multiple of the 32-column
/// panel, and `T*N` over one 256-step block of the weight-gradient products. The fused path
/// agrees with the generic one, and a second run, on scratch buffers left by the first (and
/// by a different shape in between), reproduces it bit for bit.
#[test]
fn fused_f32_products_at_ragged_sizes_are_reproducible() {
    let bits = |r: &Run| -> Vec<Vec<u32>> {
        let mut all = vec![&r.output, &r.h_n];
        all.extend(r.c_n.as_ref());
        all.extend(&r.grads);
        all.iter()
            .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .map(|v| v.iter().map(|x| x.to_bits()).collect())
            .collect()
    };
    for config in [
        RnnConfig::lstm(37, 40).with_bidirectional(true),
        RnnConfig::gru(37, 40).with_bidirectional(true),
    ] {
        let vm = VarMap::new();
        let fused = Rnn::seeded(config.clone(), &vm, "", DType::F32, &CPU, 90).unwrap();
        let generic = fused.clone().with_fused_cpu(false);
        let x = rand_var(&input_shape(&config, 25, 11), 91, DType::F32);
        let (h0, c0) = states(&config, 11, 92, DType::F32);
        let state =
            RnnState { h: h0.as_tensor().clone(), c: c0.as_ref().map(|c| c.as_tensor().clone()) };
        let mut extra = vec![&x, &h0];
        extra.extend(c0.as_ref());
        let a = run(&fused, &vm, x.as_tensor(), Some(&state), &extra);
        let b = run(&generic, &vm, x.as_tensor(), Some(&state), &extra);
        assert_agree(&format!("{config:?}"), &a, &b, 2e-6, 1e-5);
        // Another shape in between leaves other values in the pooled buffers.
        let other = Rnn::seeded(config.clone(), &VarMap::new(), "", DType::F32, &CPU, 93).unwrap();
        let y = rand_var(&input_shape(&config, 9, 5), 94, DType::F32);
        run(&other, &VarMap::new(), y.as_tensor(), None, &[&y]);
        let again = run(&fused, &vm, x.as_tensor(), Some(&state), &extra);
        assert!(bits(&a) == bits(&again), "{config:?}: a second run differs");
    }
}
