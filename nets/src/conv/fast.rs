//! Fused CPU kernels for every convolution of this module (Conv1d, Conv2d, ConvTranspose2d
//! and the blocks built from them): im2col + GEMM forward, and an explicit backward.
//!
//! For each image and group, the window taps are copied into a `[C_g kH kW, L]` column
//! matrix (im2col; `L = H' W'`) using the same geometry as the generic gather
//! ([`Axis::source`]: stride, dilation, asymmetric or negative padding, zero-stuffing), and
//!
//! * forward: `out[n, g] = W_g [O_g, C_g kH kW] @ cols`,
//! * input gradient: `dcols = W_g^T @ dout[n, g]`, scattered back (col2im, `+=`),
//! * weight gradient: `dW_g += dout[n, g] @ cols^T`, summed over images,
//!
//! with the `gemm` crate (the matrix product candle itself uses; built with its `x86-v4`
//! feature, so AVX-512 kernels run where the CPU has them) writing straight into the NCHW
//! result. The weight gradient is accumulated column-major (`dW_g^T`, with `dout[n, g]`
//! transposed per image, 1/9 the size of the columns for a 3x3 kernel) so that gemm reads
//! both operands along their contiguous axis; this halves its cost against a row-major
//! `cols` operand. The column buffer is a per-thread scratch reused across calls
//! ([`Element::with_scratch`]). Stride-1 column taps are copied as whole runs. The backward
//! skips the gradient of an operand candle does not track (the network's input). The
//! backward ops are themselves not differentiable (no second derivatives). Other devices and dtypes use candle's
//! generic ops (`convolution::conv2d_generic`); both paths are checked against torch's data.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType};
use gemm::Parallelism;
use num_traits::Float;

use super::geometry::Axis;

/// Whether the fused CPU path handles `x` (CPU, f32 or f64).
pub(crate) fn supports(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// The convolution of `x` `[N, C, H, W]` with `weight` `[O, C / groups, kH, kW]` over the
/// window geometry `rows` x `cols`, differentiable in both arguments.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    groups: usize,
    rows: &Axis,
    cols: &Axis,
) -> Result<Tensor> {
    let weight = weight.to_dtype(x.dtype())?;
    x.contiguous()?.apply_op2(&weight.contiguous()?, ConvOp { groups, rows: *rows, cols: *cols })
}

