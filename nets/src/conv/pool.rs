//! Pooling with torch's semantics: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, global average
//! pooling, and Flatten.
//!
//! * Max pooling: the maximum over the window taps `(y s - p + i d, x s - p + j d)`, padding
//!   read as `-inf`; the gradient goes to the arg-max.
//! * Average pooling: window `[o s - p, o s - p + k)` clipped to `[-p, H + p)` (its size is
//!   the divisor with `count_include_pad`), then to `[0, H)` (the divisor without);
//!   `divisor_override` replaces the divisor. The divisor is a product of a row and a column
//!   factor.
//! * Output size `floor((H + 2p - d (k - 1) - 1) / s) + 1`, or with `ceil_mode` the ceiling,
//!   minus one if the last window would start inside the right padding
//!   (`(out - 1) s >= H + p`).
//! * Adaptive average pooling: output cell `i` averages rows `[floor(i H / o), ceil((i + 1)
//!   H / o))` (bins may overlap), likewise columns; it is linear and separable, so it is
//!   computed as `A_h x A_w^T` with the averaging matrices built on the host.
//!
//! candle's own `max_pool2d`/`avg_pool2d` have no padding, dilation or ceil mode and no
//! backward unless kernel == stride (CANDLE-NOTES.md section 5), so these gather the window
//! taps with a precomputed index (`index_select`, differentiable) and reduce them.

use candle_core::{Module, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::geometry::{gather_taps, host_matrix, layer_error, Axis};
use super::{check_input, fast, fast_pool};

/// Output length of a pooling axis, torch's `pooling_output_shape`; `None` when the window is
/// larger than the padded input.
fn pool_out_len(n: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Option<usize> {
    let span = d * (k - 1) + 1;
    let padded = n + 2 * p;
    if padded < span {
        return None;
    }
    let num = padded - span;
    let mut out = if ceil { num.div_ceil(s) } else { num / s } + 1;
    if ceil && (out - 1) * s >= n + p {
        out -= 1;
    }
    Some(out)
}

/// Shared checks and axes of the two sliding-window pools.
#[allow(clippy::too_many_arguments)]
fn pool_axes(
    layer: &str,
    (h, w): (usize, usize),
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Result<(Axis, Axis)> {
    let axis = |i: usize, n: usize| {
        let (k, s, p, d) = (kernel[i], stride[i], padding[i], dilation[i]);
        let out = pool_out_len(n, k, s, p, d, ceil_mode).ok_or_else(|| {
            layer_error(
                layer,
                format!(
                    "kernel {kernel:?} (dilation {dilation:?}) is larger than the padded input: \
                     input {h}x{w}, padding {padding:?}"
                ),
            )
        })?;
        Ok::<_, candle_core::Error>(Axis {
            n,
            k,
            stride: s,
            dilation: d,
            pad_lo: p as isize,
            in_dilation: 1,
            out,
        })
    };
    Ok((axis(0, h)?, axis(1, w)?))
}

/// Checks positive kernel/stride/dilation and torch's `padding <= kernel / 2`.
fn validate_window(
    layer: &str,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> Result<()> {
    if [kernel, stride, dilation].concat().contains(&0) {
        return Err(layer_error(
            layer,
            format!(
                "kernel_size {kernel:?}, stride {stride:?} and dilation {dilation:?} must be \
                 positive"
            ),
        ));
    }
    if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
        return Err(layer_error(
            layer,
            format!("padding {padding:?} must be at most half the kernel size {kernel:?}"),
        ));
    }
    Ok(())
}

/// torch's `nn.MaxPool2d`; `stride` defaults to the kernel size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxPool2d {
    pub kernel_size: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// A `k x k` pool with stride `k`, no padding, no dilation, floor mode.
    pub fn new(k: usize) -> Self {
        Self {
            kernel_size: [k, k],
            stride: [k, k],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
        }
    }

    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }

    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }

    pub fn validate(&self) -> Result<()> {
        validate_window("MaxPool2d", self.kernel_size, self.stride, self.padding, self.dilation)
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_path(x, fast::supports(x))
    }
}

impl MaxPool2d {
    /// The forward through the direct CPU kernel (`fused`, `fast_pool`) or candle's generic
    /// gather-and-reduce ops (any device and dtype).
    pub(crate) fn forward_path(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        self.validate()?;
        let dims = check_input("MaxPool2d", x.dims(), 4, 0, "[N, C, H, W]")?;
        let (n, c) = (dims[0], dims[1]);
        let (rows, cols) = pool_axes(
            "MaxPool2d",
            (dims[2], dims[3]),
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
        )?;
        if fused {
            return fast_pool::max_pool2d(x, &rows, &cols);
        }
        let taps = gather_taps(x, &rows, &cols, f64::NEG_INFINITY, true)?;
        taps.max(3)?.reshape((n, c, rows.out, cols.out))
    }
}

/// torch's `nn.AvgPool2d`; `stride` defaults to the kernel size, `count_include_pad` to true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPool2d {
    pub kernel_size: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
    pub count_include_pad: bool,
    /// Divide every window sum by this instead of the window size.
    pub divisor_override: Option<usize>,
}

