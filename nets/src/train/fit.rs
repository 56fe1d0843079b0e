//! [`fit`]: the training loop for any [`Objective`].
//!
//! Each epoch: shuffle the training rows with the run's `ChaCha8Rng` (seeded by
//! [`FitConfig::seed`]), and for each mini-batch augment it (training only), compute the
//! loss in training mode, add the weight penalty, back-propagate, step the optimizer over the
//! trainable (non-frozen) variables, and project the weights onto the max-norm ball. Then
//! evaluate on the validation set in evaluation mode, feed the monitored loss (validation,
//! or training without a validation set) to ReduceLROnPlateau, keep the best weights (in
//! memory, and on disk when a checkpoint path is set) and stop early when the monitored loss
//! has not improved for `patience` epochs. The same seed and data give the same weights,
//! bit for bit.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::metrics::{evaluate, to_batch, Counts, Metrics};
use super::{save_weights, trainable_vars, FitLogger, Objective, TrainError};
use crate::data::{Augment, Dataset};
use crate::optim::{Optim, OptimizerConfig};
use crate::regularize::{MaxNorm, Penalty};
use crate::schedule::{PlateauConfig, ReduceLROnPlateau};

/// Early stopping (Prechelt 1998, "Early stopping - but when?"): stop once the monitored
/// loss has not improved by more than `min_delta` for `patience` consecutive epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    pub patience: usize,
    #[serde(default)]
    pub min_delta: f64,
    /// Put the best epoch's weights back at the end (Keras' `restore_best_weights`).
    #[serde(default = "yes")]
    pub restore_best: bool,
}

fn yes() -> bool {
    true
}

/// The settings of a [`fit`] run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the batch order.
    pub seed: u64,
    pub optimizer: OptimizerConfig,
    /// Performance scheduling on the monitored loss; its `lr` is replaced by the optimizer's.
    #[serde(default)]
    pub plateau: Option<PlateauConfig>,
    #[serde(default)]
    pub early_stopping: Option<EarlyStopping>,
    /// Added to each training batch's loss, over the trainable rank-2 variables (weights, not
    /// biases).
    #[serde(default)]
    pub penalty: Option<Penalty>,
    /// Applied to the trainable rank-2 variables after each optimizer step.
    #[serde(default)]
    pub max_norm: Option<MaxNorm>,
    /// Where to save the best weights (safetensors, atomic write) each time they improve.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// Name prefixes of variables that get no updates (see [`trainable_vars`]).
    #[serde(default)]
    pub frozen: Vec<String>,
    /// The `k` of top-k accuracy (default 3).
    #[serde(default = "three")]
    pub top_k: usize,
}

fn three() -> usize {
    3
}

impl FitConfig {
    /// A config with the given optimizer and nothing optional.
    pub fn new(epochs: usize, batch_size: usize, seed: u64, optimizer: OptimizerConfig) -> Self {
        Self {
            epochs,
            batch_size,
            seed,
            optimizer,
            plateau: None,
            early_stopping: None,
            penalty: None,
            max_norm: None,
            checkpoint: None,
            frozen: Vec::new(),
            top_k: 3,
        }
    }

    /// Checks every field; the error names it.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |f: &str, v: String, e: &str| {
            Err(TrainError::Config(format!("{f} = {v}: expected {e}")))
        };
        if self.epochs == 0 {
            return bad("epochs", "0".into(), ">= 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), ">= 1");
        }
        if self.top_k == 0 {
            return bad("top_k", "0".into(), ">= 1");
        }
        if let Some(e) = &self.early_stopping {
            if !(e.min_delta >= 0.0 && e.min_delta.is_finite()) {
                return bad(
                    "early_stopping.min_delta",
                    e.min_delta.to_string(),
                    "a finite number >= 0",
                );
            }
        }
        self.optimizer.validate().map_err(|e| TrainError::Config(e.to_string()))?;
        if let Some(p) = &self.penalty {
            p.validate()?;
        }
        if let Some(m) = &self.max_norm {
            m.validate()?;
        }
        Ok(())
    }
}

/// What one epoch measured. Training loss and accuracy are means over the epoch's batches
/// in training mode, without the penalty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    pub train: Metrics,
    pub valid: Option<Metrics>,
    /// The learning rate used during this epoch.
    pub lr: f64,
}

impl EpochStats {
    /// The loss early stopping, the plateau schedule and the checkpoint watch.
    pub fn monitored_loss(&self) -> f64 {
        self.valid.map_or(self.train.loss, |v| v.loss)
    }
}

/// The outcome of [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    pub history: Vec<EpochStats>,
    /// The epoch (1-based) with the lowest monitored loss.
    pub best_epoch: usize,
    pub best_loss: f64,
    pub stopped_early: bool,
}

/// Optional hooks of a [`fit`] run.
#[derive(Default)]
pub struct FitHooks<'a> {
    /// Receives the scalars of each epoch (see [`super::logger`] for the tags).
    pub logger: Option<&'a mut dyn FitLogger>,
    /// Called after each epoch.
    pub progress: Option<&'a mut dyn FnMut(&EpochStats)>,
    /// Augments training batches (never validation); the training set needs an image shape.
    pub augment: Option<&'a mut Augment>,
}

fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}

