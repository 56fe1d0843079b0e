//! [`Optim`]: any of the optimizers as a `candle_nn::Optimizer` over candle `Var`s.
//!
//! On CPU a step is one fused pass over each parameter's memory, in place, through candle's
//! in-place custom ops: no tensor is allocated. On other devices (or on CPU with
//! [`OptimPath::TensorOps`]) the same rule runs as a chain of candle tensor ops on the
//! variable's device ([`tensor_step`](super::tensor_step)), and the result is written back
//! with `Var::set`; on CPU both paths give the same numbers.

use super::config::{AdamConfig, OptimizerConfig};
use super::tensor_step::{self, TensorState};
use super::update::ParamState;
use candle_core::backprop::GradStore;
use candle_core::{bail, CpuStorage, DType, Layout, Result, Tensor, Var};
use std::cell::RefCell;

/// An optimizer's state for one variable: host buffers in the variable's float type for the
/// fused CPU step, or tensors on the variable's device for the tensor-op step.
#[derive(Debug, Clone)]
enum State {
    F32(ParamState<f32>),
    F64(ParamState<f64>),
    Tensor(TensorState),
}

/// How [`Optim`] runs a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimPath {
    /// The fused in-place kernel for variables on CPU, tensor ops on other devices.
    #[default]
    Auto,
    /// Tensor ops on every device, CPU included: for testing the path that other devices
    /// take, and for devices without a fused kernel. Slower on CPU (each operation
    /// allocates), same results.
    TensorOps,
}

/// Any optimizer of this module over a set of variables (`torch.optim.*` semantics).
///
/// ```
/// use candle_core::{Device, Tensor, Var};
/// use candle_nn::Optimizer;
/// use deeprl_nets::optim::{Optim, OptimizerConfig, SgdConfig};
///
/// let w = Var::new(&[1.0f32, -2.0], &Device::Cpu)?;
/// let config = OptimizerConfig::Sgd(SgdConfig { lr: 0.1, momentum: 0.9, ..SgdConfig::default() });
/// let mut opt = Optim::new(vec![w.clone()], config)?;
/// let loss = w.as_tensor().sqr()?.sum_all()?; // gradient 2w
/// opt.backward_step(&loss)?;
/// assert_eq!(w.to_vec1::<f32>()?, vec![0.8, -1.6]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Optim {
    config: OptimizerConfig,
    path: OptimPath,
    vars: Vec<(Var, State)>,
}

impl Optim {
    /// An optimizer whose step runs on `path`; [`Optimizer::new`](candle_nn::Optimizer::new)
    /// is `with_path(vars, config, OptimPath::Auto)`. Keeps the `f32` and `f64` variables
    /// (others, e.g. integer buffers, are not trained); invalid hyperparameters are an error
    /// naming the field.
    pub fn with_path(vars: Vec<Var>, config: OptimizerConfig, path: OptimPath) -> Result<Self> {
        config.validate().map_err(candle_core::Error::wrap)?;
        let vars = vars
            .into_iter()
            .filter_map(|v| {
                let fused = path == OptimPath::Auto && v.device().is_cpu();
                let state = match v.dtype() {
                    DType::F32 | DType::F64 if !fused => State::Tensor(TensorState::new()),
                    DType::F32 => State::F32(ParamState::new(v.elem_count())),
                    DType::F64 => State::F64(ParamState::new(v.elem_count())),
                    _ => return None,
                };
                Some((v, state))
            })
            .collect();
        Ok(Optim { config, path, vars })
    }

    /// An optimizer that runs every step with tensor ops, on CPU too
    /// ([`OptimPath::TensorOps`]): for tests and for devices without a fused kernel.
    pub fn with_tensor_ops(vars: Vec<Var>, config: OptimizerConfig) -> Result<Self> {
        Self::with_path(vars, config, OptimPath::TensorOps)
    }

    /// The path chosen at construction.
    pub fn path(&self) -> OptimPath {
        self.path
    }