impl AvgPool2d {
    /// A `k x k` pool with stride `k`, no padding, floor mode, padding counted.
    pub fn new(k: usize) -> Self {
        Self {
            kernel_size: [k, k],
            stride: [k, k],
            padding: [0, 0],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }

    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }

    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }

    pub fn validate(&self) -> Result<()> {
        if self.divisor_override == Some(0) {
            return Err(layer_error("AvgPool2d", "divisor_override must be positive".into()));
        }
        validate_window("AvgPool2d", self.kernel_size, self.stride, self.padding, [1, 1])
    }

    /// The divisor factor of each output position along one axis.
    fn divisors(&self, axis: &Axis) -> Vec<usize> {
        let (n, k, s, p) = (axis.n as isize, axis.k as isize, axis.stride as isize, axis.pad_lo);
        (0..axis.out as isize)
            .map(|o| {
                let start = o * s - p;
                let end = (start + k).min(n + p);
                let padded = end - start;
                let inside = end.min(n) - start.max(0);
                (if self.count_include_pad { padded } else { inside }) as usize
            })
            .collect()
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_path(x, fast::supports(x))
    }
}

impl AvgPool2d {
    /// The forward through the direct CPU kernel (`fused`, `fast_pool`) or candle's generic
    /// gather-and-reduce ops (any device and dtype).
    pub(crate) fn forward_path(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        self.validate()?;
        let dims = check_input("AvgPool2d", x.dims(), 4, 0, "[N, C, H, W]")?;
        let (n, c) = (dims[0], dims[1]);
        let (rows, cols) = pool_axes(
            "AvgPool2d",
            (dims[2], dims[3]),
            self.kernel_size,
            self.stride,
            self.padding,
            [1, 1],
            self.ceil_mode,
        )?;
        let inv: Vec<f64> = match self.divisor_override {
            Some(d) => vec![1.0 / d as f64; rows.out * cols.out],
            None => {
                let (dr, dc) = (self.divisors(&rows), self.divisors(&cols));
                dr.iter().flat_map(|&a| dc.iter().map(move |&b| 1.0 / (a * b) as f64)).collect()
            }
        };
        if fused {
            return fast_pool::avg_pool2d(x, &rows, &cols, inv);
        }
        let sums = gather_taps(x, &rows, &cols, 0.0, true)?.sum(3)?;
        let inv = host_matrix(inv, 1, rows.out * cols.out, x, x.device())?;
        sums.broadcast_mul(&inv)?.reshape((n, c, rows.out, cols.out))
    }
}

/// torch's `nn.AdaptiveAvgPool2d(output_size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdaptiveAvgPool2d {
    pub output_size: [usize; 2],
}

/// The `[out, n]` averaging matrix of adaptive pooling along one axis.
fn adaptive_matrix(n: usize, out: usize) -> Vec<f64> {
    let mut m = vec![0.0; out * n];
    for i in 0..out {
        let (start, end) = (i * n / out, ((i + 1) * n).div_ceil(out));
        for j in start..end {
            m[i * n + j] = 1.0 / (end - start) as f64;
        }
    }
    m
}

impl AdaptiveAvgPool2d {
    pub fn new(output_size: [usize; 2]) -> Self {
        Self { output_size }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = check_input("AdaptiveAvgPool2d", x.dims(), 4, 0, "[N, C, H, W]")?;
        let (n, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
        let [oh, ow] = self.output_size;
        if oh == 0 || ow == 0 {
            return Err(layer_error(
                "AdaptiveAvgPool2d",
                format!("output_size must be positive, got {:?}", self.output_size),
            ));
        }
        let dev = x.device();
        // Columns: [N C H, W] @ [W, ow].
        let a_w = host_matrix(adaptive_matrix(w, ow), ow, w, x, dev)?.t()?;
        let y = x.reshape((n * c * h, w))?.matmul(&a_w)?.reshape((n * c, h, ow))?;
        // Rows: [oh, H] @ [H, ow] per image and channel.
        let a_h = host_matrix(adaptive_matrix(h, oh), oh, h, x, dev)?;
        let a_h = a_h.unsqueeze(0)?.broadcast_as((n * c, oh, h))?.contiguous()?;
        a_h.matmul(&y)?.reshape((n, c, oh, ow))
    }
}

/// Global average pooling: `[N, C, H, W]` to `[N, C]`, the mean over all positions (Lin et
/// al. 2014, "Network in network"; the `AdaptiveAvgPool2d(1)` + flatten of torch models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GlobalAvgPool2d;

impl Module for GlobalAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = check_input("GlobalAvgPool2d", x.dims(), 4, 0, "[N, C, H, W]")?;
        x.reshape((dims[0], dims[1], dims[2] * dims[3]))?.mean(2)
    }
}

/// torch's `nn.Flatten()`: keeps the batch axis and flattens the rest (`[N, ...]` to
/// `[N, prod(...)]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() < 2 {
            return Err(layer_error(
                "Flatten",
                format!("expected an input of rank >= 2 [N, ...], got shape {:?}", x.dims()),
            ));
        }
        x.flatten_from(1)
    }
}
