//! Squeeze-and-excitation (Hu, Shen and Sun 2018, "Squeeze-and-excitation networks"):
//! `s = sigmoid(W2 relu(W1 z + b1) + b2)` with `z` the global average of each channel
//! ("squeeze"), then every channel of the input is multiplied by its weight `s_c`
//! ("excitation"). `W1` reduces `C` to `max(1, C / ratio)` (the paper uses ratio 16).
//! Parameters `fc1.weight` `[C / ratio, C]`, `fc1.bias`, `fc2.weight` `[C, C / ratio]`,
//! `fc2.bias`.
//!
//! [`SeBlock`] attaches it to the output of another block (an [`super::Inception`] module:
//! SE-Inception, figure 2 of the paper); [`super::ResidualUnit::with_se`] puts it on the
//! residual branch before the addition (SE-ResNet, figure 3).

use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::conv::convolution::torch_init;
use crate::conv::{check_input, GlobalAvgPool2d};

/// The squeeze-and-excitation gate over `channels` channels.
#[derive(Debug, Clone)]
pub struct SqueezeExcite {
    channels: usize,
    fc1: Linear,
    fc2: Linear,
}

/// A `Linear` layer `[o, i]` with a bias and torch's default initialisation.
pub(crate) fn linear(i: usize, o: usize, vb: VarBuilder) -> Result<Linear> {
    let init = torch_init(i);
    Ok(Linear::new(
        vb.get_with_hints((o, i), "weight", init)?,
        Some(vb.get_with_hints(o, "bias", init)?),
    ))
}

impl SqueezeExcite {
    /// A gate with bottleneck `max(1, channels / ratio)`; `ratio` must be positive.
    pub fn new(channels: usize, ratio: usize, vb: VarBuilder) -> Result<Self> {
        if channels == 0 || ratio == 0 {
            return Err(crate::conv::geometry::layer_error(
                "SqueezeExcite",
                format!("channels and ratio must be positive, got {channels} and {ratio}"),
            ));
        }
        let hidden = (channels / ratio).max(1);
        Ok(Self {
            channels,
            fc1: linear(channels, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, channels, vb.pp("fc2"))?,
        })
    }

    /// The number of trainable parameters: `2 C h + h + C` with `h = max(1, C / ratio)`.
    pub fn parameter_count(&self) -> usize {
        [&self.fc1, &self.fc2]
            .iter()
            .map(|l| l.weight().elem_count() + l.bias().map_or(0, Tensor::elem_count))
            .sum()
    }

    /// The channel weights `s`, `[N, C]`, each in `(0, 1)`.
    pub fn weights(&self, x: &Tensor) -> Result<Tensor> {
        check_input("SqueezeExcite", x.dims(), 4, self.channels, "[N, C, H, W]")?;
        let z = GlobalAvgPool2d.forward(x)?;
        candle_nn::ops::sigmoid(&self.fc2.forward(&self.fc1.forward(&z)?.relu()?)?)
    }
}

impl Module for SqueezeExcite {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.weights(x)?;
        let (n, c) = s.dims2()?;
        x.broadcast_mul(&s.reshape((n, c, 1, 1))?)
    }
}

/// A block followed by a squeeze-and-excitation gate on its output, which must have
/// `channels` channels. Parameters: the block's under `block.`, the gate's under `se.`.
#[derive(Debug, Clone)]
pub struct SeBlock<M> {
    pub block: M,
    pub se: SqueezeExcite,
}

impl<M> SeBlock<M> {
    /// Wraps `block` (built from `vb.pp("block")` by the caller) with a gate built from
    /// `vb.pp("se")`.
    pub fn new(block: M, channels: usize, ratio: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self { block, se: SqueezeExcite::new(channels, ratio, vb.pp("se"))? })
    }
}

impl<M: ModuleT> ModuleT for SeBlock<M> {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.se.forward(&self.block.forward_t(x, train)?)
    }
}
