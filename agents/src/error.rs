//! The agents crate's error type.

use deeprl_envs::EnvError;

/// Everything that can go wrong building, running, saving or loading an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No agent of this name is known.
    #[error("unknown agent `{name}`{}; known agents: {known}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownAgent { name: String, suggestion: Option<String>, known: String },
    /// The agent cannot run on this env (e.g. a tabular agent on continuous observations).
    #[error("agent `{agent}` cannot run on {env}: {why}")]
    Incompatible { agent: String, env: String, why: String },
    /// A config key the agent or the runner does not have.
    #[error("unknown config key `{key}`{}; known keys: {known}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey { key: String, suggestion: Option<String>, known: String },
    /// A config value of the wrong type or out of range.
    #[error("bad config value for `{key}`: {why}")]
    BadValue { key: String, why: String },
    /// A checkpoint that is missing, corrupt or from another agent or env.
    #[error("checkpoint{}{path}: {why}", if path.is_empty() { "" } else { " " })]
    Checkpoint { path: String, why: String },
    /// An observation or action of the wrong form for this agent.
    #[error("{0}")]
    Shape(String),
    /// Training produced a non-finite number (NaN or infinite loss): the run stops, the last
    /// good checkpoint stays.
    #[error("{agent} diverged at update step {update}: {what}")]
    Diverged { agent: String, update: u64, what: String },
    /// An env step or reset failed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Results of this crate.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;

impl AgentError {
    /// A [`AgentError::BadValue`] for `key`.
    pub fn bad_value(key: impl Into<String>, why: impl Into<String>) -> Self {
        AgentError::BadValue { key: key.into(), why: why.into() }
    }

    /// An [`AgentError::Checkpoint`] for `path`.
    pub fn checkpoint(path: impl AsRef<std::path::Path>, why: impl Into<String>) -> Self {
        AgentError::Checkpoint { path: path.as_ref().display().to_string(), why: why.into() }
    }
}
