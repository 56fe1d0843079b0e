//! Fused CPU kernels for [`BatchNorm`](super::BatchNorm): one pass for the batch statistics,
//! one for the normalisation, one for the whole backward.
//!
//! candle's generic path reduces over the batch and position axes with strided reductions
//! and records about ten graph nodes whose backward repeats them; here, for `x` `[N, C, ...]`
//! (any rank from 2, read as `[N, C, L]`; contiguous, f32 or f64) and per channel `c` over
//! the `M = N L` values:
//!
//! * statistics ([`batch_stats`]): `mean`, biased `var` accumulated in f64 (two passes, so
//!   no cancellation),
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
    let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    // The backward needs the weight's values; a host copy of C numbers.
    let weight_host = weight.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
    let op = NormOp { mean, inv_std, weight: weight_host, batch_stats, fusion };
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
struct Stats;

impl Stats {
    #[inline(always)]
    fn run<T: WithDType>(x: &[T], (n, c, l): (usize, usize, usize)) -> Vec<f64> {
        let m = (n * l) as f64;
        let mut out = vec![0.0; 2 * c];
        for ch in 0..c {
            let rows = || (0..n).map(move |i| &x[(i * c + ch) * l..(i * c + ch + 1) * l]);
            let sum: f64 = rows().map(|r| lane_sum(r, r, |v, _| v)).sum();
            let mean = sum / m;
            let sq: f64 = rows().map(|r| lane_sum(r, r, |v, _| (v - mean) * (v - mean))).sum();
            out[ch] = mean;
            out[c + ch] = sq / m;
        }
        out
    }
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
                vectorized(|| Self::run(x, d))
            }
            CpuStorage::F64(_) => {
                let x = slice::<f64>(s, l)?;
                vectorized(|| Self::run(x, d))
            }
            _ => candle_core::bail!("batch norm kernel: f32 or f64 input expected"),
        };
        Ok((CpuStorage::F64(out), Shape::from((2, d.1))))
    }
}

/// The normalisation with the statistics it was built with: `(x, weight, bias) -> y`, or
/// with [`Fusion::AddRelu`] `(x, residual, [weight, bias]) -> y`.
struct NormOp {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    /// The weight's values, for the backward.
    weight: Vec<f64>,
    batch_stats: bool,
    fusion: Fusion,
}

impl NormOp {
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
    fn forward<T: WithDType>(
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
        // Written in memory order, without zero-filling the buffer first.
        let mut y = Vec::with_capacity(x.len());
        for i in 0..n {
            for (ch, &(s, t)) in scale_shift.iter().enumerate() {
                let at = (i * c + ch) * l;
                let src = &x[at..at + l];
                match self.fusion {
                    Fusion::None => y.extend(src.iter().map(|&v| v * s + t)),
                    Fusion::Relu => y.extend(src.iter().map(|&v| relu(v * s + t))),
                    Fusion::AddRelu => y.extend(
                        src.iter().zip(&r[at..at + l]).map(|(&v, &rv)| relu(v * s + t + rv)),
                    ),
                }
            }
        }
        y
    }

