//! Schedules given by a closed formula: constant, linear, power and base-10 exponential
//! decay, and torch's `LambdaLR` for any function of the step.

use super::error::{finite, non_negative, positive, Result};
use super::Schedule;

/// The same value at every step (a fixed learning rate, epsilon or beta).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant {
    value: f64,
}

impl Constant {
    /// Errors when `value` is not finite.
    pub fn new(value: f64) -> Result<Self> {
        Ok(Self { value: finite("Constant", "value", value)? })
    }
}

impl Schedule for Constant {
    fn value(&self, _step: u64) -> f64 {
        self.value
    }
}

/// `start + (end - start) * min(t / steps, 1)`: from `start` at step 0 to `end` at step
/// `steps`, then constant at `end` (`steps == 0` gives `end` from the start).
///
/// Stable-Baselines3's `get_linear_fn(start, end, end_fraction)` in steps rather than
/// remaining progress (`steps = end_fraction * total_timesteps`); used for DQN's epsilon
/// (1 to 0.05) and prioritized replay's beta (0.4 to 1). Either direction is allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    start: f64,
    end: f64,
    steps: u64,
}

impl Linear {
    /// Errors when `start` or `end` is not finite.
    pub fn new(start: f64, end: f64, steps: u64) -> Result<Self> {
        Ok(Self {
            start: finite("Linear", "start", start)?,
            end: finite("Linear", "end", end)?,
            steps,
        })
    }
}

impl Schedule for Linear {
    fn value(&self, step: u64) -> f64 {
        if step >= self.steps {
            return self.end;
        }
        let progress = step as f64 / self.steps as f64;
        self.start + (self.end - self.start) * progress
    }
}

/// Power scheduling `eta0 * (1 + t/s)^-c`: after `s` steps the lr is `eta0 / 2^c`, after
/// `k*s` steps `eta0 / (k+1)^c`.
///
/// torch: `LambdaLR(opt, lambda t: (1 + t/s)**(-c))` with the optimizer's lr `eta0`
/// (`base_lr * lambda(t)`, not chained).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerDecay {
    eta0: f64,
    s: f64,
    c: f64,
}

impl PowerDecay {
    /// Errors unless `eta0` and `c` are finite and `>= 0` and `s` is finite and `> 0`.
    pub fn new(eta0: f64, s: f64, c: f64) -> Result<Self> {
        Ok(Self {
            eta0: non_negative("PowerDecay", "eta0", eta0)?,
            s: positive("PowerDecay", "s", s)?,
            c: non_negative("PowerDecay", "c", c)?,
        })
    }
}

impl Schedule for PowerDecay {
    fn value(&self, step: u64) -> f64 {
        self.eta0 * (1.0 + step as f64 / self.s).powf(-self.c)
    }
}

/// Exponential scheduling in base 10: `eta0 * 0.1^(t/s)`, a tenfold drop every `s` steps.
///
/// torch: `LambdaLR(opt, lambda t: 0.1**(t/s))`. torch's own `ExponentialLR` takes a
/// per-step factor instead (`gamma = 0.1^(1/s)`) and multiplies recursively: see
/// [`ExponentialLR`](super::ExponentialLR); the two agree to a few ulp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialDecay {
    eta0: f64,
    s: f64,
}

impl ExponentialDecay {
    /// Errors unless `eta0` is finite and `>= 0` and `s` is finite and `> 0`.
    pub fn new(eta0: f64, s: f64) -> Result<Self> {
        Ok(Self {
            eta0: non_negative("ExponentialDecay", "eta0", eta0)?,
            s: positive("ExponentialDecay", "s", s)?,
        })
    }
}

impl Schedule for ExponentialDecay {
    fn value(&self, step: u64) -> f64 {
        self.eta0 * 0.1f64.powf(step as f64 / self.s)
    }
}

/// `base_lr * f(t)` for any function `f` of the step: torch's `LambdaLR` (not chained).
/// Not serializable; [`PowerDecay`] and [`ExponentialDecay`] are the common cases.
#[derive(Clone)]
pub struct LambdaLR<F> {
    base_lr: f64,
    f: F,
}

impl<F: Fn(u64) -> f64> LambdaLR<F> {
    /// Errors unless `base_lr` is finite and `>= 0`.
    pub fn new(base_lr: f64, f: F) -> Result<Self> {
        Ok(Self { base_lr: non_negative("LambdaLR", "base_lr", base_lr)?, f })
    }
}

impl<F: Fn(u64) -> f64> Schedule for LambdaLR<F> {
    fn value(&self, step: u64) -> f64 {
        self.base_lr * (self.f)(step)
    }
}

impl<F> std::fmt::Debug for LambdaLR<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaLR").field("base_lr", &self.base_lr).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_endpoints_and_clamp() {
        let eps = Linear::new(1.0, 0.05, 100).unwrap();
        assert_eq!(eps.value(0), 1.0);
        assert!((eps.value(50) - 0.525).abs() < 1e-15);
        assert_eq!(eps.value(100), 0.05);
        assert_eq!(eps.value(10_000), 0.05);
        let beta = Linear::new(0.4, 1.0, 10).unwrap();
        assert_eq!(beta.value(0), 0.4);
        assert_eq!(beta.value(10), 1.0);
        assert!(beta.value(5) > 0.4 && beta.value(5) < 1.0);
        assert_eq!(Linear::new(1.0, 0.1, 0).unwrap().value(0), 0.1);
        assert!(Linear::new(f64::NAN, 0.0, 1).is_err());
        assert_eq!(Constant::new(0.3).unwrap().value(7), 0.3);
        assert!(Constant::new(f64::INFINITY).is_err());
        assert_eq!(Constant::new(0.3).unwrap().momentum(0), None);
    }

    #[test]
    fn power_and_exponential_decay() {
        let p = PowerDecay::new(0.1, 20.0, 1.0).unwrap();
        assert_eq!(p.value(0), 0.1);
        assert!((p.value(20) - 0.05).abs() < 1e-16);
        assert!((p.value(60) - 0.025).abs() < 1e-16);
        let e = ExponentialDecay::new(0.1, 10.0).unwrap();
        assert!((e.value(10) - 0.01).abs() < 1e-17);
        assert!((e.value(20) - 0.001).abs() < 1e-18);
        assert!(PowerDecay::new(0.1, 0.0, 1.0).is_err());
        assert!(PowerDecay::new(-0.1, 1.0, 1.0).is_err());
        assert!(ExponentialDecay::new(0.1, -1.0).is_err());
    }

    #[test]
    fn lambda_lr_multiplies_base() {
        let l = LambdaLR::new(0.5, |t| 1.0 / (t + 1) as f64).unwrap();
        assert_eq!(l.value(0), 0.5);
        assert_eq!(l.value(1), 0.25);
        assert!(format!("{l:?}").contains("0.5"));
        assert!(LambdaLR::new(f64::NAN, |_| 1.0).is_err());
    }
}
