//! One training epoch of a 64-128-10 MLP (ReLU, f32) on the 1,437 training digits: 45
//! mini-batches of 32 (the last of 29), cross-entropy, Adam (lr 1e-3), through
//! `deeprl_nets::train::fit` (seeded shuffle, batching, metrics included; no validation).
//!
//! `RAYON_NUM_THREADS=1 cargo bench -p deeprl-nets --bench fit`

use candle_core::{DType, Device};
use candle_nn::VarMap;
use criterion::{criterion_group, criterion_main, Criterion};
use deeprl_nets::data::digits::digits;
use deeprl_nets::mlp::{Mlp, MlpConfig};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, Classifier, FitConfig, FitHooks};

fn epoch(c: &mut Criterion) {
    let (train, _) = digits().expect("digits").split(0.2, 0).expect("split");
    let vm = VarMap::new();
    let mlp = Mlp::seeded(&MlpConfig::new(vec![64, 128, 10]), &vm, "", DType::F32, &Device::Cpu, 0)
        .expect("mlp");
    let clf = Classifier::new(mlp, 64, 10);
    let config = FitConfig::new(1, 32, 0, OptimizerConfig::Adam(AdamConfig::default()));
    c.bench_function("mlp_64_128_10_digits_epoch_batch32_adam", |b| {
        b.iter(|| fit(&clf, &vm, &train, None, &config, FitHooks::default()).expect("fit"))
    });
}

criterion_group!(benches, epoch);
criterion_main!(benches);
