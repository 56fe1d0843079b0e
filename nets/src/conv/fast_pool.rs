//! Direct CPU kernels for [`MaxPool2d`](super::MaxPool2d) and [`AvgPool2d`](super::AvgPool2d)
//! with explicit backward passes.
//!
//! The generic path gathers every window tap into a `[N, C, L, k]` tensor (`index_select`)
//! and reduces it, and its backward scatters through `index_add`; here each output is
//! computed in place from the window taps of [`Axis::source`] (the same geometry: stride,
//! padding, dilation, ceil mode), for `x` `[N, C, H, W]` contiguous in f32 or f64:
//!
//! * max: `y = max` over the valid taps, the first maximum winning, NaN propagating
//!   (torch's rule); the backward adds the output gradient to that arg-max, recomputed from
//!   `x` so the forward keeps no index buffer,
//! * average: `y = inv[o] * sum` over the valid taps (padding reads 0; summed in the input's
//!   dtype, as the generic path does) with the per-output
//!   factor `inv` of the layer (divisor, `count_include_pad`, `divisor_override`); the
//!   backward adds `inv[o] g` to every valid tap.
//!
//! The backward ops are not themselves differentiable (no second derivatives).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

use super::geometry::Axis;
use crate::simd::vectorized;

/// Max pooling of `x` `[N, C, H, W]` over `rows` x `cols`, differentiable in `x`.
pub(crate) fn max_pool2d(x: &Tensor, rows: &Axis, cols: &Axis) -> Result<Tensor> {
    x.contiguous()?.apply_op1(PoolOp::new(rows, cols, None))
}

/// Average pooling of `x` `[N, C, H, W]`: every window sum times `inv[oh * W' + ow]`.
pub(crate) fn avg_pool2d(x: &Tensor, rows: &Axis, cols: &Axis, inv: Vec<f64>) -> Result<Tensor> {
    x.contiguous()?.apply_op1(PoolOp::new(rows, cols, Some(inv)))
}

/// One pooling: the window geometry as tap tables and, for average pooling, the factors.
struct PoolOp {
    /// `[k, out]` input rows per (tap, output row), -1 for padding.
    rows: Vec<isize>,
    /// `[k, out]` input columns per (tap, output column), -1 for padding.
    cols: Vec<isize>,
    /// `(H, W, kH, kW, H', W')`.
    geometry: [usize; 6],
    /// `None` for max pooling; the per-output factors of average pooling.
    inv: Option<Vec<f64>>,
    /// The column windows are two adjacent inputs that tile the row (kernel 2, stride 2, no
    /// dilation or padding, LeNet's pooling): average pooling then reads and writes each
    /// row's pairs directly instead of through the tap table (same additions, same order).
    pairs: bool,
}

fn tap_table(a: &Axis) -> Vec<isize> {
    let mut t = Vec::with_capacity(a.k * a.out);
    for tap in 0..a.k {
        t.extend((0..a.out).map(|o| a.source(o, tap).map_or(-1, |i| i as isize)));
    }
    t
}

fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("pool kernel: non-contiguous operand {:?}", l.dims()),
    }
}

impl PoolOp {
    fn new(rows: &Axis, cols: &Axis, inv: Option<Vec<f64>>) -> Self {
        let col_taps = tap_table(cols);
        let (k, out) = (cols.k, cols.out);
        let pairs =
            k == 2 && (0..k * out).all(|t| col_taps[t] == (2 * (t % out) + t / out) as isize);
        Self {
            rows: tap_table(rows),
            cols: col_taps,
            geometry: [rows.n, cols.n, rows.k, cols.k, rows.out, cols.out],
            inv,
            pairs,
        }
    }

    /// The number of `H x W` planes of `x`, after checking its shape against the geometry.
    fn planes(&self, x: &Layout) -> Result<usize> {
        let (n, c, h, w) = x.shape().dims4()?;
        let [gh, gw, _, kw, oh, ow] = self.geometry;
        let inv_ok = self.inv.as_ref().is_none_or(|v| v.len() == oh * ow);
        if h != gh || w != gw || !inv_ok || self.cols.len() != kw * ow {
            candle_core::bail!("pool kernel: input {:?} does not match the geometry", x.dims())
        }
        Ok(n * c)
    }

