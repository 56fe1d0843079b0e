//! torch's `ReduceLROnPlateau`: performance scheduling, the one stateful schedule.

use super::error::{non_negative, require, Result, ScheduleError};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Whether the monitored metric should go down (a loss) or up (a return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlateauMode {
    /// Lower is better (torch's default).
    #[default]
    Min,
    /// Higher is better.
    Max,
}

/// How `threshold` defines a significant improvement over `best`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdMode {
    /// Relative: `x < best * (1 - threshold)` (min) or `x > best * (1 + threshold)` (max).
    /// torch's default.
    #[default]
    Rel,
    /// Absolute: `x < best - threshold` (min) or `x > best + threshold` (max).
    Abs,
}

fn unknown(field: &'static str, expected: &'static str, got: &str) -> ScheduleError {
    ScheduleError::UnknownVariant { field, expected, got: got.to_owned() }
}

impl FromStr for PlateauMode {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "min" => Ok(Self::Min),
            "max" => Ok(Self::Max),
            _ => Err(unknown("mode", "\"min\", \"max\"", s)),
        }
    }
}

impl FromStr for ThresholdMode {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rel" => Ok(Self::Rel),
            "abs" => Ok(Self::Abs),
            _ => Err(unknown("threshold_mode", "\"rel\", \"abs\"", s)),
        }
    }
}

/// The hyperparameters of [`ReduceLROnPlateau`], torch's names; `Default` and serde give
/// torch's defaults except `lr`, the optimizer's initial lr (default 0.001 here, as torch's
/// SGD/Adam).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlateauConfig {
    /// The initial learning rate (torch takes it from the optimizer).
    pub lr: f64,
    /// Default [`PlateauMode::Min`].
    pub mode: PlateauMode,
    /// Multiplier on a reduction, in [0, 1). Default 0.1.
    pub factor: f64,
    /// Bad steps tolerated before a reduction. Default 10.
    pub patience: u64,
    /// Significance of an improvement. Default 1e-4.
    pub threshold: f64,
    /// Default [`ThresholdMode::Rel`].
    pub threshold_mode: ThresholdMode,
    /// Steps after a reduction during which bad steps are not counted. Default 0.
    pub cooldown: u64,
    /// Lower bound on the lr. Default 0.
    pub min_lr: f64,
    /// Reductions smaller than this are skipped. Default 1e-8.
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// Performance scheduling, torch's `ReduceLROnPlateau`: the lr is cut by `factor` once the
/// metric has failed to improve for more than `patience` consecutive steps.
///
/// Stateful, so not a [`Schedule`](super::Schedule): after each evaluation call
/// `opt.set_learning_rate(plateau.step(metric))`; [`lr`](Self::lr) is the lr in effect.
/// Each `step(x)` does exactly what torch does:
/// 1. improvement (see [`ThresholdMode`]; `best` starts at +inf for min, -inf for max):
///    `best = x, bad = 0`; otherwise `bad += 1` (a NaN metric never improves);
/// 2. in cooldown (`cooldown_counter > 0`): `cooldown_counter -= 1, bad = 0`;
/// 3. if `bad > patience`: `new = max(lr * factor, min_lr)`, applied only if
///    `lr - new > eps`; then `cooldown_counter = cooldown, bad = 0`.
///
/// The `eps` rule stops the decay once a reduction would be smaller than `eps`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceLROnPlateau {
    config: PlateauConfig,
    lr: f64,
    best: f64,
    num_bad: u64,
    cooldown_counter: u64,
}

impl ReduceLROnPlateau {
    /// Errors unless `lr`, `threshold`, `min_lr` and `eps` are finite and `>= 0` and
    /// `0 <= factor < 1`. (Invalid `mode` strings are rejected when parsing.)
    pub fn new(config: PlateauConfig) -> Result<Self> {
        const S: &str = "ReduceLROnPlateau";
        let f = config.factor;
        require((0.0..1.0).contains(&f), S, "factor", "in [0, 1)", f)?;
        non_negative(S, "lr", config.lr)?;
        non_negative(S, "threshold", config.threshold)?;
        non_negative(S, "min_lr", config.min_lr)?;
        non_negative(S, "eps", config.eps)?;
        let best = match config.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        Ok(Self { lr: config.lr, config, best, num_bad: 0, cooldown_counter: 0 })
    }

    /// The learning rate in effect now (for the next optimizer step).
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The best metric seen so far (±inf before the first step).
    pub fn best(&self) -> f64 {
        self.best
    }

    /// The hyperparameters.
    pub fn config(&self) -> &PlateauConfig {
        &self.config
    }

    fn is_better(&self, x: f64) -> bool {
        let (best, thr) = (self.best, self.config.threshold);
        match (self.config.mode, self.config.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => x < best * (1.0 - thr),
            (PlateauMode::Min, ThresholdMode::Abs) => x < best - thr,
            (PlateauMode::Max, ThresholdMode::Rel) => x > best * (thr + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => x > best + thr,
        }
    }

    /// Records the metric of the step just taken and returns the lr for the next one.
    pub fn step(&mut self, metric: f64) -> f64 {
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad = 0;
        } else {
            self.num_bad += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad = 0;
        }
        if self.num_bad > self.config.patience {
            let new = (self.lr * self.config.factor).max(self.config.min_lr);
            if self.lr - new > self.config.eps {
                self.lr = new;
            }
            self.cooldown_counter = self.config.cooldown;
            self.num_bad = 0;
        }
        self.lr
    }
}

#[cfg(test)]
#[path = "plateau_tests.rs"]
mod tests;
