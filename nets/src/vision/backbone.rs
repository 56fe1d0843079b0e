//! The convolutional stages the localizer and the segmentation network share: each stage is
//! a [`Conv2d`] (stride 1), a ReLU and, unless `pool` is 1, a `pool x pool` max-pool with
//! stride `pool` (the VGG pattern; Simonyan and Zisserman 2015). [`Backbone::forward_all`]
//! returns every stage's output, which the FCN's skip connections read.
//!
//! Parameters: `"{i}.weight"` `[out, in, k, k]` and `"{i}.bias"` for stage `i`, under the
//! `VarBuilder`'s prefix.

use std::collections::HashMap;

use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::{config_error, VisionError};
use crate::conv::{Conv2d, Conv2dConfig, MaxPool2d, Padding2d};

/// One convolution + ReLU + max-pool stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvStage {
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// `valid` (no padding) or `same` (the output as large as the input).
    pub padding: Padding2d,
    /// Max-pool window and stride; 1 for no pooling.
    pub pool: usize,
}

impl ConvStage {
    /// A `kernel x kernel` convolution without padding, then a 2x2 max-pool.
    pub fn valid(out_channels: usize, kernel: usize) -> Self {
        Self { out_channels, kernel, padding: Padding2d::Valid, pool: 2 }
    }

    /// A `kernel x kernel` convolution with `"same"` padding, then a 2x2 max-pool.
    pub fn same(out_channels: usize, kernel: usize) -> Self {
        Self { out_channels, kernel, padding: Padding2d::Same, pool: 2 }
    }

    /// The same stage with another pooling factor (1 for none).
    pub fn pool(mut self, pool: usize) -> Self {
        self.pool = pool;
        self
    }
}

/// A stack of [`ConvStage`]s; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Backbone {
    convs: Vec<Conv2d>,
    stages: Vec<ConvStage>,
    in_channels: usize,
}

impl Backbone {
    /// Builds the stages from `vb` (new variables get torch's default initialisation from
    /// candle's unseeded RNG: reseed with [`crate::conv::init::torch_default_init`]).
    pub fn new(
        in_channels: usize,
        stages: &[ConvStage],
        vb: VarBuilder,
    ) -> Result<Self, VisionError> {
        if stages.is_empty() {
            return Err(config_error("backbone", "expected at least one conv stage".into()));
        }
        let mut convs = Vec::with_capacity(stages.len());
        let mut c = in_channels;
        for (i, s) in stages.iter().enumerate() {
            if s.pool == 0 {
                return Err(config_error(
                    "backbone",
                    format!("stage {i}: pool = 0, expected >= 1 (1 for no pooling)"),
                ));
            }
            let config = Conv2dConfig {
                padding: s.padding,
                ..Conv2dConfig::new(c, s.out_channels, s.kernel)
            };
            convs.push(Conv2d::new(config, vb.pp(i.to_string()))?);
            c = s.out_channels;
        }
        Ok(Self { convs, stages: stages.to_vec(), in_channels })
    }

    pub fn stages(&self) -> &[ConvStage] {
        &self.stages
    }

    pub fn convs(&self) -> &[Conv2d] {
        &self.convs
    }

    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// The product of the pooling factors: how far the output moves per output cell.
    pub fn stride(&self) -> usize {
        self.stages.iter().map(|s| s.pool).product()
    }

    /// The `[C, H, W]` of every stage's output for an `h x w` input, or the error naming the
    /// stage where the map becomes smaller than a kernel or a pool window.
    pub fn output_shapes(&self, h: usize, w: usize) -> Result<Vec<[usize; 3]>, VisionError> {
        let (mut h, mut w) = (h, w);
        let mut shapes = Vec::with_capacity(self.convs.len());
        for (i, (conv, s)) in self.convs.iter().zip(&self.stages).enumerate() {
            let [_, c, ch, cw] = conv.output_shape(&[1, conv.config().in_channels, h, w])?;
            if ch < s.pool || cw < s.pool {
                return Err(VisionError::Input(format!(
                    "backbone stage {i}: a {ch}x{cw} map is smaller than the {p}x{p} pool",
                    p = s.pool
                )));
            }
            (h, w) = (ch / s.pool, cw / s.pool);
            shapes.push([c, h, w]);
        }
        Ok(shapes)
    }

    /// The output of every stage, in order.
    pub fn forward_all(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let mut outs: Vec<Tensor> = Vec::with_capacity(self.convs.len());
        for (conv, s) in self.convs.iter().zip(&self.stages) {
            let input = outs.last().unwrap_or(x);
            let mut y = conv.forward(input)?.relu()?;
            if s.pool > 1 {
                y = MaxPool2d::new(s.pool).forward(&y)?;
            }
            outs.push(y);
        }
        Ok(outs)
    }

    /// A copy whose weights are new tensors with the same values (detached from `self`'s
    /// variables, so training one does not change the other).
    pub fn copied(&self) -> Result<Self, VisionError> {
        let mut tensors = HashMap::new();
        for (i, conv) in self.convs.iter().enumerate() {
            tensors.insert(format!("{i}.weight"), conv.weight().detach().copy()?);
            if let Some(b) = conv.bias() {
                tensors.insert(format!("{i}.bias"), b.detach().copy()?);
            }
        }
        let (dtype, device) = match self.convs.first() {
            Some(c) => (c.weight().dtype(), c.weight().device().clone()),
            None => (DType::F32, candle_core::Device::Cpu),
        };
        Self::new(self.in_channels, &self.stages, VarBuilder::from_tensors(tensors, dtype, &device))
    }
}

impl Module for Backbone {
    /// The last stage's output.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut outs = self.forward_all(x)?;
        outs.pop().ok_or_else(|| candle_core::Error::Msg("backbone without stages".into()))
    }
}
