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

/// The widest vector instruction set the CPU offers to these kernels, detected at run time
/// (the standard library caches the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    /// AVX-512 (F, VL) with FMA: 16 f32 lanes.
    Avx512,
    /// AVX2 with FMA: 8 f32 lanes.
    Avx2,
    /// Whatever the build targets (SSE2 on x86-64).
    Baseline,
}

/// Detects [`Simd`].
pub(crate) fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma");
        if avx2 && has!("avx512f") && has!("avx512vl") {
            return Simd::Avx512;
        }
        if avx2 {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// Runs `f`, compiled for the widest of AVX-512, AVX2 + FMA or the baseline that the CPU
/// supports. `f` should be a small closure calling `#[inline(always)]` kernels, so that
/// their code is generated inside the selected function. Kernels that call `mul_add` (the
/// LSTM and GRU gate passes) use their own `#[target_feature]` copies instead, selected by
/// [`simd`]: measured, their closures were not inlined here, and a `mul_add` compiled for the
/// baseline is a library call (7x slower gate passes).
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    match simd() {
        // SAFETY (both arms): the CPU supports the instruction sets (detected by `simd`).
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { avx512(f) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { avx2(f) },
        _ => f(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Defines `pub(crate) fn NAME<F: BOUND>(args)` that runs `IMPL(args)` compiled for AVX-512,
/// AVX2 + FMA or the baseline, as [`simd`] detects: the two wide copies are
/// `#[target_feature]` functions whose bodies are `IMPL` (which should be
/// `#[inline(always)]`, so that it is generated inside them). For kernels that [`vectorized`]
/// does not serve (the LSTM and GRU gate passes, whose `mul_add`s stay library calls there).
macro_rules! per_cpu {
    ($(#[$meta:meta])* fn $name:ident<F: $bound:path>($($arg:ident: $ty:ty),* $(,)?) => $imp:ident) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name<F: $bound>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512<F: $bound>($($arg: $ty),*) {
                $imp($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2<F: $bound>($($arg: $ty),*) {
                $imp($($arg),*)
            }
            match $crate::simd::simd() {
                // SAFETY (both arms): the CPU supports the instruction sets (detected by `simd`).
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Simd::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Simd::Avx2 => unsafe { avx2($($arg),*) },
                _ => $imp($($arg),*),
            }
        }
    };
}
pub(crate) use per_cpu;

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
