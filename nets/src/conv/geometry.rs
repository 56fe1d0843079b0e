//! The index arithmetic every sliding-window layer shares: output sizes, torch's `"same"`
//! padding, and the gather ("im2col") index that lists, for every kernel tap and output
//! position, which input element it reads.
//!
//! One axis of a window layer is described by [`Axis`]: input length `n`, kernel `k`, stride
//! `s`, dilation `d`, the padding before (`pad_lo`, may be negative = crop) and the output
//! length. Output position `o` and tap `t` read the position `o * s - pad_lo + t * d` of the
//! (possibly zero-stuffed, see `in_dilation`) input; positions outside the input read the
//! padding value (zero for convolutions and average pooling, `-inf` for max pooling).

use candle_core::{Device, Result, Tensor};

/// The error every window layer returns for a bad configuration or input.
pub(crate) fn layer_error(layer: &str, problem: String) -> candle_core::Error {
    candle_core::Error::Msg(format!("{layer}: {problem}"))
}

/// One spatial axis of a window operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Axis {
    /// Input length (before zero-stuffing).
    pub n: usize,
    /// Kernel taps.
    pub k: usize,
    pub stride: usize,
    pub dilation: usize,
    /// Padding before the first element; negative crops.
    pub pad_lo: isize,
    /// Zero-stuffing factor of the input: `in_dilation - 1` zeros between neighbours
    /// (the stride of the transposed convolution); 1 for plain windows.
    pub in_dilation: usize,
    /// Output length.
    pub out: usize,
}

impl Axis {
    /// The input index read by output `o` and tap `t`, or `None` when it falls in the padding
    /// or between zero-stuffed elements.
    #[inline]
    pub fn source(&self, o: usize, t: usize) -> Option<usize> {
        let p = (o * self.stride + t * self.dilation) as isize - self.pad_lo;
        if p < 0 {
            return None;
        }
        let p = p as usize;
        if !p.is_multiple_of(self.in_dilation) {
            return None;
        }
        let i = p / self.in_dilation;
        (i < self.n).then_some(i)
    }
}

/// `floor((n + pad_total - d (k - 1) - 1) / s) + 1`, or `None` when the dilated kernel is
/// larger than the padded input.
pub(crate) fn out_len(n: usize, pad_total: usize, k: usize, s: usize, d: usize) -> Option<usize> {
    let span = d * (k - 1) + 1;
    let padded = n + pad_total;
    (padded >= span).then(|| (padded - span) / s + 1)
}

/// torch's `padding="same"` (stride 1): total `d (k - 1)`, `total / 2` before, the rest after.
pub(crate) fn same_padding(k: usize, d: usize) -> (usize, usize) {
    let total = d * (k - 1);
    (total / 2, total - total / 2)
}

/// The gather index of a 2-D window: entry `[t, l]` (or `[l, t]` with `taps_last`) for tap
/// `t = th * kw + tw` and output position `l = oh * out_w + ow` is the flat input position
/// `ih * w + iw`, or `h * w` (one past the input: the padding slot) where the tap reads
/// padding.
pub(crate) fn gather_index(rows: &Axis, cols: &Axis, taps_last: bool) -> Vec<u32> {
    let pad_slot = (rows.n * cols.n) as u32;
    let l = rows.out * cols.out;
    let k = rows.k * cols.k;
    let mut index = vec![pad_slot; k * l];
    for th in 0..rows.k {
        for tw in 0..cols.k {
            let t = th * cols.k + tw;
            for oh in 0..rows.out {
                let Some(ih) = rows.source(oh, th) else { continue };
                for ow in 0..cols.out {
                    if let Some(iw) = cols.source(ow, tw) {
                        let o = oh * cols.out + ow;
                        let at = if taps_last { o * k + t } else { t * l + o };
                        index[at] = (ih * cols.n + iw) as u32;
                    }
                }
            }
        }
    }
    index
}

/// Gathers the taps of `x` (`[N, C, H, W]`) into `[N, C, kh * kw, out_h * out_w]`, or with
/// `taps_last` into `[N, C, out_h * out_w, kh * kw]` (so that a reduction over the taps runs
/// over the contiguous last axis, candle's fast path), reading `pad_value` where a tap falls
/// outside the input. Differentiable (`index_select`, whose backward is `index_add`).
pub(crate) fn gather_taps(
    x: &Tensor,
    rows: &Axis,
    cols: &Axis,
    pad_value: f64,
    taps_last: bool,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let flat = x.reshape((n, c, h * w))?;
    let pad = Tensor::full(pad_value, (n, c, 1), x.device())?.to_dtype(x.dtype())?;
    let ext = Tensor::cat(&[&flat, &pad], 2)?;
    let index = gather_index(rows, cols, taps_last);
    let len = index.len();
    let index = Tensor::from_vec(index, len, x.device())?;
    let (k, l) = (rows.k * cols.k, rows.out * cols.out);
    let taps = ext.index_select(&index, 2)?;
    if taps_last {
        taps.reshape((n, c, l, k))
    } else {
        taps.reshape((n, c, k, l))
    }
}

/// A `[rows, cols]` tensor of `f64` values in `x`'s dtype on `device`.
pub(crate) fn host_matrix(
    values: Vec<f64>,
    rows: usize,
    cols: usize,
    like: &Tensor,
    device: &Device,
) -> Result<Tensor> {
    Tensor::from_vec(values, (rows, cols), device)?.to_dtype(like.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lengths_follow_torch() {
        assert_eq!(out_len(7, 2, 3, 2, 1), Some(4));
        assert_eq!(out_len(9, 4, 3, 2, 2), Some(5));
        assert_eq!(out_len(2, 0, 3, 1, 1), None);
        assert_eq!(same_padding(4, 1), (1, 2));
        assert_eq!(same_padding(3, 2), (2, 2));
    }

    #[test]
    fn zero_stuffed_axis_skips_the_holes() {
        let a = Axis { n: 3, k: 1, stride: 1, dilation: 1, pad_lo: 0, in_dilation: 2, out: 5 };
        let got: Vec<_> = (0..5).map(|o| a.source(o, 0)).collect();
        assert_eq!(got, vec![Some(0), None, Some(1), None, Some(2)]);
    }
}
