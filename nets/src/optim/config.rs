//! Hyperparameters of the optimizers, with torch's names and defaults, and their validation.

use serde::{Deserialize, Serialize};

/// An invalid hyperparameter, named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {optimizer} hyperparameter {field} = {value}: {expected}")]
pub struct ConfigError {
    pub optimizer: &'static str,
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn check(
    optimizer: &'static str,
    field: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError { optimizer, field, value: value.to_string(), expected })
    }
}

fn non_negative(
    optimizer: &'static str,
    field: &'static str,
    value: f64,
) -> Result<(), ConfigError> {
    check(optimizer, field, value, value.is_finite() && value >= 0.0, "a finite number >= 0")
}

fn betas(optimizer: &'static str, (beta1, beta2): (f64, f64)) -> Result<(), ConfigError> {
    check(optimizer, "betas.0", beta1, (0.0..1.0).contains(&beta1), "a number in [0, 1)")?;
    check(optimizer, "betas.1", beta2, (0.0..1.0).contains(&beta2), "a number in [0, 1)")
}

/// `torch.optim.SGD`: momentum, dampening, Nesterov and L2 weight decay.
///
/// torch keeps a buffer of gradients and multiplies by `lr` at the end:
/// `b = momentum b + (1 - dampening) g` (`b = g` on the first step), `p -= lr (g + momentum b)`
/// with Nesterov, else `p -= lr b`. The seed's form `m <- beta m - eta grad; theta <- theta + m`
/// (Sutskever et al. 2013; Keras) is the same with `m = -lr b` while `lr` is constant; they
/// differ once a schedule changes `lr`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

impl Default for SgdConfig {
    /// torch's defaults, with `lr = 1e-3` (torch's own default).
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl SgdConfig {
    /// Checks every field as torch does (Nesterov needs momentum and zero dampening).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = "SGD";
        non_negative(name, "lr", self.lr)?;
        non_negative(name, "momentum", self.momentum)?;
        non_negative(name, "dampening", self.dampening)?;
        non_negative(name, "weight_decay", self.weight_decay)?;
        if self.nesterov {
            check(
                name,
                "momentum",
                self.momentum,
                self.momentum > 0.0,
                "> 0 with Nesterov momentum",
            )?;
            check(
                name,
                "dampening",
                self.dampening,
                self.dampening == 0.0,
                "0 with Nesterov momentum",
            )?;
        }
        Ok(())
    }
}

/// `torch.optim.Adagrad` (Duchi et al. 2011).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdagradConfig {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub initial_accumulator_value: f64,
    /// Added to `sqrt(sum)`, outside the square root (torch).
    pub eps: f64,
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

impl AdagradConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = "Adagrad";
        non_negative(name, "lr", self.lr)?;
        non_negative(name, "lr_decay", self.lr_decay)?;
        non_negative(name, "weight_decay", self.weight_decay)?;
        non_negative(name, "initial_accumulator_value", self.initial_accumulator_value)?;
        non_negative(name, "eps", self.eps)
    }
}

/// `torch.optim.RMSprop` (Hinton's lecture 6e): `alpha` is Keras' `rho`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmsPropConfig {
    pub lr: f64,
    pub alpha: f64,
    /// Added to `sqrt(v)`, outside the square root (torch; TF1 put it inside).
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

impl RmsPropConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = "RMSprop";
        non_negative(name, "lr", self.lr)?;
        check(name, "alpha", self.alpha, (0.0..=1.0).contains(&self.alpha), "a number in [0, 1]")?;
        non_negative(name, "eps", self.eps)?;
        non_negative(name, "weight_decay", self.weight_decay)?;
        non_negative(name, "momentum", self.momentum)
    }
}

