//! Fused CPU kernels for every convolution of this module (Conv1d, Conv2d, ConvTranspose2d
//! and the blocks built from them): im2col + GEMM forward, and an explicit backward.
//!
//! For each image and group, the window taps are copied into a `[C_g kH kW, L]` column
//! matrix (im2col; `L = H' W'`) using the same geometry as the generic gather
//! ([`Axis::source`]: stride, dilation, asymmetric or negative padding, zero-stuffing), and
//!
//! * forward: `out[n, g] = W_g [O_g, C_g kH kW] @ cols (+ bias)`, optionally followed by a
//!   ReLU, both applied per image while its output block is still in cache,
//! * input gradient: `dcols = W_g^T @ dout[n, g]`, scattered back (col2im, `+=`),
//! * weight gradient: `dW_g += dout[n, g] @ cols^T`, summed over images; the bias gradient
//!   is the per-channel sum of `dout`,
//!
//! with the `gemm` crate (the matrix product candle itself uses; built with its `x86-v4`
//! feature, so AVX-512 kernels run where the CPU has them) writing straight into the NCHW
//! result. The weight gradient is accumulated column-major (`dW_g^T`, with `dout[n, g]`
//! transposed per image, 1/9 the size of the columns for a 3x3 kernel) so that gemm reads
//! both operands along their contiguous axis; this halves its cost against a row-major
//! `cols` operand. A 1x1 convolution with stride 1 and no padding needs no column matrix:
//! the image's `[C_g, H W]` block is the matrix itself, so im2col and col2im are skipped.
//! The column buffer is a per-thread scratch reused across calls ([`Element::with_scratch`]).
//! Stride-1 column taps are copied as whole runs. Stride-1 convolutions with at least 16
//! channels per group on maps at least 16 wide skip the column matrix altogether: one GEMM
//! per tap over a shifted view of a padded copy of the image (`fast_shifted`), or, in f32
//! with 16 or 32 channels, a direct AVX-512 kernel over that view (`fast_direct`).
//!
//! Files: this one holds the op's description and the per-image drivers; `fast_im2col` the
//! gather tables and im2col/col2im, `fast_shifted` the shifted-view path, `fast_direct` its
//! f32 kernels for few channels, `fast_gemm` the matrix views, the gemm call and the scratch buffers, `fast_ops` candle's custom-op glue
//! (forward, backward, gradient ops), `fast_tests` the tests.
//!
//! Bias and ReLU live inside the op (`relu(conv(x) + b)`), so a layer records one graph
//! node instead of three: candle's backward zero-fills and adds a fresh gradient tensor
//! for every edge of the graph, a full pass over the activation each. The backward skips
//! the gradient of an operand candle does not track (the network's input). The backward
//! ops are themselves not differentiable (no second derivatives). The transposed
//! convolution reuses these kernels (`fast_transpose`). Other devices and dtypes use
//! candle's generic ops (`convolution::conv2d_generic`); both paths are checked against
//! torch's data.

use candle_core::{DType, Layout, Result, Tensor};
use num_traits::Float;

use super::fast_gemm::{matmul, Element, Mat};
use super::fast_im2col::transpose;
use super::fast_shifted::Shifted;
use super::geometry::Axis;
use crate::simd::vectorized;

/// Whether the fused CPU path handles `x` (CPU, f32 or f64).
pub(crate) fn supports(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// `relu?(conv(x, weight) + bias)`: the convolution of `x` `[N, C, H, W]` with `weight`
/// `[O, C / groups, kH, kW]` over the window geometry `rows` x `cols`, plus the optional
/// per-channel `bias` `[O]`, followed by a ReLU when `relu` is set; differentiable in every
/// operand. `bias` must have `x`'s dtype.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    relu: bool,
    groups: usize,
    rows: &Axis,
    cols: &Axis,
) -> Result<Tensor> {
    let weight = weight.to_dtype(x.dtype())?.contiguous()?;
    let op = ConvOp { groups, rows: *rows, cols: *cols, bias: bias.is_some(), relu };
    match bias {
        Some(b) => x.contiguous()?.apply_op3(&weight, &b.contiguous()?, op),
        None => x.contiguous()?.apply_op2(&weight, op),
    }
}

/// The sizes of one convolution, read from the operands' shapes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub n: usize,
    pub c: usize,
    /// Input positions per image.
    pub hw: usize,
    pub out_ch: usize,
    /// Input and output channels per group.
    pub cg: usize,
    pub og: usize,
    /// `C_g kH kW`, the rows of the column matrix.
    pub ck: usize,
    /// Output positions per image.
    pub l: usize,
}

/// One convolution: its window geometry and what the forward adds after the product.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvOp {
    pub groups: usize,
    pub rows: Axis,
    pub cols: Axis,
    /// A third operand `[O]` is added per output channel.
    pub bias: bool,
    /// The output goes through a ReLU.
    pub relu: bool,
}

impl ConvOp {
    /// The plain convolution (no bias, no ReLU) of a geometry.
    pub(crate) fn plain(groups: usize, rows: Axis, cols: Axis) -> Self {
        Self { groups, rows, cols, bias: false, relu: false }
    }

