//! Helpers of the kernels' unit tests: seeded f64 variables and the largest difference.

use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};

/// An f64 variable of `shape` with values `shift + scale u`, `u` uniform in `[-1, 1)` from
/// `ChaCha8Rng::seed_from_u64(seed)`.
pub(crate) fn var_scaled(shape: &[usize], seed: u64, scale: f64, shift: f64) -> Var {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| shift + scale * rng.random_range(-1.0..1.0)).collect();
    Var::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// [`var_scaled`] with values uniform in `[-1, 1)`.
pub(crate) fn var(shape: &[usize], seed: u64) -> Var {
    var_scaled(shape, seed, 1.0, 0.0)
}

/// The largest absolute difference between two f64 tensors of one shape.
pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
}
