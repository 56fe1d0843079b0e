//! `ActionRepeat`: each action applied k times (the frame skip of Gymnasium's
//! `MaxAndSkipObservation`, without the max).

use crate::env::{Env, Step};
use crate::error::{EnvError, Result};

/// Applies each action `repeat` times to the inner env and returns one step: the sum of the
/// rewards, the last observation, and the flags of the last inner step. The repetition stops
/// early when an inner step ends the episode (terminated or truncated). This is the frame
/// skip of Gymnasium's `MaxAndSkipObservation(env, skip=repeat)` (and SB3's `MaxAndSkipEnv`)
/// without the max over the last two frames.
///
/// An error from the first inner step changes nothing. An error from a later inner step (an
/// action that became impossible in the state reached) is returned as it is, but the inner
/// steps already taken cannot be undone: reset before stepping again.
///
/// [`Env::max_episode_steps`] is the inner limit divided by `repeat`, rounded up (the number
/// of wrapper steps after which the inner env truncates). [`Env::transition_model`] returns
/// `None`: the inner model describes one inner step, not `repeat` of them.
#[derive(Debug, Clone)]
pub struct ActionRepeat<E> {
    env: E,
    repeat: usize,
}

impl<E: Env> ActionRepeat<E> {
    /// Wraps `env`; `repeat` must be at least 1 (1 changes nothing).
    pub fn new(env: E, repeat: usize) -> Result<Self> {
        if repeat == 0 {
            return Err(EnvError::InvalidConfig(
                "ActionRepeat repeat is 0: expected at least 1".into(),
            ));
        }
        Ok(ActionRepeat { env, repeat })
    }

    /// How many times each action is applied.
    pub fn repeat(&self) -> usize {
        self.repeat
    }

    inner_accessors!();
}

impl<E: Env> Env for ActionRepeat<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    delegate_spaces!();

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut step = self.env.step(action)?;
        let mut total = step.reward;
        for _ in 1..self.repeat {
            if step.done() {
                break;
            }
            step = self.env.step(action)?;
            total += step.reward;
        }
        step.reward = total;
        Ok(step)
    }

    fn render_text(&self) -> Option<String> {
        self.env.render_text()
    }

    fn render_rgb(&self) -> Option<crate::render::Frame> {
        self.env.render_rgb()
    }

    fn max_episode_steps(&self) -> Option<usize> {
        self.env.max_episode_steps().map(|limit| limit.div_ceil(self.repeat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::{small_mdp, Counter};
    use crate::wrappers::TimeLimit;

    #[test]
    fn repeats_sums_and_stops_at_the_end() {
        let mut env = ActionRepeat::new(Counter::new(Some(5)), 2).unwrap();
        env.reset(Some(0));
        let s = env.step(&1).unwrap();
        assert_eq!((s.obs[0], s.reward, s.terminated), (2.0, 4.0, false));
        env.step(&0).unwrap();
        let s = env.step(&0).unwrap();
        assert_eq!((s.obs[0], s.reward, s.terminated), (5.0, 1.0, true));
        assert!(env.step(&0).is_err());

        let mut env = ActionRepeat::new(TimeLimit::new(Counter::new(None), 3), 4).unwrap();
        assert_eq!(env.max_episode_steps(), Some(1));
        env.reset(Some(0));
        let s = env.step(&0).unwrap();
        assert_eq!((s.obs[0], s.reward, s.truncated), (3.0, 3.0, true));
    }

    #[test]
    fn errors_and_config() {
        let mut env = ActionRepeat::new(Counter::new(None), 3).unwrap();
        env.reset(Some(0));
        assert!(env.step(&2).is_err());
        assert_eq!(env.inner().render_text().as_deref(), Some("t = 0\n"));
        assert_eq!(env.max_episode_steps(), Some(334));
        assert_eq!(env.repeat(), 3);
        assert!(matches!(
            ActionRepeat::new(Counter::new(None), 0),
            Err(EnvError::InvalidConfig(_))
        ));
        let mdp = ActionRepeat::new(small_mdp(), 2).unwrap();
        assert!(mdp.transition_model().is_none());
    }
}
