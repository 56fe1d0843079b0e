//! `OrderEnforcing`: rejects a step before reset and a step after the end of an episode
//! (Gymnasium's `OrderEnforcing`, which `gymnasium.make` applies to every env).

use crate::env::{Env, Step};
use crate::error::{EpisodePhase, Result};

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

    inner_accessors!();
}

impl<E: Env> Env for OrderEnforcing<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    delegate_spaces!();
    delegate_render_and_limit!();
    delegate_model!();

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
}
