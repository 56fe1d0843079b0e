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
//! Stride-1 column taps are copied as whole runs.
//!
//! Bias and ReLU live inside the op (`relu(conv(x) + b)`), so a layer records one graph
//! node instead of three: candle's backward zero-fills and adds a fresh gradient tensor
//! for every edge of the graph, a full pass over the activation each. The backward skips
//! the gradient of an operand candle does not track (the network's input). The backward
//! ops are themselves not differentiable (no second derivatives). The transposed
//! convolution reuses these kernels (`fast_transpose`). Other devices and dtypes use
//! candle's generic ops (`convolution::conv2d_generic`); both paths are checked against
//! torch's data.

use candle_core::WithDType;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use num_traits::Float;

use super::fast_bias::bias_grad;
use super::fast_relu::relu_grad;
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
    n: usize,
    c: usize,
    hw: usize,
    out_ch: usize,
    cg: usize,
    og: usize,
    /// `C_g kH kW`, the rows of the column matrix.
    ck: usize,
    /// Output positions per image.
    l: usize,
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
    fn is_pointwise(&self) -> bool {
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

    /// Source index tables: entry `t * out + o` is the input index of tap `t` at output `o`,
    /// or -1 for padding; plus, per tap, the contiguous run of each table if it has one (see
    /// [`Tables::runs`] and [`Tables::row_runs`]).
    fn tables(&self) -> Tables {
        let table = |a: &Axis| {
            let mut t = Vec::with_capacity(a.k * a.out);
            for tap in 0..a.k {
                t.extend((0..a.out).map(|o| a.source(o, tap).map_or(-1, |i| i as isize)));
            }
            t
        };
        let runs = |a: &Axis, t: &[isize]| -> Vec<Option<Run>> {
            (0..a.k).map(|tap| Run::of(&t[tap * a.out..(tap + 1) * a.out])).collect()
        };
        let (rows, cols) = (table(&self.rows), table(&self.cols));
        let (row_runs, runs) = (runs(&self.rows, &rows), runs(&self.cols, &cols));
        // Same width in and out: consecutive output rows are consecutive input rows one
        // row length apart in both, so a tap with runs in both axes is one shifted block.
        let blocks = self.cols.out == self.cols.n;
        Tables { rows, cols, runs, row_runs, blocks }
    }

    /// Copies the taps of the `cg` channels at `x` (each `H x W`) into `cols` `[ck, l]`.
    #[inline(always)]
    fn im2col<T: Float>(&self, x: &[T], cg: usize, tables: &Tables, cols: &mut [T]) {
        let (rt, ct) = (&tables.rows, &tables.cols);
        let (r, c) = (&self.rows, &self.cols);
        let (w, l) = (c.n, r.out * c.out);
        let mut row = 0;
        for ci in 0..cg {
            let plane = &x[ci * r.n * w..(ci + 1) * r.n * w];
            for th in 0..r.k {
                for tw in 0..c.k {
                    let dst = &mut cols[row * l..(row + 1) * l];
                    row += 1;
                    if let Some(block) = tables.block(th, tw, w) {
                        dst[..block.start].fill(T::zero());
                        dst[block.end..].fill(T::zero());
                        let len = block.end - block.start;
                        dst[block.start..block.end]
                            .copy_from_slice(&plane[block.src..block.src + len]);
                        // The block also copied the neighbouring rows' ends into the
                        // padding columns of its inner rows.
                        block.for_each_gap(|gap| dst[gap].fill(T::zero()));
                        continue;
                    }
                    let ctab = &ct[tw * c.out..(tw + 1) * c.out];
                    for oh in 0..r.out {
                        let seg = &mut dst[oh * c.out..(oh + 1) * c.out];
                        let ih = rt[th * r.out + oh];
                        if ih < 0 {
                            seg.fill(T::zero());
                            continue;
                        }
                        let src = &plane[ih as usize * w..(ih as usize + 1) * w];
                        if let Some(run) = tables.runs[tw] {
                            seg[..run.lo].fill(T::zero());
                            seg[run.lo..run.hi].copy_from_slice(&src[run.src..run.src + run.len()]);
                            seg[run.hi..].fill(T::zero());
                            continue;
                        }
                        for (d, &iw) in seg.iter_mut().zip(ctab) {
                            *d = if iw < 0 { T::zero() } else { src[iw as usize] };
                        }
                    }
                }
            }
        }
    }

    /// Adds the column gradients `cols` `[ck, l]` back onto the `cg` channels at `gx`
    /// (`cols` is scratch: its padding entries are zeroed on the way).
    #[inline(always)]
    fn col2im<T: Float>(&self, cols: &mut [T], cg: usize, tables: &Tables, gx: &mut [T]) {
        let (rt, ct) = (&tables.rows, &tables.cols);
        let (r, c) = (&self.rows, &self.cols);
        let (w, l) = (c.n, r.out * c.out);
        let mut row = 0;
        for ci in 0..cg {
            let plane = &mut gx[ci * r.n * w..(ci + 1) * r.n * w];
            for th in 0..r.k {
                for tw in 0..c.k {
                    let src = &mut cols[row * l..(row + 1) * l];
                    row += 1;
                    if let Some(block) = tables.block(th, tw, w) {
                        // Entries that read padding must add nothing to the neighbouring
                        // rows' ends that the block covers.
                        block.for_each_gap(|gap| src[gap].fill(T::zero()));
                        let len = block.end - block.start;
                        let dst = &mut plane[block.src..block.src + len];
                        for (d, &v) in dst.iter_mut().zip(&src[block.start..block.end]) {
                            *d = *d + v;
                        }
                        continue;
                    }
                    let ctab = &ct[tw * c.out..(tw + 1) * c.out];
                    for oh in 0..r.out {
                        let ih = rt[th * r.out + oh];
                        if ih < 0 {
                            continue;
                        }
                        let dst = &mut plane[ih as usize * w..(ih as usize + 1) * w];
                        let seg = &src[oh * c.out..(oh + 1) * c.out];
                        if let Some(run) = tables.runs[tw] {
                            let dst = &mut dst[run.src..run.src + run.len()];
                            for (d, &v) in dst.iter_mut().zip(&seg[run.lo..run.hi]) {
                                *d = *d + v;
                            }
                            continue;
                        }
                        for (&v, &iw) in seg.iter().zip(ctab) {
                            if iw >= 0 {
                                dst[iw as usize] = dst[iw as usize] + v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The gather tables of one convolution (see [`ConvOp::tables`]).
struct Tables {
    rows: Vec<isize>,
    cols: Vec<isize>,
    /// Per column tap: `Some` when its valid outputs `lo..hi` read consecutive input columns
    /// from `src` on (stride 1 without zero-stuffing), so im2col/col2im copy whole runs.
    runs: Vec<Option<Run>>,
    /// The same per row tap: valid output rows `lo..hi` read consecutive input rows.
    row_runs: Vec<Option<Run>>,
    /// The output rows are as wide as the input rows.
    blocks: bool,
}

impl Tables {
    /// For a tap whose rows and columns both run (stride 1, no zero-stuffing) on an image
    /// whose output rows are as wide as its `w`-wide input rows, the column-matrix row of
    /// the tap is one contiguous shifted copy of the input plane: entries `start..end` of
    /// it are input elements `src..src + (end - start)`, except the padding columns of
    /// the inner rows, which the block also spans ([`Block::for_each_gap`]).
    fn block(&self, th: usize, tw: usize, w: usize) -> Option<Block> {
        if !self.blocks {
            return None;
        }
        let (rows, cols) = (self.row_runs[th]?, self.runs[tw]?);
        Some(Block {
            start: rows.lo * w + cols.lo,
            end: (rows.hi - 1) * w + cols.hi,
            src: rows.src * w + cols.src,
            rows: (rows.lo, rows.hi),
            cols: (cols.lo, cols.hi),
            w,
        })
    }
}

/// One tap's shifted block of the column matrix (see [`Tables::block`]).
struct Block {
    start: usize,
    end: usize,
    src: usize,
    rows: (usize, usize),
    cols: (usize, usize),
    w: usize,
}

impl Block {
    /// Calls `f` with the ranges of the column-matrix row inside `start..end` that read
    /// padding: the columns before `cols.0` and from `cols.1` on, between consecutive
    /// valid rows.
    fn for_each_gap(&self, mut f: impl FnMut(std::ops::Range<usize>)) {
        for r in self.rows.0..self.rows.1 - 1 {
            let gap = r * self.w + self.cols.1..(r + 1) * self.w + self.cols.0;
            if !gap.is_empty() {
                f(gap);
            }
        }
    }
}

/// Outputs `lo..hi` of a column tap read input columns `src..src + (hi - lo)`; the others
/// read padding.
#[derive(Debug, Clone, Copy)]
struct Run {
    lo: usize,
    hi: usize,
    src: usize,
}

impl Run {
    fn of(tab: &[isize]) -> Option<Run> {
        let lo = tab.iter().position(|&i| i >= 0)?;
        let hi = tab.iter().rposition(|&i| i >= 0)? + 1;
        let src = tab[lo];
        let consecutive = tab[lo..hi].iter().zip(src..).all(|(&i, want)| i == want);
        consecutive.then_some(Run { lo, hi, src: src as usize })
    }

    fn len(&self) -> usize {
        self.hi - self.lo
    }
}

/// The element types of the kernels, each with a per-thread column buffer that is reused
/// from call to call: a fresh multi-megabyte buffer per convolution would be mapped and
/// page-faulted in again every time. A thread keeps the largest buffer it has needed.
pub(crate) trait Element: WithDType + Float {
    /// Runs `f` on a scratch slice of `len` elements (contents unspecified).
    fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! element {
    ($t:ty, $key:ident) => {
        thread_local! {
            static $key: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
        }

        impl Element for $t {
            fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                $key.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        if buf.len() < len {
                            buf.resize(len, 0.0);
                        }
                        f(&mut buf[..len])
                    }
                    // Only reachable by re-entry, which the kernels never do; stay correct.
                    Err(_) => f(&mut vec![0.0; len]),
                })
            }
        }
    };
}

element!(f32, COLS_F32);
element!(f64, COLS_F64);

/// A row-major matrix view for [`matmul`]: element `(i, j)` is at `offset + i rs + j cs`.
#[derive(Clone, Copy)]
struct Mat {
    offset: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    fn row_major(offset: usize, cols: usize) -> Self {
        Self { offset, rs: cols, cs: 1 }
    }

    fn transposed(offset: usize, cols_of_original: usize) -> Self {
        Self { offset, rs: 1, cs: cols_of_original }
    }

    /// One past the largest index of an `r x c` view (for the bounds check).
    fn end(&self, r: usize, c: usize) -> usize {
        if r == 0 || c == 0 {
            self.offset
        } else {
            self.offset + (r - 1) * self.rs + (c - 1) * self.cs + 1
        }
    }
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]` with the `gemm` crate; `accumulate` adds to `dst`.
#[allow(clippy::too_many_arguments)]
fn matmul<T: 'static + Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    d: Mat,
    accumulate: bool,
    lhs: &[T],
    a: Mat,
    rhs: &[T],
    b: Mat,
) -> Result<()> {
    if d.end(m, n) > dst.len() || a.end(m, k) > lhs.len() || b.end(k, n) > rhs.len() {
        candle_core::bail!("conv kernel: matrix view out of bounds ({m}x{n}x{k})")
    }
    let parallelism = match candle_core::utils::get_num_threads() {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    };
    let alpha = if accumulate { T::one() } else { T::zero() };
    // SAFETY: the three views were checked to lie inside their slices above, `dst` is a
    // unique borrow that does not alias `lhs` or `rhs`, and T is f32 or f64 (the only types
    // the callers instantiate), which gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(d.offset),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr().add(a.offset),
            a.cs as isize,
            a.rs as isize,
            rhs.as_ptr().add(b.offset),
            b.cs as isize,
            b.rs as isize,
            alpha,
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

pub(crate) fn contiguous<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("conv kernel: non-contiguous operand {:?}", l.dims()),
    }
}

impl ConvOp {
    /// The forward values: `relu?(conv(x, w) + b)` (`b` empty without a bias).
    pub(crate) fn forward<T: Element>(&self, x: &[T], w: &[T], b: &[T], d: Dims) -> Result<Vec<T>> {
        let mut out = vec![T::zero(); d.n * d.out_ch * d.l];
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
                    vectorized(|| self.im2col(xg, d.cg, &tables, cols));
                    matmul(shape, out, dst, false, w, wg, cols, Mat::row_major(0, d.l))?;
                }
            }
            let block = &mut out[img * d.out_ch * d.l..(img + 1) * d.out_ch * d.l];
            vectorized(|| self.finish(block, b, d.l));
        }
        Ok(())
    }

    /// Adds the bias and applies the ReLU to the `[O, L]` output block of one image.
    #[inline(always)]
    fn finish<T: Element>(&self, block: &mut [T], b: &[T], l: usize) {
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
        let mut gx = vec![T::zero(); d.n * d.c * d.hw];
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
                    vectorized(|| self.col2im(cols, d.cg, &tables, gxg));
                }
            }
        }
        Ok(())
    }

    /// `dL/dW` from the input and the output gradient (after the ReLU mask).
    pub(crate) fn grad_weight<T: Element>(&self, x: &[T], gout: &[T], d: Dims) -> Result<Vec<T>> {
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
                vectorized(|| transpose(&gout[start..start + d.og * d.l], d.og, d.l, gout_t));
                let dst = Mat { offset: g * d.ck * d.og, rs: 1, cs: d.og };
                let lhs = Mat { offset: 0, rs: 1, cs: d.og };
                let shape = (d.og, d.ck, d.l);
                if pointwise {
                    let xt = Mat::transposed(xstart, d.l);
                    matmul(shape, gw_t, dst, true, gout_t, lhs, x, xt)?;
                } else {
                    let xg = &x[xstart..xstart + d.cg * d.hw];
                    vectorized(|| self.im2col(xg, d.cg, &tables, cols));
                    let cols_t = Mat::transposed(0, d.l);
                    matmul(shape, gw_t, dst, true, gout_t, lhs, cols, cols_t)?;
                }
            }
        }
        Ok(())
    }
}

/// `dst [cols, rows] = src [rows, cols]^T` (row-major), in square tiles so that both the
/// reads and the writes stay within a few cache lines.
#[inline(always)]
fn transpose<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const TILE: usize = 16;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                let row = &src[i * cols..(i + 1) * cols];
                for j in j0..(j0 + TILE).min(cols) {
                    dst[j * rows + i] = row[j];
                }
            }
        }
    }
}

/// Runs `f` on the f32 or f64 slices of two storages of one dtype.
macro_rules! dispatch2 {
    ($s1:expr, $l1:expr, $s2:expr, $l2:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($s1, $s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let ($a, $b) = (contiguous::<f32>($s1, $l1)?, contiguous::<f32>($s2, $l2)?);
                CpuStorage::F32($body)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let ($a, $b) = (contiguous::<f64>($s1, $l1)?, contiguous::<f64>($s2, $l2)?);
                CpuStorage::F64($body)
            }
            _ => candle_core::bail!("conv kernel: f32 or f64 operands of one dtype expected"),
        }
    };
}
pub(crate) use dispatch2;

/// Runs `f` on the f32 or f64 slices of three storages of one dtype.
macro_rules! dispatch3 {
    ($s1:expr, $l1:expr, $s2:expr, $l2:expr, $s3:expr, $l3:expr, |$a:ident, $b:ident, $c:ident| $body:expr) => {
        match ($s1, $s2, $s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let ($a, $b, $c) = (
                    contiguous::<f32>($s1, $l1)?,
                    contiguous::<f32>($s2, $l2)?,
                    contiguous::<f32>($s3, $l3)?,
                );
                CpuStorage::F32($body)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let ($a, $b, $c) = (
                    contiguous::<f64>($s1, $l1)?,
                    contiguous::<f64>($s2, $l2)?,
                    contiguous::<f64>($s3, $l3)?,
                );
                CpuStorage::F64($body)
            }
            _ => candle_core::bail!("conv kernel: f32 or f64 operands of one dtype expected"),
        }
    };
}
pub(crate) use dispatch3;

impl ConvOp {
    /// The backward shared by the two- and three-operand forms: the output gradient is
    /// masked by the ReLU (`res > 0`), then gives the input, weight and bias gradients of
    /// the operands candle tracks.
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad = if self.relu { relu_grad(res, &grad)? } else { grad };
        let plain = ConvOp { bias: false, relu: false, ..*self };
        // An operand that is neither a variable nor computed from one (the network's input
        // image) gets no gradient: candle would drop it anyway.
        let gx = if x.track_op() {
            let op = GradInput { op: plain, input_shape: x.shape().clone() };
            Some(grad.apply_op2_no_bwd(w, &op)?)
        } else {
            None
        };
        let gw = if w.track_op() {
            let op = GradWeight { op: plain, weight_shape: w.shape().clone() };
            Some(x.apply_op2_no_bwd(&grad, &op)?)
        } else {
            None
        };
        let gb = bias_grad(b, &grad)?;
        Ok((gx, gw, gb))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "deeprl-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if self.bias {
            candle_core::bail!("conv kernel: a convolution with a bias takes three operands")
        }
        let d = self.dims(l1, l2)?;
        let shape = Shape::from((d.n, d.out_ch, self.rows.out, self.cols.out));
        let storage = dispatch2!(s1, l1, s2, l2, |x, w| self.forward(x, w, &[], d)?);
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gw, _) = self.backward(x, w, None, res, grad)?;
        Ok((gx, gw))
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "deeprl-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(l1, l2)?;
        if !self.bias || l3.shape().elem_count() != d.out_ch {
            candle_core::bail!("conv kernel: bias {:?} for {} output channels", l3.dims(), d.out_ch)
        }
        let shape = Shape::from((d.n, d.out_ch, self.rows.out, self.cols.out));
        let storage = dispatch3!(s1, l1, s2, l2, s3, l3, |x, w, b| self.forward(x, w, b, d)?);
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, Some(b), res, grad)
    }
}

/// `dL/dx` from `(dL/dout, weight)`.
pub(crate) struct GradInput {
    pub op: ConvOp,
    pub input_shape: Shape,
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "deeprl-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.op.dims(&Layout::contiguous(self.input_shape.clone()), l2)?;
        let storage = dispatch2!(s1, l1, s2, l2, |g, w| self.op.grad_input(g, w, d)?);
        Ok((storage, self.input_shape.clone()))
    }
}

/// `dL/dweight` from `(x, dL/dout)`.
pub(crate) struct GradWeight {
    pub op: ConvOp,
    pub weight_shape: Shape,
}

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "deeprl-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.op.dims(l1, &Layout::contiguous(self.weight_shape.clone()))?;
        let storage = dispatch2!(s1, l1, s2, l2, |x, g| self.op.grad_weight(x, g, d)?);
        Ok((storage, self.weight_shape.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};

    use crate::gradcheck::check_gradients;

    fn var(shape: &[usize], seed: u64) -> Var {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Var::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    fn axis(
        n: usize,
        k: usize,
        stride: usize,
        dilation: usize,
        pad_lo: isize,
        in_dil: usize,
    ) -> Axis {
        let span = (dilation * (k - 1)) as isize;
        let full = ((n - 1) * in_dil) as isize + 1 + 2 * pad_lo - span;
        let out = ((full - 1) / stride as isize + 1) as usize;
        Axis { n, k, stride, dilation, pad_lo, in_dilation: in_dil, out }
    }

    /// (x shape, weight shape, groups, rows, cols).
    type Case = ([usize; 4], [usize; 4], usize, Axis, Axis);

    /// Grouped, strided, dilated, zero-stuffed
    /// with negative padding, pointwise (1x1, stride 1: no column matrix), and "same" size
    /// with stride 1 (shifted blocks).
    fn cases() -> Vec<Case> {
        vec![
            ([2, 4, 7, 6], [6, 2, 3, 2], 2, axis(7, 3, 2, 1, 1, 1), axis(6, 2, 1, 2, 0, 1)),
            ([1, 3, 5, 5], [3, 1, 3, 3], 3, axis(5, 3, 1, 2, 2, 2), axis(5, 3, 1, 1, -1, 2)),
            ([2, 2, 4, 3], [5, 2, 1, 1], 1, axis(4, 1, 1, 1, 0, 1), axis(3, 1, 1, 1, 0, 1)),
            ([2, 4, 4, 3], [6, 2, 1, 1], 2, axis(4, 1, 1, 1, 0, 1), axis(3, 1, 1, 1, 0, 1)),
            // "same" size: each tap's column row is one shifted block of the plane.
            ([2, 3, 5, 6], [4, 3, 3, 3], 1, axis(5, 3, 1, 1, 1, 1), axis(6, 3, 1, 2, 2, 1)),
        ]
    }

    /// The generic composition `relu?(conv(x) + b)` from candle ops.
    fn generic(
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        relu: bool,
        g: usize,
        rows: &Axis,
        cols: &Axis,
    ) -> Tensor {
        let mut y = crate::conv::convolution::conv2d_generic(x, w, g, rows, cols).unwrap();
        if let Some(b) = b {
            y = y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1)).unwrap()).unwrap();
        }
        if relu {
            y = y.relu().unwrap();
        }
        y
    }

    /// The fused kernel and the generic gather + matmul agree in value and in every
    /// gradient, with and without the fused bias and ReLU (the conformance tests run the
    /// fused one against torch; this covers the generic one used on other devices).
    #[test]
    fn fused_kernel_equals_generic_ops() {
        for (i, (xs, ws, g, rows, cols)) in cases().into_iter().enumerate() {
            for (bias, relu) in [(false, false), (true, false), (false, true), (true, true)] {
                let x = var(&xs, 1 + i as u64);
                let w = var(&ws, 2);
                let b = var(&[ws[0]], 4);
                let bt = bias.then_some(b.as_tensor());
                let fast = conv2d(&x, &w, bt, relu, g, &rows, &cols).unwrap();
                let gen = generic(&x, &w, bt, relu, g, &rows, &cols);
                assert_eq!(fast.dims(), gen.dims());
                assert!(max_diff(&fast, &gen) < 1e-12, "case {i} bias {bias} relu {relu}");
                let u = var(fast.dims(), 3).as_tensor().detach();
                let gf = fast.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                let gg = gen.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                let vars: &[&Var] = if bias { &[&x, &w, &b] } else { &[&x, &w] };
                for v in vars {
                    let d = max_diff(gf.get(v).unwrap(), gg.get(v).unwrap());
                    assert!(d < 1e-12, "case {i} bias {bias} relu {relu}: gradient off by {d}");
                }
            }
        }
    }

    /// The explicit backward (input, weight and bias, through the fused ReLU) against
    /// central finite differences in f64, on a strided and on a pointwise convolution.
    #[test]
    fn fused_kernel_gradients_match_finite_differences() {
        for (i, (xs, ws, g, rows, cols)) in cases().into_iter().enumerate().skip(1) {
            let x = var(&xs, 10 + i as u64);
            let w = var(&ws, 11);
            // A bias shifts the pre-activations away from the ReLU's kink at 0 for most
            // outputs; the finite differences use a step far below the typical distance.
            let b = var(&[ws[0]], 12);
            let f = || {
                let y = conv2d(&x, &w, Some(b.as_tensor()), true, g, &rows, &cols)?;
                y.sqr()
            };
            let vars = [x.clone(), w.clone(), b.clone()];
            let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
            assert!(report.passed(), "case {i}: {report:?}");
        }
    }
}
