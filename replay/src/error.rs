//! The one error type of the `replay` crate.

/// Errors of replay buffers, n-step folding, prioritized replay and buffer files. An operation
/// that returns an error leaves the buffer as it was.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A buffer or folder parameter is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An observation of the wrong length.
    #[error("{which} has length {got}, but the buffer stores observations of length {expected}")]
    ObsLength { which: &'static str, got: usize, expected: usize },
    /// An action of the wrong kind or length.
    #[error("invalid action: {0}")]
    InvalidAction(String),
    /// A reward or discount that is NaN or infinite.
    #[error("{which} {value} is not a finite number")]
    NonFinite { which: &'static str, value: f64 },
    /// Sampling from a buffer that holds too few experiences.
    #[error("cannot sample {requested} experiences from a buffer holding {len}")]
    NotEnough { requested: usize, len: usize },
    /// A hyperparameter outside `[0, 1]` (zeta, beta).
    #[error("{name} = {value} is outside [0, 1]")]
    OutOfUnitInterval { name: &'static str, value: f64 },
    /// A TD error that is NaN or infinite.
    #[error("TD error {value} at position {position} is not finite")]
    NonFiniteTdError { position: usize, value: f64 },
    /// An experience index past the filled part of the buffer.
    #[error("index {index} is out of range: the buffer holds {len} experiences")]
    IndexOutOfRange { index: usize, len: usize },
    /// Two slices that must have the same length do not.
    #[error("{what}: {left} against {right}")]
    LengthMismatch { what: &'static str, left: usize, right: usize },
    /// Reading or writing a buffer file failed, or the file is corrupt or truncated.
    #[error("replay buffer file {path}: {message}")]
    File { path: String, message: String },
    /// Building tensors failed.
    #[error("tensor conversion: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// Result alias of the `replay` crate.
pub type Result<T, E = ReplayError> = std::result::Result<T, E>;
