//! [`ScheduleConfig`]: any schedule as plain data (config files, the CLI), and
//! [`Scheduler`], what it builds.

use super::{
    Constant, ExponentialDecay, ExponentialLR, Linear, MultiStepLR, OneCycleConfig, OneCycleLR,
    PlateauConfig, PowerDecay, ReduceLROnPlateau, Result, Schedule, StepLR,
};
use serde::{Deserialize, Serialize};

fn default_gamma() -> f64 {
    0.1
}

fn default_c() -> f64 {
    1.0
}

/// Any schedule, tagged by `kind`, fields with torch's names; omitted optional fields take
/// torch's defaults. Unknown kinds or fields, and unknown `mode` / `threshold_mode` /
/// `anneal_strategy` strings, are parse errors; out-of-range values are errors of
/// [`build`](Self::build).
///
/// ```
/// use deeprl_nets::schedule::ScheduleConfig;
/// let c: ScheduleConfig = serde_json::from_str(
///     r#"{"kind": "reduce_on_plateau", "lr": 0.01, "mode": "max", "patience": 5}"#,
/// )?;
/// let mut s = c.build()?;
/// assert_eq!(s.value(0), 0.01);
/// assert!(s.is_metric_driven());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleConfig {
    /// [`Constant`]: `{"kind": "constant", "value": 0.001}`.
    Constant {
        /// The value at every step.
        value: f64,
    },
    /// [`Linear`]: `{"kind": "linear", "start": 1.0, "end": 0.05, "steps": 10000}`.
    Linear {
        /// Value at step 0.
        start: f64,
        /// Value from step `steps` on.
        end: f64,
        /// Length of the ramp.
        steps: u64,
    },
    /// [`PowerDecay`] `eta0 * (1 + t/s)^-c`.
    Power {
        /// Initial lr.
        eta0: f64,
        /// Time scale in steps.
        s: f64,
        /// Exponent. Default 1.
        #[serde(default = "default_c")]
        c: f64,
    },
    /// [`ExponentialDecay`] `eta0 * 0.1^(t/s)`.
    ExponentialDecay {
        /// Initial lr.
        eta0: f64,
        /// Steps per tenfold drop.
        s: f64,
    },
    /// [`ExponentialLR`] `lr * gamma^t` (torch: `gamma` required).
    Exponential {
        /// Initial lr.
        lr: f64,
        /// Per-step factor.
        gamma: f64,
    },
    /// [`StepLR`] `lr * gamma^floor(t / step_size)`.
    Step {
        /// Initial lr.
        lr: f64,
        /// Steps between drops.
        step_size: u64,
        /// Factor per drop. Default 0.1.
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// [`MultiStepLR`] `lr * gamma^#{milestones <= t}`.
    MultiStep {
        /// Initial lr.
        lr: f64,
        /// Steps at which the lr drops (with multiplicity).
        milestones: Vec<u64>,
        /// Factor per milestone. Default 0.1.
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// [`OneCycleLR`]: `{"kind": "one_cycle", "max_lr": 0.1, "total_steps": 1000, ...}`.
    OneCycle(OneCycleConfig),
    /// [`ReduceLROnPlateau`]: `{"kind": "reduce_on_plateau", "lr": 0.01, ...}`.
    ReduceOnPlateau(PlateauConfig),
}

impl ScheduleConfig {
    /// Validates the hyperparameters and builds the schedule.
    pub fn build(&self) -> Result<Scheduler> {
        Ok(match *self {
            Self::Constant { value } => Scheduler::Constant(Constant::new(value)?),
            Self::Linear { start, end, steps } => {
                Scheduler::Linear(Linear::new(start, end, steps)?)
            }
            Self::Power { eta0, s, c } => Scheduler::Power(PowerDecay::new(eta0, s, c)?),
            Self::ExponentialDecay { eta0, s } => {
                Scheduler::ExponentialDecay(ExponentialDecay::new(eta0, s)?)
            }
            Self::Exponential { lr, gamma } => {
                Scheduler::Exponential(ExponentialLR::new(lr, gamma)?)
            }
            Self::Step { lr, step_size, gamma } => {
                Scheduler::Step(StepLR::new(lr, step_size, gamma)?)
            }
            Self::MultiStep { lr, ref milestones, gamma } => {
                Scheduler::MultiStep(MultiStepLR::new(lr, milestones.clone(), gamma)?)
            }
            Self::OneCycle(c) => Scheduler::OneCycle(OneCycleLR::new(c)?),
            Self::ReduceOnPlateau(c) => Scheduler::Plateau(ReduceLROnPlateau::new(c)?),
        })
    }
}

/// A built [`ScheduleConfig`]: one interface for step-driven and metric-driven schedules.
///
/// Before optimizer step `t`: `opt.set_learning_rate(s.value(t))` (and the momentum from
/// [`momentum`](Self::momentum) when `Some`); after each evaluation `s.observe(metric)`,
/// which only [`ReduceLROnPlateau`] uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheduler {
    /// See [`Constant`].
    Constant(Constant),
    /// See [`Linear`].
    Linear(Linear),
    /// See [`PowerDecay`].
    Power(PowerDecay),
    /// See [`ExponentialDecay`].
    ExponentialDecay(ExponentialDecay),
    /// See [`ExponentialLR`].
    Exponential(ExponentialLR),
    /// See [`StepLR`].
    Step(StepLR),
    /// See [`MultiStepLR`].
    MultiStep(MultiStepLR),
    /// See [`OneCycleLR`].
    OneCycle(OneCycleLR),
    /// See [`ReduceLROnPlateau`].
    Plateau(ReduceLROnPlateau),
}

impl Scheduler {
    /// The pure schedule, or the plateau one.
    fn kind(&self) -> std::result::Result<&dyn Schedule, &ReduceLROnPlateau> {
        Ok(match self {
            Self::Constant(s) => s,
            Self::Linear(s) => s,
            Self::Power(s) => s,
            Self::ExponentialDecay(s) => s,
            Self::Exponential(s) => s,
            Self::Step(s) => s,
            Self::MultiStep(s) => s,
            Self::OneCycle(s) => s,
            Self::Plateau(p) => return Err(p),
        })
    }

    /// The value for optimizer step `step` (for [`ReduceLROnPlateau`]: its current lr).
    pub fn value(&self, step: u64) -> f64 {
        match self.kind() {
            Ok(s) => s.value(step),
            Err(p) => p.lr(),
        }
    }

    /// The momentum / `beta1` for step `step`, when the schedule sets one.
    pub fn momentum(&self, step: u64) -> Option<f64> {
        self.kind().ok().and_then(|s| s.momentum(step))
    }

    /// Whether the schedule follows a metric ([`observe`](Self::observe)) rather than steps.
    pub fn is_metric_driven(&self) -> bool {
        matches!(self, Self::Plateau(_))
    }

    /// Feeds an evaluation metric to a metric-driven schedule (a no-op for the others).
    pub fn observe(&mut self, metric: f64) {
        if let Self::Plateau(p) = self {
            p.step(metric);
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