/// Trains the variables of `varmap` that are not frozen, minimising `objective` on
/// `train`, validating on `valid` each epoch; see the [module documentation](self).
pub fn fit<O: Objective + ?Sized>(
    objective: &O,
    varmap: &VarMap,
    train: &Dataset,
    valid: Option<&Dataset>,
    config: &FitConfig,
    mut hooks: FitHooks<'_>,
) -> Result<FitReport, TrainError> {
    config.validate()?;
    if train.is_empty() {
        return Err(TrainError::Input("the training set is empty".into()));
    }
    objective.check(train)?;
    if let Some(v) = valid {
        if v.is_empty() {
            return Err(TrainError::Input("the validation set is empty".into()));
        }
        objective.check(v)?;
    }
    let image = train.image_shape();
    if hooks.augment.is_some() && image.is_none() {
        return Err(TrainError::Config(
            "augmentation needs a training set with an image shape".into(),
        ));
    }
    let vars = trainable_vars(varmap, &config.frozen)?;
    if vars.is_empty() {
        return Err(TrainError::Config(format!(
            "no trainable variables left after freezing {:?}",
            config.frozen
        )));
    }
    let device: Device = vars[0].device().clone();
    let weights: Vec<Var> = vars.iter().filter(|v| v.rank() == 2).cloned().collect();
    let all_vars = trainable_vars(varmap, &[])?;
    let mut opt = Optim::new(vars, config.optimizer)?;
    let mut plateau = match config.plateau {
        Some(p) => Some(
            ReduceLROnPlateau::new(PlateauConfig { lr: opt.learning_rate(), ..p })
                .map_err(|e| TrainError::Config(e.to_string()))?,
        ),
        None => None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    let mut history = Vec::with_capacity(config.epochs);
    let (mut best_loss, mut best_epoch) = (f64::INFINITY, 0);
    let mut best: Option<Vec<Tensor>> = None;
    let mut stopped_early = false;
    for epoch in 1..=config.epochs {
        let lr = opt.learning_rate();
        let mut counts = Counts::default();
        let mut batches = train.batches(config.batch_size, Some(&mut rng))?;
        let mut b = 0;
        while let Some(n) = batches.next_into(&mut x, &mut labels) {
            b += 1;
            if let (Some(aug), Some(shape)) = (hooks.augment.as_deref_mut(), image) {
                aug.apply(&mut x, shape)?;
            }
            let batch = to_batch(&x, &labels, n, train.dim(), &device)?;
            let out = objective.loss(&batch, true)?;
            let data_loss = scalar(&out.loss)?;
            if !data_loss.is_finite() {
                return Err(TrainError::Input(format!(
                    "the loss is {data_loss} at epoch {epoch}, batch {b}"
                )));
            }
            let total = match (&config.penalty, weights.is_empty()) {
                (Some(p), false) => (&out.loss + p.apply(&weights)?.to_dtype(out.loss.dtype())?)?,
                _ => out.loss.clone(),
            };
            opt.backward_step(&total)?;
            if let Some(m) = &config.max_norm {
                m.apply_all(&weights)?;
            }
            counts.add(n, data_loss, out.scores.as_ref(), &labels, config.top_k)?;
        }
        let valid_metrics = match valid {
            Some(v) => {
                Some(evaluate(objective, v, config.batch_size.max(256), config.top_k, &device)?)
            }
            None => None,
        };
        let stats = EpochStats { epoch, train: counts.metrics(), valid: valid_metrics, lr };
        let monitored = stats.monitored_loss();
        if let Some(p) = plateau.as_mut() {
            opt.set_learning_rate(p.step(monitored));
        }
        let min_delta = config.early_stopping.map_or(0.0, |e| e.min_delta);
        if monitored < best_loss - min_delta {
            best_loss = monitored;
            best_epoch = epoch;
            if config.early_stopping.is_some_and(|e| e.restore_best) {
                best = Some(
                    all_vars
                        .iter()
                        .map(|v| v.as_tensor().copy())
                        .collect::<candle_core::Result<_>>()?,
                );
            }
            if let Some(path) = &config.checkpoint {
                save_weights(varmap, path)?;
            }
        }
        if let Some(log) = hooks.logger.as_deref_mut() {
            log_epoch(log, &stats);
        }
        if let Some(progress) = hooks.progress.as_deref_mut() {
            progress(&stats);
        }
        history.push(stats);
        if let Some(e) = config.early_stopping {
            if epoch - best_epoch >= e.patience {
                stopped_early = epoch < config.epochs;
                break;
            }
        }
    }
    if let Some(best) = best {
        for (v, t) in all_vars.iter().zip(&best) {
            v.set(t)?;
        }
    }
    Ok(FitReport { history, best_epoch, best_loss, stopped_early })
}

fn log_epoch(log: &mut dyn FitLogger, s: &EpochStats) {
    let step = s.epoch as u64;
    log.scalar("train/loss", step, s.train.loss);
    log.scalar("train/lr", step, s.lr);
    if let Some(a) = s.train.accuracy {
        log.scalar("train/accuracy", step, a);
    }
    if let Some(v) = &s.valid {
        log.scalar("valid/loss", step, v.loss);
        if let Some(a) = v.accuracy {
            log.scalar("valid/accuracy", step, a);
        }
        if let Some(a) = v.top_k_accuracy {
            log.scalar("valid/top_k_accuracy", step, a);
        }
    }
}
