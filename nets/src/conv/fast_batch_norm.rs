//! Fused CPU kernels for [`BatchNorm`](super::BatchNorm): one pass for the batch statistics,
//! one for the normalisation, one for the whole backward.
//!
//! candle's generic path reduces over the batch and position axes with strided reductions
//! and records about ten graph nodes whose backward repeats them; here, for `x` `[N, C, L]`
//! (contiguous, f32 or f64) and per channel `c` over the `M = N L` values:
//!
//! * statistics ([`batch_stats`]): `mean`, biased `var` accumulated in f64 (two passes, so
//!   no cancellation),
//! * forward: `y = x s + t` with `s = w / sqrt(var + eps)`, `t = b - mean s`,
//! * backward (Ioffe and Szegedy 2015, section 3), with `x^ = (x - mean) / sqrt(var + eps)`:
//!   `db = sum(g)`, `dw = sum(g x^)`, and with batch statistics
//!   `dx = w / sqrt(var + eps) (g - db / M - x^ dw / M)`; with fixed (running) statistics
//!   `dx = w / sqrt(var + eps) g`.
//!
//! The statistics live in the op (host vectors), so the backward needs no extra tensors; the
//! backward op is not itself differentiable (no second derivatives). Other devices use the
//! generic tensor ops of `batch_norm.rs`; both paths are compared in the tests below.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

