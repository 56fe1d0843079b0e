//! The interface every agent implements, and the values that cross it.
//!
//! Agents see the type-erased view of an env ([`deeprl_envs::DynEnv`]): observations are flat
//! `f32` slices (a toy-text state is its index as one number), actions are written into an
//! [`ActionBuf`] the caller owns, so acting allocates nothing.

use crate::error::Result;
use crate::state::AgentState;
use deeprl_envs::ActionRef;

/// An action an agent chose, in a buffer the runner keeps across steps.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionBuf {
    /// A discrete action index.
    Discrete(usize),
    /// The values of a continuous action (the vector is reused, not reallocated).
    Continuous(Vec<f32>),
}

impl ActionBuf {
    /// A buffer for the actions of `space`: `Discrete(0)` or zeros of the box's length.
    pub fn for_space(space: &deeprl_envs::Space) -> Self {
        match space {
            deeprl_envs::Space::Box(b) => ActionBuf::Continuous(vec![0.0; b.len()]),
            _ => ActionBuf::Discrete(0),
        }
    }

    /// The action as the env takes it.
    pub fn as_ref(&self) -> ActionRef<'_> {
        match self {
            ActionBuf::Discrete(a) => ActionRef::Discrete(*a),
            ActionBuf::Continuous(v) => ActionRef::Continuous(v),
        }
    }

    /// Sets a discrete action.
    pub fn set_discrete(&mut self, action: usize) {
        *self = ActionBuf::Discrete(action);
    }

    /// The continuous values to fill, resized to `len` (no allocation once the size is right).
    pub fn continuous_mut(&mut self, len: usize) -> &mut [f32] {
        if !matches!(self, ActionBuf::Continuous(_)) {
            *self = ActionBuf::Continuous(Vec::with_capacity(len));
        }
        match self {
            ActionBuf::Continuous(v) => {
                v.resize(len, 0.0);
                v
            }
            ActionBuf::Discrete(_) => unreachable!("set to Continuous above"),
        }
    }
}

/// One step of experience, as the runner hands it to [`Agent::observe`].
///
/// `next_obs` is the observation the step produced, before any reset: on truncation it is the
/// true final observation, which the agent may bootstrap from; on termination the agent must
/// not bootstrap.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    pub obs: &'a [f32],
    pub action: ActionRef<'a>,
    pub reward: f64,
    pub next_obs: &'a [f32],
    pub terminated: bool,
    pub truncated: bool,
}

impl Transition<'_> {
    /// True when this step ended the episode.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// What a learning update reports.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrainInfo {
    /// The loss the update minimised (a TD error for tabular agents, `NaN` when none).
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
}

/// A reinforcement-learning agent.
///
/// The runner calls [`act`](Agent::act) to choose an exploring action, steps the env, then
/// hands the transition to [`observe`](Agent::observe); the agent learns when its algorithm
/// decides (every step for Q-learning and TD, at the end of a batch of episodes for
/// REINFORCE). [`act_greedy`](Agent::act_greedy) is the evaluation policy.
pub trait Agent: Send {
    /// The agent's registry name, e.g. `"q-learning"`.
    fn name(&self) -> &'static str;

    /// Chooses an exploring action for `obs`.
    fn act(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()>;

    /// Chooses the greedy (evaluation) action for `obs`; draws no exploration randomness.
    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()>;

    /// Learns from one transition; returns what an update reported, if one happened.
    fn observe(&mut self, transition: &Transition<'_>) -> Result<Option<TrainInfo>>;

    /// Scalars worth logging now (e.g. `("rollout/epsilon", 0.1)`).
    fn scalars(&self, _out: &mut dyn FnMut(&'static str, f64)) {}

    /// Writes everything needed to continue exactly (weights, tables, optimizer state,
    /// counters, RNG states) into `state`.
    fn save(&self, state: &mut AgentState) -> Result<()>;

    /// Restores what [`save`](Agent::save) wrote; an agent built with the same config first.
    fn load(&mut self, state: &AgentState) -> Result<()>;
}
