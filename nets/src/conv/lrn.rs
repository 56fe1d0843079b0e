//! Local response normalisation across channels (Krizhevsky, Sutskever and Hinton 2012,
//! "ImageNet classification with deep convolutional neural networks", section 3.3):
//!
//! `b_c = a_c (k + coef * sum_{j = c - before}^{c + after} a_j^2)^(-beta)`
//!
//! over the channel axis (dim 1) of `[N, C, ...]` inputs (3-D and 4-D), channels outside
//! `[0, C)` counting as zero. Two parameterisations give the window and the coefficient:
//!
//! * torch's `LocalResponseNorm(size, alpha, beta, k)`: `before = size / 2`,
//!   `after = (size - 1) / 2` (asymmetric for even sizes), `coef = alpha / size` (always
//!   divided by `size`, also at the edges);
//! * TensorFlow's `local_response_normalization(depth_radius r, bias, alpha, beta)` (as in
//!   Géron's book): `before = after = r`, `coef = alpha`, `k = bias`, i.e.
//!   `b_i = a_i (bias + alpha sum_{j=max(0, i-r)}^{min(i+r, n-1)} a_j^2)^(-beta)`.
//!
//! The window sum is linear in `a^2`, so it is one batched matmul with a banded 0/1 matrix.

use candle_core::{Module, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::geometry::{host_matrix, layer_error};

/// Local response normalisation; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalResponseNorm {
    /// Channels summed before and after the centre one.
    pub before: usize,
    pub after: usize,
    /// The factor of the sum of squares.
    pub coef: f64,
    pub beta: f64,
    pub k: f64,
}

impl LocalResponseNorm {
    /// torch's `nn.LocalResponseNorm(size, alpha, beta, k)` (torch defaults: alpha 1e-4,
    /// beta 0.75, k 1).
    pub fn torch(size: usize, alpha: f64, beta: f64, k: f64) -> Result<Self> {
        if size == 0 {
            return Err(layer_error("LocalResponseNorm", "size must be positive".into()));
        }
        Self { before: size / 2, after: (size - 1) / 2, coef: alpha / size as f64, beta, k }
            .validated()
    }

    /// TensorFlow's form with `depth_radius` channels on each side (window `2 r + 1`).
    pub fn tf(depth_radius: usize, bias: f64, alpha: f64, beta: f64) -> Result<Self> {
        Self { before: depth_radius, after: depth_radius, coef: alpha, beta, k: bias }.validated()
    }

    fn validated(self) -> Result<Self> {
        if !(self.coef.is_finite() && self.beta.is_finite() && self.k.is_finite()) {
            return Err(layer_error(
                "LocalResponseNorm",
                format!("alpha, beta and k must be finite, got {self:?}"),
            ));
        }
        Ok(self)
    }

    /// The `[C, C]` band: row `c` has ones at `c - before ..= c + after`.
    fn band(&self, c: usize) -> Vec<f64> {
        let mut m = vec![0.0; c * c];
        for i in 0..c {
            let lo = i.saturating_sub(self.before);
            let hi = (i + self.after).min(c - 1);
            for j in lo..=hi {
                m[i * c + j] = 1.0;
            }
        }
        m
    }
}

impl Module for LocalResponseNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        if dims.len() < 3 || dims.contains(&0) {
            return Err(layer_error(
                "LocalResponseNorm",
                format!(
                    "expected a non-empty input of rank 3 or 4 [N, C, ...], got shape {dims:?}"
                ),
            ));
        }
        let (n, c) = (dims[0], dims[1]);
        let l = x.elem_count() / (n * c);
        let sq = x.sqr()?.reshape((n, c, l))?;
        let band = host_matrix(self.band(c), c, c, x, x.device())?;
        let band = band.unsqueeze(0)?.broadcast_as((n, c, c))?.contiguous()?;
        let sums = band.matmul(&sq)?.reshape(dims)?;
        let scale = ((sums * self.coef)? + self.k)?.powf(-self.beta)?;
        x.mul(&scale)
    }
}