    /// The hyperparameters in use.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Sets the momentum that 1-cycle schedules cycle: SGD's and RMSprop's `momentum`, the
    /// Adam family's `beta1` (torch's `OneCycleLR` does the same). Returns false for Adagrad,
    /// which has none.
    pub fn set_momentum(&mut self, momentum: f64) -> bool {
        match &mut self.config {
            OptimizerConfig::Sgd(c) => c.momentum = momentum,
            OptimizerConfig::RmsProp(c) => c.momentum = momentum,
            OptimizerConfig::Adam(c) => c.betas.0 = momentum,
            OptimizerConfig::AdamW(c) => c.betas.0 = momentum,
            OptimizerConfig::Adamax(c) => c.betas.0 = momentum,
            OptimizerConfig::NAdam(c) => c.betas.0 = momentum,
            OptimizerConfig::Adagrad(_) => return false,
        }
        true
    }

    /// The steps taken so far (the largest over the variables).
    pub fn steps(&self) -> u64 {
        self.vars
            .iter()
            .map(|(_, s)| match s {
                State::F32(s) => s.step,
                State::F64(s) => s.step,
                State::Tensor(s) => s.step,
            })
            .max()
            .unwrap_or(0)
    }
}

/// One variable's optimizer state as plain numbers, for checkpoints (`f32` buffers are
/// widened to `f64`, which is exact, and narrowed back on import).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SavedState {
    /// Steps taken.
    pub step: u64,
    /// NAdam's product of momentum coefficients (1 for the others).
    pub mu_product: f64,
    /// The state buffers (torch's momentum buffer / sum / exp_avg, exp_avg_sq, max_exp_avg_sq
    /// or grad_avg); empty before the first step or when the optimizer keeps none.
    pub buffers: [Vec<f64>; 3],
}

fn export<T: num_traits::Float>(s: &ParamState<T>) -> SavedState {
    let widen = |b: &[T]| b.iter().map(|x| x.to_f64().unwrap_or(f64::NAN)).collect();
    SavedState {
        step: s.step,
        mu_product: s.mu_product,
        buffers: [widen(&s.first), widen(&s.second), widen(&s.third)],
    }
}

fn import<T: num_traits::Float>(saved: &SavedState, len: usize) -> Result<ParamState<T>> {
    let narrow = |b: &[f64]| -> Result<Vec<T>> {
        if !b.is_empty() && b.len() != len {
            bail!("optimizer state buffer of {} values for a variable of {len}", b.len())
        }
        Ok(b.iter().map(|&x| T::from(x).unwrap_or_else(T::nan)).collect())
    };
    Ok(ParamState {
        step: saved.step,
        mu_product: saved.mu_product,
        first: narrow(&saved.buffers[0])?,
        second: narrow(&saved.buffers[1])?,
        third: narrow(&saved.buffers[2])?,
    })
}

/// A tensor state's buffers widened to `f64` on the host.
fn export_tensors(s: &TensorState) -> Result<SavedState> {
    let widen = |b: &Option<Tensor>| -> Result<Vec<f64>> {
        match b {
            Some(b) => b.flatten_all()?.to_dtype(DType::F64)?.to_vec1(),
            None => Ok(vec![]),
        }
    };
    Ok(SavedState {
        step: s.step,
        mu_product: s.mu_product,
        buffers: [widen(&s.first)?, widen(&s.second)?, widen(&s.third)?],
    })
}

/// A saved state as tensors of `var`'s shape, type and device (narrowed as in [`import`]).
fn import_tensors(saved: &SavedState, var: &Var) -> Result<TensorState> {
    let narrow = |b: &[f64]| -> Result<Option<Tensor>> {
        if b.is_empty() {
            return Ok(None);
        }
        if b.len() != var.elem_count() {
            bail!(
                "optimizer state buffer of {} values for a variable of {}",
                b.len(),
                var.elem_count()
            )
        }
        Ok(Some(Tensor::from_slice(b, var.shape(), var.device())?.to_dtype(var.dtype())?))
    };
    Ok(TensorState {
        step: saved.step,
        mu_product: saved.mu_product,
        first: narrow(&saved.buffers[0])?,
        second: narrow(&saved.buffers[1])?,
        third: narrow(&saved.buffers[2])?,
    })
}

