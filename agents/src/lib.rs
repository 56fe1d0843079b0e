//! Agents that learn in deeprl's envs: tabular planning and learning, REINFORCE, and the
//! interface ([`Agent`]) and registry ([`spec`]) the runner and the CLI use.

pub mod agent;
pub mod config;
pub mod error;
pub mod spec;
pub mod state;

pub use agent::{ActionBuf, Agent, TrainInfo, Transition};
pub use error::{AgentError, Result};
pub use spec::{AgentSpec, BuildContext};
pub use state::AgentState;
