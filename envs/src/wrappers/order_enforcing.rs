//! `OrderEnforcing`: rejects a step before reset and a step after the end of an episode
//! (Gymnasium's `OrderEnforcing`, which `gymnasium.make` applies to every env).

use crate::env::{Env, Step};
use crate::error::{EpisodePhase, Result};
use crate::mdp::TransitionModel;
use crate::render::Frame;
use crate::space::Space;

/// Makes any env, including a user's that does not track its episode, refuse `step` before
/// the first `reset` and after a step that terminated or truncated. The registry's
/// [`crate::make`] applies it to every env, so a custom env need not check the order itself.
#[derive(Debug, Clone)]
pub struct OrderEnforcing<E> {
    env: E,
    phase: EpisodePhase,
}

impl<E: Env> OrderEnforcing<E> {
    /// Wraps `env`; it must be reset before the first step.
    pub fn new(env: E) -> Self {
        OrderEnforcing { env, phase: EpisodePhase::NeedsReset }
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

impl<E: Env> Env for OrderEnforcing<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        self.phase = EpisodePhase::Running;
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        self.phase.check_step()?;
        let step = self.env.step(action)?;
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
        self.env.max_episode_steps()
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        self.env.transition_model()
    }
}
