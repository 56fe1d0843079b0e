//! `ScaleReward`: rewards multiplied by a constant factor.

use crate::env::{Env, Step};
use crate::error::{EnvError, Result};

/// Multiplies every reward by `factor` (Gymnasium's `TransformReward(env, lambda r: factor * r)`;
/// Gymnasium 0.x called a special case of it `ScaleReward`).
///
/// Observations and flags pass through unchanged. [`Env::transition_model`] returns `None`:
/// the inner model's rewards are not this env's.
#[derive(Debug, Clone)]
pub struct ScaleReward<E> {
    env: E,
    factor: f64,
}

impl<E: Env> ScaleReward<E> {
    /// Wraps `env`; `factor` must be finite (it may be zero or negative).
    pub fn new(env: E, factor: f64) -> Result<Self> {
        if !factor.is_finite() {
            return Err(EnvError::InvalidConfig(format!(
                "ScaleReward factor {factor}: expected a finite number"
            )));
        }
        Ok(ScaleReward { env, factor })
    }

    /// The factor rewards are multiplied by.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    inner_accessors!();
}

impl<E: Env> Env for ScaleReward<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    delegate_spaces!();
    delegate_render_and_limit!();

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut step = self.env.step(action)?;
        step.reward *= self.factor;
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::{small_mdp, Counter};

    #[test]
    fn scales_rewards_and_validates_the_factor() {
        let mut env = ScaleReward::new(Counter::new(None), -0.5).unwrap();
        env.reset(Some(0));
        assert_eq!(env.step(&1).unwrap().reward, -1.0);
        assert!(env.step(&7).is_err());
        assert_eq!(env.factor(), -0.5);
        assert_eq!(env.max_episode_steps(), Some(1000));
        for bad in [f64::NAN, f64::INFINITY] {
            assert!(matches!(
                ScaleReward::new(Counter::new(None), bad),
                Err(EnvError::InvalidConfig(_))
            ));
        }
        let mdp = ScaleReward::new(small_mdp(), 2.0).unwrap();
        assert!(mdp.transition_model().is_none());
        assert!(mdp.inner().transition_model().is_some());
    }
}
