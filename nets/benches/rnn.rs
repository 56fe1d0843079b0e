//! One-layer LSTM and GRU, sequence 50, batch 32, input 32, hidden 128, f32 on the CPU:
//! forward, and forward + backward of `L = sum(output * U)` (gradients of the input and every
//! parameter), through the fused CPU kernel and through the generic per-step candle ops. Run
//! on one core, as the figures in the README were:
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p deeprl-nets --bench rnn -- fused`.
//! The PyTorch twin (`torch.set_num_threads(1)`, `nn.LSTM(32, 128)` / `nn.GRU(32, 128)` on a
//! `(50, 32, 32)` input, `(out * U).sum().backward()`) is `nets/benches/torch/rnn.py`.
//!
//! With `RNN_STEPS=lstm:200` (or `gru:200`) the binary instead runs that many fused forward +
//! backward steps in a plain loop (after 10 warm-up steps) and prints the wall time, the CPU
//! time and the minor page faults per step (from `/proc/self/stat`), the figures the twin
//! prints with `cpu` as its third argument; for `perf stat` / `perf record` too.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use criterion::{criterion_group, Criterion};
use deeprl_nets::rnn::{Rnn, RnnConfig};

const T: usize = 50;
const N: usize = 32;
const INPUT: usize = 32;
const HIDDEN: usize = 128;

/// The bench's input, loss weights and layer of `kind` (`"lstm"` or `"gru"`), seed 0.
fn setup(kind: &str) -> (Var, Tensor, Rnn) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (T, N, INPUT), &dev).unwrap()).unwrap();
    let u = Tensor::randn(0f32, 1.0, (T, N, HIDDEN), &dev).unwrap();
    let config = match kind {
        "lstm" => RnnConfig::lstm(INPUT, HIDDEN),
        "gru" => RnnConfig::gru(INPUT, HIDDEN),
        other => panic!("unknown layer {other:?}: lstm or gru"),
    };
    let vm = VarMap::new();
    let rnn = Rnn::seeded(config, &vm, kind, DType::F32, &dev, 0).unwrap();
    (x, u, rnn)
}

fn forward_backward(rnn: &Rnn, x: &Var, u: &Tensor) -> candle_core::backprop::GradStore {
    let out = rnn.forward(x.as_tensor(), None).unwrap().output;
    (out * u).unwrap().sum_all().unwrap().backward().unwrap()
}

fn recurrent(c: &mut Criterion) {
    for kind in ["lstm", "gru"] {
        let (x, u, rnn) = setup(kind);
        for (name, fused) in [("fused", true), ("generic", false)] {
            bench_layer(
                c,
                &format!("{kind}_t50_b32_i32_h128"),
                name,
                &rnn.clone().with_fused_cpu(fused),
                &x,
                &u,
            );
        }
    }
}

fn bench_layer(c: &mut Criterion, group: &str, name: &str, rnn: &Rnn, x: &Var, u: &Tensor) {
    c.bench_function(&format!("{group}/forward/{name}"), |b| {
        b.iter(|| rnn.forward(x.as_tensor(), None).unwrap().output)
    });
    c.bench_function(&format!("{group}/forward_backward/{name}"), |b| {
        b.iter(|| forward_backward(rnn, x, u))
    });
}

/// The `RNN_STEPS=kind:steps` mode (see the module documentation).
fn plain_loop(spec: &str) {
    let (kind, steps) = common::parse_spec("RNN_STEPS", spec);
    let (x, u, rnn) = setup(kind);
    common::plain_loop(&format!("{kind} forward_backward"), 10, steps, || {
        forward_backward(&rnn, &x, &u);
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = recurrent
}

fn main() {
    match std::env::var("RNN_STEPS") {
        Ok(spec) => plain_loop(&spec),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
