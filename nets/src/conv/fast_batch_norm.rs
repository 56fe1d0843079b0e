//! Fused CPU kernels for [`BatchNorm`](super::BatchNorm): one pass for the batch statistics,
//! one for the normalisation, one for the whole backward.
//!
//! candle's generic path reduces over the batch and position axes with strided reductions
//! and records about ten graph nodes whose backward repeats them; here, for `x` `[N, C, ...]`
//! (any rank from 2, read as `[N, C, L]`; contiguous, f32 or f64) and per channel `c` over
//! the `M = N L` values:
//!
//! * statistics ([`batch_stats`]): `mean`, biased `var` (two passes, so no cancellation; each
//!   row of `L` values summed in `T` lanes, the rows in f64),
//! * forward: `y = x s + t` with `s = w / sqrt(var + eps)`, `t = b - mean s`,
//! * backward (Ioffe and Szegedy 2015, section 3), with `x^ = (x - mean) / sqrt(var + eps)`:
//!   `db = sum(g)`, `dw = sum(g x^)`, and with batch statistics
//!   `dx = w / sqrt(var + eps) (g - db / M - x^ dw / M)`; with fixed (running) statistics
//!   `dx = w / sqrt(var + eps) g`.
//!
//! Two activations the CNN blocks apply right after a batch norm are fused into the same op
//! ([`Fusion`]): `relu(bn(x))` (a convolution unit) and `relu(bn(x) + r)` (the end of a
//! residual unit, `r` the shortcut). The backward first masks the output gradient with
//! `y > 0` (torch's ReLU rule), which is also the shortcut's gradient. Every fused op saves
//! candle's backward a gradient tensor that it would zero-fill and add into, and a pass
//! over the activation. The input keeps its rank (no reshape node, which would cost
//! another such gradient tensor).
//!
//! The statistics live in the op (host vectors), so the backward needs no extra tensors; the
//! backward op is not itself differentiable (no second derivatives). Other devices use the
//! generic tensor ops of `batch_norm.rs`; both paths are compared in the tests below.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

use crate::simd::vectorized;

/// What follows the normalisation inside the fused op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fusion {
    /// `y = bn(x)`.
    None,
    /// `y = relu(bn(x))`.
    Relu,
    /// `y = relu(bn(x) + r)` for a residual `r` of `x`'s shape.
    AddRelu,
}

