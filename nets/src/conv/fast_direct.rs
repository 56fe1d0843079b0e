//! Direct convolution kernels (f32, AVX-512) for the shifted-view layout of
//! `fast_shifted`, used where the channels are too few for the `gemm` crate's products to
//! run well: at 16 channels each tap's product has depth 16, and gemm reloads and restores
//! its output tile and repacks an operand for every one of the nine taps (measured here on
//! one core, ResNet-20's first stage, 16 channels on a 34-wide padded 32x32 map: 70-120
//! GFLOP/s for gemm's nine products, 1.5x that for [`conv_taps`]; the weight gradient's
//! nine `16 x 16 x 1088` products 90 against 145 for [`weight_taps`]; at 64 channels gemm
//! is the faster).
//!
//! * [`conv_taps`]: `dst[o][i] = sum_t sum_c w[t][c][o] src[c][i + off_t]`, sixteen
//!   consecutive positions `i` in one vector register and sixteen output channels `o` in
//!   sixteen accumulators, so every tap and input channel costs one load and sixteen fused
//!   multiply-adds with a broadcast weight. The forward runs it on the padded image; the
//!   input gradient runs it on the zero-padded output gradient with the taps mirrored
//!   (the transposed convolution of a stride-1 convolution is a stride-1 convolution).
//! * [`weight_taps`]: `out[t][c][o] += sum_p src[c][p + off_t] dt[p][o]`, sixteen output
//!   channels in a register, eight input channels times three taps in 24 accumulators, one
//!   load of the output gradient per position.
//!
//! The sums run in a fixed order (taps, then channels; positions in order), so the results
//! are the same from run to run; they differ from the matrix products' in rounding only.
//! The safe wrappers check every index the kernels read or write. The `Shifted` methods
//! here decide where the kernels apply and run the input gradient through [`conv_taps`].

use std::mem::MaybeUninit;

use candle_core::{DType, Result};
use num_traits::Float;

use super::fast::{ConvOp, Dims};
use super::fast_gemm::Element;
use super::fast_shifted::Shifted;
use crate::simd::vectorized;

/// Output channels per register (f32 lanes of AVX-512).
pub(crate) const LANES: usize = 16;

/// Input channels per block of [`weight_taps`].
const CHANNEL_BLOCK: usize = 8;

/// Whether the CPU runs these kernels (AVX-512F).
pub(crate) fn available() -> bool {
    crate::simd::simd() == crate::simd::Simd::Avx512
}

/// `dst[o dst_stride + i] = sum_t sum_c w[(t cn + c) ow + o] src[c plane + i + offs[t]]` for
/// every output channel `o < ow` (a multiple of [`LANES`]) and position `i < n` (a multiple
/// of [`LANES`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_taps(
    (src, plane, offs, cn): (&[f32], usize, &[usize], usize),
    w: &[f32],
    ow: usize,
    n: usize,
    dst: &mut [f32],
    dst_stride: usize,
) -> Result<()> {
    let max_off = offs.iter().copied().max().unwrap_or(0);
    let fits = available()
        && ow.is_multiple_of(LANES)
        && n.is_multiple_of(LANES)
        && (cn == 0 || n == 0 || (cn - 1) * plane + n + max_off <= src.len())
        && offs.len() * cn * ow <= w.len()
        && (ow == 0 || n == 0 || (ow - 1) * dst_stride + n <= dst.len())
        && dst_stride >= n;
    if !fits {
        candle_core::bail!("direct conv kernel: operands out of bounds or no AVX-512")
    }
    #[cfg(target_arch = "x86_64")]
    for o0 in (0..ow).step_by(LANES) {
        // SAFETY: AVX-512F is present, and the checks above bound every read of `src`
        // (channel < cn, position + offset < (cn - 1) plane + n + max_off) and `w`, and
        // every write of `dst` (channel < ow, position < n <= dst_stride).
        unsafe {
            avx512::conv_block(
                src.as_ptr(),
                plane,
                offs,
                cn,
                w.as_ptr().add(o0),
                ow,
                n,
                dst.as_mut_ptr().add(o0 * dst_stride),
                dst_stride,
            )
        }
    }
    Ok(())
}

