//! Where [`fit`](super::fit()) sends its scalars. The nets crate knows no file format: the
//! root crate's TensorBoard `EventWriter` implements [`FitLogger`] in a few lines (see
//! `examples/fit_tensorboard.rs`), as can a CSV or stdout logger.
//!
//! Tags, one value per epoch (`step` = the 1-based epoch): `train/loss`, `train/accuracy`,
//! `train/lr`, `valid/loss`, `valid/accuracy`, `valid/top_k_accuracy`.

/// A sink for scalar metrics.
pub trait FitLogger {
    /// Records `value` under `tag` at `step`.
    fn scalar(&mut self, tag: &str, step: u64, value: f64);
}

/// A logger that keeps every scalar in memory, in order (for tests and small scripts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VecLogger {
    pub scalars: Vec<(String, u64, f64)>,
}

impl FitLogger for VecLogger {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) {
        self.scalars.push((tag.to_string(), step, value));
    }
}

impl VecLogger {
    /// The values logged under `tag`, in order.
    pub fn series(&self, tag: &str) -> Vec<f64> {
        self.scalars.iter().filter(|(t, _, _)| t == tag).map(|(_, _, v)| *v).collect()
    }
}
