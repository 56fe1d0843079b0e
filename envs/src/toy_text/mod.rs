//! Toy text: FrozenLake, Taxi, CliffWalking, Blackjack (Gymnasium 1.4's `toy_text`).
//!
//! FrozenLake, Taxi and CliffWalking step their transition table `P[s][a]` with
//! [`crate::mdp::TabularCore`], exactly like Gymnasium's toy-text `step`; the tables are
//! equal to Gymnasium's entry for entry. Blackjack draws cards from an infinite deck and
//! exposes an exact model over its observations. A step allocates nothing.

pub mod blackjack;
pub mod cliff_walking;
pub mod frozen_lake;
pub mod taxi;

#[cfg(test)]
mod tests;

pub use blackjack::{Blackjack, BlackjackConfig, BlackjackState, Hand};
pub use cliff_walking::CliffWalking;
pub use frozen_lake::{generate_random_map, FrozenLake, FrozenLakeConfig, FrozenLakeMap};
pub use taxi::Taxi;

use crate::registry::{EnvSpec, Registry, Success};

/// Registers the toy-text ids with Gymnasium 1.4's time limits and thresholds.
pub(crate) fn register_builtins(registry: &mut Registry) {
    let taxi = |id: &str| {
        EnvSpec::new(id)
            .with_time_limit(200)
            .with_reward_threshold(8.0)
            .with_success(Success::Terminated)
    };
    let lake = |id: &str, limit, threshold| {
        EnvSpec::new(id)
            .with_time_limit(limit)
            .with_reward_threshold(threshold)
            .with_success(Success::PositiveReturn)
    };
    let results = [
        registry.register_spec(lake("FrozenLake-v1", 100, 0.7), FrozenLake::v1),
        registry.register_spec(lake("FrozenLake8x8-v1", 200, 0.85), FrozenLake::v1_8x8),
        registry.register_spec(taxi("Taxi-v4"), Taxi::new),
        registry.register_spec(taxi("Taxi-v3"), Taxi::new),
        registry.register_spec(
            EnvSpec::new("CliffWalking-v1").with_success(Success::Terminated),
            || CliffWalking::new(false),
        ),
        registry.register_spec(
            EnvSpec::new("CliffWalkingSlippery-v1").with_success(Success::Terminated),
            || CliffWalking::new(true),
        ),
        registry.register_spec(
            EnvSpec::new("Blackjack-v1").with_success(Success::PositiveReturn),
            Blackjack::default,
        ),
    ];
    for result in results {
        result.expect("built-in ids are unique");
    }
}
