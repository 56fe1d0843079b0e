//! The error of the sequence and attention layers: which layer, which argument, what was
//! expected and what came. Layers return it wrapped in a [`candle_core::Error`] (so they fit
//! candle's `Module` and `Result`); its message reads the same either way.

use candle_core::Shape;

/// A bad argument or configuration of a recurrent, convolutional-sequence or attention layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerError {
    /// A tensor of the wrong shape (rank, feature count, batch or sequence length).
    #[error("{layer}: {what} has shape {actual}, expected {expected}")]
    Shape { layer: String, what: String, expected: String, actual: String },
    /// A configuration value outside its domain.
    #[error("{layer}: invalid {field} = {value}, expected {expected}")]
    Config { layer: String, field: String, value: String, expected: String },
    /// Any other inconsistency of the inputs (a fully masked row, a wrong dtype, a missing
    /// state component), described in words.
    #[error("{layer}: {message}")]
    Input { layer: String, message: String },
}

impl LayerError {
    /// A [`LayerError::Shape`] for `what` with shape `actual`, where `expected` describes the
    /// expected shape (for example `"(T, N, 4)"` or `"rank 3"`).
    pub fn shape(layer: &str, what: &str, expected: impl Into<String>, actual: &Shape) -> Self {
        LayerError::Shape {
            layer: layer.into(),
            what: what.into(),
            expected: expected.into(),
            actual: format!("{:?}", actual.dims()),
        }
    }

    /// A [`LayerError::Config`].
    pub fn config(layer: &str, field: &str, value: impl ToString, expected: &str) -> Self {
        LayerError::Config {
            layer: layer.into(),
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// A [`LayerError::Input`].
    pub fn input(layer: &str, message: impl Into<String>) -> Self {
        LayerError::Input { layer: layer.into(), message: message.into() }
    }
}

impl From<LayerError> for candle_core::Error {
    fn from(e: LayerError) -> Self {
        candle_core::Error::wrap(e)
    }
}
