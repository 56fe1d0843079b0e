//! REINFORCE (Williams 1992, "Simple statistical gradient-following algorithms for
//! connectionist reinforcement learning"): Monte-Carlo policy gradient.
//!
//! ```text
//! play episodes with the stochastic policy pi_theta(a|s)
//! G_t   = sum_{k>=0} gamma^k r_{t+k}                          (no bootstrap at the end)
//! A_t   = G_t - b(s_t)                                         (b = 0 without a baseline)
//! A_t  <- (A_t - mean(A)) / (std(A) + eps)                     over all steps of the update
//! loss  = -mean_t [ log pi_theta(a_t|s_t) * A_t ]
//! theta <- Adam(theta, grad loss)                              once per update
//! ```
//!
//! The gradient of the loss is the mean over the update's steps of `-A_t grad log pi(a_t|s_t)`,
//! a Monte-Carlo estimate of the policy gradient theorem's `E[G_t grad log pi(a_t|s_t)]`
//! (Sutton and Barto 2018, section 13.3). One update uses `episodes_per_update` complete
//! episodes and takes one optimizer step on all of their steps in one batched forward and
//! backward pass.
//!
//! * **Policies** ([`policy`]): a softmax over the network's outputs for a discrete action
//!   space; for a box action space a diagonal Gaussian whose mean is the network's output and
//!   whose `log sigma` is a learned vector independent of the state (initialised to
//!   `log_std_init`). The Gaussian sample is clipped into the box for the env, and the update
//!   uses the log-density of the unclipped sample (what was drawn).
//! * **Truncation**: an episode cut by a time limit ends its returns there, as if it had
//!   terminated. Plain REINFORCE has no value estimate to bootstrap from; the bias is small
//!   when `gamma^limit` is small (CartPole: `0.99^500 < 0.01`).
//! * **Baseline** (`baseline = true`): a second MLP `b(s)` with the policy's hidden layers,
//!   fitted by one Adam step per update on the mean squared error to the returns `G_t`.
//!   Subtracting it from `G_t` before normalising leaves the expected gradient unchanged and
//!   lowers its variance (Williams 1992's reinforcement baseline).
//! * **Normalisation** (`normalize_advantages = true`): `(A - mean) / (std + eps)` with the
//!   unbiased standard deviation and `eps` = `f32` machine epsilon, as in PyTorch's REINFORCE
//!   example ([`returns::normalize`]).
//! * **Acting**: the policy runs on the host from a copy of its weights taken after each update
//!   ([`host_mlp`]), and actions are drawn from the agent's own `ChaCha8Rng`: a step allocates
//!   nothing and a run is reproducible bit for bit on CPU.
//! * **Observations** are the env's flat `f32` values; a discrete observation enters the
//!   network as its index (wrap the env in `OneHot` for a one-hot input).

mod agent;
pub mod buffer;
pub mod config;
pub mod host_mlp;
pub mod policy;
pub mod returns;

pub use agent::{Head, Reinforce, LOG_STD, NAME};
pub use config::ReinforceConfig;

use crate::spec::AgentSpec;

/// The registry entry of the REINFORCE agent.
pub fn spec() -> AgentSpec {
    AgentSpec {
        name: NAME,
        about: "REINFORCE (Williams 1992): Monte-Carlo policy gradient with a softmax or \
                Gaussian policy and an optional learned baseline",
        defaults: crate::config::defaults::<ReinforceConfig>,
        build: |ctx, table| Ok(Box::new(Reinforce::from_table(ctx, table)?)),
    }
}
