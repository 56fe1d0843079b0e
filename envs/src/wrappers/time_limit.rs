//! `TimeLimit`: truncates episodes after a number of steps (Gymnasium's `TimeLimit`).

use crate::env::{Env, Step};
use crate::error::{EpisodePhase, Result};
use crate::mdp::TransitionModel;
use crate::render::Frame;
use crate::space::Space;

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

    /// The wrapped env.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped env, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps.
    pub fn into_inner(self) -> E {
        self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

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

    fn render_text(&self) -> Option<String> {
        self.env.render_text()
    }

    fn render_rgb(&self) -> Option<Frame> {
        self.env.render_rgb()
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Some(self.max_episode_steps)
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        self.env.transition_model()
    }
}
