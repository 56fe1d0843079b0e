//! Training for supervised and generative models: the [`fit()`] loop (epochs of seeded
//! mini-batches, validation each epoch, metrics, early stopping that restores the best
//! weights, an atomic safetensors checkpoint of the best model, ReduceLROnPlateau on the
//! validation loss, L1/L2 penalties, max-norm, augmentation, logging and progress hooks),
//! the [`Objective`] a model implements to be trained by it, and the weights plumbing of
//! transfer learning ([`weights`]: save, load with shape checks, freeze by name prefix).

pub mod fit;
pub mod logger;
pub mod metrics;
pub mod objective;
pub mod weights;

pub use fit::{fit, EarlyStopping, EpochStats, FitConfig, FitHooks, FitReport};
pub use logger::{FitLogger, VecLogger};
pub use metrics::{evaluate, Metrics};
pub use objective::{Classifier, Objective, Output};
pub use weights::{load_weights, save_weights, trainable_vars};

use crate::data::DataError;

/// What can go wrong training or moving weights. Messages name the tensor, field or value.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A setting outside its domain, naming the field.
    #[error("invalid fit config: {0}")]
    Config(String),
    /// A batch or data set that does not fit the model (wrong size, label out of range).
    #[error("input does not fit the model: {0}")]
    Input(String),
    /// A weights file that does not fit the model: names the first tensor that is missing
    /// or has another shape or dtype.
    #[error("weights file {path} does not fit the model: {message}")]
    Weights { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<TrainError> for candle_core::Error {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::Candle(e) => e,
            e => candle_core::Error::Msg(e.to_string()),
        }
    }
}
