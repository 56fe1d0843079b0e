//! Conv1d and Conv2d with torch's semantics: cross-correlation (no kernel flip), stride,
//! padding (`"valid"`, `"same"`, explicit), dilation and groups.
//!
//! `out[n, o, y, x] = bias[o] + sum_{c in group(o), i, j} weight[o, c, i, j] *
//! in[n, c, y s_h - p_h + i d_h, x s_w - p_w + j d_w]` (zero outside the input), with
//! output size `floor((H + 2p - d (k - 1) - 1) / s) + 1`. Output channel `o` reads the input
//! channels of group `o / (out_channels / groups)`. Parameters: `weight`
//! `[out, in / groups, kH, kW]` and `bias` `[out]`, torch's names and layout.
//!
//! Both are computed by one routine (Conv1d is Conv2d on a height-1 image): on CPU by an
//! im2col + GEMM kernel with an explicit backward that also adds the bias (and, for
//! [`Conv2d::forward_relu`], applies the ReLU) inside the same graph node, elsewhere by a
//! gather (`index_select`) and a batched matmul that candle differentiates itself.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};

use super::geometry::{layer_error, out_len, same_padding, Axis};
use super::{check_input, fast};

/// Padding of a 2-D convolution, as torch's `padding` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Padding2d {
    /// No padding (`"valid"`, torch's default 0).
    #[default]
    Valid,
    /// Output as large as the input (stride 1 only): `d (k - 1)` in total, the odd one after.
    Same,
    /// `[rows, columns]` of zeros on both sides.
    Explicit([usize; 2]),
}

/// Padding of a 1-D convolution, as torch's `padding` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Padding1d {
    #[default]
    Valid,
    Same,
    Explicit(usize),
}

/// The hyperparameters of [`Conv2d`], named as torch's constructor arguments (`[h, w]` pairs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: [usize; 2],
    pub stride: [usize; 2],
    pub padding: Padding2d,
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
}

impl Conv2dConfig {
    /// A square `k x k` convolution with stride 1, no padding, no dilation, one group, bias.
    pub fn new(in_channels: usize, out_channels: usize, k: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: [k, k],
            stride: [1, 1],
            padding: Padding2d::Valid,
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }

    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }

    pub fn padding(mut self, p: usize) -> Self {
        self.padding = Padding2d::Explicit([p, p]);
        self
    }

    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Checks sizes, groups and `"same"` (which torch allows only with stride 1).
    pub fn validate(&self, layer: &str) -> Result<()> {
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
        if self.padding == Padding2d::Same && self.stride != [1, 1] {
            return Err(layer_error(
                layer,
                format!("padding \"same\" needs stride 1, got stride {:?}", self.stride),
            ));
        }
        Ok(())
    }

    /// `(before, after)` padding of rows and of columns.
    pub(crate) fn pads(&self) -> [(usize, usize); 2] {
        match self.padding {
            Padding2d::Valid => [(0, 0), (0, 0)],
            Padding2d::Same => [
                same_padding(self.kernel_size[0], self.dilation[0]),
                same_padding(self.kernel_size[1], self.dilation[1]),
            ],
            Padding2d::Explicit([ph, pw]) => [(ph, ph), (pw, pw)],
        }
    }

    /// The two axes for an `h x w` input, or the "kernel larger than the padded input" error.
    pub(crate) fn axes(&self, layer: &str, h: usize, w: usize) -> Result<(Axis, Axis)> {
        let pads = self.pads();
        let axis = |i: usize, n: usize| {
            let (lo, hi) = pads[i];
            let (k, s, d) = (self.kernel_size[i], self.stride[i], self.dilation[i]);
            let out = out_len(n, lo + hi, k, s, d).ok_or_else(|| {
                layer_error(
                    layer,
                    format!(
                        "kernel {:?} with dilation {:?} spans more than the padded input: input \
                         {h}x{w}, padding (before, after) {pads:?}",
                        self.kernel_size, self.dilation
                    ),
                )
            })?;
            Ok::<_, candle_core::Error>(Axis {
                n,
                k,
                stride: s,
                dilation: d,
                pad_lo: lo as isize,
                in_dilation: 1,
                out,
            })
        };
        Ok((axis(0, h)?, axis(1, w)?))
    }
}

/// `relu?(conv(x, weight) + bias)` for `x` `[N, C, H, W]` and `weight` `[O, C / groups, kh,
/// kw]` over the window geometry `rows` x `cols` (which may zero-stuff the input and pad
/// asymmetrically or negatively), with an optional per-channel `bias` `[O]`. Shapes must
/// already be checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_core(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    relu: bool,
    groups: usize,
    rows: &Axis,
    cols: &Axis,
) -> Result<Tensor> {
    if fast::supports(x) && bias.is_none_or(|b| b.dtype() == x.dtype()) {
        return fast::conv2d(x, weight, bias, relu, groups, rows, cols);
    }
    let y = add_bias(conv2d_generic(x, weight, groups, rows, cols)?, bias)?;
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

/// The convolution without bias from candle ops alone (any device, candle's autograd).
pub(crate) fn conv2d_generic(
    x: &Tensor,
    weight: &Tensor,
    groups: usize,
    rows: &Axis,
    cols: &Axis,
) -> Result<Tensor> {
    let (n, _, _, _) = x.dims4()?;
    let (out_ch, cg, kh, kw) = weight.dims4()?;
    let taps = super::geometry::gather_taps(x, rows, cols, 0.0, false)?;
    let l = rows.out * cols.out;
    let taps = taps.reshape((n, groups, cg * kh * kw, l))?;
    let w = weight.reshape((1, groups, out_ch / groups, cg * kh * kw))?;
    // candle's CPU matmul cannot broadcast an operand over two batch dimensions: copy it.
    let w = w.broadcast_as((n, groups, out_ch / groups, cg * kh * kw))?.contiguous()?;
    w.matmul(&taps)?.reshape((n, out_ch, rows.out, cols.out))
}

/// torch's default initialisation of a convolution: weight and bias from
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, `fan_in = in / groups * kH * kW` (Kaiming-uniform
/// with `a = sqrt(5)`).
pub(crate) fn torch_init(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -bound, up: bound }
}

/// A 2-D convolution; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv2dConfig,
}

