//! One training epoch through `deeprl_nets::train::fit` (seeded shuffle, batching, metrics
//! included; no validation), f32, batch 64, cross-entropy, Adam (lr 1e-3):
//!
//! * LeNet-5 (ReLU, average pooling) on the 1,438 training digits (80% of the set) enlarged
//!   to 24x24 and padded to 1x32x32: 23 mini-batches (the last of 30);
//! * ResNet-20 (He et al. 2016, section 4.2: 3x3 stem of 16 maps, three stages of three
//!   basic units at 16, 32 and 64 maps, projection shortcuts, global average pooling) on
//!   1,024 seeded random 3x32x32 images in `[0, 1)` with random labels among 10: 16
//!   mini-batches.
//!
//! The PyTorch twin (same models, data sizes, batch and optimizer, one thread) is
//! `benches/torch/epoch.py`. Run both on one core:
//!
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p deeprl-nets --bench epoch`
//!
//! With `EPOCHS=lenet:5` or `resnet:3` the binary instead runs that many epochs in a plain
//! loop (after one warm-up epoch) and prints the wall time, the CPU time and the minor page
//! faults per epoch, as the twin does with `cpu` as its first argument.

mod common;

use std::time::Duration;

use candle_core::{DType, Device, ModuleT};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, Criterion, SamplingMode};
use deeprl_nets::conv::init::torch_default_init;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::Dataset;
use deeprl_nets::mlp::Activation;
use deeprl_nets::models::classic::{upscale_and_pad, LeNet5, LeNet5Config, ResNet, ResNetConfig};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, Classifier, FitConfig, FitHooks};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn adam() -> OptimizerConfig {
    OptimizerConfig::Adam(AdamConfig { lr: 1e-3, ..AdamConfig::default() })
}

/// One epoch of training: the model's variables, the classifier, the data and the config.
struct Epoch<M> {
    vm: VarMap,
    clf: Classifier<M>,
    train: Dataset,
    config: FitConfig,
}

impl<M: ModuleT> Epoch<M> {
    fn run(&self) {
        fit(&self.clf, &self.vm, &self.train, None, &self.config, FitHooks::default())
            .expect("fit");
    }
}

fn lenet_setup() -> Epoch<LeNet5> {
    let (train, _) = digits().expect("digits").split(0.2, 0).expect("split");
    let train = upscale_and_pad(&train, 3, 4).expect("32x32");
    let vm = VarMap::new();
    let config =
        LeNet5Config { activation: Activation::Relu, ..LeNet5Config::new([1, 32, 32], 10) };
    let model =
        LeNet5::new(config, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).expect("lenet");
    torch_default_init(&vm, 0).expect("init");
    let clf = Classifier::new(model, 32 * 32, 10);
    Epoch { vm, clf, train, config: FitConfig::new(1, 64, 0, adam()) }
}

fn resnet_setup() -> Epoch<ResNet> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let n = 1024;
    let x: Vec<f32> = (0..n * 3 * 32 * 32).map(|_| rng.random::<f32>()).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let train = Dataset::new(x, 3 * 32 * 32, Some(labels)).expect("data");
    let vm = VarMap::new();
    let model = ResNet::new(
        ResNetConfig::cifar([3, 32, 32], 10, 3),
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .expect("resnet");
    torch_default_init(&vm, 0).expect("init");
    let clf = Classifier::new(model, 3 * 32 * 32, 10);
    Epoch { vm, clf, train, config: FitConfig::new(1, 64, 0, adam()) }
}

fn lenet_epoch(c: &mut Criterion) {
    let epoch = lenet_setup();
    let mut group = c.benchmark_group("epoch");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.bench_function("lenet5_digits_1438_batch64_adam", |b| b.iter(|| epoch.run()));
    group.finish();
}

fn resnet_epoch(c: &mut Criterion) {
    let epoch = resnet_setup();
    let mut group = c.benchmark_group("epoch");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(30));
    group.bench_function("resnet20_random_1024x3x32x32_batch64_adam", |b| b.iter(|| epoch.run()));
    group.finish();
}

criterion_group!(benches, lenet_epoch, resnet_epoch);

fn main() {
    let Ok(spec) = std::env::var("EPOCHS") else {
        benches();
        Criterion::default().configure_from_args().final_summary();
        return;
    };
    match common::parse_spec("EPOCHS", &spec) {
        ("lenet", epochs) => {
            let epoch = lenet_setup();
            common::plain_loop("lenet5 epoch", 1, epochs, || epoch.run());
        }
        ("resnet", epochs) => {
            let epoch = resnet_setup();
            common::plain_loop("resnet20 epoch", 1, epochs, || epoch.run());
        }
        (other, _) => panic!("EPOCHS: lenet or resnet, not {other}"),
    }
}
