//! ConvTranspose2d with torch's semantics: stride, padding, output_padding, dilation, groups.
//!
//! Every input pixel `x[n, c, i, j]` scatters `x * weight[c, o, ki, kj]` onto the output at
//! `(i s - p + ki d, j s - p + kj d)`; positions outside the output are dropped. Output size
//! `(H - 1) s - 2p + d (k - 1) + output_padding + 1`; `output_padding` only enlarges the
//! output at the bottom/right. This is the input-gradient of the Conv2d with the same
//! hyperparameters (Dumoulin and Visin 2016, "A guide to convolution arithmetic", section 4).
//! Parameters: `weight` `[in, out / groups, kH, kW]` (in and out swapped relative to Conv2d)
//! and `bias` `[out]`.
//!
//! On CPU (f32, f64) it is computed as exactly that input gradient (`fast_transpose`: a
//! product over the input positions and a scatter, no zero-stuffing). Elsewhere it is a
//! direct convolution of candle ops: the input zero-stuffed by the stride (`s - 1` zeros
//! between neighbours), padded by `d (k - 1) - p` before and `d (k - 1) - p +
//! output_padding` after (negative = crop), convolved with stride 1 and dilation `d` by the
//! kernel flipped in both spatial axes with in/out swapped per group. The zero-stuffing and
//! padding live in the gather index, so nothing is materialised.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::check_input;
use super::convolution::{add_bias, conv2d_core, torch_init};
use super::geometry::{layer_error, Axis};
use super::{fast, fast_transpose};

/// The hyperparameters of [`ConvTranspose2d`], named as torch's constructor arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvTranspose2dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub output_padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
}

impl ConvTranspose2dConfig {
    /// A square `k x k` transposed convolution, stride 1, no padding, one group, bias.
    pub fn new(in_channels: usize, out_channels: usize, k: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: [k, k],
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }

