//! A type-erased, object-safe view of any environment: flat `f32` observations written into
//! the caller's buffer, actions passed as [`ActionRef`].
//!
//! Every [`Env`] whose observation is [`FlatObs`] and whose action is [`EnvAction`] is a
//! [`DynEnv`] through a blanket impl, so concrete envs keep their fast typed API and the
//! registry, the CLI and the vector envs can hold any of them as `Box<dyn DynEnv>`.

use crate::env::{ActionRef, Env, EnvAction, FlatObs};
use crate::error::{EnvError, Result};
use crate::mdp::TransitionModel;
use crate::render::Frame;
use crate::space::Space;

/// Reward and end flags of a type-erased step (the observation went into the caller's buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

impl StepOutcome {
    /// True when the episode ended, by termination or truncation.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// An environment with flat `f32` observations, usable as a trait object.
///
/// The observation layout is [`Space::value_len`] numbers: a box's values, a discrete
/// observation's index, a multi-discrete observation's indices.
pub trait DynEnv: Send {
    /// The set of observations.
    fn observation_space(&self) -> Space;
    /// The set of valid actions.
    fn action_space(&self) -> Space;
    /// The number of `f32` values of one observation.
    fn obs_len(&self) -> usize;
    /// Starts an episode and writes its first observation into `obs`.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()>;
    /// Applies an action and writes the next observation into `obs`.
    fn step_into(&mut self, action: ActionRef<'_>, obs: &mut [f32]) -> Result<StepOutcome>;
    /// A text picture of the current state.
    fn render_text(&self) -> Option<String>;
    /// An RGB picture of the current state.
    fn render_rgb(&self) -> Option<Frame>;
    /// The time limit, if any.
    fn max_episode_steps(&self) -> Option<usize>;
    /// The transition model of a tabular env.
    fn transition_model(&self) -> Option<&TransitionModel>;
}

fn check_len(buffer: &[f32], expected: usize) -> Result<()> {
    if buffer.len() == expected {
        Ok(())
    } else {
        Err(EnvError::BufferLength { got: buffer.len(), expected })
    }
}

impl<E> DynEnv for E
where
    E: Env + Send,
    E::Obs: FlatObs,
    E::Action: EnvAction,
{
    fn observation_space(&self) -> Space {
        Env::observation_space(self)
    }

    fn action_space(&self) -> Space {
        Env::action_space(self)
    }

    fn obs_len(&self) -> usize {
        Env::observation_space(self).value_len()
    }

    /// The buffer is checked before the env changes when the observation type fixes its
    /// length (every built-in env); otherwise against the observation space first.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_len(obs, E::Obs::fixed_len().unwrap_or_else(|| DynEnv::obs_len(self)))?;
        let first = self.reset(seed);
        check_len(obs, first.flat_len())?;
        first.write_flat(obs);
        Ok(())
    }

    fn step_into(&mut self, action: ActionRef<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        if let Some(n) = E::Obs::fixed_len() {
            check_len(obs, n)?;
        }
        let action = E::Action::from_action_ref(action)?;
        let step = self.step(&action)?;
        check_len(obs, step.obs.flat_len())?;
        step.obs.write_flat(obs);
        Ok(StepOutcome {
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
        })
    }

    fn render_text(&self) -> Option<String> {
        Env::render_text(self)
    }

    fn render_rgb(&self) -> Option<Frame> {
        Env::render_rgb(self)
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Env::max_episode_steps(self)
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        Env::transition_model(self)
    }
}

impl DynEnv for Box<dyn DynEnv> {
    fn observation_space(&self) -> Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> Space {
        (**self).action_space()
    }
    fn obs_len(&self) -> usize {
        (**self).obs_len()
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        (**self).reset_into(seed, obs)
    }
    fn step_into(&mut self, action: ActionRef<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        (**self).step_into(action, obs)
    }
    fn render_text(&self) -> Option<String> {
        (**self).render_text()
    }
    fn render_rgb(&self) -> Option<Frame> {
        (**self).render_rgb()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        (**self).max_episode_steps()
    }
    fn transition_model(&self) -> Option<&TransitionModel> {
        (**self).transition_model()
    }
}
