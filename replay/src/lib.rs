//! Experience replay for off-policy agents: a uniform ring buffer, n-step folding and
//! prioritized replay (sum tree), allocation-free after construction, with batches handed
//! to candle as tensors. This crate knows nothing of environments or agents.
//!
//! Every stored experience carries its discount (`gamma^k`, or 0 when the episode
//! terminated), so every TD target is `reward + discount * bootstrap(next_obs)`; see
//! [`Experience`].

mod batch;
mod buffer;
mod error;
mod experience;
mod nstep;
mod persist;
mod prioritized;
pub mod segment_tree;

pub use batch::{Batch, TensorBatch};
pub use buffer::{ExperienceSink, ReplayBuffer};
pub use error::{ReplayError, Result};
pub use experience::{discount_after, Action, ActionKind, Experience};
pub use nstep::{NStepFolder, Transition};
pub use prioritized::{PrioritizedConfig, PrioritizedReplay};
