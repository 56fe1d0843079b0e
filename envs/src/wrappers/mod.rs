//! Wrappers: generic structs that hold an env, delegate to it and change one thing.
//! Each has `inner()` to reach the wrapped env.

mod time_limit;

pub use time_limit::TimeLimit;
