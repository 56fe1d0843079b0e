//! Trains LeNet-5 on the committed digits: the 8x8 images enlarged 3 times (nearest
//! neighbour) and padded to LeNet's 32x32 input, as LeNet-5 read MNIST's 28x28 digits padded
//! to 32x32; 80/20 train/test split (seed 0), 10% of train held out for validation, Adam
//! (lr 1e-3), batch 32, early stopping on the validation loss with the best weights restored.
//! Prints each epoch and the test accuracy.
//!
//! `cargo run --release -p deeprl-nets --example digits_lenet -- [EPOCHS] [relu|tanh] [SEED]`
//! (defaults 30, tanh, 0).

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use deeprl_nets::conv::init::torch_default_init;
use deeprl_nets::data::digits::digits;
use deeprl_nets::mlp::Activation;
use deeprl_nets::models::classic::{upscale_and_pad, LeNet5, LeNet5Config};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{
    evaluate, fit, Classifier, EarlyStopping, EpochStats, FitConfig, FitHooks,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = args.get(1).map_or(Ok(30), |a| a.parse())?;
    let activation = match args.get(2).map(String::as_str) {
        None | Some("tanh") => Activation::Tanh,
        Some("relu") => Activation::Relu,
        Some(other) => return Err(format!("activation {other}: expected relu or tanh").into()),
    };
    let seed: u64 = args.get(3).map_or(Ok(0), |a| a.parse())?;
    let dev = Device::Cpu;
    let (train_all, test) = digits()?.split(0.2, 0)?;
    let (train, valid) = upscale_and_pad(&train_all, 3, 4)?.split(0.1, 1)?;
    let test = upscale_and_pad(&test, 3, 4)?;
    let config = LeNet5Config { activation, ..LeNet5Config::new([1, 32, 32], 10) };
    let vm = VarMap::new();
    let model = LeNet5::new(config, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    torch_default_init(&vm, seed)?;
    println!(
        "LeNet-5 ({activation:?}), {} parameters; {} train, {} validation, {} test images",
        model.parameter_count(),
        train.len(),
        valid.len(),
        test.len()
    );
    let clf = Classifier::new(model, 32 * 32, 10);
    let fit_config = FitConfig {
        early_stopping: Some(EarlyStopping { patience: 5, min_delta: 0.0, restore_best: true }),
        ..FitConfig::new(
            epochs,
            32,
            seed,
            OptimizerConfig::Adam(AdamConfig { lr: 1e-3, ..AdamConfig::default() }),
        )
    };
    let start = std::time::Instant::now();
    let mut progress = |s: &EpochStats| {
        let v = s.valid.expect("validation set given");
        println!(
            "epoch {:2}  train loss {:.4} acc {:.4}  valid loss {:.4} acc {:.4}  ({:.1} s)",
            s.epoch,
            s.train.loss,
            s.train.accuracy.unwrap_or(f64::NAN),
            v.loss,
            v.accuracy.unwrap_or(f64::NAN),
            start.elapsed().as_secs_f64()
        )
    };
    let hooks = FitHooks { progress: Some(&mut progress), ..FitHooks::default() };
    let report = fit(&clf, &vm, &train, Some(&valid), &fit_config, hooks)?;
    let t = evaluate(&clf, &test, 512, 3, &dev)?;
    println!(
        "best epoch {} of {}; test accuracy {:.4} ({} of {}), top-3 {:.4}; {:.1} s",
        report.best_epoch,
        report.history.len(),
        t.accuracy.unwrap_or(f64::NAN),
        (t.accuracy.unwrap_or(0.0) * test.len() as f64).round(),
        test.len(),
        t.top_k_accuracy.unwrap_or(f64::NAN),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
