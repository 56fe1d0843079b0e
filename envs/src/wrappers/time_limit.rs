//! `TimeLimit`: truncates episodes after a number of steps (Gymnasium's `TimeLimit`).

use crate::env::{Env, Step};
use crate::error::{EpisodePhase, Result};

/// Truncates an episode once it has lasted `max_episode_steps` steps.
///
/// `truncated` is set on the step that reaches the limit, whether or not the inner env
/// terminated on the same step (both flags can be true, as in Gymnasium). Stepping after a
/// truncation without a reset is an error.
#[derive(Debug, Clone)]
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: usize,
    elapsed: usize,
    phase: EpisodePhase,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `env`; `max_episode_steps` must be at least 1 (a limit of 0 truncates on the
    /// first step).
    pub fn new(env: E, max_episode_steps: usize) -> Self {
        TimeLimit { env, max_episode_steps, elapsed: 0, phase: EpisodePhase::NeedsReset }
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }

    inner_accessors!();
}

impl<E: Env> Env for TimeLimit<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    delegate_spaces!();
    delegate_render!();
    delegate_model!();

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        self.elapsed = 0;
        self.phase = EpisodePhase::Running;
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        if let EpisodePhase::Ended { truncated: true } = self.phase {
            self.phase.check_step()?;
        }
        let mut step = self.env.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            step.truncated = true;
        }
        self.phase = EpisodePhase::after_step(step.terminated, step.truncated);
        Ok(step)
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Some(self.max_episode_steps)
    }
}
