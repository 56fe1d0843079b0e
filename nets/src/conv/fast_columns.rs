//! The column matrix over the wide grid of `fast_shifted`, for stride-1 convolutions with
//! too few channels for one product per tap (an RGB stem, LeNet's 1- and 6-channel layers).
//!
//! On the padded image laid out as `[C, plane]` (row width `Wp`), the input that output
//! position `p` of the wide grid (`H' x Wp`, junk columns included) reads at tap `t` is
//! `padded[c][p + off_t]`. So row `(c, t)` of the column matrix over the wide grid is one
//! contiguous run of `H' Wp` elements of the padded plane: im2col is `C kH kW` copies of a
//! whole map (instead of one short copy per output row, `kH kW H'` per channel, which for
//! LeNet's 28- and 10-wide rows cost more in call overhead than in bytes), and col2im adds
//! `C kH kW` runs back. The products are im2col's (depth `C kH kW`) over `Wp / W'` more
//! columns; the junk columns of the output are dropped, those of the output gradient are
//! zero (they add nothing).

use std::mem::MaybeUninit;

use candle_core::Result;
use num_traits::Float;

use super::fast::{ConvOp, Dims};
use super::fast_gemm::{matmul, Element, Mat};
use super::fast_shifted::Shifted;
use crate::simd::vectorized;

/// Below this many output channels the forward puts the wide positions on the rows of its
/// product (`out^T = cols^T W^T`): LeNet's 6 channels as rows would fill 6 of the 16 rows
/// of the `gemm` crate's narrowest register tile.
const WIDE_ROWS_BELOW: usize = 16;

impl Shifted {
    /// Scratch elements of the forward: padded image, column matrix, wide output.
    pub(crate) fn columns_forward_scratch(&self, d: &Dims) -> usize {
        d.c * self.plane + (d.ck + d.og) * self.wide
    }

    /// Scratch elements of the input gradient: padded gradient, wide output gradient,
    /// column gradient.
    pub(crate) fn columns_grad_input_scratch(&self, d: &Dims) -> usize {
        d.c * self.plane + (d.out_ch + d.ck) * self.wide
    }

    /// Scratch elements of the weight gradient: padded image, transposed wide output
    /// gradient, column matrix, transposed weight gradient.
    pub(crate) fn columns_grad_weight_scratch(&self, d: &Dims) -> usize {
        d.c * self.plane + (d.out_ch + d.ck) * self.wide + d.ck * d.og
    }

    /// Copies row `(c, t)` of the column matrix, `padded[c][off_t..off_t + wide]`, into
    /// `cols` (`[C kH kW, wide]`).
    #[inline(always)]
    fn columns<T: Float>(&self, padded: &[T], channels: usize, cols: &mut [T]) {
        let rows = cols.chunks_exact_mut(self.wide);
        for (row, dst) in rows.take(channels * self.taps).enumerate() {
            let (c, t) = (row / self.taps, row % self.taps);
            let at = c * self.plane + self.offsets[t];
            dst.copy_from_slice(&padded[at..at + self.wide]);
        }
    }

    /// `relu?(conv(x, w) + b)` into `out` (every element written) through the wide column
    /// matrix (one group).
    pub(crate) fn columns_forward<T: Element>(
        &self,
        op: &ConvOp,
        (x, w, b): (&[T], &[T], &[T]),
        d: Dims,
        scratch: &mut [T],
        out: &mut [MaybeUninit<T>],
    ) -> Result<()> {
        let (padded, rest) = scratch.split_at_mut(d.c * self.plane);
        let (cols, wide) = rest.split_at_mut(d.ck * self.wide);
        let l = self.out_h * self.out_w;
        for img in 0..d.n {
            vectorized(
                #[inline(always)]
                || {
                    self.pad(&x[img * d.c * d.hw..(img + 1) * d.c * d.hw], d.c, padded);
                    self.columns(padded, d.c, cols);
                },
            );
            if d.og < WIDE_ROWS_BELOW {
                // wide^T [wide, O] = cols^T [wide, ck] W^T [ck, O]
                let lhs = Mat { offset: 0, rs: 1, cs: self.wide };
                let rhs = Mat { offset: 0, rs: 1, cs: d.ck };
                let dst = Mat { offset: 0, rs: 1, cs: self.wide };
                matmul((self.wide, d.og, d.ck), wide, dst, false, cols, lhs, w, rhs)?;
            } else {
                let (lhs, rhs) = (Mat::row_major(0, d.ck), Mat::row_major(0, self.wide));
                let dst = Mat::row_major(0, self.wide);
                matmul((d.og, self.wide, d.ck), wide, dst, false, w, lhs, cols, rhs)?;
            }
            let block = &mut out[img * d.out_ch * l..(img + 1) * d.out_ch * l];
            vectorized(
                #[inline(always)]
                || self.emit(op, wide, self.wide, b, block),
            );
        }
        Ok(())
    }

