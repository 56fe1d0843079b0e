//! Wrappers: generic structs that hold an env, delegate to it and change one thing.
//! Each has `inner()` to reach the wrapped env.

mod order_enforcing;
mod time_limit;

pub use order_enforcing::OrderEnforcing;
pub use time_limit::TimeLimit;
