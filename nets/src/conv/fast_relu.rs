//! A CPU ReLU for the CNN blocks, `y = max(x, 0)`, with a one-pass backward
//! `dx = g [y > 0]` (torch's rule: no gradient at 0). candle's own backward builds a zero
//! tensor, a comparison mask, its dtype cast and a product, four full passes and
//! allocations per activation. Other devices and dtypes use candle's `relu`. The backward op
//! is not itself differentiable (no second derivatives).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

use super::fast;
use crate::simd::vectorized;

/// `max(x, 0)`, through the kernel on CPU in f32/f64.
pub(crate) fn relu(x: &Tensor) -> Result<Tensor> {
    if fast::supports(x) {
        x.contiguous()?.apply_op1(Relu)
    } else {
        x.relu()
    }
}

/// `dL/dx = g [y > 0]` from the ReLU's output `y` and the output gradient `g` (same shape,
/// CPU f32/f64), not differentiable: the backward of the fused ops that end in a ReLU.
pub(crate) fn relu_grad(y: &Tensor, g: &Tensor) -> Result<Tensor> {
    y.contiguous()?.apply_op2_no_bwd(&g.contiguous()?, &ReluGrad)
}

fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("relu kernel: non-contiguous operand {:?}", l.dims()),
    }
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "deeprl-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        #[inline(always)]
        fn run<T: WithDType>(x: &[T]) -> Vec<T> {
            // NaN (`v != v`) propagates, as in torch.
            #[allow(clippy::eq_op)]
            x.iter().map(|&v| if v > T::zero() || v != v { v } else { T::zero() }).collect()
        }
        let y = match s {
            CpuStorage::F32(_) => {
                let x = slice::<f32>(s, l)?;
                CpuStorage::F32(vectorized(
                    #[inline(always)]
                    || run(x),
                ))
            }
            CpuStorage::F64(_) => {
                let x = slice::<f64>(s, l)?;
                CpuStorage::F64(vectorized(
                    #[inline(always)]
                    || run(x),
                ))
            }
            _ => candle_core::bail!("relu kernel: f32 or f64 input expected"),
        };
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if !x.track_op() {
            return Ok(None);
        }
        Ok(Some(relu_grad(res, grad)?))
    }
}

/// `(y, dL/dy)` to `dL/dx = dL/dy [y > 0]`.
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "deeprl-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        #[inline(always)]
        fn run<T: WithDType>(y: &[T], g: &[T]) -> Vec<T> {
            y.iter().zip(g).map(|(&y, &g)| if y > T::zero() { g } else { T::zero() }).collect()
        }
        if l1.dims() != l2.dims() {
            candle_core::bail!("relu kernel: gradient {:?} for output {:?}", l2.dims(), l1.dims())
        }
        let gx = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let (y, g) = (slice::<f32>(s1, l1)?, slice::<f32>(s2, l2)?);
                CpuStorage::F32(vectorized(
                    #[inline(always)]
                    || run(y, g),
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let (y, g) = (slice::<f64>(s1, l1)?, slice::<f64>(s2, l2)?);
                CpuStorage::F64(vectorized(
                    #[inline(always)]
                    || run(y, g),
                ))
            }
            _ => candle_core::bail!("relu kernel: f32 or f64 operands of one dtype expected"),
        };
        Ok((gx, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use rand::{Rng, SeedableRng};

    use crate::gradcheck::check_gradients;

    /// Equal to candle's `relu` in value and gradient (away from 0, where the rules
    /// differ), and its backward matches central finite differences in f64.
    #[test]
    fn relu_kernel_equals_candle_relu_and_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Values at least 0.01 away from the kink, so the finite differences see a line.
        let v: Vec<f64> = (0..60)
            .map(|_| {
                let a: f64 = rng.random_range(0.01..1.0);
                if rng.random_bool(0.5) {
                    a
                } else {
                    -a
                }
            })
            .collect();
        let x = Var::from_vec(v, (3, 4, 5), &Device::Cpu).unwrap();
        let u: Vec<f64> = (0..60).map(|_| rng.random_range(-1.0..1.0)).collect();
        let u = Tensor::from_vec(u, (3, 4, 5), &Device::Cpu).unwrap();
        let fast = super::relu(x.as_tensor()).unwrap();
        let generic = x.as_tensor().relu().unwrap();
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
        };
        assert_eq!(diff(&fast, &generic), 0.0);
        let gf = fast.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
        let gg = generic.mul(&u).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(diff(gf.get(&x).unwrap(), gg.get(&x).unwrap()), 0.0);
        let f = || super::relu(x.as_tensor())?.mul(&u);
        let report = check_gradients(std::slice::from_ref(&x), f, 1e-6, 1e-7, 1e-5).unwrap();
        assert!(report.passed(), "{report:?}");
    }
}
