//! [`DqnConfig`]: the hyperparameters of the DQN family. Every algorithmic component is its own
//! field, so each ablation of Rainbow is one `--set key=value` away.
//!
//! Defaults of the plain agent (`dqn`) are Stable-Baselines3's `DQN` defaults (SB3 2.x,
//! `stable_baselines3/dqn/dqn.py`) except `net_arch`, where SB3's `[64, 64]` is kept. The
//! `rainbow` agent starts from [`DqnConfig::rainbow`]: the same fields with every component on
//! and the component hyperparameters of Hessel et al. 2018, table 1.

use crate::config::{check_range, Config};
use crate::error::{AgentError, Result};
use deeprl_nets::optim::{AdamConfig, OptimizerConfig, RmsPropConfig};
use serde::{Deserialize, Serialize};

/// The run length the schedules use when neither the config (`total_timesteps`) nor the
/// run (`BuildContext::total_steps`) gives one: the runner's default `steps`.
pub const DEFAULT_TOTAL_TIMESTEPS: u64 = 100_000;

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

/// The optimizer of the Q-network (both with `torch.optim`'s update rules,
/// [`deeprl_nets::optim::update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// `torch.optim.Adam` with `lr` and `adam_eps` (SB3's choice).
    Adam,
    /// `torch.optim.RMSprop` with `lr`, `rmsprop_alpha`, `rmsprop_eps` and
    /// `rmsprop_centered` (no momentum, no weight decay): `v = alpha v + (1 - alpha) g^2`,
    /// `p -= lr g / (sqrt(v) + eps)`; centered subtracts the squared running mean of `g`
    /// inside the square root. torch's convention puts `eps` **outside** the square root
    /// (DeepMind's DQN and TF1 put their 0.01 inside it).
    Rmsprop,
}

/// Which code runs the gradient step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnerKind {
    /// The host learner ([`super::learner`]: plain Rust over preallocated buffers) on CPU,
    /// for either torso; candle's autograd on other devices.
    Auto,
    /// candle's autograd always (the reference path; slower on CPU).
    Candle,
}

/// The DQN family's hyperparameters (see the [module docs](super) for the algorithms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DqnConfig {
    /// Learning rate of the optimizer (SB3: 1e-4).
    pub lr: f64,
    /// `"adam"` (SB3) or `"rmsprop"` (Mnih et al. 2015; MinAtar) ([`OptimizerKind`]).
    pub optimizer: OptimizerKind,
    /// Adam's epsilon (torch: 1e-8; Rainbow uses 1.5e-4).
    pub adam_eps: f64,
    /// RMSprop's smoothing constant of the squared gradient, torch's `alpha` (torch: 0.99;
    /// MinAtar: 0.95).
    pub rmsprop_alpha: f64,
    /// RMSprop's epsilon, added to `sqrt(v)` (torch's convention; torch: 1e-8; MinAtar: 0.01).
    pub rmsprop_eps: f64,
    /// Centered RMSprop (Graves 2013): normalise by the estimated variance rather than the
    /// second moment (torch: false; MinAtar: true).
    pub rmsprop_centered: bool,
    /// Discount factor (0.99).
    pub gamma: f64,
    /// Replay capacity in experiences (SB3: 1e6).
    pub buffer_size: usize,
    /// Env steps before any gradient step (SB3: 100).
    pub learning_starts: u64,
    /// Act uniformly at random for the first `learning_starts` steps, whatever epsilon or the
    /// noisy layers would do (true): SB3's off-policy warm-up
    /// (`OffPolicyAlgorithm._sample_action`), MinAtar's DQN before its replay start and
    /// Dopamine's before `min_replay_history`. CleanRL's `dqn.py` has no such phase (false
    /// in its preset).
    pub random_warmup: bool,
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
    /// `learn(total_timesteps)`. 0 (the default): the run's `steps`
    /// ([`BuildContext::total_steps`](crate::spec::BuildContext::total_steps)), or
    /// [`DEFAULT_TOTAL_TIMESTEPS`] for an agent built outside a run. Set it for a schedule
    /// of another length than the run.
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
    /// `"auto"` (the host learner on CPU) or `"candle"` (candle's
    /// autograd always) ([`LearnerKind`]; the same numbers up to f32 rounding).
    pub learner: LearnerKind,
}

impl Default for DqnConfig {
    fn default() -> Self {
        DqnConfig {
            lr: 1e-4,
            optimizer: OptimizerKind::Adam,
            adam_eps: 1e-8,
            rmsprop_alpha: 0.99,
            rmsprop_eps: 1e-8,
            rmsprop_centered: false,
            gamma: 0.99,
            buffer_size: 1_000_000,
            learning_starts: 100,
            random_warmup: true,
            batch_size: 32,
            train_freq: 4,
            gradient_steps: 1,
            target_update_interval: 10_000,
            tau: 1.0,
            exploration_fraction: 0.1,
            exploration_initial_eps: 1.0,
            exploration_final_eps: 0.05,
            total_timesteps: 0,
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
            learner: LearnerKind::Auto,
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

    /// This config with `total_timesteps = 0` replaced by the run's length `total_steps`
    /// (or [`DEFAULT_TOTAL_TIMESTEPS`] without one).
    pub fn with_run_length(mut self, total_steps: Option<u64>) -> Self {
        if self.total_timesteps == 0 {
            self.total_timesteps =
                total_steps.filter(|&s| s > 0).unwrap_or(DEFAULT_TOTAL_TIMESTEPS);
        }
        self
    }

    /// The optimizer's hyperparameters ([`OptimizerKind`]; torch's defaults for the rest).
    pub fn optimizer_config(&self) -> OptimizerConfig {
        match self.optimizer {
            OptimizerKind::Adam => OptimizerConfig::Adam(AdamConfig {
                lr: self.lr,
                eps: self.adam_eps,
                ..AdamConfig::default()
            }),
            OptimizerKind::Rmsprop => OptimizerConfig::RmsProp(RmsPropConfig {
                lr: self.lr,
                alpha: self.rmsprop_alpha,
                eps: self.rmsprop_eps,
                centered: self.rmsprop_centered,
                ..RmsPropConfig::default()
            }),
        }
    }

    /// Epsilon of epsilon-greedy at env step `step` (0 with noisy nets). `total_timesteps`
    /// 0 (not yet resolved, see [`with_run_length`](Self::with_run_length)) counts as
    /// [`DEFAULT_TOTAL_TIMESTEPS`].
    pub fn epsilon(&self, step: u64) -> f64 {
        if self.noisy {
            return 0.0;
        }
        let steps = (self.exploration_fraction * self.run_length() as f64) as u64;
        linear(self.exploration_initial_eps, self.exploration_final_eps, steps, step)
    }

    /// Prioritized replay's beta at env step `step`.
    pub fn per_beta(&self, step: u64) -> f64 {
        linear(self.per_beta_start, self.per_beta_end, self.run_length(), step)
    }

    fn run_length(&self) -> u64 {
        match self.total_timesteps {
            0 => DEFAULT_TOTAL_TIMESTEPS,
            t => t,
        }
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
        check_range("rmsprop_alpha", self.rmsprop_alpha, 0.0, 1.0)?;
        positive("rmsprop_eps", self.rmsprop_eps)?;
        check_range("gamma", self.gamma, 0.0, 1.0)?;
        at_least_one("batch_size", self.batch_size as u64)?;
        at_least_one("train_freq", self.train_freq)?;
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
