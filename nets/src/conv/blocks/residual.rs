//! ResNet's basic residual unit (He et al. 2016, "Deep residual learning for image
//! recognition", figure 2 and option B of section 3.3):
//!
//! `y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`
//!
//! with 3x3 convolutions (padding 1, no bias; `conv1` has the unit's stride) and the
//! identity as shortcut, or, when the feature-map size or the depth changes (stride != 1 or
//! in != out), a projection: a 1x1 convolution with the unit's stride and a batch norm.
//! Parameter names as torchvision's `BasicBlock`: `conv1`, `bn1`, `conv2`, `bn2`,
//! `downsample.0` (conv), `downsample.1` (batch norm); with [`ResidualUnit::with_se`] the
//! SE-ResNet gate sits on the residual branch before the addition, under `se.`.
//! Training and evaluation differ through the batch norms ([`ModuleT`]).

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;

use crate::conv::blocks::SqueezeExcite;
use crate::conv::fast_relu::relu;
use crate::conv::{check_input, BatchNorm, Conv2d, Conv2dConfig};

/// A basic residual unit; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ResidualUnit {
    in_channels: usize,
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    projection: Option<(Conv2d, BatchNorm)>,
    se: Option<SqueezeExcite>,
}

impl ResidualUnit {
    /// A unit from `in_channels` to `out_channels` whose first convolution has `stride`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv = |i, o, k, s, p, name: &str| {
            Conv2d::new(Conv2dConfig::new(i, o, k).stride(s).padding(p).bias(false), vb.pp(name))
        };
        let projection = if stride != 1 || in_channels != out_channels {
            Some((
                conv(in_channels, out_channels, 1, stride, 0, "downsample.0")?,
                BatchNorm::new_2d(out_channels, vb.pp("downsample.1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            in_channels,
            conv1: conv(in_channels, out_channels, 3, stride, 1, "conv1")?,
            bn1: BatchNorm::new_2d(out_channels, vb.pp("bn1"))?,
            conv2: conv(out_channels, out_channels, 3, 1, 1, "conv2")?,
            bn2: BatchNorm::new_2d(out_channels, vb.pp("bn2"))?,
            projection,
            se: None,
        })
    }

    /// Adds a squeeze-and-excitation gate (reduction `ratio`) on the residual branch, built
    /// from `vb.pp("se")` (SE-ResNet).
    pub fn with_se(mut self, ratio: usize, vb: VarBuilder) -> Result<Self> {
        let channels = self.conv2.config().out_channels;
        self.se = Some(SqueezeExcite::new(channels, ratio, vb.pp("se"))?);
        Ok(self)
    }

    /// Whether the shortcut is a 1x1 projection (rather than the identity).
    pub fn has_projection(&self) -> bool {
        self.projection.is_some()
    }

    /// The number of trainable parameters (convolutions, batch-norm scales and shifts, the
    /// projection and the SE gate; not the running statistics).
    pub fn parameter_count(&self) -> usize {
        let projection = self
            .projection
            .as_ref()
            .map_or(0, |(c, bn)| c.parameter_count() + bn.parameter_count());
        self.conv1.parameter_count()
            + self.bn1.parameter_count()
            + self.conv2.parameter_count()
            + self.bn2.parameter_count()
            + projection
            + self.se.as_ref().map_or(0, SqueezeExcite::parameter_count)
    }
}

impl ModuleT for ResidualUnit {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        check_input("ResidualUnit", x.dims(), 4, self.in_channels, "[N, C, H, W]")?;
        // Each convolution and its batch norm (and what follows) run as one op on CPU.
        let h = self.bn1.forward_conv_relu_t(&self.conv1, x, train)?;
        let shortcut = match &self.projection {
            Some((conv, bn)) => bn.forward_conv_t(conv, x, train)?,
            None => x.clone(),
        };
        match &self.se {
            // The gate sits between the batch norm and the addition.
            Some(se) => {
                let h = self.bn2.forward_conv_t(&self.conv2, &h, train)?;
                relu(&(se.forward(&h)? + shortcut)?)
            }
            // conv2, bn2, the addition and the ReLU in one op on CPU.
            None => self.bn2.forward_conv_add_relu_t(&self.conv2, &h, &shortcut, train),
        }
    }
}
