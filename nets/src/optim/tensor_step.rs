//! The update rules written with candle tensor ops, for variables on any device: the path
//! that GPUs take, and that [`OptimPath::TensorOps`](super::OptimPath) forces on CPU.
//!
//! Each function is [`update`](super::update)'s rule of the same name operation for operation
//! (torch's single-tensor `foreach=False` implementation): the same scalars, computed in
//! `f64` on the host and rounded to the parameter's type (`affine` rounds its factors the
//! same way), and the same elementwise operations in the same order, so that on CPU both
//! paths give the same numbers. Divisions by a scalar divide by a one-element tensor, since
//! `tensor / x` in candle multiplies by `1 / x`, which rounds differently.
//!
//! The state lives in tensors of the variable's type on the variable's device; a function
//! computes the new parameter and state and commits the state only when every operation has
//! succeeded, so an error (e.g. out of device memory) leaves the state as it was.

use super::config::{
    AdagradConfig, AdamConfig, AdamaxConfig, NAdamConfig, OptimizerConfig, RmsPropConfig, SgdConfig,
};
use candle_core::{Result, Tensor};

/// The state an optimizer keeps for one variable, as tensors on the variable's device
/// (the same buffers, with the same meaning, as [`ParamState`](super::ParamState)).
#[derive(Debug, Clone)]
pub(crate) struct TensorState {
    /// Steps taken.
    pub step: u64,
    /// SGD/RMSprop momentum buffer, Adagrad sum, Adam-family first moment.
    pub first: Option<Tensor>,
    /// RMSprop/Adam-family second moment, Adamax infinity norm.
    pub second: Option<Tensor>,
    /// AMSGrad's running maximum, centered RMSprop's gradient average.
    pub third: Option<Tensor>,
    /// NAdam's product of momentum coefficients.
    pub mu_product: f64,
}

impl TensorState {
    /// The state before the first step.
    pub fn new() -> Self {
        TensorState { step: 0, first: None, second: None, third: None, mu_product: 1.0 }
    }
}

/// One step of `config` for the parameter `p` with gradient `g` (same shape and type, any
/// layout, any device): returns the new parameter values and updates `state`.
pub(crate) fn step(
    config: &OptimizerConfig,
    p: &Tensor,
    g: &Tensor,
    state: &mut TensorState,
) -> Result<Tensor> {
    // Detached, so that no result records a graph back to the variable or to earlier steps.
    let (p, g) = (p.detach(), g.detach());
    match config {
        OptimizerConfig::Sgd(c) => sgd(c, &p, &g, state),
        OptimizerConfig::Adagrad(c) => adagrad(c, &p, &g, state),
        OptimizerConfig::RmsProp(c) => rmsprop(c, &p, &g, state),
        OptimizerConfig::Adam(c) => adam(c, &p, &g, state),
        OptimizerConfig::AdamW(c) => adam(&AdamConfig::from(*c), &p, &g, state),
        OptimizerConfig::Adamax(c) => adamax(c, &p, &g, state),
        OptimizerConfig::NAdam(c) => nadam(c, &p, &g, state),
    }
}

/// `x * c`, with `c` rounded to `x`'s type.
fn scale(x: &Tensor, c: f64) -> Result<Tensor> {
    x.affine(c, 0.0)
}

/// `x + c`, with `c` rounded to `x`'s type.
fn add_scalar(x: &Tensor, c: f64) -> Result<Tensor> {
    x.affine(1.0, c)
}

/// `x / c`, a true division (not a product with `1 / c`), with `c` rounded to `x`'s type.
fn div_scalar(x: &Tensor, c: f64) -> Result<Tensor> {
    let c = Tensor::new(c, x.device())?.to_dtype(x.dtype())?;
    x.broadcast_div(&c)
}

