//! `RunningMeanStd`: running mean and variance of a vector, as Gymnasium's
//! `gymnasium.wrappers.utils.RunningMeanStd`.

use crate::error::{EnvError, Result};

/// The count Gymnasium starts from: a pseudo-sample of weight `1e-4` with mean 0 and
/// variance 1, so that the first normalizations do not divide by zero.
pub const DEFAULT_COUNT: f64 = 1e-4;

/// Running elementwise mean and (population) variance of vectors of a fixed length.
///
/// Starts at mean 0, variance 1 and count `1e-4` (Gymnasium's `epsilon`), and merges each
/// sample with the parallel algorithm of Chan et al. that Gymnasium's
/// `update_mean_var_count_from_moments` implements, here for a batch of one sample
/// (`batch_mean = x`, `batch_var = 0`, `batch_count = 1`):
///
/// ```text
/// delta = x - mean;  total = count + 1
/// mean' = mean + delta / total
/// var'  = (var * count + delta² * count / total) / total
/// count' = total
/// ```
///
/// Statistics are kept in `f64` (Gymnasium keeps them in the observation's dtype, `float32`
/// for a box), so normalized values agree with Gymnasium's to `f32` rounding.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningMeanStd {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl RunningMeanStd {
    /// Statistics of vectors of length `len`, with Gymnasium's initial count `1e-4`.
    pub fn new(len: usize) -> Self {
        RunningMeanStd { mean: vec![0.0; len], var: vec![1.0; len], count: DEFAULT_COUNT }
    }

    /// Statistics restored from saved values (e.g. to evaluate with the statistics of a
    /// training run). `mean` and `var` must have the same length, `var >= 0` and finite
    /// values everywhere, `count > 0`.
    pub fn from_parts(mean: Vec<f64>, var: Vec<f64>, count: f64) -> Result<Self> {
        if mean.len() != var.len() {
            return Err(EnvError::InvalidConfig(format!(
                "running statistics with {} means and {} variances",
                mean.len(),
                var.len()
            )));
        }
        if !(count.is_finite() && count > 0.0) {
            return Err(EnvError::InvalidConfig(format!(
                "running statistics count {count}: expected a finite number > 0"
            )));
        }
        if let Some(i) = mean.iter().position(|m| !m.is_finite()) {
            return Err(EnvError::InvalidConfig(format!(
                "running mean {i} is {}: expected a finite number",
                mean[i]
            )));
        }
        if let Some(i) = var.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(EnvError::InvalidConfig(format!(
                "running variance {i} is {}: expected a finite number >= 0",
                var[i]
            )));
        }
        Ok(RunningMeanStd { mean, var, count })
    }

    /// Length of the vectors tracked.
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// True when tracking vectors of length 0.
    pub fn is_empty(&self) -> bool {
        self.mean.is_empty()
    }

    /// The running mean, one value per element.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The running population variance, one value per element.
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    /// The number of samples merged so far, plus the initial `1e-4`.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Merges one sample. `sample` yields [`RunningMeanStd::len`] values; extra values are
    /// ignored and missing ones leave their element unchanged.
    pub fn update<I: IntoIterator<Item = f64>>(&mut self, sample: I) {
        let count = self.count;
        let total = count + 1.0;
        for ((x, mean), var) in sample.into_iter().zip(&mut self.mean).zip(&mut self.var) {
            let delta = x - *mean;
            *mean += delta / total;
            *var = (*var * count + delta * delta * count / total) / total;
        }
        self.count = total;
    }

    /// Writes `(x - mean) / sqrt(var + epsilon)` over `values` in place (element `i` of
    /// `values` with element `i` of the statistics).
    pub fn normalize(&self, values: &mut [f32], epsilon: f64) {
        for ((x, mean), var) in values.iter_mut().zip(&self.mean).zip(&self.var) {
            *x = ((f64::from(*x) - mean) / (var + epsilon).sqrt()) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form_with_the_prior_pseudo_sample() {
        let samples = [[1.0, -2.0], [3.0, 0.5], [-4.0, 7.0], [0.25, 0.0], [10.0, -1.0]];
        let mut rms = RunningMeanStd::new(2);
        for s in samples {
            rms.update(s);
        }
        let n = samples.len() as f64;
        let total = DEFAULT_COUNT + n;
        for j in 0..2 {
            let sum: f64 = samples.iter().map(|s| s[j]).sum();
            let data_mean = sum / n;
            let m2: f64 = samples.iter().map(|s| (s[j] - data_mean).powi(2)).sum();
            // Merge the prior (mean 0, var 1, count 1e-4) with the data's moments.
            let mean = sum / total;
            let var =
                (DEFAULT_COUNT + m2 + data_mean * data_mean * DEFAULT_COUNT * n / total) / total;
            assert!((rms.mean()[j] - mean).abs() < 1e-12, "{j}");
            assert!((rms.var()[j] - var).abs() < 1e-12, "{j}");
        }
        assert!((rms.count() - total).abs() < 1e-12);
        let mut x = [1.0f32, -2.0];
        rms.normalize(&mut x, 1e-8);
        let expect = ((1.0 - rms.mean()[0]) / (rms.var()[0] + 1e-8).sqrt()) as f32;
        assert_eq!(x[0], expect);
    }

    #[test]
    fn from_parts_rejects_bad_values() {
        assert!(RunningMeanStd::from_parts(vec![0.0], vec![1.0], 5.0).is_ok());
        let bad = [
            RunningMeanStd::from_parts(vec![0.0], vec![1.0, 1.0], 5.0),
            RunningMeanStd::from_parts(vec![0.0], vec![-1.0], 5.0),
            RunningMeanStd::from_parts(vec![f64::NAN], vec![1.0], 5.0),
            RunningMeanStd::from_parts(vec![0.0], vec![1.0], 0.0),
        ];
        for b in bad {
            assert!(matches!(b, Err(EnvError::InvalidConfig(_))), "{b:?}");
        }
    }
}
