//! Plugs the root crate's TensorBoard writer into `deeprl_nets::train::fit`: the nets crate
//! knows only the `FitLogger` trait, so a three-line adapter sends its per-epoch scalars
//! (`train/loss`, `valid/accuracy`, ...) to an event file.
//!
//! `cargo run --release --example fit_tensorboard -- [LOG_DIR]` (default
//! `target/examples-out/fit_tensorboard`), then `tensorboard --logdir LOG_DIR`.

use candle_core::{DType, Device};
use candle_nn::VarMap;
use deeprl::tensorboard::EventWriter;
use deeprl_nets::data::digits::digits;
use deeprl_nets::mlp::{Mlp, MlpConfig};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig};
use deeprl_nets::train::{fit, Classifier, FitConfig, FitHooks, FitLogger};

/// The adapter: `FitLogger` over the TensorBoard writer (an I/O error is reported once on
/// stderr and later scalars are dropped, so logging never aborts training).
struct Tensorboard {
    writer: EventWriter,
    failed: bool,
}

impl FitLogger for Tensorboard {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) {
        if !self.failed {
            if let Err(e) = self.writer.add_scalar(tag, step, value as f32) {
                eprintln!("TensorBoard logging stopped: {e}");
                self.failed = true;
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let dir =
        std::env::args().nth(1).unwrap_or_else(|| "target/examples-out/fit_tensorboard".into());
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let mut logger = Tensorboard { writer: EventWriter::create(&dir)?, failed: false };
    let (train, valid) = digits()?.split(0.2, 0)?;
    let vm = VarMap::new();
    let mlp =
        Mlp::seeded(&MlpConfig::new(vec![64, 128, 10]), &vm, "", DType::F32, &Device::Cpu, 0)?;
    let clf = Classifier::new(mlp, 64, 10);
    let config = FitConfig::new(20, 32, 0, OptimizerConfig::Adam(AdamConfig::default()));
    let hooks = FitHooks { logger: Some(&mut logger), ..FitHooks::default() };
    let report = fit(&clf, &vm, &train, Some(&valid), &config, hooks)?;
    logger.writer.flush()?;
    let last = report.history.last().and_then(|s| s.valid).and_then(|v| v.accuracy);
    println!(
        "20 epochs, validation accuracy {:.4}; events in {}",
        last.unwrap_or(f64::NAN),
        logger.writer.path().display()
    );
    Ok(())
}