    /// Whether the column matrix of an image is the image itself: a 1x1 kernel with stride
    /// 1, no padding and no zero-stuffing on both axes.
    pub(crate) fn is_pointwise(&self) -> bool {
        let identity = |a: &Axis| {
            a.k == 1 && a.stride == 1 && a.pad_lo == 0 && a.in_dilation == 1 && a.out == a.n
        };
        identity(&self.rows) && identity(&self.cols)
    }

    pub(crate) fn dims(&self, x: &Layout, w: &Layout) -> Result<Dims> {
        let (n, c, h, wd) = x.shape().dims4()?;
        let (out_ch, cg, kh, kw) = w.shape().dims4()?;
        let g = self.groups;
        if h != self.rows.n
            || wd != self.cols.n
            || kh != self.rows.k
            || kw != self.cols.k
            || g == 0
            || c != cg * g
            || out_ch % g != 0
        {
            candle_core::bail!(
                "conv kernel: input {:?} and weight {:?} do not match the geometry {self:?}",
                x.dims(),
                w.dims()
            )
        }
        let l = self.rows.out * self.cols.out;
        Ok(Dims { n, c, hw: h * wd, out_ch, cg, og: out_ch / g, ck: cg * kh * kw, l })
    }
}

impl ConvOp {
    /// The forward values: `relu?(conv(x, w) + b)` (`b` empty without a bias).
    pub(crate) fn forward<T: Element>(&self, x: &[T], w: &[T], b: &[T], d: Dims) -> Result<Vec<T>> {
        let len = d.n * d.out_ch * d.l;
        if let Some(s) = Shifted::of(self, d.cg, d.og) {
            // Every output is written once: no zero-filled buffer first.
            let mut out = Vec::with_capacity(len);
            T::with_scratch(s.forward_scratch(&d), |buf| {
                s.forward(self, (x, w, b), d, buf, &mut out.spare_capacity_mut()[..len])
            })?;
            // SAFETY: `Shifted::forward` wrote all `len` entries (it returned `Ok`).
            unsafe { out.set_len(len) };
            return Ok(out);
        }
        let mut out = vec![T::zero(); len];
        if self.is_pointwise() {
            self.forward_into(x, w, b, d, &mut [], &mut out)?;
        } else {
            T::with_scratch(d.ck * d.l, |cols| self.forward_into(x, w, b, d, cols, &mut out))?;
        }
        Ok(out)
    }

    fn forward_into<T: Element>(
        &self,
        x: &[T],
        w: &[T],
        b: &[T],
        d: Dims,
        cols: &mut [T],
        out: &mut [T],
    ) -> Result<()> {
        let tables = self.tables();
        let pointwise = self.is_pointwise();
        for img in 0..d.n {
            for g in 0..self.groups {
                let start = (img * d.c + g * d.cg) * d.hw;
                let dst = Mat::row_major((img * d.out_ch + g * d.og) * d.l, d.l);
                let wg = Mat::row_major(g * d.og * d.ck, d.ck);
                let shape = (d.og, d.l, d.ck);
                if pointwise {
                    let xg = Mat::row_major(start, d.l);
                    matmul(shape, out, dst, false, w, wg, x, xg)?;
                } else {
                    let xg = &x[start..start + d.cg * d.hw];
                    vectorized(
                        #[inline(always)]
                        || self.im2col(xg, d.cg, &tables, cols),
                    );
                    matmul(shape, out, dst, false, w, wg, cols, Mat::row_major(0, d.l))?;
                }
            }
            let block = &mut out[img * d.out_ch * d.l..(img + 1) * d.out_ch * d.l];
            vectorized(
                #[inline(always)]
                || self.finish(block, b, d.l),
            );
        }
        Ok(())
    }

    /// The ReLU when the op has one, else the identity (NaN propagates, as in torch).
    #[inline(always)]
    pub(crate) fn activate<T: Float>(&self, y: T) -> T {
        #[allow(clippy::eq_op)]
        if !self.relu || y > T::zero() || y != y {
            y
        } else {
            T::zero()
        }
    }

    /// Adds the bias and applies the ReLU to the `[O, L]` output block of one image.
    #[inline(always)]
    pub(crate) fn finish<T: Element>(&self, block: &mut [T], b: &[T], l: usize) {
        if !self.bias && !self.relu {
            return;
        }
        for (o, row) in block.chunks_exact_mut(l).enumerate() {
            let bias = if self.bias { b[o] } else { T::zero() };
            if self.relu {
                // NaN (`v != v`) propagates, as in torch.
                #[allow(clippy::eq_op)]
                row.iter_mut().for_each(|v| {
                    let y = *v + bias;
                    *v = if y > T::zero() || y != y { y } else { T::zero() };
                });
            } else {
                row.iter_mut().for_each(|v| *v += bias);
            }
        }
    }

