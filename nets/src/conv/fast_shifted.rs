//! Stride-1 convolutions without a column matrix ("implicit GEMM"): each kernel tap is a
//! matrix product over a shifted view of one zero-padded copy of the image.
//!
//! With stride 1, no zero-stuffing and non-negative padding, the input an output position
//! `(oh, ow)` reads at tap `(th, tw)` is the padded input at `(oh + th d_h, ow + tw d_w)`.
//! Lay the padded image out as `[C, Hp Wp]` (`Hp = H'+ (kH - 1) d_h`, `Wp = W' + (kW - 1)
//! d_w`, `H' x W'` the output) and compute the output on a "wide" grid of `H' x Wp`
//! positions, row width `Wp` (the last `Wp - W'` columns of each row are junk, dropped at
//! the end): then the tap's operand, for every wide position `p = oh Wp + ow`, is the
//! padded input at `p + th d_h Wp + tw d_w`, i.e. the whole `[C, H' Wp]` matrix is the
//! padded buffer shifted by a constant offset, with the channel stride as its row stride.
//! So, per image and group, with `W_t [O_g, C_g]` the weights of tap `t`:
//!
//! * forward: `wide = sum_t W_t @ shift_t(padded)` (`kH kW` accumulated GEMMs), then the
//!   valid columns are copied to the output with the bias and the ReLU;
//! * input gradient: `padded_grad[shift_t] += W_t^T @ dout_wide` (the junk columns of
//!   `dout_wide` are zero, so they add nothing), and the input's window of `padded_grad` is
//!   the input gradient;
//! * weight gradient: `dW_t += dout_wide @ shift_t(padded)^T` (again zero junk columns).
//!
//! Against im2col this writes and reads no `[C kH kW, H' W']` column matrix (9x the image
//! for a 3x3 kernel) and no col2im scatter: the extra passes are one padded copy of the
//! image (or of the gradient) and the wide-to-output copy, at the price of `Wp / W'` more
//! products (6% for a 3x3 kernel on 32x32 maps). The GEMMs have depth `C_g` (forward) or
//! `O_g` (input gradient) instead of `C_g kH kW`, so the path is taken only from
//! [`MIN_CHANNELS`] channels per group on, and only where at most an eighth of the wide grid
//! is junk (16 columns and more for a 3x3 kernel); fewer channels (an RGB stem, LeNet's 1-
//! and 6-channel layers) and narrower maps (ResNet-20's 8x8 stage) keep im2col. Numerically the
//! taps are summed in a different order than im2col's single product; the result is still
//! the same bit for bit from run to run.
//!
//! In f32 on AVX-512, layers with 16 or 32 channels (one group) replace the nine products
//! by the direct kernels of `fast_direct` on the same padded layout: the forward and the
//! input gradient from 16 or 32 output (input) channels, the weight gradient at 16 output
//! channels. The wide rows are then padded to whole vectors (`wide_stride`).

use std::mem::MaybeUninit;

use num_traits::Float;

use super::fast::{ConvOp, Dims};
use super::fast_direct::{self, LANES};
use super::fast_gemm::{matmul, Element, Mat};
use crate::simd::vectorized;
use candle_core::Result;

/// The fewest input channels per group (forward, weight gradient) and output channels per
/// group (input gradient) for which the shifted GEMMs beat im2col: below, each tap's
/// product is too shallow to amortise loading and storing its output.
pub(crate) const MIN_CHANNELS: usize = 16;

/// The padded layout of one stride-1 convolution (see the [module documentation](self)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shifted {
    /// Padding before the first row and column.
    pub(super) pad_top: usize,
    pub(super) pad_left: usize,
    /// Input rows and columns.
    pub(super) h: usize,
    pub(super) w: usize,
    /// Output rows and columns.
    pub(super) out_h: usize,
    pub(super) out_w: usize,
    /// Padded row width (the wide grid's row width).
    pub(super) wp: usize,
    /// Elements per padded channel: `Hp Wp` plus slack for the junk columns of the last
    /// row, which read up to `(kW - 1) d_w` past the plane, and for the direct kernels'
    /// whole vectors of positions.
    pub(super) plane: usize,
    /// Wide output positions: `H' Wp`.
    pub(super) wide: usize,
    /// `wide` rounded up to whole vectors of the direct kernels (`fast_direct`).
    pub(super) wide_stride: usize,
    /// The largest tap offset, `(kH - 1) d_h Wp + (kW - 1) d_w`.
    pub(super) max_off: usize,
    /// Tap offsets `th d_h Wp + tw d_w`, tap-major as the weight's `kH x kW`.
    pub(super) offsets: [usize; MAX_TAPS],
    pub(super) taps: usize,
    /// Few channels: one product over the wide column matrix (`fast_columns`) instead of
    /// one per tap.
    pub(crate) columns: bool,
}

