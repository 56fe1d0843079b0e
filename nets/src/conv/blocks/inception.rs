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

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::conv::{check_input, Conv2d, Conv2dConfig, MaxPool2d};

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
    branch1: Conv2d,
    branch2: [Conv2d; 2],
    branch3: [Conv2d; 2],
    pool: MaxPool2d,
    branch4: Conv2d,
}

impl Inception {
    pub fn new(config: InceptionConfig, vb: VarBuilder) -> Result<Self> {
        let c = config;
        let conv = |i: usize, o: usize, k: usize, name: &str| {
            Conv2d::new(Conv2dConfig::new(i, o, k).padding(k / 2), vb.pp(name))
        };
        Ok(Self {
            config,
            branch1: conv(c.in_channels, c.ch1x1, 1, "branch1")?,
            branch2: [
                conv(c.in_channels, c.ch3x3_reduce, 1, "branch2.0")?,
                conv(c.ch3x3_reduce, c.ch3x3, 3, "branch2.1")?,
            ],
            branch3: [
                conv(c.in_channels, c.ch5x5_reduce, 1, "branch3.0")?,
                conv(c.ch5x5_reduce, c.ch5x5, 5, "branch3.1")?,
            ],
            pool: MaxPool2d::new(3).stride(1).padding(1),
            branch4: conv(c.in_channels, c.pool_proj, 1, "branch4.1")?,
        })
    }

    pub fn config(&self) -> &InceptionConfig {
        &self.config
    }
}

impl Module for Inception {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input("Inception", x.dims(), 4, self.config.in_channels, "[N, C, H, W]")?;
        let b1 = self.branch1.forward(x)?.relu()?;
        let b2 = self.branch2[1].forward(&self.branch2[0].forward(x)?.relu()?)?.relu()?;
        let b3 = self.branch3[1].forward(&self.branch3[0].forward(x)?.relu()?)?.relu()?;
        let b4 = self.branch4.forward(&self.pool.forward(x)?)?.relu()?;
        Tensor::cat(&[&b1, &b2, &b3, &b4], 1)
    }
}
