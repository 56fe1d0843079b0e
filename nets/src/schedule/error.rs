//! Construction errors of the schedules, and the checks that produce them.

use std::fmt::Display;

/// Why a schedule could not be built. Every message names the schedule and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// A hyperparameter is out of its valid range.
    #[error("{schedule}: `{field}` must be {expected}, got {got}")]
    InvalidParameter {
        /// The schedule being built, e.g. `"OneCycleLR"`.
        schedule: &'static str,
        /// The offending field, with its torch name.
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
        /// The given value, as written.
        got: String,
    },
    /// A string option (mode, threshold mode, anneal strategy) is not one of its values.
    #[error("`{field}` must be one of {expected}, got {got:?}")]
    UnknownVariant {
        /// The field being parsed, e.g. `"mode"`.
        field: &'static str,
        /// The accepted spellings.
        expected: &'static str,
        /// The given string.
        got: String,
    },
}

/// Result of building a schedule.
pub type Result<T> = std::result::Result<T, ScheduleError>;

/// `Ok(())` when `ok`, else [`ScheduleError::InvalidParameter`].
pub(crate) fn require(
    ok: bool,
    schedule: &'static str,
    field: &'static str,
    expected: &'static str,
    got: impl Display,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ScheduleError::InvalidParameter { schedule, field, expected, got: got.to_string() })
    }
}

/// A finite number.
pub(crate) fn finite(schedule: &'static str, field: &'static str, v: f64) -> Result<f64> {
    require(v.is_finite(), schedule, field, "finite", v).map(|()| v)
}

/// A finite number `>= 0` (learning rates, thresholds, momenta).
pub(crate) fn non_negative(schedule: &'static str, field: &'static str, v: f64) -> Result<f64> {
    require(v.is_finite() && v >= 0.0, schedule, field, "finite and >= 0", v).map(|()| v)
}

/// A finite number `> 0` (time scales, decay factors, divisors).
pub(crate) fn positive(schedule: &'static str, field: &'static str, v: f64) -> Result<f64> {
    require(v.is_finite() && v > 0.0, schedule, field, "finite and > 0", v).map(|()| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_schedule_and_field() {
        let e = positive("StepLR", "gamma", -0.5).unwrap_err();
        assert_eq!(e.to_string(), "StepLR: `gamma` must be finite and > 0, got -0.5");
        assert!(non_negative("X", "lr", f64::NAN).is_err());
        assert!(non_negative("X", "lr", f64::INFINITY).is_err());
        assert_eq!(non_negative("X", "lr", 0.0), Ok(0.0));
        assert!(finite("X", "start", f64::NEG_INFINITY).is_err());
    }
}
