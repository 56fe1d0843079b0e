//! A convolution followed by its activation, the unit of GoogLeNet's branches and stem:
//!
//! * [`BasicConv2d::new`]: torchvision's `BasicConv2d`, `relu(bn(conv(x)))` with a convolution
//!   without bias (`conv.weight`) and a batch norm with eps `1e-3` (`bn.weight`, `bn.bias`,
//!   `bn.running_mean`, `bn.running_var`), the batch-norm GoogLeNet torchvision ships
//!   (Ioffe and Szegedy 2015 added batch norm to the 2014 network);
//! * [`BasicConv2d::plain`]: the paper's `relu(conv(x))` with a bias, parameters directly
//!   under the builder's prefix (`weight`, `bias`).
//!
//! Training and evaluation differ through the batch norm ([`ModuleT`]).

use candle_core::{ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use crate::conv::{BatchNorm, Conv2d, Conv2dConfig};

/// torchvision's batch-norm epsilon in `BasicConv2d`.
pub const BASIC_CONV_BN_EPS: f64 = 1e-3;

/// A convolution, an optional batch norm, and a ReLU; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct BasicConv2d {
    conv: Conv2d,
    bn: Option<BatchNorm>,
}

impl BasicConv2d {
    /// torchvision's `BasicConv2d`: the convolution of `config` without its bias under
    /// `conv`, a batch norm (eps 1e-3, momentum 0.1) under `bn`.
    pub fn new(config: Conv2dConfig, vb: VarBuilder) -> Result<Self> {
        let conv = Conv2d::new(config.bias(false), vb.pp("conv"))?;
        let bn = BatchNorm::new_2d(config.out_channels, vb.pp("bn"))?
            .with_hyperparameters(BASIC_CONV_BN_EPS, 0.1)?;
        Ok(Self { conv, bn: Some(bn) })
    }

    /// The convolution of `config` (with its bias setting) and a ReLU, parameters directly
    /// under `vb`'s prefix.
    pub fn plain(config: Conv2dConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self { conv: Conv2d::new(config, vb)?, bn: None })
    }

    pub fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// The number of trainable parameters (not the running statistics).
    pub fn parameter_count(&self) -> usize {
        self.conv.parameter_count() + self.bn.as_ref().map_or(0, BatchNorm::parameter_count)
    }
}

impl ModuleT for BasicConv2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.bn {
            Some(bn) => bn.forward_conv_relu_t(&self.conv, x, train),
            None => self.conv.forward_relu(x),
        }
    }
}
