//! `NormalizeReward`: rewards scaled by the running spread of the discounted return
//! (Gymnasium's `NormalizeReward`).

use super::RunningMeanStd;
use crate::env::{Env, Step};
use crate::error::{EnvError, Result};

/// Divides each reward by the running standard deviation of a discounted return
/// (Gymnasium 1.x's `NormalizeReward`), so that rewards of any scale reach the agent with a
/// roughly fixed spread. On every step, with the inner reward `r`:
///
/// ```text
/// G  = G * gamma * (1 - terminated) + r      (G starts at 0)
/// update the running variance of G            (training mode only)
/// r' = r / sqrt(var(G) + epsilon)             gamma = 0.99, epsilon = 1e-8 by default
/// ```
///
/// The mean is not subtracted. `G` restarts at a termination exactly as Gymnasium's does: the
/// terminating step's `G` is its reward alone. A truncation or a reset does not restart it
/// (Gymnasium's behaviour; SB3's `VecNormalize` zeroes it after every episode end instead).
/// The statistics are a [`RunningMeanStd`] of length 1 (count `1e-4`, mean 0, variance 1 at
/// the start); [`NormalizeReward::set_update`] with `false` freezes them for evaluation.
/// A step that returns an error changes neither `G` nor the statistics.
/// [`Env::transition_model`] returns `None`: the inner model's rewards are not this env's.
#[derive(Debug, Clone)]
pub struct NormalizeReward<E> {
    env: E,
    stats: RunningMeanStd,
    discounted_return: f64,
    gamma: f64,
    epsilon: f64,
    update: bool,
}

impl<E: Env> NormalizeReward<E> {
    /// Gymnasium's default discount.
    pub const DEFAULT_GAMMA: f64 = 0.99;
    /// Gymnasium's default `epsilon`.
    pub const DEFAULT_EPSILON: f64 = 1e-8;

    /// Wraps `env` with `gamma = 0.99` and `epsilon = 1e-8`.
    pub fn new(env: E) -> Result<Self> {
        Self::with_params(env, Self::DEFAULT_GAMMA, Self::DEFAULT_EPSILON)
    }

    /// Wraps `env`; `gamma` must be in `[0, 1]`, `epsilon` finite and `>= 0`.
    pub fn with_params(env: E, gamma: f64, epsilon: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&gamma) {
            return Err(EnvError::InvalidConfig(format!(
                "NormalizeReward gamma {gamma}: expected a number in [0, 1]"
            )));
        }
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(EnvError::InvalidConfig(format!(
                "NormalizeReward epsilon {epsilon}: expected a finite number >= 0"
            )));
        }
        Ok(NormalizeReward {
            env,
            stats: RunningMeanStd::new(1),
            discounted_return: 0.0,
            gamma,
            epsilon,
            update: true,
        })
    }

    /// Turns updating of the statistics on (training) or off (evaluation).
    pub fn set_update(&mut self, update: bool) {
        self.update = update;
    }

    /// True while the statistics are updated.
    pub fn is_updating(&self) -> bool {
        self.update
    }

    /// The running variance of the discounted return.
    pub fn return_var(&self) -> f64 {
        self.stats.var()[0]
    }

    /// The running statistics of the discounted return (length 1).
    pub fn statistics(&self) -> &RunningMeanStd {
        &self.stats
    }

    /// Replaces the statistics, e.g. with those of a training env; their length must be 1.
    pub fn set_statistics(&mut self, stats: RunningMeanStd) -> Result<()> {
        if stats.len() != 1 {
            return Err(EnvError::InvalidConfig(format!(
                "reward statistics of length {}: expected 1",
                stats.len()
            )));
        }
        self.stats = stats;
        Ok(())
    }

    /// The discounted return `G` accumulated so far.
    pub fn discounted_return(&self) -> f64 {
        self.discounted_return
    }

    /// The discount `gamma`.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    inner_accessors!();
}

impl<E: Env> Env for NormalizeReward<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    delegate_spaces!();
    delegate_render_and_limit!();

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut step = self.env.step(action)?;
        let keep = if step.terminated { 0.0 } else { 1.0 };
        self.discounted_return = self.discounted_return * self.gamma * keep + step.reward;
        if self.update {
            self.stats.update([self.discounted_return]);
        }
        step.reward /= (self.stats.var()[0] + self.epsilon).sqrt();
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::Counter;

    /// Gymnasium's formulas, written out for scalars.
    fn reference(rewards: &[(f64, bool)], gamma: f64) -> Vec<f64> {
        let (mut g, mut mean, mut var, mut count) = (0.0, 0.0, 1.0, 1e-4);
        let mut out = vec![];
        for &(r, terminated) in rewards {
            g = g * gamma * (1.0 - f64::from(u8::from(terminated))) + r;
            let delta = g - mean;
            let total = count + 1.0;
            mean += delta * 1.0 / total;
            var = (var * count + 0.0 + delta * delta * count * 1.0 / total) / total;
            count = total;
            out.push(r / (var + 1e-8f64).sqrt());
        }
        out
    }

    #[test]
    fn matches_gymnasium_across_terminations() {
        let mut env = NormalizeReward::with_params(Counter::new(Some(3)), 0.9, 1e-8).unwrap();
        let actions = [1, 0, 1, 1, 1, 0, 0, 1];
        let mut got = vec![];
        let mut raw = vec![];
        env.reset(Some(0));
        for a in actions {
            let step = env.step(&a).unwrap();
            got.push(step.reward);
            raw.push((1.0 + a as f64, step.terminated));
            if step.terminated {
                env.reset(None);
            }
        }
        assert_eq!(raw.iter().filter(|r| r.1).count(), 2);
        let expect = reference(&raw, 0.9);
        for (g, e) in got.iter().zip(&expect) {
            assert!((g - e).abs() < 1e-12, "{got:?} vs {expect:?}");
        }
    }

    #[test]
    fn freezing_and_errors_leave_the_state_unchanged() {
        let mut env = NormalizeReward::new(Counter::new(None)).unwrap();
        env.reset(Some(0));
        env.step(&1).unwrap();
        let (g, stats) = (env.discounted_return(), env.statistics().clone());
        assert!(env.step(&9).is_err());
        assert_eq!(env.discounted_return(), g);
        assert_eq!(env.statistics(), &stats);
        env.set_update(false);
        let r = env.step(&1).unwrap().reward;
        assert_eq!(env.statistics(), &stats);
        assert_eq!(r, 2.0 / (stats.var()[0] + 1e-8).sqrt());
        assert!(env.set_statistics(RunningMeanStd::new(2)).is_err());
        for (gamma, eps) in [(1.5, 1e-8), (-0.1, 1e-8), (0.99, -1.0), (f64::NAN, 0.0)] {
            assert!(matches!(
                NormalizeReward::with_params(Counter::new(None), gamma, eps),
                Err(EnvError::InvalidConfig(_))
            ));
        }
    }
}
