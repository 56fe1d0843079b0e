//! The bias gradient of the fused CPU convolutions: `db[c] = sum_{n, l} g[n, c, l]` for an
//! output gradient `g` `[N, C, ...]`, summed in one contiguous pass per channel block
//! (candle's broadcast-add backward reduces over the batch and position axes with its slow
//! strided sums). The bias itself is added inside the convolution kernels (`fast`,
//! `fast_transpose`), so the forward needs no op of its own. Not differentiable (no second
//! derivatives).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};

use super::fast_batch_norm::lane_sum;
use crate::simd::vectorized;

/// The gradient of a bias `b` broadcast over channels (`[N, C, ...]` output gradient `grad`):
/// its channel sums in `b`'s shape, or `None` when candle does not track `b`.
pub(crate) fn bias_grad(b: Option<&Tensor>, grad: &Tensor) -> Result<Option<Tensor>> {
    match b {
        Some(b) if b.track_op() => Ok(Some(channel_sum(grad)?.reshape(b.shape())?)),
        _ => Ok(None),
    }
}

/// The per-channel sum of `g` `[N, C, ...]` (CPU, f32 or f64) over the batch and every
/// position: `[C]`.
pub(crate) fn channel_sum(g: &Tensor) -> Result<Tensor> {
    g.contiguous()?.apply_op1_no_bwd(&ChannelSum)
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

/// `[N, C, ...]` to `[C]`: the sum over the batch and every position.
struct ChannelSum;

/// The sums in f64, each image's run of a channel summed on its own first.
#[inline(always)]
fn sum_channels<T: WithDType>(g: &[T], (n, c, l): (usize, usize, usize)) -> Vec<T> {
    let mut sums = vec![0.0f64; c];
    for image in g.chunks_exact(c * l).take(n) {
        for (s, run) in sums.iter_mut().zip(image.chunks_exact(l)) {
            *s += lane_sum(run, run, |v, _| v);
        }
    }
    sums.into_iter().map(T::from_f64).collect()
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "deeprl-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = ncl(l)?;
        let out = match s {
            CpuStorage::F32(_) => {
                let g = slice::<f32>(s, l)?;
                CpuStorage::F32(vectorized(
                    #[inline(always)]
                    || sum_channels(g, d),
                ))
            }
            CpuStorage::F64(_) => {
                let g = slice::<f64>(s, l)?;
                CpuStorage::F64(vectorized(
                    #[inline(always)]
                    || sum_channels(g, d),
                ))
            }
            _ => candle_core::bail!("bias kernel: f32 or f64 gradient expected"),
        };
        Ok((out, Shape::from(d.1)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};

    /// The kernel's sums equal candle's reductions over every axis but the channels, for
    /// ranks 3 and 4.
    #[test]
    fn channel_sum_equals_candle_reductions() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for shape in [vec![2, 3, 5], vec![2, 3, 4, 2]] {
            let n: usize = shape.iter().product();
            let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let g = Tensor::from_vec(v, shape.as_slice(), &Device::Cpu).unwrap();
            let fast = super::channel_sum(&g).unwrap();
            let mut want = g.sum_keepdim(0).unwrap();
            for axis in (2..shape.len()).rev() {
                want = want.sum_keepdim(axis).unwrap();
            }
            let want = want.flatten_all().unwrap();
            let d = (fast - want).unwrap().abs().unwrap().max_all().unwrap();
            assert!(d.to_scalar::<f64>().unwrap() < 1e-14, "{shape:?}");
        }
    }
}