/// `torch.optim.Adam` (Kingma and Ba 2015) and `torch.optim.AdamW` (Loshchilov and Hutter
/// 2019) with `decoupled_weight_decay`. `eps` is added to the bias-corrected `sqrt(v_hat)`
/// (torch), not the paper's "epsilon hat" of TF/Keras.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// L2 penalty folded into the gradient, or decoupled decay `p *= 1 - lr wd` (AdamW).
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    /// `torch.optim.Adam`'s defaults.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = if self.decoupled_weight_decay { "AdamW" } else { "Adam" };
        non_negative(name, "lr", self.lr)?;
        betas(name, self.betas)?;
        non_negative(name, "eps", self.eps)?;
        non_negative(name, "weight_decay", self.weight_decay)
    }
}

/// `torch.optim.AdamW` (Loshchilov and Hutter 2019): Adam with decoupled weight decay
/// `p *= 1 - lr weight_decay`, default 0.01.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl From<AdamWConfig> for AdamConfig {
    fn from(c: AdamWConfig) -> Self {
        AdamConfig {
            lr: c.lr,
            betas: c.betas,
            eps: c.eps,
            weight_decay: c.weight_decay,
            amsgrad: c.amsgrad,
            maximize: c.maximize,
            decoupled_weight_decay: true,
        }
    }
}

/// `torch.optim.Adamax` (Kingma and Ba 2015, section 7.1): `eps` is added to `|g|` inside the
/// max, and there is no `eps` in the denominator (torch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamaxConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

impl Default for AdamaxConfig {
    fn default() -> Self {
        AdamaxConfig {
            lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

impl AdamaxConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = "Adamax";
        non_negative(name, "lr", self.lr)?;
        betas(name, self.betas)?;
        non_negative(name, "eps", self.eps)?;
        non_negative(name, "weight_decay", self.weight_decay)
    }
}

/// `torch.optim.NAdam` (Dozat 2016) with torch's momentum schedule
/// `mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NAdamConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum_decay: f64,
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
}

impl Default for NAdamConfig {
    fn default() -> Self {
        NAdamConfig {
            lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

impl NAdamConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = "NAdam";
        non_negative(name, "lr", self.lr)?;
        betas(name, self.betas)?;
        non_negative(name, "eps", self.eps)?;
        non_negative(name, "weight_decay", self.weight_decay)?;
        non_negative(name, "momentum_decay", self.momentum_decay)
    }
}

/// Any optimizer's hyperparameters, for config files and the command line:
/// `{"kind": "adam", "lr": 3e-4}` or, in TOML, `kind = "sgd"` with the fields beside it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Sgd(SgdConfig),
    Adagrad(AdagradConfig),
    RmsProp(RmsPropConfig),
    Adam(AdamConfig),
    AdamW(AdamWConfig),
    Adamax(AdamaxConfig),
    NAdam(NAdamConfig),
}

impl OptimizerConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Adagrad(c) => c.validate(),
            OptimizerConfig::RmsProp(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
            OptimizerConfig::AdamW(c) => AdamConfig::from(*c).validate(),
            OptimizerConfig::Adamax(c) => c.validate(),
            OptimizerConfig::NAdam(c) => c.validate(),
        }
    }

    /// Sets the learning rate (what schedules change between steps).
    pub fn set_lr(&mut self, lr: f64) {
        match self {
            OptimizerConfig::Sgd(c) => c.lr = lr,
            OptimizerConfig::Adagrad(c) => c.lr = lr,
            OptimizerConfig::RmsProp(c) => c.lr = lr,
            OptimizerConfig::Adam(c) => c.lr = lr,
            OptimizerConfig::AdamW(c) => c.lr = lr,
            OptimizerConfig::Adamax(c) => c.lr = lr,
            OptimizerConfig::NAdam(c) => c.lr = lr,
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Adagrad(c) => c.lr,
            OptimizerConfig::RmsProp(c) => c.lr,
            OptimizerConfig::Adam(c) => c.lr,
            OptimizerConfig::AdamW(c) => c.lr,
            OptimizerConfig::Adamax(c) => c.lr,
            OptimizerConfig::NAdam(c) => c.lr,
        }
    }
}
