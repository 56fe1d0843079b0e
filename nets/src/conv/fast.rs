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
//! with the `gemm` crate (the matrix product candle itself uses) writing straight into the
//! NCHW result, so nothing is transposed or copied afterwards. The column buffer is one
//! allocation per call, reused for every image and group. The backward ops are themselves
//! not differentiable (no second derivatives). Other devices and dtypes use candle's
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
    /// or -1 for padding.
    fn tables(&self) -> (Vec<isize>, Vec<isize>) {
        let table = |a: &Axis| {
            let mut t = Vec::with_capacity(a.k * a.out);
            for tap in 0..a.k {
                t.extend((0..a.out).map(|o| a.source(o, tap).map_or(-1, |i| i as isize)));
            }
            t
        };
        (table(&self.rows), table(&self.cols))
    }

    /// Copies the taps of the `cg` channels at `x` (each `H x W`) into `cols` `[ck, l]`.
    fn im2col<T: Float>(
        &self,
        x: &[T],
        cg: usize,
        tables: &(Vec<isize>, Vec<isize>),
        cols: &mut [T],
    ) {
        let (rt, ct) = tables;
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
    fn col2im<T: Float>(
        &self,
        cols: &[T],
        cg: usize,
        tables: &(Vec<isize>, Vec<isize>),
        gx: &mut [T],
    ) {
        let (rt, ct) = tables;
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
    fn forward<T: WithDType + Float>(&self, x: &[T], w: &[T], d: Dims) -> Result<Vec<T>> {
        let tables = self.tables();
        let mut out = vec![T::zero(); d.n * d.out_ch * d.l];
        let mut cols = vec![T::zero(); d.ck * d.l];
        for img in 0..d.n {
            for g in 0..self.groups {
                let xg = &x[(img * d.c + g * d.cg) * d.hw..(img * d.c + (g + 1) * d.cg) * d.hw];
                self.im2col(xg, d.cg, &tables, &mut cols);
                let dst = Mat::row_major((img * d.out_ch + g * d.og) * d.l, d.l);
                let wg = Mat::row_major(g * d.og * d.ck, d.ck);
                matmul(
                    (d.og, d.l, d.ck),
                    &mut out,
                    dst,
                    false,
                    w,
                    wg,
                    &cols,
                    Mat::row_major(0, d.l),
                )?;
            }
        }
        Ok(out)
    }

    fn grad_input<T: WithDType + Float>(&self, gout: &[T], w: &[T], d: Dims) -> Result<Vec<T>> {
        let tables = self.tables();
        let mut gx = vec![T::zero(); d.n * d.c * d.hw];
        let mut cols = vec![T::zero(); d.ck * d.l];
        for img in 0..d.n {
            for g in 0..self.groups {
                let wt = Mat::transposed(g * d.og * d.ck, d.ck);
                let go = Mat::row_major((img * d.out_ch + g * d.og) * d.l, d.l);
                matmul(
                    (d.ck, d.l, d.og),
                    &mut cols,
                    Mat::row_major(0, d.l),
                    false,
                    w,
                    wt,
                    gout,
                    go,
                )?;
                let start = (img * d.c + g * d.cg) * d.hw;
                self.col2im(&cols, d.cg, &tables, &mut gx[start..start + d.cg * d.hw]);
            }
        }
        Ok(gx)
    }

    fn grad_weight<T: WithDType + Float>(&self, x: &[T], gout: &[T], d: Dims) -> Result<Vec<T>> {
        let tables = self.tables();
        let mut gw = vec![T::zero(); d.out_ch * d.ck];
        let mut cols = vec![T::zero(); d.ck * d.l];
        for img in 0..d.n {
            for g in 0..self.groups {
                let xg = &x[(img * d.c + g * d.cg) * d.hw..(img * d.c + (g + 1) * d.cg) * d.hw];
                self.im2col(xg, d.cg, &tables, &mut cols);
                let dst = Mat::row_major(g * d.og * d.ck, d.ck);
                let go = Mat::row_major((img * d.out_ch + g * d.og) * d.l, d.l);
                matmul(
                    (d.og, d.ck, d.l),
                    &mut gw,
                    dst,
                    true,
                    gout,
                    go,
                    &cols,
                    Mat::transposed(0, d.l),
                )?;
            }
        }
        Ok(gw)
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
        let gx =
            grad.apply_op2_no_bwd(w, &GradInput { op: *self, input_shape: x.shape().clone() })?;
        let gw =
            x.apply_op2_no_bwd(&grad, &GradWeight { op: *self, weight_shape: w.shape().clone() })?;
        Ok((Some(gx), Some(gw)))
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