/// Per channel mean and biased variance of `x` `[N, C, ...]`, accumulated in f64.
pub(crate) fn batch_stats(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let stats = x.contiguous()?.apply_op1_no_bwd(&Stats)?.to_vec2::<f64>()?;
    let mut it = stats.into_iter();
    match (it.next(), it.next()) {
        (Some(mean), Some(var)) => Ok((mean, var)),
        _ => candle_core::bail!("batch norm kernel: statistics of shape [2, C] expected"),
    }
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` per channel of `x` `[N, C, ...]`, then
/// `fusion` (with `residual` for [`Fusion::AddRelu`]), differentiable in `x`, `weight`, `bias`
/// and `residual` (all of `x`'s dtype). `batch_stats` says that `mean` and `var` were
/// computed from `x` itself (training), so the backward goes through them as well.
#[allow(clippy::too_many_arguments)]
pub(crate) fn normalize(
    x: &Tensor,
    mean: Vec<f64>,
    var: &[f64],
    eps: f64,
    weight: &Tensor,
    bias: &Tensor,
    batch_stats: bool,
    fusion: Fusion,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    // The backward needs the weight's values; a host copy of C numbers.
    let weight_host = weight.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
    let op = NormOp::new(mean, var, eps, weight_host, batch_stats, fusion);
    let x = x.contiguous()?;
    match (fusion, residual) {
        (Fusion::AddRelu, Some(r)) => {
            if r.dims() != x.dims() {
                candle_core::bail!(
                    "batch norm kernel: residual {:?} for input {:?}",
                    r.dims(),
                    x.dims()
                )
            }
            // Weight and bias travel as one operand (a CustomOp has at most three).
            let wb = Tensor::cat(&[weight, bias], 0)?;
            x.apply_op3(&r.contiguous()?, &wb, op)
        }
        (Fusion::AddRelu, None) => candle_core::bail!("batch norm kernel: residual missing"),
        _ => x.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op),
    }
}

fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("batch norm kernel: non-contiguous operand {:?}", l.dims()),
    }
}

/// `(N, C, L)` of a `[N, C, ...]` layout.
fn ncl(l: &Layout) -> Result<(usize, usize, usize)> {
    match l.dims() {
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
        dims => candle_core::bail!("batch norm kernel: input of rank >= 2 expected, got {dims:?}"),
    }
}

/// The statistics op: `[N, C, L]` to f64 `[2, C]` (means, then biased variances).
pub(crate) struct Stats;

impl Stats {
    #[inline(always)]
    pub(crate) fn run<T: WithDType>(x: &[T], (n, c, l): (usize, usize, usize)) -> Vec<f64> {
        let m = (n * l) as f64;
        let mut out = vec![0.0; 2 * c];
        for ch in 0..c {
            // Plain loops rather than iterator adaptors: an adaptor's `fold` is not inlined
            // into the vectorised caller (`simd::vectorized`), so it would run on SSE2.
            let row = |i: usize| &x[(i * c + ch) * l..(i * c + ch + 1) * l];
            let mut sum = 0.0;
            for i in 0..n {
                sum += centred_sums(row(i), T::zero()).0;
            }
            let mean = sum / m;
            let shift = T::from_f64(mean);
            let mut sq = 0.0;
            for i in 0..n {
                sq += centred_sums(row(i), shift).1;
            }
            out[ch] = mean;
            out[c + ch] = sq / m;
        }
        out
    }
}

/// `(sum (x - shift), sum (x - shift)^2)` over one row, in `T` lanes (see [`masked_sums`]).
#[inline(always)]
fn centred_sums<T: WithDType>(x: &[T], shift: T) -> (f64, f64) {
    const LANES: usize = 16;
    let (mut s1, mut s2) = ([T::zero(); LANES], [T::zero(); LANES]);
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for xc in chunks {
        for j in 0..LANES {
            let d = xc[j] - shift;
            s1[j] += d;
            s2[j] += d * d;
        }
    }
    for (j, &xv) in rest.iter().enumerate() {
        let d = xv - shift;
        s1[j] += d;
        s2[j] += d * d;
    }
    let total = |a: [T; LANES]| a.iter().map(|v| v.to_f64()).sum::<f64>();
    (total(s1), total(s2))
}

/// `sum_i f(a[i], b[i])` (in f64) over two slices of one length, with eight independent
/// accumulators: a single running sum is bound by the latency of each addition, while
/// eight lanes vectorise. The order is fixed, so the result is reproducible.
#[inline(always)]
pub(crate) fn lane_sum<T: WithDType>(a: &[T], b: &[T], f: impl Fn(f64, f64) -> f64) -> f64 {
    lane_sum3(a, b, b, |x, y, _| f(x, y))
}

/// [`lane_sum`] over three slices: `sum_i f(a[i], b[i], c[i])`.
#[inline(always)]
fn lane_sum3<T: WithDType>(a: &[T], b: &[T], c: &[T], f: impl Fn(f64, f64, f64) -> f64) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let (ca, cb, cc) = (a.chunks_exact(LANES), b.chunks_exact(LANES), c.chunks_exact(LANES));
    let (ra, rb, rc) = (ca.remainder(), cb.remainder(), cc.remainder());
    for ((xa, xb), xc) in ca.zip(cb).zip(cc) {
        for j in 0..LANES {
            acc[j] += f(xa[j].to_f64(), xb[j].to_f64(), xc[j].to_f64());
        }
    }
    for (j, ((&va, &vb), &vc)) in ra.iter().zip(rb).zip(rc).enumerate() {
        acc[j] += f(va.to_f64(), vb.to_f64(), vc.to_f64());
    }
    acc.iter().sum()
}

impl CustomOp1 for Stats {
    fn name(&self) -> &'static str {
        "deeprl-batch-norm-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = ncl(l)?;
        let out = match s {
            CpuStorage::F32(_) => {
                let x = slice::<f32>(s, l)?;
                vectorized(
                    #[inline(always)]
                    || Self::run(x, d),
                )
            }
            CpuStorage::F64(_) => {
                let x = slice::<f64>(s, l)?;
                vectorized(
                    #[inline(always)]
                    || Self::run(x, d),
                )
            }
            _ => candle_core::bail!("batch norm kernel: f32 or f64 input expected"),
        };
        Ok((CpuStorage::F64(out), Shape::from((2, d.1))))
    }
}

/// The normalisation with the statistics it was built with: `(x, weight, bias) -> y`, or
/// with [`Fusion::AddRelu`] `(x, residual, [weight, bias]) -> y`.
pub(crate) struct NormOp {
    pub(crate) mean: Vec<f64>,
    inv_std: Vec<f64>,
    /// The weight's values, for the backward.
    weight: Vec<f64>,
    batch_stats: bool,
    fusion: Fusion,
}

impl NormOp {
    /// The normalisation with per-channel `mean` and biased `var` (from the batch when
    /// `batch_stats`, else the running statistics), `eps`, and the weight's values.
    pub(crate) fn new(
        mean: Vec<f64>,
        var: &[f64],
        eps: f64,
        weight: Vec<f64>,
        batch_stats: bool,
        fusion: Fusion,
    ) -> Self {
        let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        Self { mean, inv_std, weight, batch_stats, fusion }
    }

    /// Whether the statistics are the batch's (training) rather than the running ones.
    pub(crate) fn batch_stats(&self) -> bool {
        self.batch_stats
    }

    /// `(N, C, L)`, after checking that the second and third operands (weight and bias of
    /// `c` values each, or the residual and both parameters) match `x` and the statistics.
    fn check(&self, x: &Layout, w: &Layout, b: &Layout) -> Result<(usize, usize, usize)> {
        let d = ncl(x)?;
        let c = d.1;
        let params_ok = if self.fusion == Fusion::AddRelu {
            w.dims() == x.dims() && b.shape().elem_count() == 2 * c
        } else {
            w.shape().elem_count() == c && b.shape().elem_count() == c
        };
        if !params_ok || self.mean.len() != c {
            candle_core::bail!(
                "batch norm kernel: input {:?}, operands {:?} and {:?} and {} statistics do not \
                 match ({:?})",
                x.dims(),
                w.dims(),
                b.dims(),
                self.mean.len(),
                self.fusion
            )
        }
        Ok(d)
    }

    /// `y = x s + t (+ r)`, then the ReLU of the fusion; `r` is empty unless
    /// [`Fusion::AddRelu`].
    #[inline(always)]
    pub(crate) fn forward<T: WithDType>(
        &self,
        x: &[T],
        w: &[T],
        b: &[T],
        r: &[T],
        (n, c, l): (usize, usize, usize),
    ) -> Vec<T> {
        // NaN (`v != v`) propagates through the ReLU, as in torch.
        #[allow(clippy::eq_op)]
        let relu = |v: T| if v > T::zero() || v != v { v } else { T::zero() };
        let scale_shift: Vec<(T, T)> = (0..c)
            .map(|ch| {
                let s = w[ch].to_f64() * self.inv_std[ch];
                let t = b[ch].to_f64() - self.mean[ch] * s;
                (T::from_f64(s), T::from_f64(t))
            })
            .collect();
        // Written in memory order, without zero-filling the buffer first; plain loops (an
        // iterator adaptor's `fold` would not be inlined into the vectorised caller).
        let mut y = Vec::with_capacity(x.len());
        let out = &mut y.spare_capacity_mut()[..x.len()];
        for i in 0..n {
            for (ch, &(s, t)) in scale_shift.iter().enumerate() {
                let at = (i * c + ch) * l;
                let (src, dst) = (&x[at..at + l], &mut out[at..at + l]);
                match self.fusion {
                    Fusion::None => {
                        for (d, &v) in dst.iter_mut().zip(src) {
                            d.write(v * s + t);
                        }
                    }
                    Fusion::Relu => {
                        for (d, &v) in dst.iter_mut().zip(src) {
                            d.write(relu(v * s + t));
                        }
                    }
                    Fusion::AddRelu => {
                        for ((d, &v), &rv) in dst.iter_mut().zip(src).zip(&r[at..at + l]) {
                            d.write(relu(v * s + t + rv));
                        }
                    }
                }
            }
        }
        // SAFETY: the loops wrote all n c l = x.len() entries.
        unsafe { y.set_len(x.len()) };
        y
    }

    /// The flat `[dx (N C L), dr (N C L, with `with_dr` only), dw (C), db (C)]` from `x`, the
    /// output gradient `g` and, after a fused ReLU, the output `y`, whose sign masks `g`
    /// (torch's rule: `relu'(0) = 0`); `dr`, the residual's gradient with
    /// [`Fusion::AddRelu`], is the masked `g` (left out when candle does not track the
    /// residual).
    ///
    /// Two passes: the per-channel sums (in `T` lanes per row of `L` values, rows added in
    /// f64, see [`masked_sums`]), then `dx` (and `dr`) written in one sweep, in memory order,
    /// into a buffer that is not zero-filled first.
    #[inline(always)]
    pub(crate) fn backward<T: WithDType>(
        &self,
        x: &[T],
        g: &[T],
        y: Option<&[T]>,
        with_dr: bool,
        (n, c, l): (usize, usize, usize),
    ) -> Vec<T> {
        let m = (n * l) as f64;
        let t = |v: f64| <T as WithDType>::from_f64(v);
        let (mut dw, mut db) = (Vec::with_capacity(c), Vec::with_capacity(c));
        // dx = k g' + a (x - mean) + b0 per channel (g' the masked gradient), with
        // k = w inv_std and, with batch statistics, a = -k inv_std dw / M, b0 = -k db / M.
        let mut coef = Vec::with_capacity(c);
        for ch in 0..c {
            let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
            let (mut sum_g, mut sum_gxc) = (0.0, 0.0);
            for i in 0..n {
                let at = (i * c + ch) * l;
                let (gs, xs) = (&g[at..at + l], &x[at..at + l]);
                let (sg, sgx) = match y {
                    None => masked_sums::<T, false>(gs, xs, gs, t(mean)),
                    Some(y) => masked_sums::<T, true>(gs, xs, &y[at..at + l], t(mean)),
                };
                sum_g += sg;
                sum_gxc += sgx;
            }
            let (dwc, dbc) = (sum_gxc * inv_std, sum_g);
            dw.push(t(dwc));
            db.push(t(dbc));
            let k = self.weight[ch] * inv_std;
            let (a, b0) =
                if self.batch_stats { (-k * inv_std * dwc / m, -k * dbc / m) } else { (0.0, 0.0) };
            coef.push((t(k), t(a), t(b0), t(mean)));
        }
        let residual = with_dr && y.is_some();
        let nel = n * c * l;
        let len = nel * if residual { 2 } else { 1 } + 2 * c;
        let mut out: Vec<T> = Vec::with_capacity(len);
        let spare = &mut out.spare_capacity_mut()[..len];
        let (dx, rest) = spare.split_at_mut(nel);
        let (dr, params) = rest.split_at_mut(len - nel - 2 * c);
        for i in 0..n {
            for (ch, &(k, a, b0, mean)) in coef.iter().enumerate() {
                let at = (i * c + ch) * l;
                let (gs, xs, dxs) = (&g[at..at + l], &x[at..at + l], &mut dx[at..at + l]);
                let dxv = |gv: T, xv: T| k * gv + a * (xv - mean) + b0;
                match y {
                    None => {
                        for ((d, &gv), &xv) in dxs.iter_mut().zip(gs).zip(xs) {
                            d.write(dxv(gv, xv));
                        }
                    }
                    Some(y) if residual => {
                        let (ys, drs) = (&y[at..at + l], &mut dr[at..at + l]);
                        let it = dxs.iter_mut().zip(drs.iter_mut()).zip(gs.iter().zip(xs).zip(ys));
                        for ((d, r), ((&gv, &xv), &yv)) in it {
                            let gm = mask(gv, yv);
                            d.write(dxv(gm, xv));
                            r.write(gm);
                        }
                    }
                    Some(y) => {
                        let it = dxs.iter_mut().zip(gs.iter().zip(xs).zip(&y[at..at + l]));
                        for (d, ((&gv, &xv), &yv)) in it {
                            d.write(dxv(mask(gv, yv), xv));
                        }
                    }
                }
            }
        }
        for (p, v) in params.iter_mut().zip(dw.into_iter().chain(db)) {
            p.write(v);
        }
        // SAFETY: the loops above wrote every one of the `len` entries: `dx` (all n c l
        // positions), `dr` (all of them with a residual, empty otherwise), `dw` and `db`.
        unsafe { out.set_len(len) };
        out
    }
}

