//! One optimizer step over the 67,586 parameters of a 4-256-256-2 MLP (f32, CPU, one core),
//! for every optimizer of `deeprl_nets::optim` on its fused CPU path and on its tensor-op
//! path (the one other devices take, forced on CPU), and for candle-nn's AdamW.
//!
//! `cargo bench -p deeprl-nets --bench optim`

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use criterion::{criterion_group, criterion_main, Criterion};
use deeprl_nets::optim::{
    AdagradConfig, AdamConfig, AdamWConfig, AdamaxConfig, NAdamConfig, Optim, OptimPath,
    OptimizerConfig, RmsPropConfig, SgdConfig,
};

/// The variables of a 4-256-256-2 MLP and a fixed random gradient for each (a gradient that
/// does not depend on the values keeps them away from subnormal numbers over many steps).
fn mlp_vars() -> (Vec<Var>, GradStore) {
    let shapes: [&[usize]; 6] = [&[256, 4], &[256], &[256, 256], &[256], &[2, 256], &[2]];
    let dev = Device::Cpu;
    let vars: Vec<Var> = shapes
        .iter()
        .map(|s| {
            Var::from_tensor(&Tensor::randn(0f32, 0.1, *s, &dev).expect("randn")).expect("var")
        })
        .collect();
    assert_eq!(vars.iter().map(|v| v.elem_count()).sum::<usize>(), 67_586);
    let mut loss = Tensor::zeros((), DType::F32, &dev).expect("zero");
    for v in &vars {
        let r = Tensor::randn(0f32, 1.0, v.shape(), &dev).expect("randn");
        loss = (loss + (v.as_tensor() * r).expect("mul").sum_all().expect("sum")).expect("add");
    }
    let grads = loss.backward().expect("backward");
    (vars, grads)
}

fn optimizers(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimizer_step_67k");
    let configs = [
        (
            "SGD momentum nesterov",
            OptimizerConfig::Sgd(SgdConfig {
                momentum: 0.9,
                nesterov: true,
                ..SgdConfig::default()
            }),
        ),
        ("Adagrad", OptimizerConfig::Adagrad(AdagradConfig::default())),
        (
            "RMSprop centered momentum",
            OptimizerConfig::RmsProp(RmsPropConfig {
                centered: true,
                momentum: 0.9,
                ..RmsPropConfig::default()
            }),
        ),
        ("Adam", OptimizerConfig::Adam(AdamConfig::default())),
        ("AdamW", OptimizerConfig::AdamW(AdamWConfig::default())),
        ("Adamax", OptimizerConfig::Adamax(AdamaxConfig::default())),
        ("NAdam", OptimizerConfig::NAdam(NAdamConfig::default())),
    ];
    for (name, config) in configs {
        for (path, label) in [(OptimPath::Auto, "fused"), (OptimPath::TensorOps, "tensor ops")] {
            let (vars, grads) = mlp_vars();
            let mut opt = Optim::with_path(vars, config, path).expect("optimizer");
            group.bench_function(format!("deeprl {name} ({label})"), |b| {
                b.iter(|| opt.step(&grads).expect("step"))
            });
        }
    }
    let (vars, grads) = mlp_vars();
    let mut adamw = candle_nn::AdamW::new(vars, candle_nn::ParamsAdamW::default()).expect("adamw");
    group.bench_function("candle-nn AdamW", |b| b.iter(|| adamw.step(&grads).expect("step")));
    group.finish();
}

criterion_group!(benches, optimizers);
criterion_main!(benches);
