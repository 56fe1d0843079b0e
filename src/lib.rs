//! deeprl: deep reinforcement learning on candle.
//!
//! This facade re-exports the workspace crates, so one dependency gives the whole toolkit:
//! [`envs`] (environments, wrappers, vector envs, the checker and the registry), [`nets`],
//! [`replay`] and [`agents`]. The `deeprl` binary is the command-line interface.

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use deeprl_agents as agents;
pub use deeprl_envs as envs;
pub use deeprl_nets as nets;
pub use deeprl_replay as replay;

pub mod csv_log;
pub mod presets;
pub mod runs;
pub mod tensorboard;
