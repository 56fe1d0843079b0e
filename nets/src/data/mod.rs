//! Data for supervised and generative training: loaders for the committed digits set
//! ([`digits`]), MNIST-format IDX files ([`idx`]) and numeric CSV ([`csv`]); an in-memory
//! [`Dataset`] with a seeded train/validation split and seeded mini-batching ([`dataset`]);
//! image augmentation applied per training batch ([`augment`]); and a small grayscale PNG
//! writer for image grids ([`png`]).
//!
//! Everything random draws from `ChaCha8Rng` seeded by the caller: the same seed gives the
//! same split, batches and augmentations, bit for bit.

pub mod augment;
pub mod csv;
pub mod dataset;
pub mod digits;
pub mod idx;
pub mod png;

pub use augment::Augment;
pub use dataset::{Batch, Batches, Dataset, ImageShape};

use rand::Rng;

/// What can go wrong reading or shaping data. Messages name the file, line or field and
/// what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A malformed CSV: empty, ragged or non-numeric. `line` is 1-based.
    #[error("CSV {what}: line {line}: {message}")]
    Csv { what: String, line: usize, message: String },
    /// A malformed IDX file: bad magic, truncated, sizes that disagree.
    #[error("IDX {what}: {message}")]
    Idx { what: String, message: String },
    /// Features and labels (or shapes) that do not agree, or a bad parameter.
    #[error("{0}")]
    Invalid(String),
}

impl From<DataError> for candle_core::Error {
    fn from(e: DataError) -> Self {
        candle_core::Error::Msg(e.to_string())
    }
}

/// One standard normal draw by the Box-Muller transform (two uniforms per draw; the second
/// normal is discarded so that the stream position depends only on the number of draws).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - u is in (0, 1], so its log is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` standard normal draws as `f32`.
pub fn standard_normals<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f32> {
    (0..n).map(|_| standard_normal(rng) as f32).collect()
}