    /// `dL/dx` from the output gradient (after the ReLU mask) and the weight.
    pub(crate) fn grad_input<T: Element>(&self, gout: &[T], w: &[T], d: Dims) -> Result<Vec<T>> {
        let len = d.n * d.c * d.hw;
        if let Some(s) = Shifted::of(self, d.cg, d.og) {
            let mut gx = Vec::with_capacity(len);
            T::with_scratch(s.grad_input_scratch(&d), |buf| {
                s.grad_input(self, gout, w, d, buf, &mut gx.spare_capacity_mut()[..len])
            })?;
            // SAFETY: `Shifted::grad_input` wrote all `len` entries (it returned `Ok`).
            unsafe { gx.set_len(len) };
            return Ok(gx);
        }
        let mut gx = vec![T::zero(); len];
        if self.is_pointwise() {
            self.grad_input_into(gout, w, d, &mut [], &mut gx)?;
        } else {
            T::with_scratch(d.ck * d.l, |cols| self.grad_input_into(gout, w, d, cols, &mut gx))?;
        }
        Ok(gx)
    }

    fn grad_input_into<T: Element>(
        &self,
        gout: &[T],
        w: &[T],
        d: Dims,
        cols: &mut [T],
        gx: &mut [T],
    ) -> Result<()> {
        let tables = self.tables();
        let pointwise = self.is_pointwise();
        for img in 0..d.n {
            for g in 0..self.groups {
                let wt = Mat::transposed(g * d.og * d.ck, d.ck);
                let go = Mat::row_major((img * d.out_ch + g * d.og) * d.l, d.l);
                let start = (img * d.c + g * d.cg) * d.hw;
                let shape = (d.ck, d.l, d.og);
                if pointwise {
                    // The column gradient is the input gradient itself.
                    matmul(shape, gx, Mat::row_major(start, d.l), false, w, wt, gout, go)?;
                } else {
                    matmul(shape, cols, Mat::row_major(0, d.l), false, w, wt, gout, go)?;
                    let cols = &mut cols[..d.ck * d.l];
                    let gxg = &mut gx[start..start + d.cg * d.hw];
                    vectorized(
                        #[inline(always)]
                        || self.col2im(cols, d.cg, &tables, gxg),
                    );
                }
            }
        }
        Ok(())
    }

    /// `dL/dW` from the input and the output gradient (after the ReLU mask).
    pub(crate) fn grad_weight<T: Element>(&self, x: &[T], gout: &[T], d: Dims) -> Result<Vec<T>> {
        if let Some(s) = Shifted::of(self, d.cg, d.og) {
            return T::with_scratch(s.grad_weight_scratch(&d), |buf| {
                s.grad_weight(self, x, gout, d, buf)
            });
        }
        // Accumulated transposed, `[groups, ck, og]`, then transposed once at the end.
        let mut gw_t = vec![T::zero(); d.out_ch * d.ck];
        let cols_len = if self.is_pointwise() { 0 } else { d.ck * d.l };
        T::with_scratch(cols_len + d.l * d.og, |buf| {
            let (cols, gout_t) = buf.split_at_mut(cols_len);
            self.grad_weight_into(x, gout, d, cols, gout_t, &mut gw_t)
        })?;
        let mut gw = vec![T::zero(); d.out_ch * d.ck];
        for g in 0..self.groups {
            let block = &gw_t[g * d.ck * d.og..(g + 1) * d.ck * d.og];
            for (j, row) in block.chunks_exact(d.og).enumerate() {
                for (o, &v) in row.iter().enumerate() {
                    gw[(g * d.og + o) * d.ck + j] = v;
                }
            }
        }
        Ok(gw)
    }

    /// `dW_g^T [ck, og] += cols [ck, L] @ dout^T [L, og]` per image, computed as the
    /// column-major `dW_g [og, ck] = dout^T^T @ cols^T` so that gemm reads both operands
    /// along their contiguous axis (row-major `cols` as the left operand would be repacked
    /// with strided reads, about half the cost of the product).
    fn grad_weight_into<T: Element>(
        &self,
        x: &[T],
        gout: &[T],
        d: Dims,
        cols: &mut [T],
        gout_t: &mut [T],
        gw_t: &mut [T],
    ) -> Result<()> {
        let tables = self.tables();
        let pointwise = self.is_pointwise();
        for img in 0..d.n {
            for g in 0..self.groups {
                let xstart = (img * d.c + g * d.cg) * d.hw;
                let start = (img * d.out_ch + g * d.og) * d.l;
                vectorized(
                    #[inline(always)]
                    || transpose(&gout[start..start + d.og * d.l], d.og, d.l, gout_t),
                );
                let dst = Mat { offset: g * d.ck * d.og, rs: 1, cs: d.og };
                let lhs = Mat { offset: 0, rs: 1, cs: d.og };
                let shape = (d.og, d.ck, d.l);
                if pointwise {
                    let xt = Mat::transposed(xstart, d.l);
                    matmul(shape, gw_t, dst, true, gout_t, lhs, x, xt)?;
                } else {
                    let xg = &x[xstart..xstart + d.cg * d.hw];
                    vectorized(
                        #[inline(always)]
                        || self.im2col(xg, d.cg, &tables, cols),
                    );
                    let cols_t = Mat::transposed(0, d.l);
                    matmul(shape, gw_t, dst, true, gout_t, lhs, cols, cols_t)?;
                }
            }
        }
        Ok(())
    }
}