/// The sizes of one convolution, read from the operands' shapes.
#[derive(Debug, Clone, Copy)]
struct Dims {
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

#[derive(Debug, Clone, Copy)]
struct ConvOp {
    groups: usize,
    rows: Axis,
    cols: Axis,
}

impl ConvOp {
    fn dims(&self, x: &Layout, w: &Layout) -> Result<Dims> {
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
    /// or -1 for padding; plus, per column tap, the contiguous run of the column table if it
    /// has one (see [`Tables::runs`]).
    fn tables(&self) -> Tables {
        let table = |a: &Axis| {
            let mut t = Vec::with_capacity(a.k * a.out);
            for tap in 0..a.k {
                t.extend((0..a.out).map(|o| a.source(o, tap).map_or(-1, |i| i as isize)));
            }
            t
        };
        let (rows, cols) = (table(&self.rows), table(&self.cols));
        let out = self.cols.out;
        let runs = (0..self.cols.k).map(|tap| Run::of(&cols[tap * out..(tap + 1) * out])).collect();
        Tables { rows, cols, runs }
    }

    /// Copies the taps of the `cg` channels at `x` (each `H x W`) into `cols` `[ck, l]`.
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
                    row += 1;
                }
            }
        }
    }

    /// Adds the column gradients `cols` `[ck, l]` back onto the `cg` channels at `gx`.
    fn col2im<T: Float>(&self, cols: &[T], cg: usize, tables: &Tables, gx: &mut [T]) {
        let (rt, ct) = (&tables.rows, &tables.cols);
        let (r, c) = (&self.rows, &self.cols);
        let (w, l) = (c.n, r.out * c.out);
        let mut row = 0;
        for ci in 0..cg {
            let plane = &mut gx[ci * r.n * w..(ci + 1) * r.n * w];
            for th in 0..r.k {
                for tw in 0..c.k {
                    let src = &cols[row * l..(row + 1) * l];
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
                    row += 1;
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

fn contiguous<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("conv kernel: non-contiguous operand {:?}", l.dims()),
    }
}

impl ConvOp {
    fn forward<T: Element>(&self, x: &[T], w: &[T], d: Dims) -> Result<Vec<T>> {
        let mut out = vec![T::zero(); d.n * d.out_ch * d.l];
        T::with_scratch(d.ck * d.l, |cols| self.forward_into(x, w, d, cols, &mut out))?;
        Ok(out)
    }

    fn forward_into<T: Element>(
        &self,
        x: &[T],
        w: &[T],
        d: Dims,
        cols: &mut [T],
        out: &mut [T],
    ) -> Result<()> {
        let tables = self.tables();
        for img in 0..d.n {
            for g in 0..self.groups {
                let xg = &x[(img * d.c + g * d.cg) * d.hw..(img * d.c + (g + 1) * d.cg) * d.hw];
                self.im2col(xg, d.cg, &tables, cols);
                let dst = Mat::row_major((img * d.out_ch + g * d.og) * d.l, d.l);
                let wg = Mat::row_major(g * d.og * d.ck, d.ck);
                matmul((d.og, d.l, d.ck), out, dst, false, w, wg, cols, Mat::row_major(0, d.l))?;
            }
        }
        Ok(())
    }

    fn grad_input<T: Element>(&self, gout: &[T], w: &[T], d: Dims) -> Result<Vec<T>> {
        let mut gx = vec![T::zero(); d.n * d.c * d.hw];
        T::with_scratch(d.ck * d.l, |cols| self.grad_input_into(gout, w, d, cols, &mut gx))?;
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
        for img in 0..d.n {
            for g in 0..self.groups {
                let wt = Mat::transposed(g * d.og * d.ck, d.ck);
                let go = Mat::row_major((img * d.out_ch + g * d.og) * d.l, d.l);
                matmul((d.ck, d.l, d.og), cols, Mat::row_major(0, d.l), false, w, wt, gout, go)?;
                let start = (img * d.c + g * d.cg) * d.hw;
                self.col2im(cols, d.cg, &tables, &mut gx[start..start + d.cg * d.hw]);
            }
        }
        Ok(())
    }

    fn grad_weight<T: Element>(&self, x: &[T], gout: &[T], d: Dims) -> Result<Vec<T>> {
        // Accumulated transposed, `[groups, ck, og]`, then transposed once at the end.
        let mut gw_t = vec![T::zero(); d.out_ch * d.ck];
        T::with_scratch(d.ck * d.l + d.l * d.og, |buf| {
            let (cols, gout_t) = buf.split_at_mut(d.ck * d.l);
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
        for img in 0..d.n {
            for g in 0..self.groups {
                let xg = &x[(img * d.c + g * d.cg) * d.hw..(img * d.c + (g + 1) * d.cg) * d.hw];
                self.im2col(xg, d.cg, &tables, cols);
                let start = (img * d.out_ch + g * d.og) * d.l;
                for (o, row) in gout[start..start + d.og * d.l].chunks_exact(d.l).enumerate() {
                    for (l, &v) in row.iter().enumerate() {
                        gout_t[l * d.og + o] = v;
                    }
                }
                let dst = Mat { offset: g * d.ck * d.og, rs: 1, cs: d.og };
                let lhs = Mat { offset: 0, rs: 1, cs: d.og };
                let cols_t = Mat::transposed(0, d.l);
                matmul((d.og, d.ck, d.l), gw_t, dst, true, gout_t, lhs, cols, cols_t)?;
            }
        }
        Ok(())
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
        let d = self.dims(l1, l2)?;
        let shape = Shape::from((d.n, d.out_ch, self.rows.out, self.cols.out));
        let storage = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(self.forward(contiguous(s1, l1)?, contiguous(s2, l2)?, d)?)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(self.forward(contiguous(s1, l1)?, contiguous(s2, l2)?, d)?)
            }
            _ => candle_core::bail!("conv kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        // An operand that is neither a variable nor computed from one (the network's input
        // image) gets no gradient: candle would drop it anyway.
        let gx = if x.track_op() {
            let op = GradInput { op: *self, input_shape: x.shape().clone() };
            Some(grad.apply_op2_no_bwd(w, &op)?)
        } else {
            None
        };
        let gw = if w.track_op() {
            let op = GradWeight { op: *self, weight_shape: w.shape().clone() };
            Some(x.apply_op2_no_bwd(&grad, &op)?)
        } else {
            None
        };
        Ok((gx, gw))
    }
}

/// `dL/dx` from `(dL/dout, weight)`.
struct GradInput {
    op: ConvOp,
    input_shape: Shape,
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
        let storage = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(self.op.grad_input(contiguous(s1, l1)?, contiguous(s2, l2)?, d)?)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(self.op.grad_input(contiguous(s1, l1)?, contiguous(s2, l2)?, d)?)
            }
            _ => candle_core::bail!("conv kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((storage, self.input_shape.clone()))
    }
}

/// `dL/dweight` from `(x, dL/dout)`.
struct GradWeight {
    op: ConvOp,
    weight_shape: Shape,
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
        let storage = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(self.op.grad_weight(contiguous(s1, l1)?, contiguous(s2, l2)?, d)?)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(self.op.grad_weight(contiguous(s1, l1)?, contiguous(s2, l2)?, d)?)
            }
            _ => candle_core::bail!("conv kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((storage, self.weight_shape.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};

    fn var(shape: &[usize], seed: u64) -> Var {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Var::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    /// The fused kernel and the generic gather + matmul agree in value and in both gradients
    /// (the conformance tests run the fused one against torch; this covers the generic one
    /// used on other devices).
    #[test]
    fn fused_kernel_equals_generic_ops() {
        let axis = |n, k, stride, dilation, pad_lo, in_dilation, out| Axis {
            n,
            k,
            stride,
            dilation,
            pad_lo,
            in_dilation,
            out,
        };
        // (x shape, weight shape, groups, rows, cols)
        let cases = [
            ([2, 4, 7, 6], [6, 2, 3, 2], 2, axis(7, 3, 2, 1, 1, 1, 4), axis(6, 2, 1, 2, 0, 1, 5)),
            ([1, 3, 5, 5], [3, 1, 3, 3], 3, axis(5, 3, 1, 2, 2, 2, 9), axis(5, 3, 1, 1, -1, 2, 6)),
            ([2, 2, 4, 3], [5, 2, 1, 1], 1, axis(4, 1, 1, 1, 0, 1, 4), axis(3, 1, 1, 1, 0, 1, 3)),
        ];
        for (xs, ws, g, rows, cols) in cases {
            let x = var(&xs, 1);
            let w = var(&ws, 2);
            let fast = conv2d(&x, &w, g, &rows, &cols).unwrap();
            let generic =
                crate::conv::convolution::conv2d_generic(&x, &w, g, &rows, &cols).unwrap();
            assert_eq!(fast.dims(), generic.dims());
            assert!(max_diff(&fast, &generic) < 1e-12);
            let u = var(fast.dims(), 3).as_tensor().detach();
            let gf = fast.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let gg = generic.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &w] {
                assert!(max_diff(gf.get(v).unwrap(), gg.get(v).unwrap()) < 1e-12);
            }
        }
    }
}
