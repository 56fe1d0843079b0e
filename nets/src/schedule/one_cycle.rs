//! torch's `OneCycleLR`: a warm-up to `max_lr` then annealing far below the start, with
//! the momentum moving the other way.

use super::error::{non_negative, positive, require, Result, ScheduleError};
use super::Schedule;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::str::FromStr;

/// How [`OneCycleLR`] interpolates within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnealStrategy {
    /// `end + (start - end) / 2 * (cos(pi * pct) + 1)` (torch's default).
    #[default]
    Cos,
    /// `start + (end - start) * pct`.
    Linear,
}

impl FromStr for AnnealStrategy {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cos" => Ok(Self::Cos),
            "linear" => Ok(Self::Linear),
            _ => Err(ScheduleError::UnknownVariant {
                field: "anneal_strategy",
                expected: "\"cos\", \"linear\"",
                got: s.to_owned(),
            }),
        }
    }
}

impl AnnealStrategy {
    fn anneal(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Self::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Self::Linear => (end - start) * pct + start,
        }
    }
}

/// The hyperparameters of [`OneCycleLR`], with torch's names; [`OneCycleConfig::new`] and
/// serde fill in torch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneCycleConfig {
    /// Peak learning rate (required).
    pub max_lr: f64,
    /// Length of the cycle in optimizer steps (required; torch's `total_steps`).
    pub total_steps: u64,
    /// Fraction of the cycle spent warming up, in (0, 1). Default 0.3.
    #[serde(default = "defaults::pct_start")]
    pub pct_start: f64,
    /// Default [`AnnealStrategy::Cos`].
    #[serde(default)]
    pub anneal_strategy: AnnealStrategy,
    /// Whether to cycle the momentum (SGD momentum or Adam `beta1`). Default true.
    #[serde(default = "defaults::cycle_momentum")]
    pub cycle_momentum: bool,
    /// Momentum at the lr peak. Default 0.85.
    #[serde(default = "defaults::base_momentum")]
    pub base_momentum: f64,
    /// Momentum at the start and end. Default 0.95.
    #[serde(default = "defaults::max_momentum")]
    pub max_momentum: f64,
    /// `initial_lr = max_lr / div_factor`. Default 25.
    #[serde(default = "defaults::div_factor")]
    pub div_factor: f64,
    /// `min_lr = initial_lr / final_div_factor`. Default 1e4.
    #[serde(default = "defaults::final_div_factor")]
    pub final_div_factor: f64,
    /// Come back down to `initial_lr` before annealing to `min_lr`. Default false.
    #[serde(default)]
    pub three_phase: bool,
}

mod defaults {
    pub fn pct_start() -> f64 {
        0.3
    }
    pub fn cycle_momentum() -> bool {
        true
    }
    pub fn base_momentum() -> f64 {
        0.85
    }
    pub fn max_momentum() -> f64 {
        0.95
    }
    pub fn div_factor() -> f64 {
        25.0
    }
    pub fn final_div_factor() -> f64 {
        1e4
    }
}

impl OneCycleConfig {
    /// `max_lr` and `total_steps` with torch's defaults for everything else.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        Self {
            max_lr,
            total_steps,
            pct_start: defaults::pct_start(),
            anneal_strategy: AnnealStrategy::Cos,
            cycle_momentum: true,
            base_momentum: defaults::base_momentum(),
            max_momentum: defaults::max_momentum(),
            div_factor: defaults::div_factor(),
            final_div_factor: defaults::final_div_factor(),
            three_phase: false,
        }
    }
}

/// One phase: it ends at step `end` (a float) going from `lr.0` to `lr.1` and from
/// `momentum.0` to `momentum.1`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Phase {
    end: f64,
    lr: (f64, f64),
    momentum: (f64, f64),
}