/// `out[(t cn + c) ow + o] += sum_{p < n} src[c plane + p + offs[t]] dt[p ow + o]` for every
/// tap `t`, input channel `c < cn` (a multiple of 8) and output channel `o < ow` (a multiple
/// of [`LANES`]).
pub(crate) fn weight_taps(
    (src, plane, offs, cn): (&[f32], usize, &[usize], usize),
    dt: &[f32],
    ow: usize,
    n: usize,
    out: &mut [f32],
) -> Result<()> {
    let max_off = offs.iter().copied().max().unwrap_or(0);
    let fits = available()
        && ow.is_multiple_of(LANES)
        && cn.is_multiple_of(CHANNEL_BLOCK)
        && (cn == 0 || n == 0 || (cn - 1) * plane + n + max_off <= src.len())
        && n * ow <= dt.len()
        && offs.len() * cn * ow <= out.len();
    if !fits {
        candle_core::bail!("direct weight-gradient kernel: operands out of bounds or no AVX-512")
    }
    #[cfg(target_arch = "x86_64")]
    {
        let (tap_stride, groups_of_three) = (cn * ow, offs.len() / 3 * 3);
        for c0 in (0..cn).step_by(CHANNEL_BLOCK) {
            for o0 in (0..ow).step_by(LANES) {
                let (s, d) = (src[c0 * plane..].as_ptr(), dt[o0..].as_ptr());
                let at = |t: usize| (t * cn + c0) * ow + o0;
                // SAFETY: AVX-512F is present; reads of `src` stay below (cn - 1) plane + n
                // + max_off, of `dt` below n ow, writes of `out` below taps cn ow (checked).
                unsafe {
                    for t in (0..groups_of_three).step_by(3) {
                        let o = out.as_mut_ptr().add(at(t));
                        avx512::weight_block::<3>(
                            s,
                            plane,
                            &offs[t..t + 3],
                            d,
                            ow,
                            n,
                            o,
                            tap_stride,
                        );
                    }
                    for t in groups_of_three..offs.len() {
                        let o = out.as_mut_ptr().add(at(t));
                        avx512::weight_block::<1>(
                            s,
                            plane,
                            &offs[t..t + 1],
                            d,
                            ow,
                            n,
                            o,
                            tap_stride,
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// The direct kernels on the shifted layout: when they apply, and the input gradient.
impl Shifted {
    /// Whether the forward (`out`: the output channels) or the input gradient (`out`: the
    /// input channels) of `op` runs on the direct kernel [`fast_direct::conv_taps`]: f32
    /// on AVX-512, one group, 16 or 32 channels out (measured: faster than the nine
    /// products up to 32 channels, slower at 64).
    pub(crate) fn direct_taps<T: Element>(&self, op: &ConvOp, out: usize) -> bool {
        T::DTYPE == DType::F32
            && op.groups == 1
            && out.is_multiple_of(LANES)
            && out <= 2 * LANES
            && available()
    }

    /// Whether the weight gradient runs on [`fast_direct::weight_taps`]: f32 on AVX-512, one
    /// group, 16 output channels, input channels in blocks of 8 (at 32 output channels the
    /// products are as fast).
    pub(crate) fn direct_weight<T: Element>(&self, op: &ConvOp, d: &Dims) -> bool {
        T::DTYPE == DType::F32
            && op.groups == 1
            && d.og == LANES
            && d.cg.is_multiple_of(8)
            && available()
    }

    /// The input gradient's positions on the padded grid, from the first input row on:
    /// `H Wp`, rounded up to whole vectors.
    pub(super) fn input_rows(&self) -> usize {
        (self.h * self.wp).div_ceil(LANES) * LANES
    }

    /// The row length of the zero-padded output gradient the direct input gradient reads:
    /// `max_off` zeros, the wide gradient, and zeros up to the last read.
    pub(super) fn dout_plane(&self) -> usize {
        self.max_off + self.pad_top * self.wp + self.input_rows() + LANES
    }

    /// `w` `[O, C_g, kH, kW]` to `[taps, C_g, O]` (one group), the direct forward's layout.
    #[inline(always)]
    pub(super) fn taps_outputs_last<T: Float>(&self, w: &[T], d: &Dims, dst: &mut [T]) {
        let (o_all, cg) = (d.out_ch, d.cg);
        self.rearrange(w, d, dst, |t, o, c| (t * cg + c) * o_all + o);
    }

    /// [`Self::grad_input`] on the direct kernel: the input gradient of a stride-1
    /// convolution is the convolution of the zero-padded output gradient with the taps
    /// mirrored and the channels swapped. On the padded input grid (row width `Wp`), the
    /// gradient at `q` is `sum_t W_t^T dout_wide[q - off_t]`; with `max_off` zeros in
    /// front of each row of `dout_wide`, that is a convolution with the offsets
    /// `max_off - off_t`, computed for the input's rows (`q` from `pad_top Wp` on) and
    /// copied out without the padding columns.
    pub(super) fn grad_input_direct<T: Element>(
        &self,
        gout: &[T],
        w: &[T],
        d: Dims,
        scratch: &mut [T],
        gx: &mut [MaybeUninit<T>],
    ) -> Result<()> {
        let (rows, plane) = (self.input_rows(), self.dout_plane());
        let (dx, rest) = scratch.split_at_mut(d.c * rows);
        let (dout, wt) = rest.split_at_mut(d.out_ch * plane);
        vectorized(
            #[inline(always)]
            || {
                self.taps_first(w, &d, wt);
                dout.fill(T::zero());
            },
        );
        let first = self.pad_top * self.wp;
        let mut offs = self.offsets;
        for off in &mut offs[..self.taps] {
            *off = first + self.max_off - *off;
        }
        let (l, ow) = (self.out_h * self.out_w, self.out_w);
        for img in 0..d.n {
            let go = &gout[img * d.out_ch * l..(img + 1) * d.out_ch * l];
            vectorized(
                #[inline(always)]
                || {
                    // Only the valid columns: the junk columns and the rest stay zero.
                    for (src, dst) in go.chunks_exact(l).zip(dout.chunks_exact_mut(plane)) {
                        let dst = &mut dst[self.max_off..];
                        for (srow, drow) in src.chunks_exact(ow).zip(dst.chunks_mut(self.wp)) {
                            drow[..ow].copy_from_slice(srow);
                        }
                    }
                },
            );
            let operands = (T::as_f32(dout), T::as_f32(wt), T::as_f32_mut(dx));
            let (Some(src), Some(w32), Some(dst)) = operands else {
                candle_core::bail!("conv kernel: the direct path takes f32")
            };
            conv_taps((src, plane, &offs[..self.taps], d.out_ch), w32, d.cg, rows, dst, rows)?;
            let gxi = &mut gx[img * d.c * d.hw..(img + 1) * d.c * d.hw];
            vectorized(
                #[inline(always)]
                || {
                    for (src, dst) in dx.chunks_exact(rows).zip(gxi.chunks_exact_mut(d.hw)) {
                        for (ih, drow) in dst.chunks_exact_mut(self.w).enumerate() {
                            let at = ih * self.wp + self.pad_left;
                            for (dv, &v) in drow.iter_mut().zip(&src[at..at + self.w]) {
                                dv.write(v);
                            }
                        }
                    }
                },
            );
        }
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps,
    };

    use super::{CHANNEL_BLOCK, LANES};

    /// [`super::conv_taps`] for the [`LANES`] output channels at `w` (row stride `ow`)
    /// into `dst` (row stride `dst_stride`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn conv_block(
        src: *const f32,
        plane: usize,
        offs: &[usize],
        cn: usize,
        w: *const f32,
        ow: usize,
        n: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        for i in (0..n).step_by(LANES) {
            let mut acc: [__m512; LANES] = [_mm512_setzero_ps(); LANES];
            for (t, &off) in offs.iter().enumerate() {
                let s = src.add(i + off);
                let wt = w.add(t * cn * ow);
                for c in 0..cn {
                    let x = _mm512_loadu_ps(s.add(c * plane));
                    let wc = wt.add(c * ow);
                    for (o, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(x, _mm512_set1_ps(*wc.add(o)), *a);
                    }
                }
            }
            for (o, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(dst.add(o * dst_stride + i), *a);
            }
        }
    }

    /// [`super::weight_taps`] for the `TAPS` taps of `offs`, the [`CHANNEL_BLOCK`] input
    /// channels at `src` and the [`LANES`] output channels at `dt` (row stride `ow`), added
    /// into `out` (tap stride `tap_stride`, channel stride `ow`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weight_block<const TAPS: usize>(
        src: *const f32,
        plane: usize,
        offs: &[usize],
        dt: *const f32,
        ow: usize,
        n: usize,
        out: *mut f32,
        tap_stride: usize,
    ) {
        let mut acc: [[__m512; CHANNEL_BLOCK]; TAPS] = [[_mm512_setzero_ps(); CHANNEL_BLOCK]; TAPS];
        for p in 0..n {
            let d = _mm512_loadu_ps(dt.add(p * ow));
            for (t, acc_t) in acc.iter_mut().enumerate() {
                let s = src.add(p + offs[t]);
                for (c, a) in acc_t.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(*s.add(c * plane)), d, *a);
                }
            }
        }
        for (t, acc_t) in acc.iter().enumerate() {
            for (c, a) in acc_t.iter().enumerate() {
                let o = out.add(t * tap_stride + c * ow);
                _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), *a));
            }
        }
    }
}
