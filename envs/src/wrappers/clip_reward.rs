//! `ClipReward`: rewards clipped into an interval (Gymnasium's `ClipReward`).

use crate::env::{Env, Step};
use crate::error::{EnvError, Result};

/// Clips every reward into `[min_reward, max_reward]` (Gymnasium's `ClipReward`;
/// `reward' = min(max(reward, min_reward), max_reward)`). Either bound may be infinite, for a
/// one-sided clip (Gymnasium's `None`).
///
/// Observations and flags pass through unchanged. [`Env::transition_model`] returns `None`:
/// the inner model's rewards are not this env's.
#[derive(Debug, Clone)]
pub struct ClipReward<E> {
    env: E,
    min_reward: f64,
    max_reward: f64,
}

impl<E: Env> ClipReward<E> {
    /// Wraps `env`; the bounds must not be NaN and `min_reward <= max_reward`.
    pub fn new(env: E, min_reward: f64, max_reward: f64) -> Result<Self> {
        if min_reward.is_nan() || max_reward.is_nan() || min_reward > max_reward {
            return Err(EnvError::InvalidConfig(format!(
                "ClipReward bounds [{min_reward}, {max_reward}]: expected numbers with min <= max"
            )));
        }
        Ok(ClipReward { env, min_reward, max_reward })
    }

    /// The interval rewards are clipped into.
    pub fn bounds(&self) -> (f64, f64) {
        (self.min_reward, self.max_reward)
    }

    inner_accessors!();
}

impl<E: Env> Env for ClipReward<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    delegate_spaces!();
    delegate_render_and_limit!();

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut step = self.env.step(action)?;
        step.reward = step.reward.max(self.min_reward).min(self.max_reward);
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::{Counter, Walker};

    #[test]
    fn clips_into_the_bounds() {
        let mut env = ClipReward::new(Walker::new(10), -0.5, 1.0).unwrap();
        env.reset(Some(0));
        assert_eq!(env.step(&[1.0, -1.0]).unwrap().reward, 1.0);
        assert_eq!(env.step(&[-1.0, 1.0]).unwrap().reward, -0.5);
        assert_eq!(env.step(&[0.25, 0.0]).unwrap().reward, 0.25);
        let mut one_sided = ClipReward::new(Counter::new(None), f64::NEG_INFINITY, 1.5).unwrap();
        one_sided.reset(Some(0));
        assert_eq!(one_sided.step(&1).unwrap().reward, 1.5);
        assert_eq!(one_sided.step(&0).unwrap().reward, 1.0);
        assert_eq!(one_sided.bounds(), (f64::NEG_INFINITY, 1.5));
    }

    #[test]
    fn rejects_bad_bounds() {
        for (lo, hi) in [(1.0, 0.0), (f64::NAN, 1.0), (0.0, f64::NAN)] {
            assert!(matches!(
                ClipReward::new(Counter::new(None), lo, hi),
                Err(EnvError::InvalidConfig(_))
            ));
        }
    }
}