/// Below this many output (forward) or input (input gradient) channels per group the
/// products put the wide positions on the rows (`wide^T = shift^T W^T`, `shift(dx)^T +=
/// dout^T W`): the `gemm` crate's register tile is 64 rows by 6 columns (f32, AVX-512), so 16
/// or 32 channels as rows would fill a quarter or half of it. Measured on ResNet-20 epochs
/// (first two stages at 16 and 32 channels), alternating with the previous build: the
/// per-round ratio's median was 0.94 over 7 rounds with the forward alone swapped, 0.99 over
/// 3 with both, on a machine whose rounds varied by 10%: a small gain at most.
const WIDE_ROWS_BELOW: usize = 64;

/// The wide grid may hold at most `1 / MAX_JUNK` junk columns (`1 / MAX_JUNK_COLUMNS` with
/// the wide column matrix, where the junk costs products but saves im2col's short copies:
/// LeNet's second layer, 10 columns of 14, takes it).
const MAX_JUNK: usize = 8;
const MAX_JUNK_COLUMNS: usize = 2;

/// The largest kernel (taps) the shifted path takes; larger kernels use im2col.
const MAX_TAPS: usize = 49;

impl Shifted {
    /// The layout of `op` when it is a stride-1 convolution without zero-stuffing or
    /// cropping, not pointwise, with `cg` input and `og` output channels per group from
    /// [`MIN_CHANNELS`] on, or with fewer channels and one group (the wide column matrix,
    /// [`Shifted::columns`]); `None` otherwise.
    pub(crate) fn of(op: &ConvOp, cg: usize, og: usize) -> Option<Self> {
        let (r, c) = (&op.rows, &op.cols);
        let plain = |a: &super::geometry::Axis| {
            a.stride == 1 && a.in_dilation == 1 && a.pad_lo >= 0 && {
                let span = a.dilation * (a.k - 1);
                // No cropping at the end either: the padded length covers the input.
                a.out + span >= a.n + a.pad_lo as usize
            }
        };
        let taps = r.k * c.k;
        if !plain(r) || !plain(c) || taps > MAX_TAPS || taps == 1 {
            return None;
        }
        let columns = cg < MIN_CHANNELS || og < MIN_CHANNELS;
        if columns && op.groups != 1 {
            return None;
        }
        let (span_h, span_w) = (r.dilation * (r.k - 1), c.dilation * (c.k - 1));
        let wp = c.out + span_w;
        // Narrow maps waste too many products on the junk columns (measured: at 8x8 with a
        // 3x3 kernel, 25% junk, the shifted path is 15% slower than im2col; at 16x16 they
        // are even).
        if span_w * if columns { MAX_JUNK_COLUMNS } else { MAX_JUNK } > wp {
            return None;
        }
        let mut offsets = [0; MAX_TAPS];
        for th in 0..r.k {
            for tw in 0..c.k {
                offsets[th * c.k + tw] = th * r.dilation * wp + tw * c.dilation;
            }
        }
        let wide = r.out * wp;
        let wide_stride = wide.div_ceil(LANES) * LANES;
        let max_off = span_h * wp + span_w;
        Some(Self {
            pad_top: r.pad_lo as usize,
            pad_left: c.pad_lo as usize,
            h: r.n,
            w: c.n,
            out_h: r.out,
            out_w: c.out,
            wp,
            // At least `Hp Wp + (kW - 1) d_w = wide + max_off`.
            plane: wide_stride + max_off + LANES,
            wide,
            wide_stride,
            max_off,
            offsets,
            taps,
            columns,
        })
    }

