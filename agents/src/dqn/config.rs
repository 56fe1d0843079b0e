//! [`DqnConfig`]: the hyperparameters of the DQN family. Every algorithmic component is its own
//! field, so each ablation of Rainbow is one `--set key=value` away.
//!
//! Defaults of the plain agent (`dqn`) are Stable-Baselines3's `DQN` defaults (SB3 2.x,
//! `stable_baselines3/dqn/dqn.py`) except `net_arch`, where SB3's `[64, 64]` is kept. The
//! `rainbow` agent starts from [`DqnConfig::rainbow`]: the same fields with every component on
//! and the component hyperparameters of Hessel et al. 2018, table 1.

use crate::config::{check_range, Config};
use crate::error::{AgentError, Result};
use serde::{Deserialize, Serialize};

/// How the dueling head aggregates value and advantage streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dueling {
    /// A plain head: one linear layer to the Q-values.
    None,
    /// `Q = V + A - max_a A` (Wang et al. 2016, eq. 8).
    Max,
    /// `Q = V + A - mean_a A` (Wang et al. 2016, eq. 9: the form used in their experiments).
    Mean,
}

/// The regression loss of the non-distributional TD error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Huber loss with `delta = 1` (torch's `smooth_l1_loss`, SB3's choice).
    Huber,
    /// Squared error `delta^2` (torch's `mse_loss`, CleanRL's choice).
    Mse,
}

/// The feature extractor before the Q head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TorsoKind {
    /// Fully connected ReLU layers of `net_arch` sizes on flat observations.
    Mlp,
    /// The MinAtar paper's convolution (Young & Tian 2019: 16 filters `3x3`, stride 1, ReLU)
    /// on image observations `[channels, height, width]`, flattened into the `net_arch`
    /// layers ([`Torso::Cnn`](super::network::Torso::Cnn)). Envs whose observation space is
    /// not a 3-D box are incompatible.
    Cnn,
}

/// The DQN family's hyperparameters (see the [module docs](super) for the algorithms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DqnConfig {
    /// Adam learning rate (SB3: 1e-4).
    pub lr: f64,
    /// Adam's epsilon (torch: 1e-8; Rainbow uses 1.5e-4).
    pub adam_eps: f64,
    /// Discount factor (0.99).
    pub gamma: f64,
    /// Replay capacity in experiences (SB3: 1e6).
    pub buffer_size: usize,
    /// Env steps before any gradient step (SB3: 100).
    pub learning_starts: u64,
    /// Experiences per gradient step (SB3: 32).
    pub batch_size: usize,
    /// Env steps between two training phases (SB3: 4).
    pub train_freq: u64,
    /// Gradient steps per training phase (SB3: 1).
    pub gradient_steps: u64,
    /// Env steps between target-network updates (SB3: 10000).
    pub target_update_interval: u64,
    /// Polyak coefficient of a target update: 1 copies the online weights (Mnih et al. 2015),
    /// below 1 is a soft update `target <- tau online + (1 - tau) target` (SB3: 1.0).
    pub tau: f64,
    /// Fraction of `total_timesteps` over which epsilon falls (SB3: 0.1).
    pub exploration_fraction: f64,
    /// Epsilon at step 0 (SB3: 1.0).
    pub exploration_initial_eps: f64,
    /// Epsilon after the fall (SB3: 0.05).
    pub exploration_final_eps: f64,
    /// The run length that the epsilon and beta schedules are fractions of: SB3's
    /// `learn(total_timesteps)`. Set it to the run's `steps` (100000, the runner's default).
    pub total_timesteps: u64,
    /// Clip the gradients' global L2 norm to this (SB3: 10); 0 turns clipping off.
    pub max_grad_norm: f64,
    /// Hidden layer sizes of the dense layers (after the convolution with `torso = "cnn"`)
    /// (SB3: `[64, 64]`; MinAtar: `[128]`).
    pub net_arch: Vec<usize>,
    /// Feature extractor: `"mlp"` (flat observations) or `"cnn"` (image observations).
    pub torso: TorsoKind,
    /// Regression loss of the TD error when not distributional: `"huber"` (SB3) or `"mse"`.
    pub loss: Loss,
    /// Double DQN (van Hasselt et al. 2016): the online net picks the next action, the target
    /// net evaluates it (false).
    pub double: bool,
    /// Dueling head (Wang et al. 2016): `"none"`, `"max"` or `"mean"` (`"none"`).
    pub dueling: Dueling,
    /// Prioritized replay (Schaul et al. 2016, proportional) (false).
    pub prioritized: bool,
    /// Prioritization exponent alpha (Schaul: 0.6; Rainbow: 0.5).
    pub per_alpha: f64,
    /// Importance-sampling exponent at step 0, annealed linearly to `per_beta_end` over
    /// `total_timesteps` (Schaul: 0.4).
    pub per_beta_start: f64,
    /// Importance-sampling exponent at the end of the run (1.0: unbiased).
    pub per_beta_end: f64,
    /// Added to `|delta|` so that no priority is zero (1e-6).
    pub per_eps: f64,
    /// Steps of the multi-step return (1: one-step Q-learning; Rainbow: 3).
    pub n_step: usize,
    /// Distributional C51 head and loss (Bellemare et al. 2017) (false).
    pub distributional: bool,
    /// Atoms of the return distribution's support (51).
    pub atoms: usize,
    /// Lowest atom of the support (-10).
    pub v_min: f64,
    /// Highest atom of the support (10).
    pub v_max: f64,
    /// Noisy nets (Fortunato et al. 2018): factorised Gaussian noise in the layers after the
    /// first replaces epsilon-greedy (false).
    pub noisy: bool,
    /// Initial noise scale sigma0 of the noisy layers (0.5).
    pub noisy_sigma0: f64,
}

