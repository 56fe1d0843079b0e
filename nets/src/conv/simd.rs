//! Runtime selection of the vector instructions for the element-wise CPU kernels.
//!
//! The workspace builds for the baseline x86-64 target, so a plain loop is compiled to SSE2
//! (four f32 lanes); the matrix products already pick AVX-512 or AVX2 at run time inside the
//! `gemm` crate. [`vectorized`] does the same for the other kernels (batch norm, ReLU, bias
//! sums, im2col/col2im, pooling): it runs its closure inside a function compiled with AVX-512
//! (or AVX2 + FMA) enabled when the CPU has it, so that the closure, inlined there, is
//! vectorised for the wider registers. The kernels fix their own summation order (explicit
//! lanes), and Rust never fuses a multiply and an add on its own, so the results are the same
//! bit for bit whichever path runs.

/// Runs `f`, compiled for the widest of AVX-512, AVX2 + FMA or the baseline that the CPU
/// supports. `f` should be a small closure calling `#[inline(always)]` kernels, so that
/// their code is generated inside the selected function.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    /// The closure's result comes back unchanged on whichever path the CPU selects.
    #[test]
    fn runs_the_closure() {
        let v: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let s = super::vectorized(|| v.iter().map(|x| x * 2.0).sum::<f32>());
        assert_eq!(s, 9900.0);
    }
}
