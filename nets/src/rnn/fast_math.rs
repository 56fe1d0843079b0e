//! The element types of the fused recurrent kernels ([`super::fused`]) and their gate
//! nonlinearities.
//!
//! f64 uses the standard library's `exp`/`tanh` (the float64 conformance tolerance against
//! torch is 1e-10). f32 uses a branch-free exponential (Cephes' `expf` polynomial, about 1e-7
//! relative error) that the compiler vectorises, for both sigmoid and tanh: the gate passes
//! are then a few vector instructions per element instead of a libm call.

use candle_core::WithDType;

/// f32 or f64, with the two gate nonlinearities.
pub(crate) trait Elem: WithDType + num_traits::Float + std::ops::AddAssign {
    /// `1 / (1 + e^-x)`.
    fn sigmoid(x: Self) -> Self;
    /// `tanh(x)`.
    fn tanh_(x: Self) -> Self;
}

/// Branch-free `e^x` for f32: `2^n p(r)` with `x = n ln2 + r`, `|r| <= ln2/2`, and Cephes'
/// degree-6 polynomial; inputs clamped to `[-87, 88]` (the normal range). The rounding of
/// `x log2(e)` uses the `1.5 * 2^23` trick, whose low mantissa bits then hold `n`, so the
/// whole function is float and integer arithmetic the compiler vectorises. The polynomial
/// uses fused multiply-adds (`mul_add`: one instruction where the caller is compiled with
/// FMA, and the same correctly rounded result elsewhere).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5); // Cephes: 5.0000001201e-1, which is 0.5 in f32
    p = (p * r).mul_add(r, r) + 1.0;
    let two_n = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    two_n * p
}

impl Elem for f32 {
    #[inline(always)]
    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + exp_f32(-x))
    }
    #[inline(always)]
    fn tanh_(x: f32) -> f32 {
        1.0 - 2.0 / (exp_f32(2.0 * x) + 1.0)
    }
}

impl Elem for f64 {
    #[inline(always)]
    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    #[inline(always)]
    fn tanh_(x: f64) -> f64 {
        x.tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::{exp_f32, Elem};

    /// The fast exponential, sigmoid and tanh against the standard library over the range the
    /// gates see (and beyond, where the clamp must keep results finite).
    #[test]
    fn fast_f32_functions_match_std() {
        let mut worst = 0f64;
        for i in -4000..=4000 {
            let x = i as f32 * 0.02;
            let want = (x as f64).exp();
            worst = worst.max(((exp_f32(x) as f64 - want) / want).abs());
            let s = <f32 as Elem>::sigmoid(x) as f64;
            assert!((s - 1.0 / (1.0 + (-(x as f64)).exp())).abs() < 2e-7, "sigmoid({x})");
            let t = <f32 as Elem>::tanh_(x) as f64;
            assert!((t - (x as f64).tanh()).abs() < 3e-7, "tanh({x}) = {t}");
        }
        assert!(worst < 3e-7, "relative error of exp {worst}");
        assert!(exp_f32(-1000.0) >= 0.0 && exp_f32(1000.0).is_finite());
        let s = <f32 as Elem>::sigmoid(-1000.0);
        assert!((0.0..1e-37).contains(&s), "sigmoid(-1000) = {s}");
        assert!((<f32 as Elem>::tanh_(1000.0) - 1.0).abs() < 1e-7);
    }
}
