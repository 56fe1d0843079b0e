//! The agent registry: every built-in agent by name, with its config keys and a constructor
//! over any env.

use crate::agent::Agent;
use crate::error::{AgentError, Result};
use candle_core::Device;
use deeprl_envs::{DynEnv, Space};

/// What an agent is built for.
pub struct BuildContext<'a> {
    /// The env id (for messages).
    pub env_id: &'a str,
    /// An instance of the env: its spaces and, for tabular envs, its transition model.
    pub env: &'a dyn DynEnv,
    /// The seed of every random choice the agent makes (initial weights, exploration).
    pub seed: u64,
    /// Where tensors live.
    pub device: Device,
    /// The run's length in env steps (the runner's `steps`, the CLI's `--steps`), for agents
    /// whose schedules are fractions of it (DQN's `total_timesteps` defaults to it); `None`
    /// outside a run or for a run bounded by episodes only.
    pub total_steps: Option<u64>,
}

impl BuildContext<'_> {
    /// The number of states of a discrete observation space, or an error saying why `agent`
    /// needs one and what to use instead.
    pub fn discrete_states(&self, agent: &str) -> Result<usize> {
        match self.env.observation_space() {
            Space::Discrete { n } => Ok(n),
            other => Err(self.incompatible(
                agent,
                format!(
                    "it needs a discrete observation space (a table row per state), this env's \
                     is {}; use `reinforce` (or a DQN agent) for continuous observations",
                    other.describe()
                ),
            )),
        }
    }

    /// The number of actions of a discrete action space, or an error saying why `agent`
    /// needs one.
    pub fn discrete_actions(&self, agent: &str) -> Result<usize> {
        match self.env.action_space() {
            Space::Discrete { n } => Ok(n),
            other => Err(self.incompatible(
                agent,
                format!(
                    "it needs a discrete action space, this env's is {}; use `reinforce` \
                     (Gaussian policy) for continuous actions",
                    other.describe()
                ),
            )),
        }
    }

    /// An [`AgentError::Incompatible`] for this env.
    pub fn incompatible(&self, agent: &str, why: String) -> AgentError {
        AgentError::Incompatible { agent: agent.into(), env: self.env_id.into(), why }
    }
}

/// A built-in agent: its name, a line about it, its config keys and its constructor.
pub struct AgentSpec {
    /// The name the CLI takes (`--agent NAME`).
    pub name: &'static str,
    /// One line about the algorithm.
    pub about: &'static str,
    /// The config keys and their defaults.
    pub defaults: fn() -> toml::Table,
    /// Builds the agent from config overrides (unknown keys and bad values are errors).
    pub build: fn(&BuildContext<'_>, &toml::Table) -> Result<Box<dyn Agent>>,
}

/// The built-in agents.
pub fn agents() -> Vec<AgentSpec> {
    let mut all = vec![crate::random::RandomAgent::spec()];
    all.extend(crate::tabular::specs());
    all.push(crate::reinforce::spec());
    all.extend(crate::dqn::specs());
    all
}

/// The built-in agent named `name`.
pub fn find(name: &str) -> Result<AgentSpec> {
    let all = agents();
    let names: Vec<&str> = all.iter().map(|a| a.name).collect();
    let known = names.join(", ");
    let suggestion = crate::config::closest(name, names.iter().copied());
    all.into_iter().find(|a| a.name == name).ok_or_else(|| AgentError::UnknownAgent {
        name: name.to_string(),
        suggestion,
        known,
    })
}
