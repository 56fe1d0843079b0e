//! Regularisation: weight penalties added to a loss ([`penalty`]), inverted dropout from a
//! seeded generator and Monte Carlo dropout ([`dropout`]), and the max-norm constraint applied
//! after an optimizer step ([`max_norm`]).
//!
//! Everything here is reproducible on CPU: candle's CPU RNG cannot be seeded
//! (`Device::Cpu.set_seed` fails) and `candle_nn::ops::dropout` draws from the thread RNG, so
//! dropout masks come from a [`rand_chacha::ChaCha8Rng`] held by the layer and seeded at
//! construction. The same seed gives the same masks, bit for bit.

pub mod dropout;
pub mod max_norm;
pub mod penalty;

pub use dropout::{mc_dropout, Dropout, McEstimate};
pub use max_norm::MaxNorm;
pub use penalty::{Param, Penalty};

/// The error for a hyperparameter outside its domain, naming the owner and the field.
pub(crate) fn invalid(owner: &str, field: &str, value: f64, expected: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("invalid {owner} {field} = {value}: expected {expected}"))
}

/// Checks that `value` is finite and `>= 0`.
pub(crate) fn non_negative(owner: &str, field: &str, value: f64) -> candle_core::Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(owner, field, value, "a finite number >= 0"))
    }
}
