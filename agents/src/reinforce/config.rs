//! [`ReinforceConfig`]: the hyperparameters of the REINFORCE agent, with their defaults and
//! where those come from.

use crate::config::{check_range, Config};
use crate::error::{AgentError, Result};
use deeprl_nets::mlp::Activation;
use serde::{Deserialize, Serialize};

/// The activations the config accepts, by name (torch's definitions, see
/// [`Activation`]; `elu` with `alpha = 1`, `leaky_relu` with slope 0.01, torch's defaults).
pub const ACTIVATIONS: [&str; 8] =
    ["relu", "tanh", "sigmoid", "elu", "leaky_relu", "gelu", "silu", "identity"];

/// REINFORCE hyperparameters. Unless noted, defaults are those of PyTorch's
/// `examples/reinforcement_learning/reinforce.py` (a 128-unit ReLU hidden layer, Adam with
/// `lr = 1e-2`, `gamma = 0.99`, one episode per update, normalised returns); the example's
/// dropout is left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReinforceConfig {
    /// Discount factor of the returns, in `[0, 1]` (0.99).
    pub gamma: f64,
    /// Adam learning rate of the policy (1e-2).
    pub lr: f64,
    /// Hidden layer sizes of the policy network (`[128]`); empty for a linear policy.
    pub hidden_sizes: Vec<usize>,
    /// Hidden activation, one of [`ACTIVATIONS`] (`"relu"`).
    pub activation: String,
    /// Complete episodes played between two updates; each update is one optimizer step on
    /// all of their steps (1).
    pub episodes_per_update: u64,
    /// Centre and scale the advantages across the steps of an update (true).
    pub normalize_advantages: bool,
    /// Learn a state-value baseline `b(s)` and use `G_t - b(s_t)` as the advantage (false;
    /// Williams 1992's reinforcement baseline, Sutton and Barto 2018 section 13.4).
    pub baseline: bool,
    /// Adam learning rate of the baseline network, which has the policy's hidden layers
    /// (1e-2, the policy's).
    pub baseline_lr: f64,
    /// Initial `log sigma` of the Gaussian policy for continuous actions (0.0, so `sigma = 1`,
    /// Stable-Baselines3's `log_std_init`).
    pub log_std_init: f64,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        ReinforceConfig {
            gamma: 0.99,
            lr: 1e-2,
            hidden_sizes: vec![128],
            activation: "relu".into(),
            episodes_per_update: 1,
            normalize_advantages: true,
            baseline: false,
            baseline_lr: 1e-2,
            log_std_init: 0.0,
        }
    }
}

impl ReinforceConfig {
    /// The hidden activation named by [`activation`](Self::activation).
    pub fn hidden_activation(&self) -> Result<Activation> {
        Ok(match self.activation.as_str() {
            "relu" => Activation::Relu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "elu" => Activation::Elu(1.0),
            "leaky_relu" => Activation::LeakyRelu(0.01),
            "gelu" => Activation::Gelu,
            "silu" => Activation::Silu,
            "identity" => Activation::Identity,
            other => {
                let hint = crate::config::closest(other, ACTIVATIONS)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(AgentError::bad_value(
                    "activation",
                    format!(
                        "unknown activation `{other}`{hint}; known: {}",
                        ACTIVATIONS.join(", ")
                    ),
                ));
            }
        })
    }
}

fn positive(key: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(AgentError::bad_value(key, format!("{value} must be a finite number > 0")))
    }
}

impl Config for ReinforceConfig {
    fn validate(&self) -> Result<()> {
        check_range("gamma", self.gamma, 0.0, 1.0)?;
        positive("lr", self.lr)?;
        positive("baseline_lr", self.baseline_lr)?;
        check_range("log_std_init", self.log_std_init, -20.0, 2.0)?;
        if let Some(i) = self.hidden_sizes.iter().position(|&s| s == 0) {
            return Err(AgentError::bad_value(
                "hidden_sizes",
                format!("hidden_sizes[{i}] is zero in {:?}", self.hidden_sizes),
            ));
        }
        if self.episodes_per_update == 0 {
            return Err(AgentError::bad_value("episodes_per_update", "must be at least 1"));
        }
        self.hidden_activation().map(|_| ())
    }
}
