//! The update rules, one fused pass over a parameter's values per step, generic over `f32`
//! and `f64`. Each follows torch's single-tensor implementation (`foreach=False`) operation
//! for operation; scalars are computed in `f64` and rounded to the parameter's type, as
//! torch's kernels do.
//!
//! **Subnormal state is set to zero** (the one departure from torch). A value whose gradient
//! is exactly zero step after step (an input that is always zero, a ReLU unit that never
//! fires) has its decaying state multiplied by the same factor each step: Adam's first and
//! second moments by `beta1` and `beta2`, RMSprop's square average by `alpha`, a momentum
//! buffer by `momentum`. With `beta1 = 0.9` a moment of 0.1 leaves `f32`'s normal range
//! (below `f32::MIN_POSITIVE`, 1.2e-38) after about 800 steps and stays subnormal for about
//! 150 more. x86 CPUs do arithmetic on subnormal operands through a microcode assist about a
//! hundred times slower than a normal operation, and every update of such a value pays it:
//! DQN's CartPole step went from 1.3 to 4 ms once part of its Adam state was subnormal. So
//! each rule writes a decaying state value as zero when its magnitude is below the type's
//! smallest normal number ([`flush`]): a select inside the fused loop, free next to the
//! update. No parameter moves differently by more than rounding: such a moment changes its
//! parameter by less than `lr * 1.2e-38 / eps`, and a subnormal second moment adds less than
//! `1e-19` to a denominator that holds `eps`. (Growing state, Adagrad's sum, AMSGrad's
//! maximum and Adamax's norm, which is at least `eps`, cannot decay into subnormals.) With
//! `eps = 0` a zero gradient over a zeroed RMSprop or Adam state gives `0 / 0` sooner than
//! in torch, where the state underflows to zero about 150 steps later and gives the same NaN.

use super::config::{
    AdagradConfig, AdamConfig, AdamaxConfig, NAdamConfig, RmsPropConfig, SgdConfig,
};
use num_traits::Float;

/// The state an optimizer keeps for one parameter (torch's `optimizer.state[p]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamState<T> {
    /// Steps taken.
    pub step: u64,
    /// SGD/RMSprop momentum buffer, Adagrad sum, Adam-family first moment.
    pub first: Vec<T>,
    /// RMSprop/Adam-family second moment, Adamax infinity norm.
    pub second: Vec<T>,
    /// AMSGrad's running maximum, centered RMSprop's gradient average.
    pub third: Vec<T>,
    /// NAdam's product of momentum coefficients.
    pub mu_product: f64,
}

impl<T: Float> ParamState<T> {
    /// An empty state for a parameter of `len` values.
    pub fn new(len: usize) -> Self {
        ParamState {
            step: 0,
            first: Vec::with_capacity(len),
            second: vec![],
            third: vec![],
            mu_product: 1.0,
        }
    }
}

/// `x`, or zero when `x` is subnormal (`0 < |x| < T::min_positive_value()`; see the
/// [module docs](self) for why). NaN and infinities pass unchanged.
#[inline(always)]
pub fn flush<T: Float>(x: T) -> T {
    if x.abs() < T::min_positive_value() {
        T::zero()
    } else {
        x
    }
}

#[inline(always)]
fn s<T: Float>(x: f64) -> T {
    T::from(x).unwrap_or_else(T::nan)
}

/// torch's `lerp(a, b, w)`: `a + w (b - a)` for `|w| < 0.5`, else `b - (b - a)(1 - w)`.
#[inline(always)]
fn lerp<T: Float>(a: T, b: T, w: T, one_minus_w: T, small: bool) -> T {
    if small {
        a + w * (b - a)
    } else {
        b - (b - a) * one_minus_w
    }
}

/// Allocates a state buffer on the first step.
fn ensure<T: Float>(buffer: &mut Vec<T>, len: usize, value: T) {
    if buffer.len() != len {
        buffer.clear();
        buffer.resize(len, value);
    }
}

/// The gradient torch works with: negated under `maximize`, plus the L2 term.
#[inline(always)]
fn grad<T: Float>(g: T, p: T, maximize: bool, l2: T) -> T {
    let g = if maximize { -g } else { g };
    g + l2 * p
}