    /// Scratch elements for the forward: padded image, wide output, tap-major weights.
    pub(crate) fn forward_scratch(&self, d: &Dims) -> usize {
        if self.columns {
            return self.columns_forward_scratch(d);
        }
        d.c * self.plane + d.og * self.wide_stride + self.taps * d.out_ch * d.cg
    }

    /// Scratch elements for the input gradient: padded gradient and wide output gradient
    /// (or, for the direct kernel, the gradient's rows and the padded output gradient),
    /// tap-major weights.
    pub(crate) fn grad_input_scratch(&self, d: &Dims) -> usize {
        if self.columns {
            return self.columns_grad_input_scratch(d);
        }
        let products = d.c * self.plane + d.out_ch * self.wide;
        let direct = d.c * self.input_rows() + d.out_ch * self.dout_plane();
        products.max(direct) + self.taps * d.out_ch * d.cg
    }

    /// Scratch elements for the weight gradient: padded image, wide output gradient,
    /// tap-major weight gradient.
    pub(crate) fn grad_weight_scratch(&self, d: &Dims) -> usize {
        if self.columns {
            return self.columns_grad_weight_scratch(d);
        }
        d.c * self.plane + d.out_ch * self.wide + self.taps * d.out_ch * d.cg
    }

    /// Copies the `channels` planes of `x` (each `H x W`) into `padded` (`[channels,
    /// plane]`), zeros around them.
    #[inline(always)]
    pub(super) fn pad<T: Float>(&self, x: &[T], channels: usize, padded: &mut [T]) {
        let (wp, w) = (self.wp, self.w);
        for ch in 0..channels {
            let src = &x[ch * self.h * w..(ch + 1) * self.h * w];
            let dst = &mut padded[ch * self.plane..(ch + 1) * self.plane];
            let top = self.pad_top * wp;
            dst[..top + self.pad_left].fill(T::zero());
            for (ih, row) in src.chunks_exact(w).enumerate() {
                let at = top + ih * wp + self.pad_left;
                dst[at..at + w].copy_from_slice(row);
                // The right padding of this row and the left padding of the next.
                let end = (at + wp).min(dst.len());
                for v in &mut dst[at + w..end] {
                    *v = T::zero();
                }
            }
            let filled = top + self.h * wp + self.pad_left;
            let filled = filled.min(dst.len());
            dst[filled..].fill(T::zero());
        }
    }

    /// Copies the `channels` output planes of `dout` (each `H' x W'`) into the wide layout
    /// `[channels, H' Wp]`, with zero junk columns.
    #[inline(always)]
    pub(super) fn widen<T: Float>(&self, dout: &[T], channels: usize, wide: &mut [T]) {
        let (wp, ow) = (self.wp, self.out_w);
        for ch in 0..channels {
            let src = &dout[ch * self.out_h * ow..(ch + 1) * self.out_h * ow];
            let dst = &mut wide[ch * self.wide..(ch + 1) * self.wide];
            for (row, d) in src.chunks_exact(ow).zip(dst.chunks_exact_mut(wp)) {
                d[..ow].copy_from_slice(row);
                for v in &mut d[ow..] {
                    *v = T::zero();
                }
            }
        }
    }

    /// `w` `[O, C_g, kH, kW]` to the tap-major `[taps, O, C_g]`.
    #[inline(always)]
    pub(super) fn taps_first<T: Float>(&self, w: &[T], d: &Dims, dst: &mut [T]) {
        let (o_all, cg) = (d.out_ch, d.cg);
        self.rearrange(w, d, dst, |t, o, c| (t * o_all + o) * cg + c);
    }

    /// Copies weight `(o, c, t)` of `w` `[O, C_g, kH, kW]` to `dst[at(t, o, c)]`.
    #[inline(always)]
    pub(super) fn rearrange<T: Float>(
        &self,
        w: &[T],
        d: &Dims,
        dst: &mut [T],
        at: impl Fn(usize, usize, usize) -> usize,
    ) {
        let (cg, taps) = (d.cg, self.taps);
        for o in 0..d.out_ch {
            for c in 0..cg {
                let src = &w[(o * cg + c) * taps..(o * cg + c + 1) * taps];
                for (t, &v) in src.iter().enumerate() {
                    dst[at(t, o, c)] = v;
                }
            }
        }
    }