impl Conv2d {
    /// Builds from `vb`: `weight` `[out, in / groups, kH, kW]` and, with `config.bias`, `bias`
    /// `[out]`; new variables get torch's default initialisation.
    pub fn new(config: Conv2dConfig, vb: VarBuilder) -> Result<Self> {
        config.validate("Conv2d")?;
        let [kh, kw] = config.kernel_size;
        let cg = config.in_channels / config.groups;
        let init = torch_init(cg * kh * kw);
        let weight = vb.get_with_hints((config.out_channels, cg, kh, kw), "weight", init)?;
        let bias = if config.bias {
            Some(vb.get_with_hints(config.out_channels, "bias", init)?)
        } else {
            None
        };
        Ok(Self { weight, bias, config })
    }

    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The number of trainable parameters: the weight's elements plus the bias's.
    pub fn parameter_count(&self) -> usize {
        self.weight.elem_count() + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }

    /// The output shape `[N, out, H', W']` for an input shape, or the error `forward` would
    /// return.
    pub fn output_shape(&self, input: &[usize]) -> Result<[usize; 4]> {
        let c = self.config.in_channels;
        let d = check_input("Conv2d", input, 4, c, "[N, C, H, W]")?;
        let (rows, cols) = self.config.axes("Conv2d", d[2], d[3])?;
        Ok([d[0], self.config.out_channels, rows.out, cols.out])
    }
}

impl Conv2d {
    /// `relu(conv(x))`, the layer followed by a ReLU. On CPU the ReLU runs inside the
    /// convolution's kernel and graph node (no separate activation pass and gradient
    /// tensor); elsewhere it is candle's `relu`.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, true)
    }

    fn forward_act(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let c = self.config.in_channels;
        let dims = check_input("Conv2d", x.dims(), 4, c, "[N, C, H, W]")?;
        let (rows, cols) = self.config.axes("Conv2d", dims[2], dims[3])?;
        conv2d_core(x, &self.weight, self.bias.as_ref(), relu, self.config.groups, &rows, &cols)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, false)
    }
}

/// Adds a per-channel bias to `y` `[N, C, ...]` with candle's broadcast (the generic path).
pub(crate) fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        None => Ok(y),
        Some(b) => {
            let mut shape = vec![1; y.rank()];
            shape[1] = b.elem_count();
            y.broadcast_add(&b.reshape(shape)?)
        }
    }
}

/// The hyperparameters of [`Conv1d`], named as torch's constructor arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv1dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: usize,
    pub stride: usize,
    pub padding: Padding1d,
    pub dilation: usize,
    pub groups: usize,
    pub bias: bool,
}

impl Conv1dConfig {
    /// A `k`-tap convolution with stride 1, no padding, no dilation, one group, bias.
    pub fn new(in_channels: usize, out_channels: usize, k: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: k,
            stride: 1,
            padding: Padding1d::Valid,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }

    /// The same convolution as a Conv2d over a height-1 image.
    pub fn as_2d(&self) -> Conv2dConfig {
        Conv2dConfig {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_size: [1, self.kernel_size],
            stride: [1, self.stride],
            padding: match self.padding {
                Padding1d::Valid => Padding2d::Valid,
                Padding1d::Same => Padding2d::Same,
                Padding1d::Explicit(p) => Padding2d::Explicit([0, p]),
            },
            dilation: [1, self.dilation],
            groups: self.groups,
            bias: self.bias,
        }
    }
}

/// A 1-D convolution over `[N, C, L]`; parameters `weight` `[out, in / groups, k]` and
/// `bias` `[out]`.
#[derive(Debug, Clone)]
pub struct Conv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv1dConfig,
}

impl Conv1d {
    /// Builds from `vb` with torch's names, shapes and default initialisation.
    pub fn new(config: Conv1dConfig, vb: VarBuilder) -> Result<Self> {
        config.as_2d().validate("Conv1d")?;
        let cg = config.in_channels / config.groups;
        let init = torch_init(cg * config.kernel_size);
        let weight =
            vb.get_with_hints((config.out_channels, cg, config.kernel_size), "weight", init)?;
        let bias = if config.bias {
            Some(vb.get_with_hints(config.out_channels, "bias", init)?)
        } else {
            None
        };
        Ok(Self { weight, bias, config })
    }

    pub fn config(&self) -> &Conv1dConfig {
        &self.config
    }
}

impl Module for Conv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.config.in_channels;
        let dims = check_input("Conv1d", x.dims(), 3, c, "[N, C, L]")?;
        let (n, l) = (dims[0], dims[2]);
        let (rows, cols) = self.config.as_2d().axes("Conv1d", 1, l)?;
        let x4 = x.reshape((n, c, 1, l))?;
        let (o, cg, k) = self.weight.dims3()?;
        let w4 = self.weight.reshape((o, cg, 1, k))?;
        let y = conv2d_core(&x4, &w4, self.bias.as_ref(), false, self.config.groups, &rows, &cols)?;
        y.reshape((n, o, cols.out))
    }
}