/// The 1-cycle policy, torch's `OneCycleLR` (it overwrites the optimizer's lr and, with
/// `cycle_momentum`, its momentum / `beta1`).
///
/// With `initial = max_lr / div_factor`, `min = initial / final_div_factor` and
/// `T = total_steps`, the phases end at the (float) steps
/// * two-phase: `pct_start*T - 1` (lr initial → max, momentum max → base), then `T - 1`
///   (lr max → min, momentum base → max);
/// * three-phase: `pct_start*T - 1` (initial → max), `2*pct_start*T - 2` (max → initial,
///   momentum back to max), `T - 1` (initial → min, momentum constant at max).
///
/// In the phase containing `t`, `pct = (t - start) / (end - start)` where `start` is the
/// previous phase's end (0 for the first), and the value is annealed with `pct`.
///
/// Differences from torch: steps past the cycle (`t >= T`) stay at the final values
/// (torch extrapolates the last phase at `t == T` and raises beyond it); a phase of zero
/// length (e.g. `pct_start*T == 1`, where torch divides by zero) gives its end values.
#[derive(Debug, Clone, PartialEq)]
pub struct OneCycleLR {
    /// All phases but the last.
    early: Vec<Phase>,
    last: Phase,
    strategy: AnnealStrategy,
    cycle_momentum: bool,
    total_steps: u64,
}

impl OneCycleLR {
    /// Errors unless `total_steps > 0`, `0 < pct_start < 1`, `max_lr` is finite and
    /// `>= 0`, `div_factor` and `final_div_factor` are finite and `> 0`, and the momenta
    /// are finite and `>= 0`.
    pub fn new(c: OneCycleConfig) -> Result<Self> {
        const S: &str = "OneCycleLR";
        require(c.total_steps > 0, S, "total_steps", "> 0", c.total_steps)?;
        let p = c.pct_start;
        require(p > 0.0 && p < 1.0, S, "pct_start", "in (0, 1)", p)?;
        let max_lr = non_negative(S, "max_lr", c.max_lr)?;
        let initial = max_lr / positive(S, "div_factor", c.div_factor)?;
        let min = initial / positive(S, "final_div_factor", c.final_div_factor)?;
        let base_m = non_negative(S, "base_momentum", c.base_momentum)?;
        let max_m = non_negative(S, "max_momentum", c.max_momentum)?;
        let t = c.total_steps as f64;
        let warm_up = Phase { end: p * t - 1.0, lr: (initial, max_lr), momentum: (max_m, base_m) };
        let (early, last) = if c.three_phase {
            let down =
                Phase { end: 2.0 * p * t - 2.0, lr: (max_lr, initial), momentum: (base_m, max_m) };
            (
                vec![warm_up, down],
                Phase { end: t - 1.0, lr: (initial, min), momentum: (max_m, max_m) },
            )
        } else {
            (vec![warm_up], Phase { end: t - 1.0, lr: (max_lr, min), momentum: (base_m, max_m) })
        };
        Ok(Self {
            early,
            last,
            strategy: c.anneal_strategy,
            cycle_momentum: c.cycle_momentum,
            total_steps: c.total_steps,
        })
    }

    /// The number of steps in the cycle.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// The phase containing `step` and its `pct`, torch's loop over the phases.
    fn locate(&self, step: u64) -> (&Phase, f64) {
        let k = step.min(self.total_steps - 1) as f64;
        let pct =
            |start: f64, end: f64| if end == start { 1.0 } else { (k - start) / (end - start) };
        let mut start = 0.0;
        for phase in &self.early {
            if k <= phase.end {
                return (phase, pct(start, phase.end));
            }
            start = phase.end;
        }
        (&self.last, pct(start, self.last.end))
    }
}

impl Schedule for OneCycleLR {
    fn value(&self, step: u64) -> f64 {
        let (phase, pct) = self.locate(step);
        self.strategy.anneal(phase.lr.0, phase.lr.1, pct)
    }

    fn momentum(&self, step: u64) -> Option<f64> {
        if !self.cycle_momentum {
            return None;
        }
        let (phase, pct) = self.locate(step);
        Some(self.strategy.anneal(phase.momentum.0, phase.momentum.1, pct))
    }
}

#[cfg(test)]
#[path = "one_cycle_tests.rs"]
mod tests;
