//! Toy text: FrozenLake, Taxi, CliffWalking, Blackjack.

use crate::registry::Registry;

/// Registers the toy-text ids with Gymnasium 1.4's time limits and thresholds.
pub(crate) fn register_builtins(_registry: &mut Registry) {}
