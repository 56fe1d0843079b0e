//! The two policy heads on top of the network's output: a softmax (categorical) policy for
//! discrete actions and a diagonal Gaussian policy for continuous ones.
//!
//! Each head has its batched, differentiable log-probability and entropy as candle tensors
//! (used by the update) and its sampling and greedy choice on the host (used per step, with
//! the agent's own `ChaCha8Rng`, so acting allocates nothing and is reproducible).
//!
//! * Categorical: `pi(a|s) = softmax(logits(s))_a`, `log pi = logits_a - logsumexp(logits)`,
//!   entropy `-sum_a pi_a log pi_a`.
//! * Gaussian: `a ~ N(mu(s), diag(sigma^2))` with a state-independent learned `log sigma`
//!   (one number per action dimension, as in Stable-Baselines3's `DiagGaussianDistribution`),
//!   `log pi(a|s) = sum_i [-(a_i - mu_i)^2 / (2 sigma_i^2) - log sigma_i - log(2 pi) / 2]`,
//!   entropy `sum_i [1/2 + log(2 pi)/2 + log sigma_i]`.

use candle_core::{DType, Result, Tensor, D};
use rand::Rng;
use rand_distr::StandardNormal;

/// `log(2 pi) / 2`.
pub const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8;

/// The log-probabilities `[n]` of `actions` (`u32`, `[n]`) under `softmax(logits)`, with
/// `logits` of shape `[n, n_actions]`.
pub fn categorical_log_prob(logits: &Tensor, actions: &Tensor) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    log_p.gather(&actions.unsqueeze(1)?, 1)?.squeeze(1)
}

/// The entropies `[n]` of the categorical distributions `softmax(logits)`, logits `[n, k]`.
pub fn categorical_entropy(logits: &Tensor) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    (log_p.exp()? * &log_p)?.sum(D::Minus1)?.neg()
}

/// The log-densities `[n]` of `actions` `[n, d]` under `N(mean, diag(exp(log_std)^2))`, with
/// `mean` `[n, d]` and `log_std` `[d]`.
pub fn gaussian_log_prob(mean: &Tensor, log_std: &Tensor, actions: &Tensor) -> Result<Tensor> {
    let d = log_std.elem_count() as f64;
    let inv_std = log_std.neg()?.exp()?;
    let z = (actions - mean)?.broadcast_mul(&inv_std)?;
    let per_dim = z.sqr()?.affine(-0.5, 0.0)?.broadcast_sub(log_std)?;
    per_dim.sum(D::Minus1)?.affine(1.0, -HALF_LOG_2PI * d)
}

/// The entropy (a scalar) of `N(., diag(exp(log_std)^2))`; it does not depend on the mean.
pub fn gaussian_entropy(log_std: &Tensor) -> Result<Tensor> {
    let d = log_std.elem_count() as f64;
    log_std.sum_all()?.affine(1.0, (0.5 + HALF_LOG_2PI) * d)
}

/// Draws an index from `softmax(logits)` by inverting the cumulative distribution with one
/// uniform number; computed in `f64`, without allocating.
pub fn sample_categorical<R: Rng + ?Sized>(logits: &[f32], rng: &mut R) -> usize {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let total: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let target = rng.random::<f64>() * total;
    let mut acc = 0.0;
    for (i, &x) in logits.iter().enumerate() {
        acc += (x as f64 - max).exp();
        if target < acc {
            return i;
        }
    }
    // Only reached through rounding at the very top of the range: the last action with
    // non-zero probability.
    logits.iter().rposition(|&x| (x as f64 - max).exp() > 0.0).unwrap_or(0)
}

/// The first index of the largest logit (the mode of the softmax policy).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best
}

/// Writes `mean + std * eps`, `eps ~ N(0, I)` drawn from `rng`, into `out`.
pub fn sample_gaussian<R: Rng + ?Sized>(mean: &[f32], std: &[f32], rng: &mut R, out: &mut [f32]) {
    for ((o, &m), &s) in out.iter_mut().zip(mean).zip(std) {
        let eps: f32 = rng.sample(StandardNormal);
        *o = m + s * eps;
    }
}

/// Clips each value into `[low_i, high_i]` (infinite bounds leave it as it is).
pub fn clip_into(values: &[f32], low: &[f32], high: &[f32], out: &mut [f32]) {
    for (((o, &v), &lo), &hi) in out.iter_mut().zip(values).zip(low).zip(high) {
        *o = v.max(lo).min(hi);
    }
}

/// The mean entropy over a batch of categorical distributions, as a host number.
pub(crate) fn mean_categorical_entropy(logits: &Tensor) -> Result<f64> {
    categorical_entropy(&logits.detach())?.mean_all()?.to_dtype(DType::F64)?.to_scalar()
}