    /// Calls `visit(r, i, taps)` for every output row `r`, every valid window row `i` of
    /// it (input row offset `i * W`) and every column tap, `taps` being that tap's input
    /// column per output column (-1 for padding). The taps of each output are visited in
    /// window order, row by row; the inner loops run along output columns.
    #[inline]
    fn for_each_row_tap(&self, mut visit: impl FnMut(usize, usize, &[isize])) {
        let [_, _, _, kw, _, ow] = self.geometry;
        self.for_each_window_row(|r, row| {
            for tw in 0..kw {
                visit(r, row, &self.cols[tw * ow..(tw + 1) * ow]);
            }
        });
    }

    /// Calls `visit(r, i)` for every output row `r` and every valid window row of it (input
    /// row offset `i`), in window order.
    #[inline(always)]
    fn for_each_window_row(&self, mut visit: impl FnMut(usize, usize)) {
        let [_, w, kh, _, oh, _] = self.geometry;
        for r in 0..oh {
            for th in 0..kh {
                let ih = self.rows[th * oh + r];
                if ih >= 0 {
                    visit(r, ih as usize * w);
                }
            }
        }
    }

    /// The arg-max tap (input offset) of every output of one plane: the first maximum in
    /// window order, NaN winning and staying (torch's rule). `best` is scratch.
    fn argmax<T: WithDType>(&self, plane: &[T], idx: &mut [usize], best: &mut [T]) {
        let ow = self.geometry[5];
        idx.fill(usize::MAX);
        self.for_each_row_tap(|r, row, taps| {
            let (idx, best) = (&mut idx[r * ow..(r + 1) * ow], &mut best[r * ow..(r + 1) * ow]);
            for ((i, b), &iw) in idx.iter_mut().zip(best.iter_mut()).zip(taps) {
                if iw < 0 {
                    continue;
                }
                let v = plane[row + iw as usize];
                // `x != x` is NaN.
                #[allow(clippy::eq_op)]
                if *i == usize::MAX || (*b == *b && (v > *b || v != v)) {
                    *b = v;
                    *i = row + iw as usize;
                }
            }
        });
    }

    #[inline(always)]
    fn forward<T: WithDType>(&self, x: &[T], planes: usize) -> Vec<T> {
        let [h, w, _, _, oh, ow] = self.geometry;
        let (hw, l) = (h * w, oh * ow);
        let mut y = vec![T::zero(); planes * l];
        let mut idx = vec![0; l];
        let mut best = vec![T::zero(); l];
        let inv: Option<Vec<T>> =
            self.inv.as_ref().map(|v| v.iter().map(|&f| T::from_f64(f)).collect());
        for p in 0..planes {
            let plane = &x[p * hw..(p + 1) * hw];
            let out = &mut y[p * l..(p + 1) * l];
            match &inv {
                None => {
                    self.argmax(plane, &mut idx, &mut best);
                    for (o, &i) in out.iter_mut().zip(&idx) {
                        *o = plane[i];
                    }
                }
                Some(inv) => {
                    if self.pairs {
                        self.for_each_window_row(|r, row| {
                            let pairs = plane[row..row + 2 * ow].chunks_exact(2);
                            for (o, pair) in out[r * ow..(r + 1) * ow].iter_mut().zip(pairs) {
                                *o = *o + pair[0] + pair[1];
                            }
                        });
                    } else {
                        self.for_each_row_tap(|r, row, taps| {
                            for (o, &iw) in out[r * ow..(r + 1) * ow].iter_mut().zip(taps) {
                                if iw >= 0 {
                                    *o += plane[row + iw as usize];
                                }
                            }
                        });
                    }
                    for (o, &f) in out.iter_mut().zip(inv) {
                        *o *= f;
                    }
                }
            }
        }
        y
    }