    /// `dL/dx` into `gx` (every element written) from the output gradient and the weight,
    /// through the wide column gradient: `dcols = W^T dout_wide`, whose row `(c, t)` is
    /// added onto `padded_grad[c][off_t..off_t + wide]`.
    pub(crate) fn columns_grad_input<T: Element>(
        &self,
        gout: &[T],
        w: &[T],
        d: Dims,
        scratch: &mut [T],
        gx: &mut [MaybeUninit<T>],
    ) -> Result<()> {
        let (padded, rest) = scratch.split_at_mut(d.c * self.plane);
        let (wide, dcols) = rest.split_at_mut(d.out_ch * self.wide);
        let l = self.out_h * self.out_w;
        for img in 0..d.n {
            let go = &gout[img * d.out_ch * l..(img + 1) * d.out_ch * l];
            vectorized(
                #[inline(always)]
                || self.widen(go, d.out_ch, wide),
            );
            // dcols [ck, wide] = W^T [ck, O] dout_wide [O, wide]
            let (lhs, rhs) = (Mat { offset: 0, rs: 1, cs: d.ck }, Mat::row_major(0, self.wide));
            let dst = Mat::row_major(0, self.wide);
            matmul((d.ck, self.wide, d.out_ch), dcols, dst, false, w, lhs, wide, rhs)?;
            let gxi = &mut gx[img * d.c * d.hw..(img + 1) * d.c * d.hw];
            vectorized(
                #[inline(always)]
                || {
                    padded.fill(T::zero());
                    let rows = dcols.chunks_exact(self.wide).take(d.c * self.taps);
                    for (row, src) in rows.enumerate() {
                        let (c, t) = (row / self.taps, row % self.taps);
                        let at = c * self.plane + self.offsets[t];
                        for (p, &v) in padded[at..at + self.wide].iter_mut().zip(src) {
                            *p += v;
                        }
                    }
                    self.unpad(padded, gxi);
                },
            );
        }
        Ok(())
    }

    /// `dL/dW` `[O, C, kH, kW]` from the input and the output gradient:
    /// `dW^T [ck, O] += cols [ck, wide] dout_wide^T [wide, O]` per image, with the column
    /// matrix's rows on the product's rows (LeNet's 6 and 16 output channels as rows would
    /// fill 6 or 16 of gemm's 64-row tile; measured: the LeNet-5 step 4% faster this way).
    pub(crate) fn columns_grad_weight<T: Element>(
        &self,
        x: &[T],
        gout: &[T],
        d: Dims,
        scratch: &mut [T],
    ) -> Result<Vec<T>> {
        let (padded, rest) = scratch.split_at_mut(d.c * self.plane);
        let (wide_t, rest) = rest.split_at_mut(d.out_ch * self.wide);
        let (cols, gw_t) = rest.split_at_mut(d.ck * self.wide);
        let gw_t = &mut gw_t[..d.ck * d.og];
        gw_t.fill(T::zero());
        let l = self.out_h * self.out_w;
        for img in 0..d.n {
            let go = &gout[img * d.out_ch * l..(img + 1) * d.out_ch * l];
            vectorized(
                #[inline(always)]
                || {
                    self.pad(&x[img * d.c * d.hw..(img + 1) * d.c * d.hw], d.c, padded);
                    self.columns(padded, d.c, cols);
                    self.widen_transposed(go, d.out_ch, wide_t);
                },
            );
            // dW^T [ck, O] += cols [ck, wide] dout_wide^T [wide, O]
            let dst = Mat::row_major(0, d.og);
            let (lhs, rhs) = (Mat::row_major(0, self.wide), Mat::row_major(0, d.out_ch));
            matmul((d.ck, d.og, self.wide), gw_t, dst, true, cols, lhs, wide_t, rhs)?;
        }
        let mut gw = vec![T::zero(); d.out_ch * d.ck];
        for (r, row) in gw_t.chunks_exact(d.og).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                gw[o * d.ck + r] = v;
            }
        }
        Ok(gw)
    }
}