impl Optim {
    /// The state of every variable, in the order the variables were given (torch's
    /// `optimizer.state_dict()["state"]`), in the same form whichever path the optimizer
    /// runs: a state exported from one path can be imported into the other. Fails only if a
    /// tensor state cannot be copied from its device.
    pub fn export_state(&self) -> Result<Vec<SavedState>> {
        self.vars
            .iter()
            .map(|(_, s)| match s {
                State::F32(s) => Ok(export(s)),
                State::F64(s) => Ok(export(s)),
                State::Tensor(s) => export_tensors(s),
            })
            .collect()
    }

    /// Restores what [`export_state`](Self::export_state) returned, for the same variables in
    /// the same order; a count or length mismatch is an error and changes nothing.
    pub fn import_state(&mut self, saved: &[SavedState]) -> Result<()> {
        if saved.len() != self.vars.len() {
            bail!(
                "optimizer state for {} variables, this optimizer has {}",
                saved.len(),
                self.vars.len()
            )
        }
        let mut states = Vec::with_capacity(saved.len());
        for ((var, state), saved) in self.vars.iter().zip(saved) {
            states.push(match state {
                State::F32(_) => State::F32(import(saved, var.elem_count())?),
                State::F64(_) => State::F64(import(saved, var.elem_count())?),
                State::Tensor(_) => State::Tensor(import_tensors(saved, var)?),
            });
        }
        for ((_, state), new) in self.vars.iter_mut().zip(states) {
            *state = new;
        }
        Ok(())
    }
}

impl candle_nn::Optimizer for Optim {
    type Config = OptimizerConfig;

    /// [`Optim::with_path`] with [`OptimPath::Auto`]: the fused step for variables on CPU.
    fn new(vars: Vec<Var>, config: OptimizerConfig) -> Result<Self> {
        Self::with_path(vars, config, OptimPath::Auto)
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (var, state) in &mut self.vars {
            let Some(grad) = grads.get(var) else { continue };
            if grad.dims() != var.dims() || grad.dtype() != var.dtype() {
                bail!(
                    "gradient of shape {:?} ({:?}) for a variable of shape {:?} ({:?})",
                    grad.dims(),
                    grad.dtype(),
                    var.dims(),
                    var.dtype()
                )
            }
            match state {
                State::Tensor(state) => {
                    let updated = tensor_step::step(&self.config, var.as_tensor(), grad, state)?;
                    var.set(&updated)?;
                }
                _ => {
                    let op = FusedStep { config: &self.config, state: RefCell::new(state) };
                    var.as_tensor().inplace_op2(grad, &op)?;
                }
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.set_lr(lr)
    }
}

/// One optimizer step on one contiguous CPU variable, in place.
struct FusedStep<'a> {
    config: &'a OptimizerConfig,
    state: RefCell<&'a mut State>,
}

/// The contiguous range of a layout's storage.
fn span(layout: &Layout) -> Result<std::ops::Range<usize>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => bail!("the optimizer needs contiguous variables and gradients"),
    }
}

impl candle_core::InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "deeprl-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        grad: &CpuStorage,
        grad_l: &Layout,
    ) -> Result<()> {
        let (p_range, g_range) = (span(dst_l)?, span(grad_l)?);
        let mut state = self.state.borrow_mut();
        let update = match (dst, grad, &mut **state) {
            (CpuStorage::F32(p), CpuStorage::F32(g), State::F32(s)) => {
                self.config.update(&mut p[p_range], &g[g_range], s)
            }
            (CpuStorage::F64(p), CpuStorage::F64(g), State::F64(s)) => {
                self.config.update(&mut p[p_range], &g[g_range], s)
            }
            _ => bail!(
                "the optimizer supports f32 and f64 variables with gradients of the same type"
            ),
        };
        update.map_err(candle_core::Error::wrap)
    }
}

