//! Optimizers with PyTorch's names, defaults and semantics (`torch.optim`): SGD with momentum,
//! dampening and Nesterov; Adagrad; RMSprop; Adam, AdamW, Adamax, NAdam.
//!
//! [`config`] holds the hyperparameters and their validation; [`update`] the update rules as
//! one fused pass over a parameter's values, generic over `f32` and `f64`, checked against
//! trajectories recorded from torch 2.15 (`tests/conformance_optim.rs`); `tensor_step` the
//! same rules as candle tensor ops, for variables on other devices ([`OptimPath`]).

pub mod clip;
pub mod config;
mod optimizer;
mod tensor_step;
pub mod update;

pub use clip::{clip_grad_norm, clip_grad_value};
pub use config::{
    AdagradConfig, AdamConfig, AdamWConfig, AdamaxConfig, ConfigError, NAdamConfig,
    OptimizerConfig, RmsPropConfig, SgdConfig,
};
pub use optimizer::{Optim, OptimPath, SavedState};
pub use update::ParamState;

use num_traits::Float;

/// A gradient whose length differs from its parameter's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("gradient has {gradient} values but its parameter has {parameter}")]
pub struct GradientLengthError {
    pub parameter: usize,
    pub gradient: usize,
}

impl OptimizerConfig {
    /// Applies one step of this optimizer to the values `p` of one parameter with gradient
    /// `g` and its state. A gradient of another length is an error and changes nothing.
    pub fn update<T: Float>(
        &self,
        p: &mut [T],
        g: &[T],
        state: &mut ParamState<T>,
    ) -> Result<(), GradientLengthError> {
        if p.len() != g.len() {
            return Err(GradientLengthError { parameter: p.len(), gradient: g.len() });
        }
        match self {
            OptimizerConfig::Sgd(c) => update::sgd(c, p, g, state),
            OptimizerConfig::Adagrad(c) => update::adagrad(c, p, g, state),
            OptimizerConfig::RmsProp(c) => update::rmsprop(c, p, g, state),
            OptimizerConfig::Adam(c) => update::adam(c, p, g, state),
            OptimizerConfig::AdamW(c) => update::adam(&AdamConfig::from(*c), p, g, state),
            OptimizerConfig::Adamax(c) => update::adamax(c, p, g, state),
            OptimizerConfig::NAdam(c) => update::nadam(c, p, g, state),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_hyperparameters_name_the_field() {
        let err = SgdConfig { lr: -0.1, ..SgdConfig::default() }.validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid SGD hyperparameter lr = -0.1: a finite number >= 0");
        let err = SgdConfig { nesterov: true, ..SgdConfig::default() }.validate().unwrap_err();
        assert_eq!(err.field, "momentum");
        let err =
            SgdConfig { nesterov: true, momentum: 0.9, dampening: 0.1, ..SgdConfig::default() }
                .validate()
                .unwrap_err();
        assert_eq!(err.field, "dampening");
        let err = AdamConfig { betas: (0.9, 1.0), ..AdamConfig::default() }.validate().unwrap_err();
        assert_eq!(err.field, "betas.1");
        let err = OptimizerConfig::AdamW(AdamWConfig { eps: f64::NAN, ..AdamWConfig::default() })
            .validate()
            .unwrap_err();
        assert_eq!((err.optimizer, err.field), ("AdamW", "eps"));
        assert!(RmsPropConfig { alpha: 1.5, ..RmsPropConfig::default() }.validate().is_err());
    }

    #[test]
    fn configs_parse_from_json_with_torch_defaults() {
        let c: OptimizerConfig = serde_json::from_str(r#"{"kind": "adamw", "lr": 3e-4}"#).unwrap();
        assert_eq!(c, OptimizerConfig::AdamW(AdamWConfig { lr: 3e-4, ..AdamWConfig::default() }));
        assert_eq!(AdamConfig::from(AdamWConfig::default()).weight_decay, 0.01);
        let c: OptimizerConfig = serde_json::from_str(
            r#"{"kind": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": true}"#,
        )
        .unwrap();
        assert!(c.validate().is_ok());
        assert!(
            serde_json::from_str::<OptimizerConfig>(r#"{"kind": "sgd", "momentun": 0.9}"#).is_err()
        );
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind": "lion"}"#).is_err());
    }

    #[test]
    fn a_gradient_of_the_wrong_length_is_an_error_and_changes_nothing() {
        let c = OptimizerConfig::Adam(AdamConfig::default());
        let mut p = vec![1.0f32, 2.0];
        let mut state = ParamState::new(2);
        let err = c.update(&mut p, &[0.1], &mut state).unwrap_err();
        assert_eq!(err.to_string(), "gradient has 1 values but its parameter has 2");
        assert_eq!((p, state.step), (vec![1.0, 2.0], 0));
    }
}