    /// Checks sizes, groups and torch's rule that `output_padding` be smaller than the stride
    /// or the dilation.
    pub fn validate(&self) -> Result<()> {
        let layer = "ConvTranspose2d";
        let all = [self.kernel_size, self.stride, self.dilation].concat();
        if self.in_channels == 0 || self.out_channels == 0 || all.contains(&0) {
            return Err(layer_error(
                layer,
                format!(
                    "channels, kernel_size, stride and dilation must be positive, got {self:?}"
                ),
            ));
        }
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(layer_error(
                layer,
                format!(
                    "groups = {} must divide in_channels = {} and out_channels = {}",
                    self.groups, self.in_channels, self.out_channels
                ),
            ));
        }
        for i in 0..2 {
            let op = self.output_padding[i];
            if op >= self.stride[i] && op >= self.dilation[i] {
                return Err(layer_error(
                    layer,
                    format!(
                        "output_padding {:?} must be smaller than the stride {:?} or the \
                         dilation {:?}",
                        self.output_padding, self.stride, self.dilation
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The two axes of the equivalent direct convolution for an `h x w` input.
    fn axes(&self, h: usize, w: usize) -> Result<(Axis, Axis)> {
        let axis = |i: usize, n: usize| {
            let (k, s, p, d) =
                (self.kernel_size[i], self.stride[i], self.padding[i], self.dilation[i]);
            let full = (n - 1) * s + d * (k - 1) + self.output_padding[i] + 1;
            if full <= 2 * p {
                return Err(layer_error(
                    "ConvTranspose2d",
                    format!(
                        "padding {:?} removes the whole output of a {h}x{w} input (kernel {:?}, \
                         stride {:?})",
                        self.padding, self.kernel_size, self.stride
                    ),
                ));
            }
            let pad_lo = (d * (k - 1)) as isize - p as isize;
            Ok(Axis { n, k, stride: 1, dilation: d, pad_lo, in_dilation: s, out: full - 2 * p })
        };
        Ok((axis(0, h)?, axis(1, w)?))
    }

    /// The two axes of the direct convolution whose input gradient this layer is, for an
    /// `h x w` input: from the output (`n`) back to the input (`out`), with the layer's
    /// kernel, stride, padding and dilation. `axes` must have accepted the sizes.
    fn adjoint_axes(&self, zero_stuffed: &(Axis, Axis)) -> (Axis, Axis) {
        let axis = |i: usize, a: &Axis| Axis {
            n: a.out,
            k: self.kernel_size[i],
            stride: self.stride[i],
            dilation: self.dilation[i],
            pad_lo: self.padding[i] as isize,
            in_dilation: 1,
            out: a.n,
        };
        (axis(0, &zero_stuffed.0), axis(1, &zero_stuffed.1))
    }
}

/// A 2-D transposed convolution; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: ConvTranspose2dConfig,
}

impl ConvTranspose2d {
    /// Builds from `vb`: `weight` `[in, out / groups, kH, kW]` and, with `config.bias`, `bias`
    /// `[out]`; new variables get torch's default initialisation (torch computes the fan-in
    /// from `weight.size(1) * kH * kW`).
    pub fn new(config: ConvTranspose2dConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let [kh, kw] = config.kernel_size;
        let og = config.out_channels / config.groups;
        let init = torch_init(og * kh * kw);
        let weight = vb.get_with_hints((config.in_channels, og, kh, kw), "weight", init)?;
        let bias = if config.bias {
            Some(vb.get_with_hints(config.out_channels, "bias", init)?)
        } else {
            None
        };
        Ok(Self { weight, bias, config })
    }

    pub fn config(&self) -> &ConvTranspose2dConfig {
        &self.config
    }

    /// The Conv2d kernel `[out, in / groups, kH, kW]`: per group, in and out swapped and both
    /// spatial axes reversed.
    fn direct_kernel(&self) -> Result<Tensor> {
        let c = &self.config;
        let (g, [kh, kw]) = (c.groups, c.kernel_size);
        let (ig, og) = (c.in_channels / g, c.out_channels / g);
        let w = self.weight.reshape((g, ig, og, kh, kw))?.transpose(1, 2)?.contiguous()?;
        let dev = w.device();
        let rev_h = Tensor::from_vec((0..kh as u32).rev().collect(), kh, dev)?;
        let rev_w = Tensor::from_vec((0..kw as u32).rev().collect(), kw, dev)?;
        let w = w.index_select(&rev_h, 3)?.index_select(&rev_w, 4)?;
        w.reshape((c.out_channels, ig, kh, kw))
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.config.in_channels;
        let dims = check_input("ConvTranspose2d", x.dims(), 4, c, "[N, C, H, W]")?;
        let axes = self.config.axes(dims[2], dims[3])?;
        let (bias, groups) = (self.bias.as_ref(), self.config.groups);
        if fast::supports(x) && bias.is_none_or(|b| b.dtype() == x.dtype()) {
            let (rows, cols) = self.config.adjoint_axes(&axes);
            return fast_transpose::conv_transpose2d(x, &self.weight, bias, groups, &rows, &cols);
        }
        self.forward_zero_stuffed(x, &axes)
    }
}

impl ConvTranspose2d {
    /// The direct convolution over the zero-stuffed input (the path of other devices).
    fn forward_zero_stuffed(&self, x: &Tensor, (rows, cols): &(Axis, Axis)) -> Result<Tensor> {
        let groups = self.config.groups;
        let y = conv2d_core(x, &self.direct_kernel()?, None, false, groups, rows, cols)?;
        add_bias(y, self.bias.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Module};
    use candle_nn::{VarBuilder, VarMap};

    use super::{ConvTranspose2d, ConvTranspose2dConfig};
    use crate::gradcheck::check_gradients;
    use crate::test_util::{max_diff, var};

    /// Layers covering stride, padding, output_padding (also the `output_padding >= stride`
    /// case torch allows with a larger dilation), dilation, groups and no bias.
    fn configs() -> Vec<ConvTranspose2dConfig> {
        let base = ConvTranspose2dConfig::new(4, 6, 3);
        vec![
            ConvTranspose2dConfig {
                stride: [2, 2],
                padding: [1, 1],
                output_padding: [1, 1],
                ..base
            },
            ConvTranspose2dConfig {
                stride: [2, 1],
                padding: [0, 1],
                dilation: [1, 2],
                groups: 2,
                ..base
            },
            ConvTranspose2dConfig {
                kernel_size: [2, 3],
                stride: [1, 1],
                dilation: [3, 1],
                output_padding: [2, 0],
                bias: false,
                ..base
            },
            ConvTranspose2dConfig { kernel_size: [4, 4], stride: [2, 2], padding: [1, 1], ..base },
        ]
    }

    fn layer(config: ConvTranspose2dConfig, map: &VarMap) -> ConvTranspose2d {
        let vb = VarBuilder::from_varmap(map, DType::F64, &Device::Cpu);
        let layer = ConvTranspose2d::new(config, vb).unwrap();
        crate::conv::init::torch_default_init(map, 5).unwrap();
        layer
    }

    /// The kernel without zero-stuffing (the input gradient of the adjoint convolution)
    /// equals the zero-stuffed direct convolution of the generic path in value and in the
    /// input, weight and bias gradients.
    #[test]
    fn adjoint_kernel_equals_zero_stuffed_convolution() {
        for (i, config) in configs().into_iter().enumerate() {
            let map = VarMap::new();
            let t = layer(config, &map);
            let x = var(&[2, 4, 3, 4], 1 + i as u64);
            let fast = t.forward(x.as_tensor()).unwrap();
            let axes = config.axes(3, 4).unwrap();
            let generic = t.forward_zero_stuffed(x.as_tensor(), &axes).unwrap();
            assert_eq!(fast.dims(), generic.dims(), "config {i}");
            assert!(max_diff(&fast, &generic) < 1e-12, "config {i}: outputs differ");
            let u = var(fast.dims(), 9).as_tensor().detach();
            let gf = fast.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let gg = generic.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let mut vars = vec![x.clone()];
            vars.extend(map.all_vars());
            for v in &vars {
                let d = max_diff(gf.get(v).unwrap(), gg.get(v).unwrap());
                assert!(d < 1e-12, "config {i}: a gradient differs by {d}");
            }
        }
    }

    /// The kernel's backward against central finite differences in f64.
    #[test]
    fn adjoint_kernel_gradients_match_finite_differences() {
        for (i, config) in configs().into_iter().enumerate() {
            let map = VarMap::new();
            let t = layer(config, &map);
            let x = var(&[1, 4, 3, 2], 20 + i as u64);
            let mut vars = vec![x.clone()];
            vars.extend(map.all_vars());
            let f = || t.forward(x.as_tensor())?.sqr();
            let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
            assert!(report.passed(), "config {i}: {report:?}");
        }
    }
}
