//! GoogLeNet's inception module (Szegedy et al. 2015, "Going deeper with convolutions",
//! figure 2b): four parallel branches over the same input, concatenated in depth.
//!
//! * `branch1`: 1x1 conv, ReLU;
//! * `branch2`: 1x1 conv (bottleneck) `branch2.0`, ReLU, 3x3 conv (padding 1) `branch2.1`, ReLU;
//! * `branch3`: 1x1 conv (bottleneck) `branch3.0`, ReLU, 5x5 conv (padding 2) `branch3.1`, ReLU;
//! * `branch4`: 3x3 max-pool (stride 1, padding 1), 1x1 projection `branch4.1`, ReLU.
//!
//! Every branch keeps the spatial size, so the output is
//! `[N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W]`. The 1x1 bottlenecks cut the depth before
//! the expensive 3x3 and 5x5 convolutions.
//!
//! [`Inception::new`] builds the paper's module (convolutions with biases, parameters
//! `branch1.weight`, `branch2.1.bias`, ...). [`Inception::torchvision`] builds torchvision's
//! `Inception` of its batch-norm GoogLeNet: every convolution is a [`BasicConv2d`] (no bias,
//! batch norm with eps 1e-3: `branch1.conv.weight`, `branch1.bn.running_var`, ...), and,
//! a known torchvision quirk kept for compatibility with its weights, `branch3`'s second
//! convolution is 3x3 (padding 1), not 5x5; its pool has `ceil_mode` (no effect at stride 1).
//! The batch norms make training and evaluation differ ([`ModuleT`]).

use candle_core::{ModuleT, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::conv::blocks::BasicConv2d;
use crate::conv::{check_input, Conv2dConfig, MaxPool2d};

/// The depths of an [`Inception`] module, named as in the paper's table 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InceptionConfig {
    pub in_channels: usize,
    pub ch1x1: usize,
    pub ch3x3_reduce: usize,
    pub ch3x3: usize,
    pub ch5x5_reduce: usize,
    pub ch5x5: usize,
    pub pool_proj: usize,
}

impl InceptionConfig {
    /// The output depth: the sum of the four branches.
    pub fn out_channels(&self) -> usize {
        self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj
    }
}

/// GoogLeNet's inception module; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Inception {
    config: InceptionConfig,
    branch1: BasicConv2d,
    branch2: [BasicConv2d; 2],
    branch3: [BasicConv2d; 2],
    pool: MaxPool2d,
    branch4: BasicConv2d,
}

impl Inception {
    /// The paper's module: convolutions with biases, a 5x5 `branch3`.
    pub fn new(config: InceptionConfig, vb: VarBuilder) -> Result<Self> {
        Self::build(config, 5, false, vb)
    }

    /// torchvision's module: [`BasicConv2d`] units (batch norm, no bias) and a 3x3
    /// `branch3` (torchvision's quirk), so torchvision's weights load by name.
    pub fn torchvision(config: InceptionConfig, vb: VarBuilder) -> Result<Self> {
        Self::build(config, 3, true, vb)
    }

    fn build(config: InceptionConfig, k3: usize, bn: bool, vb: VarBuilder) -> Result<Self> {
        let c = config;
        let conv = |i: usize, o: usize, k: usize, name: &str| {
            let conv = Conv2dConfig::new(i, o, k).padding(k / 2);
            if bn {
                BasicConv2d::new(conv, vb.pp(name))
            } else {
                BasicConv2d::plain(conv, vb.pp(name))
            }
        };
        let mut pool = MaxPool2d::new(3).stride(1).padding(1);
        pool.ceil_mode = bn;
        Ok(Self {
            config,
            branch1: conv(c.in_channels, c.ch1x1, 1, "branch1")?,
            branch2: [
                conv(c.in_channels, c.ch3x3_reduce, 1, "branch2.0")?,
                conv(c.ch3x3_reduce, c.ch3x3, 3, "branch2.1")?,
            ],
            branch3: [
                conv(c.in_channels, c.ch5x5_reduce, 1, "branch3.0")?,
                conv(c.ch5x5_reduce, c.ch5x5, k3, "branch3.1")?,
            ],
            pool,
            branch4: conv(c.in_channels, c.pool_proj, 1, "branch4.1")?,
        })
    }

    pub fn config(&self) -> &InceptionConfig {
        &self.config
    }

    /// The number of trainable parameters (not the batch norms' running statistics).
    pub fn parameter_count(&self) -> usize {
        [&self.branch1, &self.branch2[0], &self.branch2[1], &self.branch3[0], &self.branch3[1]]
            .iter()
            .chain(std::iter::once(&&self.branch4))
            .map(|b| b.parameter_count())
            .sum()
    }

    /// The output in evaluation mode (the same as training mode for [`Inception::new`],
    /// which has no batch norm).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_t(x, false)
    }
}

impl ModuleT for Inception {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        check_input("Inception", x.dims(), 4, self.config.in_channels, "[N, C, H, W]")?;
        let pair = |b: &[BasicConv2d; 2]| b[1].forward_t(&b[0].forward_t(x, train)?, train);
        let b1 = self.branch1.forward_t(x, train)?;
        let b2 = pair(&self.branch2)?;
        let b3 = pair(&self.branch3)?;
        let b4 = self.branch4.forward_t(&candle_core::Module::forward(&self.pool, x)?, train)?;
        Tensor::cat(&[&b1, &b2, &b3, &b4], 1)
    }
}