impl Default for DqnConfig {
    fn default() -> Self {
        DqnConfig {
            lr: 1e-4,
            adam_eps: 1e-8,
            gamma: 0.99,
            buffer_size: 1_000_000,
            learning_starts: 100,
            batch_size: 32,
            train_freq: 4,
            gradient_steps: 1,
            target_update_interval: 10_000,
            tau: 1.0,
            exploration_fraction: 0.1,
            exploration_initial_eps: 1.0,
            exploration_final_eps: 0.05,
            total_timesteps: 100_000,
            max_grad_norm: 10.0,
            net_arch: vec![64, 64],
            torso: TorsoKind::Mlp,
            loss: Loss::Huber,
            double: false,
            dueling: Dueling::None,
            prioritized: false,
            per_alpha: 0.6,
            per_beta_start: 0.4,
            per_beta_end: 1.0,
            per_eps: 1e-6,
            n_step: 1,
            distributional: false,
            atoms: 51,
            v_min: -10.0,
            v_max: 10.0,
            noisy: false,
            noisy_sigma0: 0.5,
        }
    }
}

impl DqnConfig {
    /// Rainbow (Hessel et al. 2018): every component on, with the paper's component settings
    /// (table 1: 3-step returns, alpha 0.5, beta 0.4 to 1, 51 atoms on [-10, 10], sigma0 0.5,
    /// Adam epsilon 1.5e-4, double and dueling with the mean aggregation).
    pub fn rainbow() -> Self {
        DqnConfig {
            double: true,
            dueling: Dueling::Mean,
            prioritized: true,
            per_alpha: 0.5,
            n_step: 3,
            distributional: true,
            noisy: true,
            adam_eps: 1.5e-4,
            exploration_initial_eps: 0.0,
            exploration_final_eps: 0.0,
            ..DqnConfig::default()
        }
    }

    /// Epsilon of epsilon-greedy at env step `step` (0 with noisy nets).
    pub fn epsilon(&self, step: u64) -> f64 {
        if self.noisy {
            return 0.0;
        }
        let steps = (self.exploration_fraction * self.total_timesteps as f64) as u64;
        linear(self.exploration_initial_eps, self.exploration_final_eps, steps, step)
    }

