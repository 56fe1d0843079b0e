//! A CPU kernel for the per-channel bias of the convolutions: `y[n, c, l] = x[n, c, l] +
//! b[c]`, with the bias gradient `db[c] = sum_{n, l} g[n, c, l]` summed in one contiguous
//! pass (candle's broadcast-add backward reduces over the batch and position axes with its
//! slow strided sums). The input gradient is the output gradient itself. The bias-gradient
//! op is not itself differentiable (no second derivatives).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

/// `x` `[N, C, ...]` plus `bias` `[C]` (same dtype) broadcast over the batch and positions.
pub(crate) fn add_channel_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&bias.contiguous()?, BiasAdd)
}

fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("bias kernel: non-contiguous operand {:?}", l.dims()),
    }
}

/// `(N, C, L)` of `[N, C, ...]`.
fn ncl(l: &Layout) -> Result<(usize, usize, usize)> {
    let dims = l.dims();
    if dims.len() < 2 {
        candle_core::bail!("bias kernel: input of rank >= 2 expected, got {dims:?}")
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

struct BiasAdd;

fn add<T: WithDType>(x: &[T], b: &[T], (n, c, l): (usize, usize, usize)) -> Vec<T> {
    let mut y = x.to_vec();
    for i in 0..n {
        for (ch, &bv) in b.iter().enumerate().take(c) {
            let at = (i * c + ch) * l;
            y[at..at + l].iter_mut().for_each(|v| *v += bv);
        }
    }
    y
}

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "deeprl-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = ncl(l1)?;
        if l2.shape().elem_count() != d.1 {
            candle_core::bail!("bias kernel: bias {:?} for input {:?}", l2.dims(), l1.dims())
        }
        let y = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(add(slice(s1, l1)?, slice(s2, l2)?, d))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(add(slice(s1, l1)?, slice(s2, l2)?, d))
            }
            _ => candle_core::bail!("bias kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((y, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = grad.contiguous()?.apply_op1_no_bwd(&ChannelSum)?.reshape(bias.shape())?;
        Ok((Some(grad.clone()), Some(db)))
    }
}

/// `[N, C, ...]` to `[C]`: the sum over the batch and every position.
struct ChannelSum;

fn channel_sum<T: WithDType>(g: &[T], (n, c, l): (usize, usize, usize)) -> Vec<T> {
    (0..c)
        .map(|ch| {
            let s: f64 = (0..n)
                .map(|i| {
                    g[(i * c + ch) * l..(i * c + ch + 1) * l]
                        .iter()
                        .map(|v| v.to_f64())
                        .sum::<f64>()
                })
                .sum();
            T::from_f64(s)
        })
        .collect()
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "deeprl-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = ncl(l)?;
        let out = match s {
            CpuStorage::F32(_) => CpuStorage::F32(channel_sum(slice(s, l)?, d)),
            CpuStorage::F64(_) => CpuStorage::F64(channel_sum(slice(s, l)?, d)),
            _ => candle_core::bail!("bias kernel: f32 or f64 gradient expected"),
        };
        Ok((out, Shape::from(d.1)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
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

    /// The kernel equals candle's broadcast add in value and both gradients (ranks 3 and 4),
    /// and its backward matches central finite differences in f64.
    #[test]
    fn bias_kernel_equals_broadcast_add_and_finite_differences() {
        for shape in [vec![2, 3, 5], vec![2, 3, 4, 2]] {
            let (x, b) = (var(&shape, 1), var(&[3], 2));
            let u = var(&shape, 3).as_tensor().detach();
            let mut bshape = vec![1; shape.len()];
            bshape[1] = 3;
            let fast = super::add_channel_bias(x.as_tensor(), b.as_tensor()).unwrap();
            let generic = x.broadcast_add(&b.reshape(bshape).unwrap()).unwrap();
            assert!(max_diff(&fast, &generic) < 1e-15);
            let gf = fast.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            let gg = generic.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &b] {
                assert!(max_diff(gf.get(v).unwrap(), gg.get(v).unwrap()) < 1e-12);
            }
            let f = || super::add_channel_bias(x.as_tensor(), b.as_tensor())?.mul(&u);
            let report = check_gradients(&[x.clone(), b.clone()], f, 1e-6, 1e-7, 1e-5).unwrap();
            assert!(report.passed(), "{shape:?}: {report:?}");
        }
    }
}
