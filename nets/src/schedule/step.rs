//! torch's multiplicative schedules: `ExponentialLR`, `StepLR` and `MultiStepLR`.
//!
//! torch applies these recursively (`lr = lr * gamma` whenever a factor falls due); here
//! they are closed forms `lr0 * gamma^n`, which agree to a few ulp (well inside 1e-12
//! relative over any practical run) and cost O(1) (`MultiStepLR`: O(log milestones)) per
//! query.

use super::error::{non_negative, positive, require, Result};
use super::Schedule;

/// `lr0 * gamma^t`: torch's `ExponentialLR(opt, gamma)` (which computes
/// `lr = lr * gamma` once per step; the closed form here differs by a few ulp).
/// For the base-10 form `eta0 * 0.1^(t/s)` see [`ExponentialDecay`](super::ExponentialDecay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialLR {
    lr0: f64,
    gamma: f64,
}

impl ExponentialLR {
    /// Errors unless `lr0` is finite and `>= 0` and `gamma` finite and `> 0`.
    pub fn new(lr0: f64, gamma: f64) -> Result<Self> {
        Ok(Self {
            lr0: non_negative("ExponentialLR", "lr", lr0)?,
            gamma: positive("ExponentialLR", "gamma", gamma)?,
        })
    }
}

impl Schedule for ExponentialLR {
    fn value(&self, step: u64) -> f64 {
        self.lr0 * self.gamma.powf(step as f64)
    }
}

/// Piecewise constant, `lr0 * gamma^floor(t / step_size)`: torch's
/// `StepLR(opt, step_size, gamma=0.1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLR {
    lr0: f64,
    step_size: u64,
    gamma: f64,
}

impl StepLR {
    /// Errors unless `lr0` is finite and `>= 0`, `step_size > 0` and `gamma` finite and `> 0`.
    pub fn new(lr0: f64, step_size: u64, gamma: f64) -> Result<Self> {
        require(step_size > 0, "StepLR", "step_size", "> 0", step_size)?;
        Ok(Self {
            lr0: non_negative("StepLR", "lr", lr0)?,
            step_size,
            gamma: positive("StepLR", "gamma", gamma)?,
        })
    }
}

impl Schedule for StepLR {
    fn value(&self, step: u64) -> f64 {
        self.lr0 * self.gamma.powf((step / self.step_size) as f64)
    }
}

/// Piecewise constant, `lr0 * gamma^(number of milestones <= t)`: torch's
/// `MultiStepLR(opt, milestones, gamma=0.1)`. Milestones count with multiplicity (torch
/// keeps a `Counter`: a milestone listed twice multiplies by `gamma^2`); their order does
/// not matter.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStepLR {
    lr0: f64,
    milestones: Vec<u64>,
    gamma: f64,
}

impl MultiStepLR {
    /// Errors unless `lr0` is finite and `>= 0` and `gamma` finite and `> 0`.
    pub fn new(lr0: f64, milestones: impl Into<Vec<u64>>, gamma: f64) -> Result<Self> {
        let mut milestones = milestones.into();
        milestones.sort_unstable();
        Ok(Self {
            lr0: non_negative("MultiStepLR", "lr", lr0)?,
            milestones,
            gamma: positive("MultiStepLR", "gamma", gamma)?,
        })
    }
}

impl Schedule for MultiStepLR {
    fn value(&self, step: u64) -> f64 {
        let passed = self.milestones.partition_point(|&m| m <= step);
        self.lr0 * self.gamma.powf(passed as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lr_drops_at_multiples() {
        let s = StepLR::new(1.0, 10, 0.5).unwrap();
        assert_eq!(s.value(0), 1.0);
        assert_eq!(s.value(9), 1.0);
        assert_eq!(s.value(10), 0.5);
        assert_eq!(s.value(25), 0.25);
        let e = StepLR::new(1.0, 0, 0.5).unwrap_err();
        assert!(e.to_string().contains("step_size"), "{e}");
        assert!(StepLR::new(1.0, 1, -0.5).is_err());
        assert!(StepLR::new(-1.0, 1, 0.5).is_err());
    }

    #[test]
    fn multistep_counts_repeats_in_any_order() {
        let m = MultiStepLR::new(1.0, vec![30, 10, 30], 0.5).unwrap();
        assert_eq!(m.value(9), 1.0);
        assert_eq!(m.value(10), 0.5);
        assert_eq!(m.value(29), 0.5);
        assert_eq!(m.value(30), 0.125);
        assert_eq!(MultiStepLR::new(1.0, [], 0.5).unwrap().value(1000), 1.0);
    }

    #[test]
    fn exponential_matches_recursion() {
        let e = ExponentialLR::new(0.1, 0.97).unwrap();
        let mut lr = 0.1;
        for t in 0..1000 {
            assert!((e.value(t) - lr).abs() <= 1e-12 * lr, "step {t}");
            lr *= 0.97;
        }
        assert!(ExponentialLR::new(0.1, f64::NAN).is_err());
    }
}
