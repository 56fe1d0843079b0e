//! The DQN family through Rainbow, as one agent whose components are orthogonal switches.
//!
//! * **Deep Q-learning** (Mnih et al. 2013, "Playing Atari with Deep Reinforcement Learning";
//!   2015, "Human-level control through deep reinforcement learning"): minimise the error
//!   between `Q_theta(s, a)` and `r + gamma max_a' Q_target(s', a')` (Huber or squared loss)
//!   on minibatches drawn from an experience-replay memory (`buffer_size`), acting
//!   epsilon-greedily with epsilon falling linearly from `exploration_initial_eps` to
//!   `exploration_final_eps` over `exploration_fraction * total_timesteps` steps (SB3's
//!   names). Training starts after `learning_starts` steps and runs `gradient_steps` steps
//!   every `train_freq` env steps; gradients are clipped to `max_grad_norm` (global L2 norm).
//! * **Fixed Q-targets**: a target network copied from the online one every
//!   `target_update_interval` env steps (`tau = 1`), or blended `tau online + (1 - tau)
//!   target` (`tau < 1`, Lillicrap et al. 2016's soft update).
//! * **Double DQN** (`double`; van Hasselt, Guez and Silver 2016): the online network selects
//!   `a* = argmax_a Q_online(s', a)`, the target network evaluates it: `y = r + gamma
//!   Q_target(s', a*)`.
//! * **Dueling** (`dueling = "max" | "mean"`; Wang et al. 2016): `Q = V + A - max_a A` or
//!   `Q = V + A - mean_a A` ([`network`]).
//! * **Prioritized replay** (`prioritized`; Schaul et al. 2016): experiences drawn with
//!   probability `p_i^alpha / sum p^alpha`, `p_i = |delta_i| + eps`, the loss weighted by
//!   `(N P(i))^-beta / max w`, beta annealed linearly from `per_beta_start` to `per_beta_end`
//!   over `total_timesteps`; the new `|delta|` are written back after each step.
//! * **Multi-step returns** (`n_step`; Sutton 1988, Hessel et al. 2018): experiences carry
//!   `R = sum_k gamma^k r_{t+k}` and discount `gamma^n` (0 after termination), folded by the
//!   replay crate's `NStepFolder`.
//! * **Distributional C51** (`distributional`, `atoms`, `v_min`, `v_max`; Bellemare et al. 2017):
//!   the head outputs a categorical distribution per action; the target distribution is
//!   projected on the support and the loss is the cross-entropy ([`distributional`]). With
//!   double, the online net selects `a*` and the target net's distribution is projected. With
//!   prioritized replay the priority is the cross-entropy (as Rainbow).
//! * **Noisy nets** (`noisy`; Fortunato et al. 2018): factorised Gaussian NoisyLinear layers
//!   replace epsilon-greedy ([`noisy`] says when noise is drawn; greedy evaluation uses the
//!   mean weights).
//! * **Rainbow** (Hessel et al. 2018, "Rainbow: Combining Improvements in Deep Reinforcement
//!   Learning"): all of the above; the `rainbow` agent is this agent with
//!   [`DqnConfig::rainbow`]'s defaults, so each ablation is one `--set` away
//!   (`--set noisy=false`).
//!
//! The gradient step of every combination is [`Dqn::gradient_step`], readable in one place.
//!
//! **Optimizer** (`optimizer = "adam" | "rmsprop"`): torch's Adam (`lr`, `adam_eps`; SB3) or
//! torch's RMSprop (`lr`, `rmsprop_alpha`, `rmsprop_eps`, `rmsprop_centered`; Mnih et al.
//! 2015 and MinAtar's DQN), with torch's convention of `eps` added outside the square root.
//!
//! **Learner** (`learner = "auto" | "candle"`): on CPU the step runs on the host learner
//! ([`learner`]), for either torso: the same mathematics in plain Rust over preallocated
//! buffers, matrix products through `gemm`: 0.5 ms per step of the zoo's CartPole network
//! on one core against 1.9 ms through candle's autograd, 0.84 ms against 2.8 ms for
//! MinAtar's CNN (`benches/dqn_step.rs`). Other devices use candle's autograd, which
//! `learner = "candle"` forces everywhere (the reference the host learner is tested
//! against; both give the same numbers up to f32 rounding, and each reads the other's
//! checkpoints).
//!
//! **Actions and observations.** Discrete actions only: a box action space is an
//! `Incompatible` error that names `reinforce`. Observations are any flat `f32` vector; a
//! discrete observation space (toy text: FrozenLake, Taxi, CliffWalking) is one-hot encoded
//! inside the agent, so the network sees `n` inputs for `n` states.
//!
//! **Acting** runs on a host copy of the online network ([`host`]), refreshed after each
//! training phase, with the agent's own seeded generators: a step allocates nothing and a run
//! is reproducible bit for bit on CPU.
//!
//! **Checkpoints** hold the online and target weights, the optimizer state, the replay memory
//! ([`replay`] says how), the n-step folder's pending steps, the counters (which give the
//! schedules' positions) and the generators' positions: a resumed run continues bit for bit.

mod agent;
pub mod config;
pub mod distributional;
pub mod host;
pub mod learner;
pub mod network;
pub mod noisy;
pub mod replay;

pub use agent::{Counters, Dqn};
pub use config::{DqnConfig, Dueling, LearnerKind, Loss, OptimizerKind, TorsoKind};

use crate::spec::AgentSpec;

/// The registry name of the DQN agent.
pub const DQN: &str = "dqn";
/// The registry name of the Rainbow agent (the DQN agent with every component on).
pub const RAINBOW: &str = "rainbow";

fn table(config: DqnConfig) -> toml::Table {
    match toml::Value::try_from(config) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    }
}

/// The registry entries: `dqn` (SB3's defaults, every component off) and `rainbow` (every
/// component on).
pub fn specs() -> Vec<AgentSpec> {
    vec![
        AgentSpec {
            name: DQN,
            about: "DQN (Mnih et al. 2015) with switches for double, dueling, prioritized \
                    replay, n-step returns, C51 and noisy nets",
            defaults: || table(DqnConfig::default()),
            build: |ctx, t| Ok(Box::new(Dqn::from_table(DQN, DqnConfig::default(), ctx, t)?)),
        },
        AgentSpec {
            name: RAINBOW,
            about: "Rainbow (Hessel et al. 2018): DQN with double, dueling, prioritized replay, \
                    3-step returns, C51 and noisy nets all on",
            defaults: || table(DqnConfig::rainbow()),
            build: |ctx, t| Ok(Box::new(Dqn::from_table(RAINBOW, DqnConfig::rainbow(), ctx, t)?)),
        },
    ]
}