    /// `dL/dx` from `x` and the output gradient `g`.
    #[inline(always)]
    fn backward<T: WithDType>(&self, x: &[T], g: &[T], planes: usize) -> Vec<T> {
        let [h, w, _, _, oh, ow] = self.geometry;
        let (hw, l) = (h * w, oh * ow);
        let mut gx = vec![T::zero(); planes * hw];
        let mut idx = vec![0; l];
        let mut scaled = vec![T::zero(); l];
        for p in 0..planes {
            let gp = &g[p * l..(p + 1) * l];
            let dst = &mut gx[p * hw..(p + 1) * hw];
            match &self.inv {
                None => {
                    self.argmax(&x[p * hw..(p + 1) * hw], &mut idx, &mut scaled);
                    for (&i, &v) in idx.iter().zip(gp) {
                        dst[i] += v;
                    }
                }
                Some(inv) => {
                    for ((s, &v), &f) in scaled.iter_mut().zip(gp).zip(inv) {
                        *s = v * T::from_f64(f);
                    }
                    if self.pairs {
                        self.for_each_window_row(|r, row| {
                            let pairs = dst[row..row + 2 * ow].chunks_exact_mut(2);
                            for (&v, pair) in scaled[r * ow..(r + 1) * ow].iter().zip(pairs) {
                                pair[0] += v;
                                pair[1] += v;
                            }
                        });
                    } else {
                        self.for_each_row_tap(|r, row, taps| {
                            for (&v, &iw) in scaled[r * ow..(r + 1) * ow].iter().zip(taps) {
                                if iw >= 0 {
                                    dst[row + iw as usize] += v;
                                }
                            }
                        });
                    }
                }
            }
        }
        gx
    }
}

impl CustomOp1 for PoolOp {
    fn name(&self) -> &'static str {
        "deeprl-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let planes = self.planes(l)?;
        let (n, c, _, _) = l.shape().dims4()?;
        let y = match s {
            CpuStorage::F32(_) => {
                let x = slice::<f32>(s, l)?;
                CpuStorage::F32(vectorized(
                    #[inline(always)]
                    || self.forward(x, planes),
                ))
            }
            CpuStorage::F64(_) => {
                let x = slice::<f64>(s, l)?;
                CpuStorage::F64(vectorized(
                    #[inline(always)]
                    || self.forward(x, planes),
                ))
            }
            _ => candle_core::bail!("pool kernel: f32 or f64 input expected"),
        };
        Ok((y, Shape::from((n, c, self.geometry[4], self.geometry[5]))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None);
        }
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &PoolGrad(self))?))
    }
}

/// The backward of [`PoolOp`]: `(x, dL/dy)` to `dL/dx`.
struct PoolGrad<'a>(&'a PoolOp);