    /// The flat `[dx (N C L), dr (N C L, with [`Fusion::AddRelu`] only), dw (C), db (C)]`
    /// from `x`, the output gradient `g` and, after a fused ReLU, the output `y`, whose
    /// sign masks `g` (torch's rule: `relu'(0) = 0`); `dr`, the residual's gradient, is the
    /// masked `g`.
    #[inline(always)]
    fn backward<T: WithDType>(
        &self,
        x: &[T],
        g: &[T],
        y: Option<&[T]>,
        (n, c, l): (usize, usize, usize),
    ) -> Vec<T> {
        let m = (n * l) as f64;
        let t = |v: f64| <T as WithDType>::from_f64(v);
        let (mut dw, mut db) = (vec![T::zero(); c], vec![T::zero(); c]);
        // dx = k g' + a (x - mean) + b0 per channel (g' the masked gradient), with
        // k = w inv_std and, with batch statistics, a = -k inv_std dw / M, b0 = -k db / M.
        let mut coef = Vec::with_capacity(c);
        for ch in 0..c {
            let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
            let (mut sum_g, mut sum_gxc) = (0.0, 0.0);
            for i in 0..n {
                let at = (i * c + ch) * l;
                let (gs, xs) = (&g[at..at + l], &x[at..at + l]);
                match y {
                    None => {
                        sum_g += lane_sum(gs, gs, |gv, _| gv);
                        sum_gxc += lane_sum(gs, xs, |gv, xv| gv * (xv - mean));
                    }
                    Some(y) => {
                        let ys = &y[at..at + l];
                        let masked = |gv: f64, yv: f64| if yv > 0.0 { gv } else { 0.0 };
                        sum_g += lane_sum(gs, ys, masked);
                        sum_gxc += lane_sum3(gs, xs, ys, |gv, xv, yv| masked(gv, yv) * (xv - mean));
                    }
                }
            }
            let (dwc, dbc) = (sum_gxc * inv_std, sum_g);
            dw[ch] = t(dwc);
            db[ch] = t(dbc);
            let k = self.weight[ch] * inv_std;
            let (a, b0) =
                if self.batch_stats { (-k * inv_std * dwc / m, -k * dbc / m) } else { (0.0, 0.0) };
            coef.push((t(k), t(a), t(b0), t(mean)));
        }
        let residual = self.fusion == Fusion::AddRelu;
        let nel = n * c * l;
        // Written in memory order, without zero-filling the buffer first.
        let mut out = Vec::with_capacity(nel * if residual { 2 } else { 1 } + 2 * c);
        let mask = |gv: T, yv: T| if yv > T::zero() { gv } else { T::zero() };
        for i in 0..n {
            for (ch, &(k, a, b0, mean)) in coef.iter().enumerate() {
                let at = (i * c + ch) * l;
                let (gs, xs) = (&g[at..at + l], &x[at..at + l]);
                let dx = |gv: T, xv: T| k * gv + a * (xv - mean) + b0;
                match y {
                    None => out.extend(gs.iter().zip(xs).map(|(&gv, &xv)| dx(gv, xv))),
                    Some(y) => out.extend(
                        gs.iter()
                            .zip(xs)
                            .zip(&y[at..at + l])
                            .map(|((&gv, &xv), &yv)| dx(mask(gv, yv), xv)),
                    ),
                }
            }
        }
        if let (true, Some(y)) = (residual, y) {
            out.extend(g.iter().zip(y).map(|(&gv, &yv)| mask(gv, yv)));
        }
        out.extend(dw);
        out.extend(db);
        out
    }
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
                vectorized(|| op.forward(x, w, b, s2, d))
            } else {
                vectorized(|| op.forward(x, s2, s3, &[], d))
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
        let all = x.apply_op3_no_bwd(&grad, y, &NormGrad(self))?;
        let nel = x.elem_count();
        let dx = x.track_op().then(|| all.narrow(0, 0, nel)?.reshape(x.shape())).transpose()?;
        if self.fusion == Fusion::AddRelu {
            // (x, residual, [weight, bias])
            let dr = second.track_op().then(|| all.narrow(0, nel, nel)?.reshape(x.shape()));
            let dwb = third.track_op().then(|| all.narrow(0, 2 * nel, 2 * c)).transpose()?;
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
struct NormGrad<'a>(&'a NormOp);

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
        if self.0.mean.len() != d.1 || self.0.weight.len() != d.1 {
            candle_core::bail!(
                "batch norm kernel: {} statistics for input {:?}",
                self.0.mean.len(),
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
        let masked = self.0.fusion != Fusion::None;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let y = if masked { Some(slice(s3, l3)?) } else { None };
                let (x, g) = (slice(s1, l1)?, slice(s2, l2)?);
                CpuStorage::F32(vectorized(|| self.0.backward::<f32>(x, g, y, d)))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let y = if masked { Some(slice(s3, l3)?) } else { None };
                let (x, g) = (slice(s1, l1)?, slice(s2, l2)?);
                CpuStorage::F64(vectorized(|| self.0.backward::<f64>(x, g, y, d)))
            }
            _ => candle_core::bail!("batch norm kernel: f32 or f64 operands of one dtype expected"),
        };
        let nel = l1.shape().elem_count();
        let len = nel * if self.0.fusion == Fusion::AddRelu { 2 } else { 1 } + 2 * d.1;
        Ok((out, Shape::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, ModuleT, Tensor, Var};
    use candle_nn::{VarBuilder, VarMap};
    use rand::{Rng, SeedableRng};

    use super::Fusion;
    use crate::conv::BatchNorm;
    use crate::gradcheck::check_gradients;

    fn var(shape: &[usize], seed: u64, scale: f64, shift: f64) -> Var {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| shift + scale * rng.random_range(-1.0..1.0)).collect();
        Var::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    /// A BatchNorm2d over `c` channels with random affine parameters and running statistics.
    fn layer(c: usize, map: &VarMap) -> BatchNorm {
        let bn = BatchNorm::new_2d(c, VarBuilder::from_varmap(map, DType::F64, &Device::Cpu));
        let bn = bn.unwrap().with_hyperparameters(1e-3, 0.3).unwrap();
        let data = map.data().lock().unwrap();
        for (i, name) in ["weight", "bias", "running_mean"].iter().enumerate() {
            data[*name].set(var(&[c], 10 + i as u64, 1.0, 0.0).as_tensor()).unwrap();
        }
        data["running_var"].set(var(&[c], 13, 0.5, 1.0).as_tensor()).unwrap();
        bn
    }

    /// The fused kernels give the generic path's output, input and parameter gradients and
    /// running statistics, in training and in evaluation (the generic path is the one
    /// checked against torch on other devices; the conformance tests run the fused one).
    #[test]
    fn fused_batch_norm_equals_generic_ops() {
        for train in [true, false] {
            let (map_f, map_g) = (VarMap::new(), VarMap::new());
            let (fused, generic) = (layer(3, &map_f), layer(3, &map_g));
            let x = var(&[4, 3, 5], 1, 2.0, 0.7);
            let u = var(&[4, 3, 5], 2, 1.0, 0.0).as_tensor().detach();
            let yf = fused.forward_fused(x.as_tensor(), train, Fusion::None, None).unwrap();
            let yg = generic.forward_generic(x.as_tensor(), train).unwrap();
            assert!(max_diff(&yf, &yg) < 1e-12, "train {train}: outputs differ");
            let gf = yf.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let gg = yg.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let d = max_diff(gf.get(&x).unwrap(), gg.get(&x).unwrap());
            assert!(d < 1e-12, "train {train}: input gradients differ by {d}");
            let (pf, pg) = (map_f.data().lock().unwrap(), map_g.data().lock().unwrap());
            for name in ["weight", "bias"] {
                let d = max_diff(gf.get(&pf[name]).unwrap(), gg.get(&pg[name]).unwrap());
                assert!(d < 1e-12, "train {train}: {name} gradients differ by {d}");
            }
            for name in ["running_mean", "running_var"] {
                let d = max_diff(pf[name].as_tensor(), pg[name].as_tensor());
                assert!(d < 1e-14, "train {train}: {name} differs by {d}");
            }
        }
    }

    /// The explicit backward against central finite differences, in f64, for the input and
    /// both affine parameters, with batch statistics and with running statistics.
    #[test]
    fn fused_batch_norm_gradients_match_finite_differences() {
        for train in [true, false] {
            let map = VarMap::new();
            let bn = layer(3, &map);
            let x = var(&[3, 3, 2, 2], 4, 1.5, 0.3);
            let u = var(&[3, 3, 2, 2], 5, 1.0, 0.0).as_tensor().detach();
            let mut vars = vec![x.clone()];
            {
                let data = map.data().lock().unwrap();
                vars.extend(["weight", "bias"].iter().map(|n| data[*n].clone()));
            }
            // Evaluate through `forward_t`, which must pick the fused path for f64 on CPU.
            let f = || bn.forward_t(x.as_tensor(), train)?.mul(&u);
            let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
            assert!(report.passed(), "train {train}: {report:?}");
        }
    }

    /// `relu(bn(x))` and `relu(bn(x) + r)` fused equal the generic compositions (candle's
    /// `relu` after the generic batch norm) in value and in the gradients of the input, the
    /// residual and both affine parameters, on a rank-4 input, in training and evaluation.
    #[test]
    fn fused_activations_equal_generic_compositions() {
        for train in [true, false] {
            for fusion in [Fusion::Relu, Fusion::AddRelu] {
                let (map_f, map_g) = (VarMap::new(), VarMap::new());
                let (fused, generic) = (layer(3, &map_f), layer(3, &map_g));
                let x = var(&[2, 3, 4, 3], 21, 2.0, 0.4);
                let r = var(&[2, 3, 4, 3], 22, 1.0, 0.0);
                let u = var(&[2, 3, 4, 3], 23, 1.0, 0.0).as_tensor().detach();
                let res = (fusion == Fusion::AddRelu).then_some(r.as_tensor());
                let yf = fused.forward_fused(x.as_tensor(), train, fusion, res).unwrap();
                let x3 = x.reshape((2, 3, 12)).unwrap();
                let mut yg = generic.forward_generic(&x3, train).unwrap().reshape((2, 3, 4, 3));
                if let Some(r) = res {
                    yg = yg.unwrap().add(r);
                }
                let yg = yg.unwrap().relu().unwrap();
                assert!(max_diff(&yf, &yg) < 1e-12, "{fusion:?} train {train}: outputs differ");
                let gf = yf.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                let gg = yg.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
                for v in [&x, &r] {
                    match (gf.get(v), gg.get(v)) {
                        (Some(a), Some(b)) => assert!(max_diff(a, b) < 1e-12, "{fusion:?}"),
                        (None, None) => assert_eq!(fusion, Fusion::Relu),
                        _ => panic!("{fusion:?} train {train}: a gradient is missing"),
                    }
                }
                let (pf, pg) = (map_f.data().lock().unwrap(), map_g.data().lock().unwrap());
                for name in ["weight", "bias"] {
                    let d = max_diff(gf.get(&pf[name]).unwrap(), gg.get(&pg[name]).unwrap());
                    assert!(d < 1e-12, "{fusion:?} train {train}: {name} gradients differ by {d}");
                }
            }
        }
    }

    /// The fused activations' backward against central finite differences in f64 (input,
    /// residual, weight and bias), through the public `forward_relu_t` and
    /// `forward_add_relu_t`.
    #[test]
    fn fused_activation_gradients_match_finite_differences() {
        for train in [true, false] {
            let map = VarMap::new();
            let bn = layer(3, &map);
            let x = var(&[3, 3, 2, 2], 31, 1.5, 0.3);
            let r = var(&[3, 3, 2, 2], 32, 1.0, 0.0);
            let u = var(&[3, 3, 2, 2], 33, 1.0, 0.0).as_tensor().detach();
            let mut vars = vec![x.clone(), r.clone()];
            {
                let data = map.data().lock().unwrap();
                vars.extend(["weight", "bias"].iter().map(|n| data[*n].clone()));
            }
            let f = || {
                let a = bn.forward_relu_t(x.as_tensor(), train)?;
                let b = bn.forward_add_relu_t(x.as_tensor(), r.as_tensor(), train)?;
                (a + b)?.mul(&u)
            };
            let report = check_gradients(&vars, f, 1e-6, 1e-7, 1e-5).unwrap();
            assert!(report.passed(), "train {train}: {report:?}");
        }
    }
}
