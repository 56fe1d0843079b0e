//! CNN forward + backward on CPU (f32; run on one core: `RAYON_NUM_THREADS=1 taskset -c 0`):
//!
//! * LeNet-5 (`models::classic::LeNet5` with ReLU, as in CANDLE-NOTES.md section 3): batch 64
//!   of 1x32x32, conv 6@5x5, ReLU, avg-pool 2, conv 16@5x5, ReLU, avg-pool 2, flatten, 120,
//!   ReLU, 84, ReLU, 10, cross-entropy; forward alone, and forward, loss and backward.
//! * A ResNet residual unit at 64 channels on 32x32 (identity shortcut), batch 8, training
//!   mode; forward, `sum(y * u)` and backward.
//!
//! The PyTorch twin (same shapes, one thread) is `benches/torch/cnn.py`.
//!
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p deeprl-nets --bench cnn`
//!
//! With `CNN_STEPS=lenet:200` (LeNet-5 forward + backward) or `residual:50` the binary instead
//! runs that many steps in a plain loop (after 10 warm-up steps) and prints the wall time,
//! the CPU time and the minor page faults per step, as the twin does with `cpu` as its
//! argument.

mod common;

use candle_core::{DType, Device, Module, ModuleT, Tensor};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, Criterion};
use deeprl_nets::conv::blocks::ResidualUnit;
use deeprl_nets::conv::init::torch_default_init;
use deeprl_nets::mlp::Activation;
use deeprl_nets::models::classic::{LeNet5, LeNet5Config};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

/// LeNet-5 with its input and labels (the map keeps the variables alive).
fn lenet_setup() -> (VarMap, LeNet5, Tensor, Tensor) {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let config =
        LeNet5Config { activation: Activation::Relu, ..LeNet5Config::new([1, 32, 32], 10) };
    let net = LeNet5::new(config, vb).expect("lenet");
    torch_default_init(&map, 0).expect("init");
    let x = uniform(&[64, 1, 32, 32], 1);
    let labels: Vec<u32> = (0..64).map(|i| (i * 7 % 10) as u32).collect();
    let labels = Tensor::from_vec(labels, 64, &Device::Cpu).expect("labels");
    (map, net, x, labels)
}

fn lenet_step(net: &LeNet5, x: &Tensor, labels: &Tensor) -> candle_core::backprop::GradStore {
    let logits = net.forward(x).expect("forward");
    let loss = candle_nn::loss::cross_entropy(&logits, labels).expect("loss");
    loss.backward().expect("backward")
}

fn lenet(c: &mut Criterion) {
    let (_map, net, x, labels) = lenet_setup();
    let mut group = c.benchmark_group("lenet5_batch64");
    group.bench_function("forward", |b| b.iter(|| net.forward(&x).expect("forward")));
    group.bench_function("forward_backward", |b| b.iter(|| lenet_step(&net, &x, &labels)));
    group.finish();
}

/// A residual unit with its input and the loss weights `u`.
fn residual_setup() -> (VarMap, ResidualUnit, Tensor, Tensor) {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let unit = ResidualUnit::new(64, 64, 1, vb).expect("unit");
    torch_default_init(&map, 0).expect("init");
    let x = uniform(&[8, 64, 32, 32], 2);
    let u = uniform(&[8, 64, 32, 32], 3);
    (map, unit, x, u)
}

fn residual_step(unit: &ResidualUnit, x: &Tensor, u: &Tensor) -> candle_core::backprop::GradStore {
    let y = unit.forward_t(x, true).expect("forward");
    y.mul(u).and_then(|t| t.sum_all()).expect("loss").backward().expect("backward")
}

fn residual(c: &mut Criterion) {
    let (_map, unit, x, u) = residual_setup();
    let mut group = c.benchmark_group("residual_unit_64ch_32x32_batch8");
    group.sample_size(20);
    group.bench_function("forward_backward", |b| b.iter(|| residual_step(&unit, &x, &u)));
    group.finish();
}

criterion_group!(benches, lenet, residual);

fn main() {
    let Ok(spec) = std::env::var("CNN_STEPS") else {
        benches();
        Criterion::default().configure_from_args().final_summary();
        return;
    };
    match common::parse_spec("CNN_STEPS", &spec) {
        ("lenet", steps) => {
            let (_map, net, x, labels) = lenet_setup();
            common::plain_loop("lenet5 forward_backward", 10, steps, || {
                lenet_step(&net, &x, &labels);
            });
        }
        ("residual", steps) => {
            let (_map, unit, x, u) = residual_setup();
            common::plain_loop("residual forward_backward", 10, steps, || {
                residual_step(&unit, &x, &u);
            });
        }
        (other, _) => panic!("CNN_STEPS: lenet or residual, not {other}"),
    }
}
