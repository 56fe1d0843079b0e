//! The one error type of the `envs` crate.
//!
//! Every message names the bad value and what was expected, so a user who passed the wrong
//! action, map or file reads what to fix. An operation that returns an error leaves the
//! environment exactly as it was before the call.

/// Errors returned by environments, spaces, wrappers, the registry and the MDP loader.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    /// The action is outside the action space or malformed (wrong length, NaN).
    #[error("invalid action {action}: expected {expected}")]
    InvalidAction { action: String, expected: String },
    /// `step` was called on an environment that was never reset.
    #[error("step called before reset: call reset(seed) first")]
    StepBeforeReset,
    /// `step` was called after the episode ended, without a reset in between.
    #[error("step called after the episode was {how}: call reset before stepping again")]
    StepAfterEpisodeEnd { how: &'static str },
    /// A toy-text map (FrozenLake) is malformed.
    #[error("invalid map: {0}")]
    InvalidMap(String),
    /// A finite-MDP description is malformed (shapes, probabilities, rewards).
    #[error("invalid MDP: {0}")]
    InvalidMdp(String),
    /// An internal state given to `set_state` is malformed.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// A constructor or wrapper parameter is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A buffer passed to a `*_into` method has the wrong length.
    #[error("buffer has length {got}, expected {expected}")]
    BufferLength { got: usize, expected: usize },
    /// `make` was asked for an id that nobody registered.
    #[error("unknown environment id '{id}'; registered ids: {known}")]
    UnknownEnv { id: String, known: String },
    /// `register` was asked to reuse an id.
    #[error("environment id '{0}' is already registered")]
    DuplicateId(String),
    /// Reading or parsing a file failed.
    #[error("cannot load {path}: {message}")]
    Load { path: String, message: String },
}

/// Result alias of the `envs` crate.
pub type Result<T, E = EnvError> = std::result::Result<T, E>;

/// Where an environment is in its episode; built-in envs use it to reject out-of-order calls.
///
/// Gymnasium leaves a step before reset or after the end to the `OrderEnforcing` wrapper and
/// calls the rest undefined; here every built-in env refuses both with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EpisodePhase {
    /// Never reset: stepping is an error.
    #[default]
    NeedsReset,
    /// Inside an episode: stepping is allowed.
    Running,
    /// The last step terminated or truncated the episode: stepping is an error until reset.
    Ended { truncated: bool },
}

impl EpisodePhase {
    /// Returns an error unless a step is allowed now.
    pub fn check_step(self) -> Result<()> {
        match self {
            EpisodePhase::Running => Ok(()),
            EpisodePhase::NeedsReset => Err(EnvError::StepBeforeReset),
            EpisodePhase::Ended { truncated } => Err(EnvError::StepAfterEpisodeEnd {
                how: if truncated { "truncated" } else { "terminated" },
            }),
        }
    }

    /// The phase after a step with these flags.
    pub fn after_step(terminated: bool, truncated: bool) -> Self {
        if terminated || truncated {
            EpisodePhase::Ended { truncated: truncated && !terminated }
        } else {
            EpisodePhase::Running
        }
    }
}
