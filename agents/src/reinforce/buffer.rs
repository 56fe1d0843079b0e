//! The steps of the episodes collected since the last REINFORCE update, as flat arrays that
//! become the update's batch tensors without reshuffling.

use super::returns::discounted_returns;
use crate::error::{AgentError, Result};
use crate::state::{AgentState, Array};

/// Observations, actions, rewards and (for finished episodes) returns of every step since the
/// last update. The vectors keep their capacity across updates, so a step allocates nothing
/// once they have grown to an update's size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodeBatch {
    obs_dim: usize,
    action_dim: usize,
    /// `[steps, obs_dim]`, row-major.
    pub obs: Vec<f32>,
    /// `[steps, action_dim]`: a discrete action as its index (exact in `f32` below 2^24), a
    /// continuous action as the unclipped sample.
    pub actions: Vec<f32>,
    /// One reward per step.
    pub rewards: Vec<f64>,
    /// `G_t` for the steps of finished episodes (the unfinished episode has none yet).
    pub returns: Vec<f32>,
    /// Finished episodes in the batch.
    pub episodes: u64,
}

impl EpisodeBatch {
    /// An empty batch for observations of `obs_dim` and actions of `action_dim` values.
    pub fn new(obs_dim: usize, action_dim: usize) -> Self {
        EpisodeBatch { obs_dim, action_dim, ..Self::default() }
    }

    /// The number of stored steps.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// True when no step is stored.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// Appends one step (`obs` and `action` of the batch's sizes, checked by the caller).
    pub fn push(&mut self, obs: &[f32], action: &[f32], reward: f64) {
        self.obs.extend_from_slice(obs);
        self.actions.extend_from_slice(action);
        self.rewards.push(reward);
    }

    /// Ends the current episode: computes the discounted returns of its steps (no bootstrap).
    pub fn finish_episode(&mut self, gamma: f64) {
        let start = self.returns.len();
        self.returns.resize(self.rewards.len(), 0.0);
        discounted_returns(&self.rewards[start..], gamma, &mut self.returns[start..]);
        self.episodes += 1;
    }

    /// Empties the batch, keeping the capacity.
    pub fn clear(&mut self) {
        self.obs.clear();
        self.actions.clear();
        self.rewards.clear();
        self.returns.clear();
        self.episodes = 0;
    }

    /// Stores the batch under `prefix` in `state`.
    pub fn save(&self, prefix: &str, state: &mut AgentState) -> Result<()> {
        let n = self.len();
        state.put_f32(&format!("{prefix}obs"), &[n, self.obs_dim], self.obs.clone());
        state.put_f32(&format!("{prefix}actions"), &[n, self.action_dim], self.actions.clone());
        state.put_f64(&format!("{prefix}rewards"), &[n], self.rewards.clone());
        state.put_f32(&format!("{prefix}returns"), &[self.returns.len()], self.returns.clone());
        state.put_meta(&format!("{prefix}episodes"), &self.episodes)
    }

    /// Restores a batch [`save`](Self::save) wrote, checking its sizes against this batch's.
    pub fn load(&mut self, prefix: &str, state: &AgentState) -> Result<()> {
        let (obs_shape, obs) = f32_array(state, &format!("{prefix}obs"))?;
        let (act_shape, actions) = f32_array(state, &format!("{prefix}actions"))?;
        let (_, returns) = f32_array(state, &format!("{prefix}returns"))?;
        let n = obs_shape.first().copied().unwrap_or(0);
        if obs_shape != [n, self.obs_dim] || act_shape != [n, self.action_dim] || returns.len() > n
        {
            return Err(AgentError::checkpoint(
                "",
                format!(
                    "episode batch `{prefix}` has observations {obs_shape:?}, actions \
                     {act_shape:?} and {} returns; this agent has observations of {} and \
                     actions of {} values",
                    returns.len(),
                    self.obs_dim,
                    self.action_dim
                ),
            ));
        }
        self.rewards = state.f64(&format!("{prefix}rewards"), n)?.to_vec();
        self.obs = obs.to_vec();
        self.actions = actions.to_vec();
        self.returns = returns.to_vec();
        self.episodes = state.meta(&format!("{prefix}episodes"))?;
        Ok(())
    }
}

/// The shape and values of the `f32` array `key`.
fn f32_array<'a>(state: &'a AgentState, key: &str) -> Result<(&'a [usize], &'a [f32])> {
    match state.array(key) {
        Some(Array::F32 { shape, data }) => Ok((shape, data)),
        Some(_) => Err(AgentError::checkpoint("", format!("`{key}` is not an f32 array"))),
        None => Err(AgentError::checkpoint("", format!("no array `{key}` in the state"))),
    }
}
