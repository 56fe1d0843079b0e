//! Learning-rate (and exploration / importance-sampling) schedules with PyTorch's semantics,
//! so numbers port from `torch.optim.lr_scheduler` unchanged.
//!
//! | schedule | formula (`t` = optimizer step, from 0) | torch |
//! |---|---|---|
//! | [`Constant`] | `value` | no scheduler |
//! | [`Linear`] | `start + (end - start) * min(t / steps, 1)` | SB3 `get_linear_fn` |
//! | [`PowerDecay`] | `eta0 * (1 + t/s)^-c` | `LambdaLR` with that lambda |
//! | [`ExponentialDecay`] | `eta0 * 0.1^(t/s)` | `LambdaLR` with that lambda |
//! | [`ExponentialLR`] | `lr0 * gamma^t` | `ExponentialLR` |
//! | [`StepLR`] | `lr0 * gamma^floor(t / step_size)` | `StepLR` |
//! | [`MultiStepLR`] | `lr0 * gamma^#{milestones <= t}` | `MultiStepLR` |
//! | [`OneCycleLR`] | warm-up then annealing, momentum inverse | `OneCycleLR` |
//! | [`LambdaLR`] | `base_lr * f(t)` | `LambdaLR` |
//! | [`ReduceLROnPlateau`] | stateful: cut by `factor` when a metric stalls | `ReduceLROnPlateau` |
//!
//! # Driving an optimizer
//!
//! All but [`ReduceLROnPlateau`] are pure functions of the step ([`Schedule`]). A training
//! loop makes one call before each optimizer step `t` (0, 1, 2, ...): with candle,
//! `opt.set_learning_rate(schedule.value(t))` (`candle_nn::Optimizer::set_learning_rate`),
//! and, for [`OneCycleLR`], the momentum (SGD) or `beta1` (Adam) from
//! [`Schedule::momentum`] when it is `Some`. This is exactly torch's loop: `value(0)` is the
//! lr torch's scheduler sets in its constructor, `value(k)` the lr after `k` calls to
//! `scheduler.step()`.
//!
//! [`ReduceLROnPlateau`] instead reads a metric after each evaluation:
//! `opt.set_learning_rate(plateau.step(metric))`. [`ScheduleConfig`] (serde) builds any of
//! them as a [`Scheduler`], which gives both kinds one interface.
//!
//! ```
//! use deeprl_nets::schedule::{OneCycleConfig, OneCycleLR, Schedule};
//!
//! struct Sgd { lr: f64, momentum: f64 } // stands in for a candle optimizer
//! let mut opt = Sgd { lr: 0.0, momentum: 0.9 };
//! let sched = OneCycleLR::new(OneCycleConfig::new(1.0, 100))?;
//! for t in 0..100 {
//!     opt.lr = sched.value(t); // candle: opt.set_learning_rate(sched.value(t))
//!     if let Some(m) = sched.momentum(t) {
//!         opt.momentum = m;
//!     }
//!     // ... forward, backward, opt.step() ...
//! }
//! assert!((opt.lr - 4e-6).abs() < 1e-12); // max_lr / div_factor / final_div_factor
//! # Ok::<(), deeprl_nets::schedule::ScheduleError>(())
//! ```

mod basic;
mod config;
mod error;
mod one_cycle;
mod plateau;
mod step;

pub use basic::{Constant, ExponentialDecay, LambdaLR, Linear, PowerDecay};
pub use config::{ScheduleConfig, Scheduler};
pub use error::{Result, ScheduleError};
pub use one_cycle::{AnnealStrategy, OneCycleConfig, OneCycleLR};
pub use plateau::{PlateauConfig, PlateauMode, ReduceLROnPlateau, ThresholdMode};
pub use step::{ExponentialLR, MultiStepLR, StepLR};

/// A schedule that is a pure function of the optimizer step.
///
/// `step` counts optimizer steps from 0: `value(k)` is the value in effect for the `k`-th
/// optimizer step (torch: the lr after `k` calls to `scheduler.step()`).
pub trait Schedule {
    /// The learning rate (or epsilon, or beta) for optimizer step `step`.
    fn value(&self, step: u64) -> f64;

    /// The momentum (SGD) or `beta1` (Adam) for step `step`, when the schedule sets one
    /// ([`OneCycleLR`] with `cycle_momentum`); `None` means "leave the optimizer's own".
    fn momentum(&self, _step: u64) -> Option<f64> {
        None
    }
}