/// A state buffer, or one filled with `init` if there is none yet (the first step, or an
/// imported state that had none), as the fused kernels' `ensure` does.
fn buffer_or(buffer: &Option<Tensor>, like: &Tensor, init: f64) -> Result<Tensor> {
    match buffer {
        Some(b) => Ok(b.clone()),
        None => add_scalar(&like.zeros_like()?, init),
    }
}

/// torch's `lerp(a, b, w)`: `a + w (b - a)` for `|w| < 0.5`, else `b - (b - a)(1 - w)`, with
/// `1 - w` given as computed by the caller (in `f64`, as the fused kernels do).
fn lerp(a: &Tensor, b: &Tensor, w: f64, one_minus_w: f64) -> Result<Tensor> {
    let diff = (b - a)?;
    if w.abs() < 0.5 {
        a + scale(&diff, w)?
    } else {
        b - scale(&diff, one_minus_w)?
    }
}

/// The gradient torch works with: `-g` under `maximize`, plus the L2 term `l2 p`.
fn effective_grad(g: &Tensor, p: &Tensor, maximize: bool, l2: f64) -> Result<Tensor> {
    let g = if maximize { g.neg()? } else { g.clone() };
    if l2 == 0.0 {
        Ok(g)
    } else {
        g + scale(p, l2)?
    }
}

/// SGD: `d = g + wd p`; with momentum, `b = d` on the first step, then
/// `b = momentum b + (1 - dampening) d`, and `d = d + momentum b` (Nesterov) or `d = b`;
/// `p = p - lr d`.
fn sgd(c: &SgdConfig, p: &Tensor, g: &Tensor, st: &mut TensorState) -> Result<Tensor> {
    let d = effective_grad(g, p, c.maximize, c.weight_decay)?;
    if c.momentum == 0.0 {
        let p = (p - scale(&d, c.lr)?)?;
        st.step += 1;
        return Ok(p);
    }
    let b = if st.step == 0 {
        // torch clones the gradient into the buffer; `d` may be the caller's gradient.
        d.copy()?
    } else {
        (scale(&buffer_or(&st.first, p, 0.0)?, c.momentum)? + scale(&d, 1.0 - c.dampening)?)?
    };
    let d = if c.nesterov { (&d + scale(&b, c.momentum)?)? } else { b.clone() };
    let p = (p - scale(&d, c.lr)?)?;
    st.first = Some(b);
    st.step += 1;
    Ok(p)
}

/// Adagrad: `g = g + wd p`; `sum = sum + g²` (starting at `initial_accumulator_value`);
/// `p = p - clr g / (sqrt(sum) + eps)` with `clr = lr / (1 + (t - 1) lr_decay)`.
fn adagrad(c: &AdagradConfig, p: &Tensor, g: &Tensor, st: &mut TensorState) -> Result<Tensor> {
    let t = st.step + 1;
    let clr = c.lr / (1.0 + (t - 1) as f64 * c.lr_decay);
    let g = effective_grad(g, p, c.maximize, c.weight_decay)?;
    let sum = (buffer_or(&st.first, p, c.initial_accumulator_value)? + g.sqr()?)?;
    let p = (p - scale(&(g / add_scalar(&sum.sqrt()?, c.eps)?)?, clr)?)?;
    st.first = Some(sum);
    st.step = t;
    Ok(p)
}

