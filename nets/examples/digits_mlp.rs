//! Trains an MLP on the committed digits (80/20 train/test split, 10% of train for
//! validation) with early stopping, ReduceLROnPlateau and a best-model checkpoint, then
//! reports test accuracy, MC dropout's accuracy and uncertainty, and writes a PNG grid of
//! the misclassified test digits.
//!
//! `cargo run --release -p deeprl-nets --example digits_mlp -- [OUT_DIR]`
//! (default `target/examples-out`).

use candle_core::{DType, Device};
use candle_nn::VarMap;
use deeprl_nets::data::digits::digits;
use deeprl_nets::data::png::save_grid_png;
use deeprl_nets::mlp::{Mlp, MlpConfig};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::regularize::mc_dropout;
use deeprl_nets::schedule::PlateauConfig;
use deeprl_nets::train::{
    evaluate, fit, Classifier, EarlyStopping, EpochStats, FitConfig, FitHooks,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(
        std::env::args().nth(1).unwrap_or_else(|| "target/examples-out".into()),
    );
    let dev = Device::Cpu;
    let (train_all, test) = digits()?.split(0.2, 0)?;
    let (train, valid) = train_all.split(0.1, 1)?;
    let config = MlpConfig { dropout: Some(0.2), ..MlpConfig::new(vec![64, 128, 10]) };
    let vm = VarMap::new();
    let clf = Classifier::new(Mlp::seeded(&config, &vm, "", DType::F32, &dev, 0)?, 64, 10);
    let fit_config = FitConfig {
        plateau: Some(PlateauConfig { patience: 3, factor: 0.5, ..PlateauConfig::default() }),
        early_stopping: Some(EarlyStopping { patience: 8, min_delta: 0.0, restore_best: true }),
        checkpoint: Some(out.join("digits_mlp.safetensors")),
        ..FitConfig::new(
            60,
            32,
            7,
            OptimizerConfig::Adam(AdamConfig { lr: 3e-3, ..AdamConfig::default() }),
        )
    };
    let mut progress = |s: &EpochStats| {
        let v = s.valid.expect("validation set given");
        println!(
            "epoch {:2}  lr {:.1e}  train loss {:.4} acc {:.4}  valid loss {:.4} acc {:.4}",
            s.epoch,
            s.lr,
            s.train.loss,
            s.train.accuracy.unwrap_or(f64::NAN),
            v.loss,
            v.accuracy.unwrap_or(f64::NAN)
        )
    };
    let hooks = FitHooks { progress: Some(&mut progress), ..FitHooks::default() };
    let report = fit(&clf, &vm, &train, Some(&valid), &fit_config, hooks)?;
    let t = evaluate(&clf, &test, 512, 3, &dev)?;
    println!(
        "best epoch {} (stopped early: {}); test accuracy {:.4}, top-3 {:.4}",
        report.best_epoch,
        report.stopped_early,
        t.accuracy.unwrap_or(f64::NAN),
        t.top_k_accuracy.unwrap_or(f64::NAN)
    );

    let all = test.tensors(&dev)?;
    let labels: Vec<u32> = test.labels().map(<[u32]>::to_vec).unwrap_or_default();
    let det: Vec<u32> = clf.logits(&all.x)?.argmax(1)?.to_vec1()?;
    let probs = candle_nn::func(|x| {
        candle_nn::ops::softmax(&candle_core::ModuleT::forward_t(&clf.model, x, true)?, 1)
    });
    struct AsModuleT<F>(F);
    impl<F: candle_core::Module> candle_core::ModuleT for AsModuleT<F> {
        fn forward_t(
            &self,
            x: &candle_core::Tensor,
            _: bool,
        ) -> candle_core::Result<candle_core::Tensor> {
            self.0.forward(x)
        }
    }
    let mc = mc_dropout(&AsModuleT(probs), &all.x, 50)?;
    let mc_pred: Vec<u32> = mc.mean.argmax(1)?.to_vec1()?;
    let acc = |p: &[u32]| {
        p.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64
    };
    println!(
        "MC dropout (50 passes): accuracy {:.4}, deterministic {:.4}",
        acc(&mc_pred),
        acc(&det)
    );

    let wrong: Vec<Vec<f32>> =
        (0..test.len()).filter(|&i| det[i] != labels[i]).map(|i| test.row(i).to_vec()).collect();
    if !wrong.is_empty() {
        let path = out.join("digits_mlp_misclassified.png");
        save_grid_png(&path, &wrong, 8, 8, 4)?;
        println!("{} misclassified test digits -> {}", wrong.len(), path.display());
    }
    Ok(())
}