    /// `relu?(conv(x, w) + b)` into `out` (`[N, O, H', W']`, every element written; the
    /// caller's buffer need not be initialised).
    pub(crate) fn forward<T: Element>(
        &self,
        op: &ConvOp,
        (x, w, b): (&[T], &[T], &[T]),
        d: Dims,
        scratch: &mut [T],
        out: &mut [MaybeUninit<T>],
    ) -> Result<()> {
        if self.columns {
            return self.columns_forward(op, (x, w, b), d, scratch, out);
        }
        let (padded, rest) = scratch.split_at_mut(d.c * self.plane);
        let (wide, wt) = rest.split_at_mut(d.og * self.wide_stride);
        let direct = self.direct_taps::<T>(op, d.og);
        vectorized(
            #[inline(always)]
            || match direct {
                true => self.taps_outputs_last(w, &d, wt),
                false => self.taps_first(w, &d, wt),
            },
        );
        // The wide output's row length.
        let row = if direct { self.wide_stride } else { self.wide };
        let l = self.out_h * self.out_w;
        for img in 0..d.n {
            vectorized(
                #[inline(always)]
                || self.pad(&x[img * d.c * d.hw..(img + 1) * d.c * d.hw], d.c, padded),
            );
            if direct {
                let operands = (T::as_f32(padded), T::as_f32(wt), T::as_f32_mut(wide));
                let (Some(src), Some(w), Some(dst)) = operands else {
                    candle_core::bail!("conv kernel: the direct path takes f32")
                };
                let src = (src, self.plane, &self.offsets[..self.taps], d.cg);
                fast_direct::conv_taps(src, w, d.og, self.wide_stride, dst, self.wide_stride)?;
            }
            for g in 0..op.groups {
                for t in (0..self.taps).filter(|_| !direct) {
                    let w_t = (t * d.out_ch + g * d.og) * d.cg;
                    let shifted = g * d.cg * self.plane + self.offsets[t];
                    if d.og < WIDE_ROWS_BELOW {
                        // wide^T [wide, O_g] += shift_t^T [wide, C_g] W_t^T [C_g, O_g]
                        let shape = (self.wide, d.og, d.cg);
                        let lhs = Mat { offset: shifted, rs: 1, cs: self.plane };
                        let rhs = Mat { offset: w_t, rs: 1, cs: d.cg };
                        let dst = Mat { offset: 0, rs: 1, cs: self.wide };
                        matmul(shape, wide, dst, t > 0, padded, lhs, wt, rhs)?;
                    } else {
                        let shape = (d.og, self.wide, d.cg);
                        let lhs = Mat::row_major(w_t, d.cg);
                        let rhs = Mat { offset: shifted, rs: self.plane, cs: 1 };
                        let dst = Mat::row_major(0, self.wide);
                        matmul(shape, wide, dst, t > 0, wt, lhs, padded, rhs)?;
                    }
                }
                let start = (img * d.out_ch + g * d.og) * l;
                let block = &mut out[start..start + d.og * l];
                let bias = if op.bias { &b[g * d.og..(g + 1) * d.og] } else { &[] };
                vectorized(
                    #[inline(always)]
                    || self.emit(op, wide, row, bias, block),
                );
            }
        }
        Ok(())
    }

    /// Writes the valid columns of the wide output `wide` (`[O_g, row]`, the first `wide`
    /// positions of each row read) into the output `block` (`[O_g, H', W']`), with the
    /// bias (empty without one) and the ReLU of `op`.
    #[inline(always)]
    pub(super) fn emit<T: Element>(
        &self,
        op: &ConvOp,
        wide: &[T],
        row: usize,
        bias: &[T],
        block: &mut [MaybeUninit<T>],
    ) {
        let (ow, l) = (self.out_w, self.out_h * self.out_w);
        for (o, dst) in block.chunks_exact_mut(l).enumerate() {
            let src = &wide[o * row..o * row + self.wide];
            let bias = if op.bias { bias[o] } else { T::zero() };
            for (drow, srow) in dst.chunks_exact_mut(ow).zip(src.chunks_exact(self.wp)) {
                for (dv, &v) in drow.iter_mut().zip(&srow[..ow]) {
                    dv.write(op.activate(v + bias));
                }
            }
        }
    }