/// AdamW's defaults as an [`OptimizerConfig`], the usual choice for deep RL.
impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{AdamConfig, SgdConfig};
    use candle_core::Device;
    use candle_nn::Optimizer;

    fn grads_for(vars: &[&Var], scale: f64) -> GradStore {
        let mut loss =
            Tensor::new(0.0f32, &Device::Cpu).unwrap().to_dtype(vars[0].dtype()).unwrap();
        for v in vars {
            loss = (loss
                + v.as_tensor().sqr().unwrap().sum_all().unwrap().affine(scale, 0.0).unwrap())
            .unwrap();
        }
        loss.backward().unwrap()
    }

    #[test]
    fn the_fused_cpu_step_equals_the_tensor_path_and_the_plain_update() {
        let config =
            OptimizerConfig::Adam(AdamConfig { lr: 0.1, amsgrad: true, ..AdamConfig::default() });
        let init = [[0.5f32, -1.0, 2.0], [0.25, 3.0, -0.75]];
        let fused = Var::new(&init, &Device::Cpu).unwrap();
        let tensor = Var::new(&init, &Device::Cpu).unwrap();
        let mut plain: Vec<f32> = init.concat();
        let mut opt = Optim::new(vec![fused.clone()], config).unwrap();
        let mut tensor_opt = Optim::with_tensor_ops(vec![tensor.clone()], config).unwrap();
        assert_eq!((opt.path(), tensor_opt.path()), (OptimPath::Auto, OptimPath::TensorOps));
        let mut plain_state = ParamState::new(6);
        for step in 0..5 {
            let scale = 1.0 + step as f64;
            opt.step(&grads_for(&[&fused], scale)).unwrap();
            tensor_opt.step(&grads_for(&[&tensor], scale)).unwrap();
            let g: Vec<f32> = plain.iter().map(|&p| (2.0 * scale) as f32 * p).collect();
            config.update(&mut plain, &g, &mut plain_state).unwrap();
        }
        let fused = fused.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(fused, tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_eq!(fused, plain);
        assert_eq!((opt.steps(), tensor_opt.steps()), (5, 5));
    }

    #[test]
    fn learning_rate_momentum_and_bad_gradients() {
        for path in [OptimPath::Auto, OptimPath::TensorOps] {
            learning_rate_momentum_and_bad_gradients_on(path);
        }
    }

    fn learning_rate_momentum_and_bad_gradients_on(path: OptimPath) {
        let w = Var::new(&[1.0f64, 2.0], &Device::Cpu).unwrap();
        let config =
            OptimizerConfig::Sgd(SgdConfig { lr: 0.5, momentum: 0.9, ..SgdConfig::default() });
        let mut opt = Optim::with_path(vec![w.clone()], config, path).unwrap();
        opt.set_learning_rate(0.25);
        assert_eq!(opt.learning_rate(), 0.25);
        assert!(opt.set_momentum(0.8));
        let mut grads = grads_for(&[&w], 1.0);
        grads.insert(&w, Tensor::new(&[1.0f64, 2.0, 3.0], &Device::Cpu).unwrap());
        let err = opt.step(&grads).unwrap_err().to_string();
        assert!(err.contains("gradient of shape [3]"), "{err}");
        assert_eq!(w.to_vec1::<f64>().unwrap(), vec![1.0, 2.0]);
        let bad = OptimizerConfig::Sgd(SgdConfig { lr: -1.0, ..SgdConfig::default() });
        assert!(Optim::with_path(vec![w], bad, path).unwrap_err().to_string().contains("lr = -1"));
    }
}