/// Per channel mean and biased variance of `x` `[N, C, L]`, accumulated in f64.
pub(crate) fn batch_stats(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let stats = x.contiguous()?.apply_op1_no_bwd(&Stats)?.to_vec2::<f64>()?;
    let mut it = stats.into_iter();
    match (it.next(), it.next()) {
        (Some(mean), Some(var)) => Ok((mean, var)),
        _ => candle_core::bail!("batch norm kernel: statistics of shape [2, C] expected"),
    }
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` per channel of `x` `[N, C, L]`,
/// differentiable in `x`, `weight` and `bias` (all of `x`'s dtype). `batch_stats` says that
/// `mean` and `var` were computed from `x` itself (training), so the backward goes through
/// them as well.
pub(crate) fn normalize(
    x: &Tensor,
    mean: Vec<f64>,
    var: &[f64],
    eps: f64,
    weight: &Tensor,
    bias: &Tensor,
    batch_stats: bool,
) -> Result<Tensor> {
    let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let op = NormOp { mean, inv_std, batch_stats };
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)
}

fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("batch norm kernel: non-contiguous operand {:?}", l.dims()),
    }
}

/// `[N, C, L]` of a rank-3 layout.
fn ncl(l: &Layout) -> Result<(usize, usize, usize)> {
    l.shape().dims3()
}

/// The statistics op: `[N, C, L]` to f64 `[2, C]` (means, then biased variances).
struct Stats;

impl Stats {
    fn run<T: WithDType>(x: &[T], (n, c, l): (usize, usize, usize)) -> Vec<f64> {
        let m = (n * l) as f64;
        let mut out = vec![0.0; 2 * c];
        for ch in 0..c {
            let rows = || (0..n).map(move |i| &x[(i * c + ch) * l..(i * c + ch + 1) * l]);
            let sum: f64 =
                rows().map(|r| r.iter().map(|&v| WithDType::to_f64(v)).sum::<f64>()).sum();
            let mean = sum / m;
            let sq: f64 = rows()
                .map(|r| {
                    r.iter()
                        .map(|v| {
                            let d = WithDType::to_f64(*v) - mean;
                            d * d
                        })
                        .sum::<f64>()
                })
                .sum();
            out[ch] = mean;
            out[c + ch] = sq / m;
        }
        out
    }
}

impl CustomOp1 for Stats {
    fn name(&self) -> &'static str {
        "deeprl-batch-norm-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = ncl(l)?;
        let out = match s {
            CpuStorage::F32(_) => Self::run(slice::<f32>(s, l)?, d),
            CpuStorage::F64(_) => Self::run(slice::<f64>(s, l)?, d),
            _ => candle_core::bail!("batch norm kernel: f32 or f64 input expected"),
        };
        Ok((CpuStorage::F64(out), Shape::from((2, d.1))))
    }
}

/// The normalisation `(x, weight, bias) -> y` with the statistics it was built with.
struct NormOp {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    batch_stats: bool,
}

impl NormOp {
    fn check(&self, x: &Layout, w: &Layout, b: &Layout) -> Result<(usize, usize, usize)> {
        let d = ncl(x)?;
        let c = d.1;
        if w.shape().elem_count() != c || b.shape().elem_count() != c || self.mean.len() != c {
            candle_core::bail!(
                "batch norm kernel: input {:?}, weight {:?}, bias {:?} and {} statistics do not \
                 match",
                x.dims(),
                w.dims(),
                b.dims(),
                self.mean.len()
            )
        }
        Ok(d)
    }

    fn forward<T: WithDType>(
        &self,
        x: &[T],
        w: &[T],
        b: &[T],
        (n, c, l): (usize, usize, usize),
    ) -> Vec<T> {
        let mut y = vec![T::zero(); x.len()];
        for ch in 0..c {
            let s = WithDType::to_f64(w[ch]) * self.inv_std[ch];
            let t = WithDType::to_f64(b[ch]) - self.mean[ch] * s;
            let (s, t) = (<T as WithDType>::from_f64(s), <T as WithDType>::from_f64(t));
            for i in 0..n {
                let at = (i * c + ch) * l;
                for (o, &v) in y[at..at + l].iter_mut().zip(&x[at..at + l]) {
                    *o = v * s + t;
                }
            }
        }
        y
    }

    /// `[dx (N C L), dw (C), db (C)]` from `x`, the output gradient `g` and `w`.
    fn backward<T: WithDType>(
        &self,
        x: &[T],
        g: &[T],
        w: &[T],
        (n, c, l): (usize, usize, usize),
    ) -> Vec<T> {
        let nel = n * c * l;
        let m = (n * l) as f64;
        let mut out = vec![T::zero(); nel + 2 * c];
        let f = |v: T| WithDType::to_f64(v);
        let t = |v: f64| <T as WithDType>::from_f64(v);
        for ch in 0..c {
            let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
            let (mut sum_g, mut sum_gxc) = (0.0, 0.0);
            for i in 0..n {
                let at = (i * c + ch) * l;
                for (&gv, &xv) in g[at..at + l].iter().zip(&x[at..at + l]) {
                    sum_g += f(gv);
                    sum_gxc += f(gv) * (f(xv) - mean);
                }
            }
            let dw = sum_gxc * inv_std;
            let db = sum_g;
            out[nel + ch] = t(dw);
            out[nel + c + ch] = t(db);
            let k = f(w[ch]) * inv_std;
            // dx = k g + a (x - mean) + b0, with a = -k inv_std dw / M, b0 = -k db / M.
            let (a, b0) =
                if self.batch_stats { (-k * inv_std * dw / m, -k * db / m) } else { (0.0, 0.0) };
            let (k, a, b0, mean) = (t(k), t(a), t(b0), t(mean));
            for i in 0..n {
                let at = (i * c + ch) * l;
                let dst = &mut out[at..at + l];
                for ((o, &gv), &xv) in dst.iter_mut().zip(&g[at..at + l]).zip(&x[at..at + l]) {
                    *o = k * gv + a * (xv - mean) + b0;
                }
            }
        }
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
        let y = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(self.forward(slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?, d))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(self.forward(slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?, d))
            }
            _ => candle_core::bail!("batch norm kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((y, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let all = x.apply_op3_no_bwd(&grad, w, &NormGrad(self))?;
        let (nel, c) = (x.elem_count(), w.elem_count());
        let dx = all.narrow(0, 0, nel)?.reshape(x.shape())?;
        let dw = all.narrow(0, nel, c)?.reshape(w.shape())?;
        let db = all.narrow(0, nel + c, c)?.reshape(w.shape())?;
        // The constant ones and zeros of a non-affine layer get no gradient.
        let (dw, db) = if w.track_op() { (Some(dw), Some(db)) } else { (None, None) };
        Ok((x.track_op().then_some(dx), dw, db))
    }
}

/// The backward of [`NormOp`]: `(x, dL/dy, weight)` to the flat `[dx, dw, db]`.
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
        let d = self.0.check(l1, l3, l3)?;
        if l2.dims() != l1.dims() {
            candle_core::bail!(
                "batch norm kernel: gradient {:?} does not match the input {:?}",
                l2.dims(),
                l1.dims()
            )
        }
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(self.0.backward(slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?, d))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(self.0.backward(slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?, d))
            }
            _ => candle_core::bail!("batch norm kernel: f32 or f64 operands of one dtype expected"),
        };
        let len = l1.shape().elem_count() + 2 * d.1;
        Ok((out, Shape::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, ModuleT, Tensor, Var};
    use candle_nn::{VarBuilder, VarMap};
    use rand::{Rng, SeedableRng};

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
            let yf = fused.forward_fused(x.as_tensor(), train).unwrap();
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
}