impl CustomOp2 for PoolGrad<'_> {
    fn name(&self) -> &'static str {
        "deeprl-pool2d-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let planes = self.0.planes(l1)?;
        if l2.shape().elem_count() != planes * self.0.geometry[4] * self.0.geometry[5] {
            candle_core::bail!("pool kernel: gradient {:?} does not match the output", l2.dims())
        }
        let gx = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let (x, g) = (slice::<f32>(s1, l1)?, slice::<f32>(s2, l2)?);
                CpuStorage::F32(vectorized(
                    #[inline(always)]
                    || self.0.backward(x, g, planes),
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let (x, g) = (slice::<f64>(s1, l1)?, slice::<f64>(s2, l2)?);
                CpuStorage::F64(vectorized(
                    #[inline(always)]
                    || self.0.backward(x, g, planes),
                ))
            }
            _ => candle_core::bail!("pool kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((gx, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Tensor;
    use rand::{Rng, SeedableRng};

    use crate::conv::{AvgPool2d, MaxPool2d};
    use crate::gradcheck::check_gradients;
    use crate::test_util::{max_diff, var};

    /// `f(x, fused)` through both paths: equal outputs and input gradients, and the kernel's
    /// backward against central finite differences in f64.
    fn check(
        label: &str,
        shape: &[usize],
        f: impl Fn(&Tensor, bool) -> candle_core::Result<Tensor>,
    ) {
        let x = var(shape, 1);
        let fast = f(x.as_tensor(), true).unwrap();
        let generic = f(x.as_tensor(), false).unwrap();
        assert_eq!(fast.dims(), generic.dims(), "{label}");
        assert!(max_diff(&fast, &generic) < 1e-12, "{label}: outputs differ");
        let u = var(fast.dims(), 2).as_tensor().detach();
        let gf = fast.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
        let gg = generic.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
        let d = max_diff(gf.get(&x).unwrap(), gg.get(&x).unwrap());
        assert!(d < 1e-12, "{label}: gradients differ by {d}");
        let report = check_gradients(
            std::slice::from_ref(&x),
            || f(x.as_tensor(), true)?.mul(&u),
            1e-6,
            1e-7,
            1e-5,
        )
        .unwrap();
        assert!(report.passed(), "{label}: {report:?}");
    }

    #[test]
    fn max_pool_kernel_equals_generic_ops_and_finite_differences() {
        let mut pools = vec![MaxPool2d::new(2), MaxPool2d::new(3).stride(2).padding(1)];
        let mut dilated = MaxPool2d::new(2).stride(1).padding(1);
        dilated.dilation = [2, 1];
        dilated.ceil_mode = true;
        pools.push(dilated);
        let mut rect = MaxPool2d::new(3).stride(2);
        rect.kernel_size = [3, 2];
        rect.ceil_mode = true;
        pools.push(rect);
        for (i, pool) in pools.iter().enumerate() {
            check(&format!("max pool {i} {pool:?}"), &[2, 3, 7, 6], |x, fused| {
                pool.forward_path(x, fused)
            });
        }
    }

    #[test]
    fn avg_pool_kernel_equals_generic_ops_and_finite_differences() {
        let mut pools = vec![AvgPool2d::new(2), AvgPool2d::new(3).stride(2).padding(1)];
        let mut exclude = AvgPool2d::new(3).stride(2).padding(1);
        exclude.count_include_pad = false;
        exclude.ceil_mode = true;
        pools.push(exclude);
        let mut overridden = AvgPool2d::new(2).stride(1);
        overridden.kernel_size = [2, 3];
        overridden.divisor_override = Some(5);
        pools.push(overridden);
        for (i, pool) in pools.iter().enumerate() {
            check(&format!("avg pool {i} {pool:?}"), &[2, 3, 7, 6], |x, fused| {
                pool.forward_path(x, fused)
            });
        }
    }

    /// The pair path of 2-wide, stride-2 windows gives the tap-table path's bits, forward and
    /// backward, and is not taken where a window column falls in the padding.
    #[test]
    fn pair_windows_give_the_tap_path_bits() {
        use super::super::geometry::Axis;
        let axis = |n: usize, pad_lo: isize, out: usize| Axis {
            n,
            k: 2,
            stride: 2,
            dilation: 1,
            pad_lo,
            in_dilation: 1,
            out,
        };
        let (rows, cols) = (axis(7, 0, 3), axis(8, 0, 4));
        let inv = vec![0.25; 12];
        let pairs = super::PoolOp::new(&rows, &cols, Some(inv.clone()));
        assert!(pairs.pairs);
        assert!(!super::PoolOp::new(&rows, &axis(8, 1, 4), Some(inv.clone())).pairs);
        let taps = super::PoolOp { pairs: false, ..super::PoolOp::new(&rows, &cols, Some(inv)) };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f32> = (0..5 * 56).map(|_| rng.random_range(-1.0..1.0)).collect();
        let g: Vec<f32> = (0..5 * 12).map(|_| rng.random_range(-1.0..1.0)).collect();
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(bits(pairs.forward(&x, 5)), bits(taps.forward(&x, 5)));
        assert_eq!(bits(pairs.backward(&x, &g, 5)), bits(taps.backward(&x, &g, 5)));
    }
}