/// `g` masked by the ReLU output `y` (`y > 0`, torch's rule) when `MASK`, else `g`.
#[inline(always)]
fn masked<T: WithDType, const MASK: bool>(gv: T, yv: T) -> T {
    if !MASK || yv > T::zero() {
        gv
    } else {
        T::zero()
    }
}

/// `g` masked by the ReLU output `y > 0`.
#[inline(always)]
fn mask<T: WithDType>(gv: T, yv: T) -> T {
    masked::<T, true>(gv, yv)
}

/// `(sum g', sum g' (x - mean))` over one row, `g'` the gradient masked by `y` when `MASK`.
/// Sixteen independent accumulators in `T` (a vector register of f32 under AVX-512): a
/// single running sum is bound by the latency of each addition, and f64 accumulators would
/// convert every element. A row is at most a feature map (a few thousand values), whose
/// partial sums in f32 lose nothing that matters next to the f64 sum over rows; the order is
/// fixed, so the result is reproducible.
#[inline(always)]
fn masked_sums<T: WithDType, const MASK: bool>(g: &[T], x: &[T], y: &[T], mean: T) -> (f64, f64) {
    const LANES: usize = 16;
    let (mut sg, mut sx) = ([T::zero(); LANES], [T::zero(); LANES]);
    let (cg, cx, cy) = (g.chunks_exact(LANES), x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (rg, rx, ry) = (cg.remainder(), cx.remainder(), cy.remainder());
    for ((gc, xc), yc) in cg.zip(cx).zip(cy) {
        for j in 0..LANES {
            let gm = masked::<T, MASK>(gc[j], yc[j]);
            sg[j] += gm;
            sx[j] += gm * (xc[j] - mean);
        }
    }
    for (j, ((&gv, &xv), &yv)) in rg.iter().zip(rx).zip(ry).enumerate() {
        let gm = masked::<T, MASK>(gv, yv);
        sg[j] += gm;
        sx[j] += gm * (xv - mean);
    }
    let total = |a: [T; LANES]| a.iter().map(|v| v.to_f64()).sum::<f64>();
    (total(sg), total(sx))
}

impl CustomOp3 for NormOp {
    fn name(&self) -> &'static str {
        "deeprl-batch-norm"
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
        let d = self.check(l1, l2, l3)?;
        fn run<T: WithDType>(
            op: &NormOp,
            (x, s2, s3): (&[T], &[T], &[T]),
            d: (usize, usize, usize),
        ) -> Vec<T> {
            if op.fusion == Fusion::AddRelu {
                // (x, residual, [weight, bias])
                let (w, b) = s3.split_at(d.1);
                vectorized(
                    #[inline(always)]
                    || op.forward(x, w, b, s2, d),
                )
            } else {
                vectorized(
                    #[inline(always)]
                    || op.forward(x, s2, s3, &[], d),
                )
            }
        }
        let y = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(run(self, (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?), d))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(run(self, (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?), d))
            }
            _ => candle_core::bail!("batch norm kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((y, l1.shape().clone()))
    }

    /// The operands are `(x, weight, bias)`, or `(x, residual, [weight, bias])` with
    /// [`Fusion::AddRelu`].
    fn bwd(
        &self,
        x: &Tensor,
        second: &Tensor,
        third: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let c = self.mean.len();
        // After a fused ReLU the kernel masks the gradient with the output's sign.
        let y = if self.fusion == Fusion::None { &grad } else { res };
        let with_dr = self.fusion == Fusion::AddRelu && second.track_op();
        let all = x.apply_op3_no_bwd(&grad, y, &NormGrad { op: self, with_dr })?;
        let nel = x.elem_count();
        let dx = x.track_op().then(|| all.narrow(0, 0, nel)?.reshape(x.shape())).transpose()?;
        if self.fusion == Fusion::AddRelu {
            // (x, residual, [weight, bias])
            let dr = with_dr.then(|| all.narrow(0, nel, nel)?.reshape(x.shape()));
            let at = if with_dr { 2 * nel } else { nel };
            let dwb = third.track_op().then(|| all.narrow(0, at, 2 * c)).transpose()?;
            return Ok((dx, dr.transpose()?, dwb));
        }
        // (x, weight, bias); the constant ones and zeros of a non-affine layer get no
        // gradient.
        let tracked = second.track_op();
        let dw = tracked.then(|| all.narrow(0, nel, c)?.reshape(second.shape())).transpose()?;
        let db = tracked.then(|| all.narrow(0, nel + c, c)?.reshape(second.shape())).transpose()?;
        Ok((dx, dw, db))
    }
}