    /// Writes the input's window of the padded gradient `padded` (`[C, plane]`) into `gx`
    /// (`[C, H, W]`).
    #[inline(always)]
    pub(super) fn unpad<T: Element>(&self, padded: &[T], gx: &mut [MaybeUninit<T>]) {
        for (ch, dst) in gx.chunks_exact_mut(self.h * self.w).enumerate() {
            let plane = &padded[ch * self.plane..];
            for (ih, row) in dst.chunks_exact_mut(self.w).enumerate() {
                let at = (ih + self.pad_top) * self.wp + self.pad_left;
                for (dv, &v) in row.iter_mut().zip(&plane[at..at + self.w]) {
                    dv.write(v);
                }
            }
        }
    }

    /// `dL/dx` into `gx` (`[N, C, H, W]`, every element written; the caller's buffer need
    /// not be initialised) from the output gradient `gout` and the weight `w`.
    pub(crate) fn grad_input<T: Element>(
        &self,
        op: &ConvOp,
        gout: &[T],
        w: &[T],
        d: Dims,
        scratch: &mut [T],
        gx: &mut [MaybeUninit<T>],
    ) -> Result<()> {
        if self.columns {
            return self.columns_grad_input(gout, w, d, scratch, gx);
        }
        if self.direct_taps::<T>(op, d.cg) {
            return self.grad_input_direct(gout, w, d, scratch, gx);
        }
        let (padded, rest) = scratch.split_at_mut(d.c * self.plane);
        let (wide, wt) = rest.split_at_mut(d.out_ch * self.wide);
        vectorized(
            #[inline(always)]
            || self.taps_first(w, &d, wt),
        );
        let l = self.out_h * self.out_w;
        for img in 0..d.n {
            let go = &gout[img * d.out_ch * l..(img + 1) * d.out_ch * l];
            vectorized(
                #[inline(always)]
                || {
                    self.widen(go, d.out_ch, wide);
                    padded.fill(T::zero());
                },
            );
            for g in 0..op.groups {
                for t in 0..self.taps {
                    let w_t = (t * d.out_ch + g * d.og) * d.cg;
                    let shifted = g * d.cg * self.plane + self.offsets[t];
                    if d.cg < WIDE_ROWS_BELOW {
                        // shift_t(padded_grad)^T [wide, C_g] += dout_wide^T [wide, O_g] W_t
                        let shape = (self.wide, d.cg, d.og);
                        let lhs = Mat { offset: g * d.og * self.wide, rs: 1, cs: self.wide };
                        let rhs = Mat::row_major(w_t, d.cg);
                        let dst = Mat { offset: shifted, rs: 1, cs: self.plane };
                        matmul(shape, padded, dst, true, wide, lhs, wt, rhs)?;
                    } else {
                        // W_t^T [C_g, O_g]: element (c, o) of the tap-major [O, C_g] block.
                        let shape = (d.cg, self.wide, d.og);
                        let lhs = Mat { offset: w_t, rs: 1, cs: d.cg };
                        let rhs = Mat::row_major(g * d.og * self.wide, self.wide);
                        let dst = Mat { offset: shifted, rs: self.plane, cs: 1 };
                        matmul(shape, padded, dst, true, wt, lhs, wide, rhs)?;
                    }
                }
            }
            let gxi = &mut gx[img * d.c * d.hw..(img + 1) * d.c * d.hw];
            vectorized(
                #[inline(always)]
                || self.unpad(padded, gxi),
            );
        }
        Ok(())
    }

