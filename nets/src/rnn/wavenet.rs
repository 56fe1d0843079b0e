//! A WaveNet-style stack of dilated causal 1-D convolutions (van den Oord et al. 2016,
//! "WaveNet: a generative model for raw audio"): layer `l` has dilation `2^l`, and each input
//! is padded with `(kernel_size - 1) * 2^l` zeros on the left only, so output step `t` depends
//! on input steps `<= t` and the sequence length is kept. With `L` layers of kernel `k` the
//! receptive field is `1 + (k - 1)(2^L - 1)` steps.
//!
//! Input and output are `(N, C, T)` (torch's `Conv1d` layout). Layer `l` is a
//! `Conv1d(C_l, channels, kernel_size, dilation = 2^l)` with `C_0 = in_channels`, `C_l =
//! channels` after; parameters `layers.{l}.weight` `(channels, C_l, kernel_size)` and
//! `layers.{l}.bias` `(channels)`. The activation follows every layer but the last (whose
//! output is left linear for a head to read).
//!
//! The convolution is computed as a sum over the kernel taps, `y = sum_j W[:, :, j] @
//! x_pad[:, :, j*d .. j*d + T]`, one matmul per tap: the same numbers as candle's `conv1d`
//! (a test checks it), but with a correct backward pass. candle 0.11.1's `conv1d` backward
//! failed our finite-difference checks in f64 (the kernel gradient at dilations 1, 2 and 4,
//! the input gradient at dilation 1), so it is not used for training here.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::error::LayerError;
use super::init::{fill_varmap, join, ParamInit, ParamSpec};
use crate::mlp::Activation;

const NAME: &str = "dilated causal conv";

/// The shape of a [`DilatedCausalConv`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DilatedCausalConvConfig {
    pub in_channels: usize,
    pub channels: usize,
    pub kernel_size: usize,
    pub num_layers: usize,
    /// Between layers (default ReLU).
    pub activation: Activation,
}

impl DilatedCausalConvConfig {
    pub fn new(in_channels: usize, channels: usize, kernel_size: usize, num_layers: usize) -> Self {
        Self { in_channels, channels, kernel_size, num_layers, activation: Activation::Relu }
    }

    /// Steps of input each output sees: `1 + (kernel_size - 1)(2^num_layers - 1)`.
    pub fn receptive_field(&self) -> usize {
        1 + (self.kernel_size - 1) * ((1usize << self.num_layers) - 1)
    }

    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("in_channels", self.in_channels),
            ("channels", self.channels),
            ("kernel_size", self.kernel_size),
            ("num_layers", self.num_layers),
        ] {
            if v == 0 {
                return Err(LayerError::config(NAME, field, v, "at least 1").into());
            }
        }
        if self.num_layers > 24 {
            return Err(LayerError::config(
                NAME,
                "num_layers",
                self.num_layers,
                "at most 24 (dilation 2^23)",
            )
            .into());
        }
        Ok(())
    }

    /// torch's `Conv1d` initialisation: uniform on `±1/sqrt(C_in * kernel_size)`.
    pub fn param_specs(&self, prefix: &str) -> Vec<ParamSpec> {
        let mut specs = Vec::new();
        for l in 0..self.num_layers {
            let c_in = if l == 0 { self.in_channels } else { self.channels };
            let u = ParamInit::Uniform(1.0 / ((c_in * self.kernel_size) as f64).sqrt());
            let p = join(prefix, &format!("layers.{l}"));
            specs.push(ParamSpec::new(
                join(&p, "weight"),
                vec![self.channels, c_in, self.kernel_size],
                u,
            ));
            specs.push(ParamSpec::new(join(&p, "bias"), vec![self.channels], u));
        }
        specs
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct DilatedCausalConv {
    config: DilatedCausalConvConfig,
    /// `(weight, bias)` per layer.
    layers: Vec<(Tensor, Tensor)>,
}

impl DilatedCausalConv {
    pub fn load(config: DilatedCausalConvConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let layers = (0..config.num_layers)
            .map(|l| {
                let c_in = if l == 0 { config.in_channels } else { config.channels };
                let vb = vb.pp(format!("layers.{l}"));
                Ok((
                    vb.get((config.channels, c_in, config.kernel_size), "weight")?,
                    vb.get(config.channels, "bias")?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self { config, layers })
    }

    /// Seeded initialisation into `varmap` (see [`super::init`]), then [`Self::load`].
    pub fn seeded(
        config: DilatedCausalConvConfig,
        varmap: &VarMap,
        prefix: &str,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        fill_varmap(varmap, &config.param_specs(prefix), seed, dtype, device)?;
        let vb = VarBuilder::from_varmap(varmap, dtype, device);
        Self::load(config, if prefix.is_empty() { vb } else { vb.pp(prefix) })
    }

    pub fn config(&self) -> &DilatedCausalConvConfig {
        &self.config
    }
}

impl Module for DilatedCausalConv {
    /// `(N, in_channels, T)` to `(N, channels, T)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        if x.rank() != 3 || x.dim(1)? != c.in_channels || x.dim(2)? == 0 {
            let e = format!("(N, {}, T) = (N, in_channels, T), T >= 1", c.in_channels);
            return Err(LayerError::shape(NAME, "input", e, x.shape()).into());
        }
        let mut h = x.clone();
        for (l, (w, b)) in self.layers.iter().enumerate() {
            let dilation = 1usize << l;
            let t = h.dim(2)?;
            let padded = h.pad_with_zeros(2, (c.kernel_size - 1) * dilation, 0)?;
            let mut y = b.reshape((1, c.channels, 1))?;
            for j in 0..c.kernel_size {
                let tap = w.narrow(2, j, 1)?.squeeze(2)?; // (channels, C_in)
                let shifted = padded.narrow(2, j * dilation, t)?.contiguous()?; // (N, C_in, T)
                y = y.broadcast_add(&tap.broadcast_matmul(&shifted)?)?;
            }
            h = y;
            if l + 1 < self.layers.len() {
                h = c.activation.forward(&h)?;
            }
        }
        Ok(h)
    }
}
