//! The step-size and exploration schedules of the learning agents, built from flat config
//! keys (so `--set lr=0.5` works) into [`deeprl_nets::schedule`] schedules.
//!
//! Step size `alpha_t` (`lr`, `lr_schedule`, `lr_end`, `lr_decay_steps`), with `t` the number
//! of updates so far:
//!
//! | `lr_schedule` | `alpha_t` | schedule |
//! |---|---|---|
//! | `"constant"` | `lr` | [`Constant`](deeprl_nets::schedule::Constant) |
//! | `"linear"` | `lr + (lr_end - lr) * min(t / lr_decay_steps, 1)` | [`Linear`](deeprl_nets::schedule::Linear) |
//! | `"power"` | `lr / (1 + t / lr_decay_steps)`, Géron's `alpha0 / (1 + t * decay)` | [`PowerDecay`](deeprl_nets::schedule::PowerDecay) with `c = 1` |
//! | `"exponential"` | `lr * 0.1^(t / lr_decay_steps)` | [`ExponentialDecay`](deeprl_nets::schedule::ExponentialDecay) |
//!
//! Exploration rate `epsilon_t = epsilon_start + (epsilon_end - epsilon_start) *
//! min(t / epsilon_decay_steps, 1)` ([`Linear`](deeprl_nets::schedule::Linear), SB3's DQN
//! exploration schedule), `t` the number of transitions observed; `epsilon_start ==
//! epsilon_end` is a constant epsilon.

use crate::config::check_range;
use crate::error::{AgentError, Result};
use deeprl_nets::schedule::{ScheduleConfig, Scheduler};

/// The learning-rate schedule of the keys `lr`, `lr_schedule`, `lr_end`, `lr_decay_steps`;
/// errors name the key.
pub fn lr_schedule(lr: f64, kind: &str, lr_end: f64, decay_steps: u64) -> Result<Scheduler> {
    check_range("lr", lr, f64::MIN_POSITIVE, 1.0)?;
    let steps = decay_steps as f64;
    let needs_steps = |kind: &str| {
        if decay_steps == 0 {
            Err(AgentError::bad_value(
                "lr_decay_steps",
                format!("must be at least 1 for lr_schedule = \"{kind}\""),
            ))
        } else {
            Ok(())
        }
    };
    let config = match kind {
        "constant" => ScheduleConfig::Constant { value: lr },
        "linear" => {
            check_range("lr_end", lr_end, 0.0, 1.0)?;
            ScheduleConfig::Linear { start: lr, end: lr_end, steps: decay_steps }
        }
        "power" => {
            needs_steps(kind)?;
            ScheduleConfig::Power { eta0: lr, s: steps, c: 1.0 }
        }
        "exponential" => {
            needs_steps(kind)?;
            ScheduleConfig::ExponentialDecay { eta0: lr, s: steps }
        }
        other => {
            return Err(AgentError::bad_value(
                "lr_schedule",
                format!(
                    "unknown schedule \"{other}\": expected \"constant\", \"linear\", \"power\" \
                     or \"exponential\""
                ),
            ))
        }
    };
    config.build().map_err(|e| AgentError::bad_value("lr_schedule", e.to_string()))
}

/// The epsilon schedule of the keys `epsilon_start`, `epsilon_end`, `epsilon_decay_steps`.
pub fn epsilon_schedule(start: f64, end: f64, decay_steps: u64) -> Result<Scheduler> {
    check_range("epsilon_start", start, 0.0, 1.0)?;
    check_range("epsilon_end", end, 0.0, 1.0)?;
    ScheduleConfig::Linear { start, end, steps: decay_steps }
        .build()
        .map_err(|e| AgentError::bad_value("epsilon_start", e.to_string()))
}

/// How a learning agent explores, the `exploration` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exploration {
    /// Uniformly random possible actions (`"random"`).
    Random,
    /// The greedy action, or with probability epsilon a uniformly random one
    /// (`"epsilon-greedy"`).
    EpsilonGreedy,
    /// Greedy with respect to the optimistic values `f(Q, N) = Q + kappa / (1 + N)`
    /// (`"exploration-function"`; Q-learning only).
    ExplorationFunction,
}

impl Exploration {
    /// Parses the `exploration` key; `allowed` lists the choices this agent takes.
    pub fn parse(value: &str, allowed: &[Exploration]) -> Result<Self> {
        let parsed = match value {
            "random" => Some(Exploration::Random),
            "epsilon-greedy" => Some(Exploration::EpsilonGreedy),
            "exploration-function" => Some(Exploration::ExplorationFunction),
            _ => None,
        };
        match parsed {
            Some(e) if allowed.contains(&e) => Ok(e),
            _ => {
                let names: Vec<String> =
                    allowed.iter().map(|e| format!("\"{}\"", e.name())).collect();
                Err(AgentError::bad_value(
                    "exploration",
                    format!("\"{value}\" is not one of {}", names.join(", ")),
                ))
            }
        }
    }

    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Exploration::Random => "random",
            Exploration::EpsilonGreedy => "epsilon-greedy",
            Exploration::ExplorationFunction => "exploration-function",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_schedules_follow_their_formulas_and_name_bad_keys() {
        let s = lr_schedule(0.05, "power", 0.0, 200).unwrap();
        // Géron's alpha0 / (1 + t * decay) with decay = 1 / 200.
        assert!((s.value(1000) - 0.05 / (1.0 + 1000.0 * 0.005)).abs() < 1e-15);
        let s = lr_schedule(0.5, "linear", 0.1, 4).unwrap();
        assert_eq!((s.value(0), s.value(2), s.value(9)), (0.5, 0.3, 0.1));
        assert_eq!(lr_schedule(0.2, "constant", 0.0, 0).unwrap().value(99), 0.2);
        let s = lr_schedule(1.0, "exponential", 0.0, 10).unwrap();
        assert!((s.value(20) - 0.01).abs() < 1e-15);
        for (lr, kind, steps, key) in [
            (0.0, "constant", 1, "`lr`"),
            (0.1, "cosine", 1, "`lr_schedule`"),
            (0.1, "power", 0, "`lr_decay_steps`"),
        ] {
            let err = lr_schedule(lr, kind, 0.0, steps).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        assert!(epsilon_schedule(1.5, 0.1, 10).unwrap_err().to_string().contains("epsilon_start"));
        let err = Exploration::parse("softmax", &[Exploration::Random]).unwrap_err().to_string();
        assert!(err.contains("`exploration`") && err.contains("\"random\""), "{err}");
    }
}