/// One SGD step.
pub fn sgd<T: Float>(c: &SgdConfig, p: &mut [T], g: &[T], st: &mut ParamState<T>) {
    let (lr, wd, momentum, damp) =
        (s::<T>(c.lr), s::<T>(c.weight_decay), s::<T>(c.momentum), s::<T>(1.0 - c.dampening));
    let first = st.step == 0;
    st.step += 1;
    if c.momentum == 0.0 {
        for (p, &g) in p.iter_mut().zip(g) {
            *p = *p - lr * grad(g, *p, c.maximize, wd);
        }
        return;
    }
    ensure(&mut st.first, p.len(), T::zero());
    for ((p, &g), b) in p.iter_mut().zip(g).zip(st.first.iter_mut()) {
        let d = grad(g, *p, c.maximize, wd);
        *b = flush(if first { d } else { momentum * *b + damp * d });
        let d = if c.nesterov { d + momentum * *b } else { *b };
        *p = *p - lr * d;
    }
}

/// One Adagrad step.
pub fn adagrad<T: Float>(c: &AdagradConfig, p: &mut [T], g: &[T], st: &mut ParamState<T>) {
    ensure(&mut st.first, p.len(), s(c.initial_accumulator_value));
    st.step += 1;
    let clr = s::<T>(c.lr / (1.0 + (st.step - 1) as f64 * c.lr_decay));
    let (wd, eps) = (s::<T>(c.weight_decay), s::<T>(c.eps));
    for ((p, &g), sum) in p.iter_mut().zip(g).zip(st.first.iter_mut()) {
        let g = grad(g, *p, c.maximize, wd);
        *sum = *sum + g * g;
        *p = *p - clr * (g / (sum.sqrt() + eps));
    }
}

/// One RMSprop step.
pub fn rmsprop<T: Float>(c: &RmsPropConfig, p: &mut [T], g: &[T], st: &mut ParamState<T>) {
    let n = p.len();
    ensure(&mut st.second, n, T::zero());
    if c.momentum > 0.0 {
        ensure(&mut st.first, n, T::zero());
    }
    if c.centered {
        ensure(&mut st.third, n, T::zero());
    }
    st.step += 1;
    // One monomorphised loop per variant, so that each is branch-free and vectorises.
    match (c.centered, c.momentum > 0.0) {
        (false, false) => rmsprop_loop::<T, false, false>(c, p, g, st),
        (false, true) => rmsprop_loop::<T, false, true>(c, p, g, st),
        (true, false) => rmsprop_loop::<T, true, false>(c, p, g, st),
        (true, true) => rmsprop_loop::<T, true, true>(c, p, g, st),
    }
}

fn rmsprop_loop<T: Float, const CENTERED: bool, const MOMENTUM: bool>(
    c: &RmsPropConfig,
    p: &mut [T],
    g: &[T],
    st: &mut ParamState<T>,
) {
    let (lr, wd, eps, alpha, one_minus_alpha) = (
        s::<T>(c.lr),
        s::<T>(c.weight_decay),
        s::<T>(c.eps),
        s::<T>(c.alpha),
        s::<T>(1.0 - c.alpha),
    );
    let small = (1.0 - c.alpha).abs() < 0.5;
    let momentum = s::<T>(c.momentum);
    for i in 0..p.len() {
        let g = grad(g[i], p[i], c.maximize, wd);
        let v = flush(st.second[i] * alpha + g * g * one_minus_alpha);
        st.second[i] = v;
        let avg = if CENTERED {
            let m = flush(lerp(st.third[i], g, one_minus_alpha, alpha, small));
            st.third[i] = m;
            (v + m * m * -T::one()).sqrt() + eps
        } else {
            v.sqrt() + eps
        };
        if MOMENTUM {
            let b = flush(st.first[i] * momentum + g / avg);
            st.first[i] = b;
            p[i] = p[i] - lr * b;
        } else {
            p[i] = p[i] - lr * (g / avg);
        }
    }
}