/// RMSprop: `g = g + wd p`; `v = alpha v + (1 - alpha) g²`; centered:
/// `gbar = lerp(gbar, g, 1 - alpha)` and `avg = sqrt(v - gbar²) + eps`, else
/// `avg = sqrt(v) + eps`; with momentum `b = momentum b + g / avg` and `p = p - lr b`, else
/// `p = p - lr g / avg`.
fn rmsprop(c: &RmsPropConfig, p: &Tensor, g: &Tensor, st: &mut TensorState) -> Result<Tensor> {
    let g = effective_grad(g, p, c.maximize, c.weight_decay)?;
    let v = (scale(&buffer_or(&st.second, p, 0.0)?, c.alpha)? + scale(&g.sqr()?, 1.0 - c.alpha)?)?;
    let (avg, gbar) = if c.centered {
        let gbar = lerp(&buffer_or(&st.third, p, 0.0)?, &g, 1.0 - c.alpha, c.alpha)?;
        (add_scalar(&(&v - gbar.sqr()?)?.sqrt()?, c.eps)?, Some(gbar))
    } else {
        (add_scalar(&v.sqrt()?, c.eps)?, None)
    };
    let (p, b) = if c.momentum > 0.0 {
        let b = (scale(&buffer_or(&st.first, p, 0.0)?, c.momentum)? + (g / avg)?)?;
        ((p - scale(&b, c.lr)?)?, Some(b))
    } else {
        ((p - scale(&(g / avg)?, c.lr)?)?, None)
    };
    st.second = Some(v);
    if gbar.is_some() {
        st.third = gbar;
    }
    if b.is_some() {
        st.first = b;
    }
    st.step += 1;
    Ok(p)
}

/// Adam, or AdamW with `decoupled_weight_decay`: `p = p (1 - lr wd)` (decoupled) or
/// `g = g + wd p` (L2); `m = lerp(m, g, 1 - beta1)`; `v = beta2 v + (1 - beta2) g²`;
/// AMSGrad: `vmax = max(vmax, v)` in place of `v` below;
/// `p = p - lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`.
fn adam(c: &AdamConfig, p: &Tensor, g: &Tensor, st: &mut TensorState) -> Result<Tensor> {
    let t = st.step + 1;
    let (beta1, beta2) = c.betas;
    let (bc1, bc2) = (1.0 - beta1.powi(t as i32), 1.0 - beta2.powi(t as i32));
    let p = if c.decoupled_weight_decay && c.weight_decay != 0.0 {
        scale(p, 1.0 - c.lr * c.weight_decay)?
    } else {
        p.clone()
    };
    let l2 = if c.decoupled_weight_decay { 0.0 } else { c.weight_decay };
    let g = effective_grad(g, &p, c.maximize, l2)?;
    let m = lerp(&buffer_or(&st.first, &p, 0.0)?, &g, 1.0 - beta1, beta1)?;
    let v = (scale(&buffer_or(&st.second, &p, 0.0)?, beta2)? + scale(&g.sqr()?, 1.0 - beta2)?)?;
    let vmax = if c.amsgrad { Some(buffer_or(&st.third, &p, 0.0)?.maximum(&v)?) } else { None };
    let denom = add_scalar(&div_scalar(&vmax.as_ref().unwrap_or(&v).sqrt()?, bc2.sqrt())?, c.eps)?;
    let p = (&p - scale(&(&m / denom)?, c.lr / bc1)?)?;
    st.first = Some(m);
    st.second = Some(v);
    if vmax.is_some() {
        st.third = vmax;
    }
    st.step = t;
    Ok(p)
}

/// Adamax: `g = g + wd p`; `m = lerp(m, g, 1 - beta1)`; `u = max(beta2 u, |g| + eps)`;
/// `p = p - lr / (1 - beta1^t) m / u`.
fn adamax(c: &AdamaxConfig, p: &Tensor, g: &Tensor, st: &mut TensorState) -> Result<Tensor> {
    let t = st.step + 1;
    let (beta1, beta2) = c.betas;
    let clr = c.lr / (1.0 - beta1.powi(t as i32));
    let g = effective_grad(g, p, c.maximize, c.weight_decay)?;
    let m = lerp(&buffer_or(&st.first, p, 0.0)?, &g, 1.0 - beta1, beta1)?;
    let u =
        scale(&buffer_or(&st.second, p, 0.0)?, beta2)?.maximum(&add_scalar(&g.abs()?, c.eps)?)?;
    let p = (p - scale(&(&m / &u)?, clr)?)?;
    st.first = Some(m);
    st.second = Some(u);
    st.step = t;
    Ok(p)
}