/// The backward of [`NormOp`]: `(x, dL/dy, y)` to the flat `[dx, (dr,) dw, db]` (see
/// [`NormOp::backward`]; `y` is read only after a fused ReLU).
struct NormGrad<'a> {
    op: &'a NormOp,
    /// The residual's gradient is wanted ([`Fusion::AddRelu`] with a tracked residual).
    with_dr: bool,
}

impl CustomOp3 for NormGrad<'_> {
    fn name(&self) -> &'static str {
        "deeprl-batch-norm-grad"
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
        let d = ncl(l1)?;
        if self.op.mean.len() != d.1 || self.op.weight.len() != d.1 {
            candle_core::bail!(
                "batch norm kernel: {} statistics for input {:?}",
                self.op.mean.len(),
                l1.dims()
            )
        }
        if l2.dims() != l1.dims() || l3.dims() != l1.dims() {
            candle_core::bail!(
                "batch norm kernel: gradient {:?} or output {:?} does not match the input {:?}",
                l2.dims(),
                l3.dims(),
                l1.dims()
            )
        }
        let masked = self.op.fusion != Fusion::None;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let y = if masked { Some(slice(s3, l3)?) } else { None };
                let (x, g) = (slice(s1, l1)?, slice(s2, l2)?);
                CpuStorage::F32(vectorized(
                    #[inline(always)]
                    || self.op.backward::<f32>(x, g, y, self.with_dr, d),
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let y = if masked { Some(slice(s3, l3)?) } else { None };
                let (x, g) = (slice(s1, l1)?, slice(s2, l2)?);
                CpuStorage::F64(vectorized(
                    #[inline(always)]
                    || self.op.backward::<f64>(x, g, y, self.with_dr, d),
                ))
            }
            _ => candle_core::bail!("batch norm kernel: f32 or f64 operands of one dtype expected"),
        };
        let nel = l1.shape().elem_count();
        let len = nel * if self.with_dr { 2 } else { 1 } + 2 * d.1;
        Ok((out, Shape::from(len)))
    }
}

#[cfg(test)]
#[path = "fast_batch_norm_tests.rs"]
mod tests;
