//! Agents that learn in deeprl's envs: tabular planning and learning, REINFORCE, and the
//! interface ([`Agent`]) and registry ([`spec`]) the runner and the CLI use.

pub mod agent;
pub mod config;
pub mod dqn;
pub mod error;
pub mod evaluate;
pub mod logger;
pub mod random;
pub mod reinforce;
pub mod runner;
pub mod spec;
pub mod state;
pub mod tabular;

pub use agent::{ActionBuf, Agent, TrainInfo, Transition};
pub use error::{AgentError, Result};
pub use evaluate::{evaluate, EvalResult};
pub use logger::{tags, Logger, MemoryLogger, NullLogger};
pub use runner::{RunConfig, Runner, Status, Summary};
pub use spec::{AgentSpec, BuildContext};
pub use state::AgentState;
