//! Xception's depthwise separable convolution (Chollet 2017, "Xception: deep learning with
//! depthwise separable convolutions"): a per-channel spatial filter (a grouped convolution
//! with `groups = in_channels`, `depth_multiplier` filters per channel) followed by a 1x1
//! convolution that mixes the channels. Parameters `depthwise.weight`
//! `[in * multiplier, 1, k, k]` and `pointwise.weight` / `pointwise.bias`
//! `[out, in * multiplier, 1, 1]` / `[out]` (the depthwise step has no bias, like Keras'
//! `SeparableConv2D`).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::conv::{check_input, Conv2d, Conv2dConfig, Padding2d};

/// The hyperparameters of [`SeparableConv2d`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeparableConv2dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: usize,
    pub stride: usize,
    pub padding: Padding2d,
    pub depth_multiplier: usize,
    pub bias: bool,
}

impl SeparableConv2dConfig {
    /// A `k x k` separable convolution with `"same"`-style padding `k / 2`, stride 1,
    /// multiplier 1 and a pointwise bias.
    pub fn new(in_channels: usize, out_channels: usize, k: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: k,
            stride: 1,
            padding: Padding2d::Explicit([k / 2, k / 2]),
            depth_multiplier: 1,
            bias: true,
        }
    }
}

/// A depthwise separable convolution; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct SeparableConv2d {
    config: SeparableConv2dConfig,
    depthwise: Conv2d,
    pointwise: Conv2d,
}

impl SeparableConv2d {
    pub fn new(config: SeparableConv2dConfig, vb: VarBuilder) -> Result<Self> {
        let c = config;
        let mid = c.in_channels * c.depth_multiplier;
        let mut dw = Conv2dConfig::new(c.in_channels, mid, c.kernel_size)
            .stride(c.stride)
            .groups(c.in_channels)
            .bias(false);
        dw.padding = c.padding;
        let depthwise = Conv2d::new(dw, vb.pp("depthwise"))?;
        let pointwise = Conv2d::new(
            Conv2dConfig::new(mid, c.out_channels, 1).bias(c.bias),
            vb.pp("pointwise"),
        )?;
        Ok(Self { config, depthwise, pointwise })
    }

    pub fn config(&self) -> &SeparableConv2dConfig {
        &self.config
    }

    /// The number of trainable parameters: `C m k^2` depthwise plus `O C m` (+ `O` with a
    /// bias) pointwise, for multiplier `m`.
    pub fn parameter_count(&self) -> usize {
        self.depthwise.parameter_count() + self.pointwise.parameter_count()
    }
}

impl Module for SeparableConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input("SeparableConv2d", x.dims(), 4, self.config.in_channels, "[N, C, H, W]")?;
        self.pointwise.forward(&self.depthwise.forward(x)?)
    }
}
