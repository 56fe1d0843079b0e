//! What a replay buffer stores: one experience, with its discount.

use crate::error::{ReplayError, Result};

/// An action as the buffer stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'a> {
    /// The index of a discrete action.
    Discrete(usize),
    /// The values of a continuous action.
    Continuous(&'a [f32]),
}

/// The kind of actions a buffer stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Discrete actions, stored as `u32` indices.
    Discrete,
    /// Continuous actions of `dim` values.
    Continuous { dim: usize },
}

/// One experience `(obs, action, reward, next_obs, discount)`.
///
/// Every TD target is `reward + discount * bootstrap(next_obs)`. The discount is decided
/// once, where the experience is made (see [`discount_after`]):
/// * `gamma^k` after `k` steps when the episode goes on, or was **truncated** (cut by a time
///   limit: the state is not terminal, so the target keeps bootstrapping from `next_obs`);
/// * `0` when the episode **terminated** (a terminal state: the return after it is zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Experience<'a> {
    pub obs: &'a [f32],
    pub action: Action<'a>,
    /// The (possibly n-step, discounted) reward.
    pub reward: f32,
    /// The observation the target bootstraps from (the true final observation on truncation).
    pub next_obs: &'a [f32],
    pub discount: f32,
}

/// The discount of an experience that spans `steps` steps: `gamma^steps`, or 0 if the last of
/// them terminated the episode. Truncation does not zero it.
pub fn discount_after(gamma: f64, steps: usize, terminated: bool) -> f32 {
    if terminated {
        0.0
    } else {
        gamma.powi(steps as i32) as f32
    }
}

/// Checks the parts of an experience that do not depend on the buffer's shapes.
pub(crate) fn check_numbers(e: &Experience<'_>) -> Result<()> {
    if !e.reward.is_finite() {
        return Err(ReplayError::NonFinite { which: "reward", value: e.reward as f64 });
    }
    if !e.discount.is_finite() || e.discount < 0.0 {
        return Err(ReplayError::NonFinite { which: "discount", value: e.discount as f64 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_zeroes_the_discount_and_truncated_keeps_it() {
        assert_eq!(discount_after(0.99, 1, true), 0.0);
        assert_eq!(discount_after(0.99, 1, false), 0.99);
        assert_eq!(discount_after(0.9, 3, false), (0.9f64.powi(3)) as f32);
    }
}