/// One Adam (or AdamW, with `decoupled_weight_decay`) step.
pub fn adam<T: Float>(c: &AdamConfig, p: &mut [T], g: &[T], st: &mut ParamState<T>) {
    let n = p.len();
    ensure(&mut st.first, n, T::zero());
    ensure(&mut st.second, n, T::zero());
    if c.amsgrad {
        ensure(&mut st.third, n, T::zero());
    }
    st.step += 1;
    let (beta1, beta2) = c.betas;
    let t = st.step as i32;
    let (bc1, bc2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
    let step_size = s::<T>(c.lr / bc1);
    let bc2_sqrt = s::<T>(bc2.sqrt());
    let decay = s::<T>(1.0 - c.lr * c.weight_decay);
    let l2 = if c.decoupled_weight_decay { T::zero() } else { s(c.weight_decay) };
    let (w1, one_minus_w1, small) = (s::<T>(1.0 - beta1), s::<T>(beta1), (1.0 - beta1).abs() < 0.5);
    let (beta2, one_minus_beta2, eps) = (s::<T>(beta2), s::<T>(1.0 - beta2), s::<T>(c.eps));
    let decoupled = c.decoupled_weight_decay && c.weight_decay != 0.0;
    // The same body twice, so that each loop is branch-free and vectorises.
    let moments = p.iter_mut().zip(g).zip(st.first.iter_mut().zip(st.second.iter_mut()));
    if c.amsgrad {
        for (((p, &g), (m, v)), vmax) in moments.zip(st.third.iter_mut()) {
            if decoupled {
                *p = *p * decay;
            }
            let g = grad(g, *p, c.maximize, l2);
            *m = flush(lerp(*m, g, w1, one_minus_w1, small));
            *v = flush(*v * beta2 + g * g * one_minus_beta2);
            *vmax = vmax.max(*v);
            *p = *p - step_size * (*m / (vmax.sqrt() / bc2_sqrt + eps));
        }
    } else {
        for ((p, &g), (m, v)) in moments {
            if decoupled {
                *p = *p * decay;
            }
            let g = grad(g, *p, c.maximize, l2);
            *m = flush(lerp(*m, g, w1, one_minus_w1, small));
            *v = flush(*v * beta2 + g * g * one_minus_beta2);
            *p = *p - step_size * (*m / (v.sqrt() / bc2_sqrt + eps));
        }
    }
}

/// One Adamax step.
pub fn adamax<T: Float>(c: &AdamaxConfig, p: &mut [T], g: &[T], st: &mut ParamState<T>) {
    let n = p.len();
    ensure(&mut st.first, n, T::zero());
    ensure(&mut st.second, n, T::zero());
    st.step += 1;
    let (beta1, beta2) = c.betas;
    let clr = s::<T>(c.lr / (1.0 - beta1.powi(st.step as i32)));
    let (w1, one_minus_w1, small) = (s::<T>(1.0 - beta1), s::<T>(beta1), (1.0 - beta1).abs() < 0.5);
    let (beta2, eps, wd) = (s::<T>(beta2), s::<T>(c.eps), s::<T>(c.weight_decay));
    for i in 0..n {
        let g = grad(g[i], p[i], c.maximize, wd);
        let m = flush(lerp(st.first[i], g, w1, one_minus_w1, small));
        let u = (st.second[i] * beta2).max(g.abs() + eps);
        st.first[i] = m;
        st.second[i] = u;
        p[i] = p[i] - clr * (m / u);
    }
}

/// One NAdam step.
pub fn nadam<T: Float>(c: &NAdamConfig, p: &mut [T], g: &[T], st: &mut ParamState<T>) {
    let n = p.len();
    ensure(&mut st.first, n, T::zero());
    ensure(&mut st.second, n, T::zero());
    st.step += 1;
    let (beta1, beta2) = c.betas;
    let t = st.step as f64;
    let bc2 = s::<T>(1.0 - beta2.powi(st.step as i32));
    let mu = beta1 * (1.0 - 0.5 * 0.96f64.powf(t * c.momentum_decay));
    let mu_next = beta1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * c.momentum_decay));
    st.mu_product *= mu;
    let coef_g = s::<T>(-c.lr * (1.0 - mu) / (1.0 - st.mu_product));
    let coef_m = s::<T>(-c.lr * mu_next / (1.0 - st.mu_product * mu_next));
    let decay = s::<T>(1.0 - c.lr * c.weight_decay);
    let l2 = if c.decoupled_weight_decay { T::zero() } else { s(c.weight_decay) };
    let (w1, one_minus_w1, small) = (s::<T>(1.0 - beta1), s::<T>(beta1), (1.0 - beta1).abs() < 0.5);
    let (beta2, one_minus_beta2, eps) = (s::<T>(beta2), s::<T>(1.0 - beta2), s::<T>(c.eps));
    for i in 0..n {
        if c.decoupled_weight_decay && c.weight_decay != 0.0 {
            p[i] = p[i] * decay;
        }
        let g = grad(g[i], p[i], c.maximize, l2);
        let m = flush(lerp(st.first[i], g, w1, one_minus_w1, small));
        let v = flush(st.second[i] * beta2 + g * g * one_minus_beta2);
        st.first[i] = m;
        st.second[i] = v;
        let denom = (v / bc2).sqrt() + eps;
        p[i] = p[i] + coef_g * (g / denom);
        p[i] = p[i] + coef_m * (m / denom);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{OptimizerConfig, RmsPropConfig};

    /// One value with a gradient of 0.1 once, then exactly zero: its decaying state shrinks by
    /// a constant factor per step. After `steps` more steps the unflushed state would be
    /// subnormal (checked in `f64`); the rules must have written it as zero, and left the
    /// parameter where the unflushed update would (to rounding).
    #[test]
    fn decaying_state_is_zero_instead_of_subnormal() {
        let adam = AdamConfig::default(); // beta1 0.9, beta2 0.999
        let rules: Vec<(&str, OptimizerConfig, f64)> = vec![
            ("Adam", OptimizerConfig::Adam(adam), 0.9),
            ("AMSGrad", OptimizerConfig::Adam(AdamConfig { amsgrad: true, ..adam }), 0.9),
            ("NAdam", OptimizerConfig::NAdam(NAdamConfig::default()), 0.9),
            ("Adamax", OptimizerConfig::Adamax(AdamaxConfig::default()), 0.9),
            (
                "SGD momentum",
                OptimizerConfig::Sgd(SgdConfig { lr: 0.01, momentum: 0.9, ..SgdConfig::default() }),
                0.9,
            ),
            (
                "RMSprop",
                OptimizerConfig::RmsProp(RmsPropConfig { alpha: 0.9, ..Default::default() }),
                0.9,
            ),
            (
                "centered RMSprop with momentum",
                OptimizerConfig::RmsProp(RmsPropConfig {
                    alpha: 0.9,
                    centered: true,
                    momentum: 0.5,
                    ..Default::default()
                }),
                0.9,
            ),
        ];
        for (name, rule, factor) in rules {
            let (mut p, mut st) = (vec![0.5f32], ParamState::new(1));
            rule.update(&mut p, &[0.1], &mut st).unwrap();
            let after_first = p[0];
            // 0.1 (or 0.01 = 0.1^2 for second moments) times factor^steps, in f64: 850 steps of
            // 0.9 put a first moment of 0.1 at 1.2e-40, inside f32's subnormal range.
            let steps = 850;
            let unflushed = 0.1 * factor.powi(steps);
            assert!(unflushed < f32::MIN_POSITIVE as f64 && unflushed > 1e-44, "{name}");
            for _ in 0..steps {
                rule.update(&mut p, &[0.0], &mut st).unwrap();
            }
            for (which, buffer) in
                [("first", &st.first), ("second", &st.second), ("third", &st.third)]
            {
                for &x in buffer.iter() {
                    assert!(x == 0.0 || x.is_normal(), "{name}: {which} state {x:e} is subnormal");
                }
            }
            // The first moment (Adam family, momentum) has decayed to exactly zero.
            if let Some(&m) = st.first.first() {
                assert_eq!(m, 0.0, "{name}: first moment");
            }
            assert!(p[0].is_finite() && (p[0] - after_first).abs() < 0.1, "{name}: {}", p[0]);
        }
        // Normal values are untouched, NaN passes.
        assert_eq!(flush(1.5e-38f32), 1.5e-38);
        assert_eq!(flush(-1e-39f32), 0.0);
        assert_eq!(flush(1e-310f64), 0.0);
        assert!(flush(f32::NAN).is_nan());
    }
}