    /// `dL/dW` `[O, C_g, kH, kW]` from the input `x` and the output gradient `gout`.
    ///
    /// `dW_t [O_g, C_g] += dout_wide [O_g, H' Wp] @ shift_t(padded)^T`: both operands run
    /// along the wide positions, so one of them would be repacked by gemm for every tap;
    /// instead the output gradient is transposed once per image (`[H' Wp, O]`) and the
    /// products are formed column-major (`dW_t` stored `[C_g, O_g]`), which gemm reads
    /// without packing.
    pub(crate) fn grad_weight<T: Element>(
        &self,
        op: &ConvOp,
        x: &[T],
        gout: &[T],
        d: Dims,
        scratch: &mut [T],
    ) -> Result<Vec<T>> {
        if d.n == 0 {
            return Ok(vec![T::zero(); d.out_ch * d.cg * self.taps]);
        }
        if self.columns {
            return self.columns_grad_weight(x, gout, d, scratch);
        }
        let (padded, rest) = scratch.split_at_mut(d.c * self.plane);
        let (wide_t, gwt) = rest.split_at_mut(d.out_ch * self.wide);
        let l = self.out_h * self.out_w;
        let direct = self.direct_weight::<T>(op, &d);
        if direct {
            // The direct kernel adds every image's products.
            gwt.fill(T::zero());
        }
        // gwt: per tap and group, `dW_t^T` `[C_g, O_g]` at `(t O + g O_g) C_g`.
        for img in 0..d.n {
            let go = &gout[img * d.out_ch * l..(img + 1) * d.out_ch * l];
            vectorized(
                #[inline(always)]
                || {
                    self.pad(&x[img * d.c * d.hw..(img + 1) * d.c * d.hw], d.c, padded);
                    self.widen_transposed(go, d.out_ch, wide_t);
                },
            );
            if direct {
                let (Some(src), Some(dt), Some(out)) =
                    (T::as_f32(padded), T::as_f32(wide_t), T::as_f32_mut(gwt))
                else {
                    candle_core::bail!("conv kernel: the direct path takes f32")
                };
                let src = (src, self.plane, &self.offsets[..self.taps], d.cg);
                fast_direct::weight_taps(src, dt, d.out_ch, self.wide, out)?;
                continue;
            }
            for g in 0..op.groups {
                let shape = (d.og, d.cg, self.wide);
                for t in 0..self.taps {
                    // dout_wide_g [O_g, wide]: element (o, p) at p O + g O_g + o.
                    let lhs = Mat { offset: g * d.og, rs: 1, cs: d.out_ch };
                    // shift_t(padded)^T [wide, C_g]: element (p, c) at c plane + p.
                    let rhs = Mat {
                        offset: g * d.cg * self.plane + self.offsets[t],
                        rs: 1,
                        cs: self.plane,
                    };
                    let dst = Mat { offset: (t * d.out_ch + g * d.og) * d.cg, rs: 1, cs: d.og };
                    matmul(shape, gwt, dst, img > 0, wide_t, lhs, padded, rhs)?;
                }
            }
        }
        // [taps, groups, C_g, O_g] back to [O, C_g, kH, kW].
        let mut gw = vec![T::zero(); d.out_ch * d.cg * self.taps];
        for t in 0..self.taps {
            for g in 0..op.groups {
                let block = &gwt[(t * d.out_ch + g * d.og) * d.cg..][..d.og * d.cg];
                for (c, row) in block.chunks_exact(d.og).enumerate() {
                    for (o, &v) in row.iter().enumerate() {
                        gw[((g * d.og + o) * d.cg + c) * self.taps + t] = v;
                    }
                }
            }
        }
        Ok(gw)
    }

    /// Transposes the `channels` output planes of `dout` (each `H' x W'`) into the wide
    /// layout `[H' Wp, channels]`, with zero junk rows; in tiles of 16 x 16 so that reads
    /// and writes stay within a few cache lines.
    #[inline(always)]
    pub(super) fn widen_transposed<T: Float>(&self, dout: &[T], channels: usize, wide_t: &mut [T]) {
        const TILE: usize = 16;
        let (wp, ow_n, l) = (self.wp, self.out_w, self.out_h * self.out_w);
        for oh in 0..self.out_h {
            for o0 in (0..channels).step_by(TILE) {
                for ow0 in (0..ow_n).step_by(TILE) {
                    for o in o0..(o0 + TILE).min(channels) {
                        let src = &dout[o * l + oh * ow_n..o * l + (oh + 1) * ow_n];
                        for ow in ow0..(ow0 + TILE).min(ow_n) {
                            wide_t[(oh * wp + ow) * channels + o] = src[ow];
                        }
                    }
                }
            }
            wide_t[(oh * wp + ow_n) * channels..(oh + 1) * wp * channels].fill(T::zero());
        }
    }
}