/// NAdam: weight decay as in Adam (L2, or decoupled with `decoupled_weight_decay`);
/// `mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay))`, `mu_product *= mu_t`;
/// `m = lerp(m, g, 1 - beta1)`; `v = beta2 v + (1 - beta2) g²`;
/// `denom = sqrt(v / (1 - beta2^t)) + eps`;
/// `p = p - lr (1 - mu_t) / (1 - mu_product) g / denom
///        - lr mu_{t+1} / (1 - mu_product mu_{t+1}) m / denom`.
fn nadam(c: &NAdamConfig, p: &Tensor, g: &Tensor, st: &mut TensorState) -> Result<Tensor> {
    let t = st.step + 1;
    let (beta1, beta2) = c.betas;
    let bc2 = 1.0 - beta2.powi(t as i32);
    let mu = beta1 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * c.momentum_decay));
    let mu_next = beta1 * (1.0 - 0.5 * 0.96f64.powf((t as f64 + 1.0) * c.momentum_decay));
    let mu_product = st.mu_product * mu;
    let coef_g = -c.lr * (1.0 - mu) / (1.0 - mu_product);
    let coef_m = -c.lr * mu_next / (1.0 - mu_product * mu_next);
    let p = if c.decoupled_weight_decay && c.weight_decay != 0.0 {
        scale(p, 1.0 - c.lr * c.weight_decay)?
    } else {
        p.clone()
    };
    let l2 = if c.decoupled_weight_decay { 0.0 } else { c.weight_decay };
    let g = effective_grad(g, &p, c.maximize, l2)?;
    let m = lerp(&buffer_or(&st.first, &p, 0.0)?, &g, 1.0 - beta1, beta1)?;
    let v = (scale(&buffer_or(&st.second, &p, 0.0)?, beta2)? + scale(&g.sqr()?, 1.0 - beta2)?)?;
    let denom = add_scalar(&div_scalar(&v, bc2)?.sqrt()?, c.eps)?;
    let p = (&p + scale(&(&g / &denom)?, coef_g)?)?;
    let p = (&p + scale(&(&m / &denom)?, coef_m)?)?;
    st.first = Some(m);
    st.second = Some(v);
    st.mu_product = mu_product;
    st.step = t;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use crate::optim::{
        AdagradConfig, AdamConfig, AdamWConfig, AdamaxConfig, NAdamConfig, Optim, OptimPath,
        OptimizerConfig, RmsPropConfig, SavedState, SgdConfig,
    };
    use candle_core::backprop::GradStore;
    use candle_core::{DType, Device, Tensor, Var};
    use candle_nn::Optimizer;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    // The two paths must agree exactly (0 ulps) on CPU: both run the same operations in the
    // same order with the same rounded scalars, and candle's CPU kernels round each one
    // correctly (`sqrt` and division included). A different order, or a product with `1 / c`
    // in place of a division, shows up as a distance of 1 ulp or more, reported in ulps.

    /// Every optimizer with every option switched on at least once.
    fn configs() -> Vec<(&'static str, OptimizerConfig)> {
        use OptimizerConfig as O;
        let sgd = SgdConfig { lr: 0.05, ..SgdConfig::default() };
        let rms = RmsPropConfig { lr: 0.01, ..RmsPropConfig::default() };
        let adam = AdamConfig { lr: 0.01, ..AdamConfig::default() };
        let nadam = NAdamConfig { lr: 0.01, ..NAdamConfig::default() };
        vec![
            ("sgd", O::Sgd(sgd)),
            ("sgd wd maximize", O::Sgd(SgdConfig { weight_decay: 0.1, maximize: true, ..sgd })),
            ("sgd momentum", O::Sgd(SgdConfig { momentum: 0.9, ..sgd })),
            (
                "sgd momentum dampening wd",
                O::Sgd(SgdConfig { momentum: 0.8, dampening: 0.3, weight_decay: 0.05, ..sgd }),
            ),
            (
                "sgd nesterov wd",
                O::Sgd(SgdConfig { momentum: 0.9, nesterov: true, weight_decay: 0.01, ..sgd }),
            ),
            ("sgd momentum maximize", O::Sgd(SgdConfig { momentum: 0.7, maximize: true, ..sgd })),
            ("adagrad", O::Adagrad(AdagradConfig { lr: 0.1, ..AdagradConfig::default() })),
            (
                "adagrad lr_decay wd init maximize",
                O::Adagrad(AdagradConfig {
                    lr: 0.1,
                    lr_decay: 0.05,
                    weight_decay: 0.1,
                    initial_accumulator_value: 0.3,
                    eps: 1e-6,
                    maximize: true,
                }),
            ),
            ("rmsprop", O::RmsProp(rms)),
            ("rmsprop momentum", O::RmsProp(RmsPropConfig { momentum: 0.9, ..rms })),
            ("rmsprop centered", O::RmsProp(RmsPropConfig { centered: true, ..rms })),
            (
                "rmsprop centered momentum wd maximize",
                O::RmsProp(RmsPropConfig {
                    centered: true,
                    momentum: 0.5,
                    weight_decay: 0.1,
                    maximize: true,
                    alpha: 0.3,
                    eps: 1e-6,
                    ..rms
                }),
            ),
            ("adam", O::Adam(adam)),
            (
                "adam l2 betas eps",
                O::Adam(AdamConfig { weight_decay: 0.1, betas: (0.3, 0.9), eps: 1e-4, ..adam }),
            ),
            (
                "adam amsgrad maximize",
                O::Adam(AdamConfig { amsgrad: true, maximize: true, ..adam }),
            ),
            ("adamw", O::AdamW(AdamWConfig { lr: 0.01, ..AdamWConfig::default() })),
            (
                "adamw amsgrad wd",
                O::AdamW(AdamWConfig {
                    lr: 0.01,
                    weight_decay: 0.5,
                    amsgrad: true,
                    ..AdamWConfig::default()
                }),
            ),
            ("adamax", O::Adamax(AdamaxConfig::default())),
            (
                "adamax wd betas maximize",
                O::Adamax(AdamaxConfig {
                    weight_decay: 0.1,
                    betas: (0.2, 0.5),
                    maximize: true,
                    ..AdamaxConfig::default()
                }),
            ),
            ("nadam", O::NAdam(nadam)),
            (
                "nadam l2 momentum_decay",
                O::NAdam(NAdamConfig { weight_decay: 0.1, momentum_decay: 0.04, ..nadam }),
            ),
            (
                "nadam decoupled maximize",
                O::NAdam(NAdamConfig {
                    weight_decay: 0.2,
                    decoupled_weight_decay: true,
                    maximize: true,
                    ..nadam
                }),
            ),
        ]
    }

    const SHAPES: [&[usize]; 2] = [&[7, 5], &[5]];

    /// Values in [-2, 2) with about 5 % exact zeros.
    fn random(rng: &mut ChaCha8Rng, shape: &[usize], dtype: DType) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|_| if rng.random_bool(0.05) { 0.0 } else { rng.random_range(-2.0..2.0) })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    fn new_vars(seed: u64, dtype: DType) -> Vec<Var> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        SHAPES.iter().map(|s| Var::from_tensor(&random(&mut rng, s, dtype)).unwrap()).collect()
    }

    /// A gradient store holding a fresh random gradient for every variable.
    fn random_grads(vars: &[Var], rng: &mut ChaCha8Rng) -> GradStore {
        let mut loss = vars[0].sum_all().unwrap();
        for v in &vars[1..] {
            loss = (loss + v.sum_all().unwrap()).unwrap();
        }
        let mut grads = loss.backward().unwrap();
        for v in vars {
            grads.insert(v, random(rng, v.dims(), v.dtype()));
        }
        grads
    }

    fn values(vars: &[Var]) -> Vec<Vec<f64>> {
        vars.iter()
            .map(|v| v.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap())
            .collect()
    }

    /// The distance between `a` and `b` in units in the last place of `dtype` (0 for equal
    /// values, `+0` and `-0` included).
    fn ulps(a: f64, b: f64, dtype: DType) -> u64 {
        if a == b {
            return 0;
        }
        let key = |x: f64| -> i128 {
            let (bits, sign) = if dtype == DType::F32 {
                (i128::from((x as f32).to_bits() & 0x7fff_ffff), (x as f32).is_sign_negative())
            } else {
                (i128::from(x.to_bits() & 0x7fff_ffff_ffff_ffff), x.is_sign_negative())
            };
            if sign {
                -bits
            } else {
                bits
            }
        };
        (key(a) - key(b)).unsigned_abs().try_into().unwrap_or(u64::MAX)
    }

    fn max_ulps(a: &[Vec<f64>], b: &[Vec<f64>], dtype: DType) -> u64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .flat_map(|(a, b)| {
                assert_eq!(a.len(), b.len());
                a.iter().zip(b).map(move |(&x, &y)| ulps(x, y, dtype))
            })
            .max()
            .unwrap_or(0)
    }

    fn state_ulps(a: &[SavedState], b: &[SavedState], dtype: DType) -> u64 {
        assert_eq!(a.len(), b.len());
        let mut worst = 0;
        for (a, b) in a.iter().zip(b) {
            assert_eq!((a.step, a.mu_product), (b.step, b.mu_product));
            worst = worst.max(max_ulps(&a.buffers, &b.buffers, dtype));
        }
        worst
    }

    /// `steps` random steps on `path`, with a learning-rate and momentum change half-way and
    /// one step without a gradient for the second variable; the parameters and state after.
    fn run(
        path: OptimPath,
        config: OptimizerConfig,
        dtype: DType,
        steps: usize,
    ) -> (Vec<Vec<f64>>, Vec<SavedState>) {
        let vars = new_vars(7, dtype);
        let mut opt = Optim::with_path(vars.clone(), config, path).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for t in 0..steps {
            if t == steps / 2 {
                opt.set_learning_rate(opt.learning_rate() * 0.5);
                opt.set_momentum(0.8);
            }
            let mut grads = random_grads(&vars, &mut rng);
            if t == 3 {
                grads.remove(&vars[1]);
            }
            opt.step(&grads).unwrap();
        }
        (values(&vars), opt.export_state().unwrap())
    }

    #[test]
    fn fused_and_tensor_paths_agree_on_random_steps_for_every_optimizer() {
        for (name, config) in configs() {
            for dtype in [DType::F32, DType::F64] {
                let (p_fused, s_fused) = run(OptimPath::Auto, config, dtype, 30);
                let (p_tensor, s_tensor) = run(OptimPath::TensorOps, config, dtype, 30);
                let (dp, ds) =
                    (max_ulps(&p_fused, &p_tensor, dtype), state_ulps(&s_fused, &s_tensor, dtype));
                assert!(
                    dp == 0 && ds == 0,
                    "{name} {dtype:?}: parameters {dp} ulps apart, state {ds} ulps"
                );
                // The runs moved the parameters, so agreeing is not agreeing on nothing.
                let start = values(&new_vars(7, dtype));
                assert!(max_ulps(&start, &p_tensor, dtype) > 1000, "{name}: no progress");
            }
        }
    }

    /// `steps` steps of `opt` over `vars` with gradients from `rng`.
    fn steps(opt: &mut Optim, vars: &[Var], rng: &mut ChaCha8Rng, n: usize) {
        for _ in 0..n {
            opt.step(&random_grads(vars, rng)).unwrap();
        }
    }

    #[test]
    fn exported_state_resumes_identically_on_either_path() {
        let paths = [OptimPath::Auto, OptimPath::TensorOps];
        for (name, config) in configs() {
            for dtype in [DType::F32, DType::F64] {
                for (from, to) in paths.iter().flat_map(|&a| paths.map(|b| (a, b))) {
                    let what = format!("{name} {dtype:?} {from:?} -> {to:?}");
                    let vars = new_vars(3, dtype);
                    let mut opt = Optim::with_path(vars.clone(), config, from).unwrap();
                    let mut rng = ChaCha8Rng::seed_from_u64(5);
                    steps(&mut opt, &vars, &mut rng, 7);
                    let saved = opt.export_state().unwrap();
                    let copies: Vec<Var> = vars
                        .iter()
                        .map(|v| Var::from_tensor(&v.as_tensor().copy().unwrap()).unwrap())
                        .collect();
                    let mut resumed = Optim::with_path(copies.clone(), config, to).unwrap();
                    resumed.import_state(&saved).unwrap();
                    assert_eq!(resumed.export_state().unwrap(), saved, "{what}: round trip");
                    assert_eq!(resumed.steps(), 7, "{what}");
                    steps(&mut opt, &vars, &mut rng.clone(), 8);
                    steps(&mut resumed, &copies, &mut rng, 8);
                    let (a, b) = (values(&vars), values(&copies));
                    let (sa, sb) = (opt.export_state().unwrap(), resumed.export_state().unwrap());
                    if from == to {
                        assert_eq!((a, sa), (b, sb), "{what}: not identical");
                    } else {
                        let (dp, ds) = (max_ulps(&a, &b, dtype), state_ulps(&sa, &sb, dtype));
                        assert!(dp == 0 && ds == 0, "{what}: {dp} / {ds} ulps apart");
                    }
                }
            }
        }
    }

    #[test]
    fn importing_a_mismatched_tensor_state_is_an_error_and_changes_nothing() {
        let config = OptimizerConfig::Adam(AdamConfig::default());
        let vars = new_vars(1, DType::F32);
        let mut opt = Optim::with_tensor_ops(vars.clone(), config).unwrap();
        steps(&mut opt, &vars, &mut ChaCha8Rng::seed_from_u64(2), 2);
        let before = opt.export_state().unwrap();
        let err = opt.import_state(&before[..1]).unwrap_err().to_string();
        assert!(err.contains("state for 1 variables, this optimizer has 2"), "{err}");
        let mut bad = before.clone();
        bad[1].buffers[1].push(0.5);
        let err = opt.import_state(&bad).unwrap_err().to_string();
        assert!(err.contains("buffer of 6 values for a variable of 5"), "{err}");
        assert_eq!(opt.export_state().unwrap(), before);
    }

    #[test]
    fn the_tensor_path_takes_gradients_of_any_layout() {
        let config = OptimizerConfig::RmsProp(RmsPropConfig {
            centered: true,
            momentum: 0.9,
            ..RmsPropConfig::default()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let strided = random(&mut rng, &[5, 7], DType::F32).t().unwrap();
        assert!(!strided.is_contiguous());
        let mut results = vec![];
        for grad in [strided.clone(), strided.contiguous().unwrap()] {
            let var =
                Var::from_tensor(&Tensor::ones((7, 5), DType::F32, &Device::Cpu).unwrap()).unwrap();
            let mut opt = Optim::with_tensor_ops(vec![var.clone()], config).unwrap();
            let mut grads = var.sum_all().unwrap().backward().unwrap();
            grads.insert(&var, grad);
            opt.step(&grads).unwrap();
            opt.step(&grads).unwrap();
            results.push(values(&[var]));
        }
        assert_eq!(results[0], results[1]);
        assert_ne!(results[0][0], vec![1.0; 35]);
    }
}