    /// Prioritized replay's beta at env step `step`.
    pub fn per_beta(&self, step: u64) -> f64 {
        linear(self.per_beta_start, self.per_beta_end, self.total_timesteps, step)
    }
}

/// `start + (end - start) min(t / steps, 1)`, as [`deeprl_nets::schedule::Linear`].
fn linear(start: f64, end: f64, steps: u64, step: u64) -> f64 {
    use deeprl_nets::schedule::{Linear, Schedule};
    Linear::new(start, end, steps).map(|s| s.value(step)).unwrap_or(end)
}

fn positive(key: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(AgentError::bad_value(key, format!("{value} must be a finite number > 0")))
    }
}

fn at_least_one(key: &str, value: u64) -> Result<()> {
    if value == 0 {
        return Err(AgentError::bad_value(key, "must be at least 1"));
    }
    Ok(())
}

impl Config for DqnConfig {
    fn validate(&self) -> Result<()> {
        positive("lr", self.lr)?;
        positive("adam_eps", self.adam_eps)?;
        check_range("gamma", self.gamma, 0.0, 1.0)?;
        at_least_one("batch_size", self.batch_size as u64)?;
        at_least_one("train_freq", self.train_freq)?;
        at_least_one("total_timesteps", self.total_timesteps)?;
        at_least_one("n_step", self.n_step as u64)?;
        if self.buffer_size < self.batch_size {
            return Err(AgentError::bad_value(
                "buffer_size",
                format!(
                    "{} is smaller than batch_size = {}: a batch could never be drawn",
                    self.buffer_size, self.batch_size
                ),
            ));
        }
        check_range("tau", self.tau, 0.0, 1.0)?;
        if self.tau == 0.0 {
            return Err(AgentError::bad_value("tau", "0 would never update the target network"));
        }
        if self.target_update_interval == 0 {
            return Err(AgentError::bad_value(
                "target_update_interval",
                format!(
                    "must be at least 1 (tau = {}: 1 copies the weights every \
                     target_update_interval steps, below 1 blends them)",
                    self.tau
                ),
            ));
        }
        check_range("exploration_fraction", self.exploration_fraction, 0.0, 1.0)?;
        check_range("exploration_initial_eps", self.exploration_initial_eps, 0.0, 1.0)?;
        check_range("exploration_final_eps", self.exploration_final_eps, 0.0, 1.0)?;
        check_range("max_grad_norm", self.max_grad_norm, 0.0, f64::MAX)?;
        if let Some(i) = self.net_arch.iter().position(|&s| s == 0) {
            return Err(AgentError::bad_value(
                "net_arch",
                format!("net_arch[{i}] is zero in {:?}", self.net_arch),
            ));
        }
        if self.net_arch.is_empty() && (self.dueling != Dueling::None || self.noisy) {
            return Err(AgentError::bad_value(
                "net_arch",
                "is empty: the dueling and noisy heads need at least one hidden layer",
            ));
        }
        check_range("per_alpha", self.per_alpha, 0.0, 1.0)?;
        check_range("per_beta_start", self.per_beta_start, 0.0, 1.0)?;
        check_range("per_beta_end", self.per_beta_end, 0.0, 1.0)?;
        positive("per_eps", self.per_eps)?;
        if self.distributional {
            if self.atoms < 2 {
                return Err(AgentError::bad_value(
                    "atoms",
                    format!("{} atoms: the C51 support needs at least 2", self.atoms),
                ));
            }
            if !(self.v_min.is_finite() && self.v_max.is_finite() && self.v_min < self.v_max) {
                return Err(AgentError::bad_value(
                    "v_min",
                    format!(
                        "v_min = {} must be below v_max = {} (the C51 support [v_min, v_max])",
                        self.v_min, self.v_max
                    ),
                ));
            }
        }
        check_range("noisy_sigma0", self.noisy_sigma0, 0.0, 100.0)?;
        Ok(())
    }
}
