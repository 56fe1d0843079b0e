//! Tabular agents: planning on a known model and learning from experience with one table
//! entry per state (and action).
//!
//! | agent | module | learns |
//! |---|---|---|
//! | `value-iteration` | [`value_iteration`](mod@value_iteration) ([`planning`]) | `Q*` by dynamic programming on the env's transition model, when built |
//! | `td` | [`td`] | `V` of its behaviour policy by TD(0) |
//! | `q-learning` | [`q_learning`] | `Q*` by Q-learning, off-policy |
//!
//! They run on envs with discrete actions and a discrete (or multi-discrete, raveled)
//! observation space: the toy-text envs, `ThreeStateMdp-v0` and user MDPs. Tables are
//! row-major `f64` ([`table`]); step sizes and epsilon come from
//! [`deeprl_nets::schedule`] ([`schedules`]). `act` and `observe` allocate nothing, and a
//! checkpoint holds the tables, the counters and the exact RNG position, so a resumed run
//! continues bit for bit.

pub mod planning;
pub mod q_learning;
pub mod schedules;
pub mod table;
pub mod td;
pub mod value_iteration;

pub use planning::{q_value_iteration, value_iteration, Plan, Stopping};
pub use q_learning::{QLearning, QLearningConfig};
pub use td::{TdConfig, TdLearning};
pub use value_iteration::{ValueIteration, ValueIterationConfig};

use crate::error::{AgentError, Result};
use crate::state::AgentState;
use serde::Serialize;

/// The registry entries of the tabular agents.
pub fn specs() -> Vec<crate::spec::AgentSpec> {
    vec![value_iteration::spec(), td::spec(), q_learning::spec()]
}

/// Checks that the config saved under `key` is `config`: a checkpoint resumes only on an
/// agent built with the config it was written with. The error names the first key that
/// differs.
pub(crate) fn check_saved_config<T: Serialize>(
    state: &AgentState,
    key: &str,
    config: &T,
) -> Result<()> {
    let saved: serde_json::Value = state.meta(key)?;
    let current = serde_json::to_value(config)
        .map_err(|e| AgentError::checkpoint("", format!("cannot compare configs: {e}")))?;
    if saved == current {
        return Ok(());
    }
    let differing = match (&saved, &current) {
        (serde_json::Value::Object(s), serde_json::Value::Object(c)) => c
            .iter()
            .find(|(k, v)| s.get(*k) != Some(v))
            .map(|(k, v)| {
                format!("`{k}` is {} in the checkpoint, {v} here", s.get(k).unwrap_or_default())
            })
            .unwrap_or_else(|| "the keys differ".into()),
        _ => "it is malformed".into(),
    };
    Err(AgentError::checkpoint(
        "",
        format!("the checkpoint was written with another config: {differing}"),
    ))
}
