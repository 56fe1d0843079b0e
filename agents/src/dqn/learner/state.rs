//! The host learner's weights and optimizer state: to and from the networks' variables,
//! to and from checkpoints (the fused `Optim`'s [`SavedState`] form), and target updates.

use super::{shape_error, HostLearner};
use crate::dqn::network::QNet;
use crate::error::Result;
use candle_core::{Tensor, Var};
use deeprl_nets::optim::{OptimizerConfig, ParamState, SavedState};

impl HostLearner {
    /// Copies the weights of `online` and `target` (built like the ones given to
    /// [`new`](Self::new)) into the learner.
    pub fn load(&mut self, online: &QNet, target: &QNet) -> Result<()> {
        for (net, flat) in [(online, &mut self.online), (target, &mut self.target)] {
            let vars = net.vars();
            if vars.len() != self.vars.len() {
                return Err(shape_error(format!(
                    "{} variables, the learner has {}",
                    vars.len(),
                    self.vars.len()
                )));
            }
            for (var, range) in vars.iter().zip(&self.vars) {
                let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                if values.len() != range.len() {
                    return Err(shape_error(format!(
                        "a variable of {} values where the learner has {}",
                        values.len(),
                        range.len()
                    )));
                }
                flat[range.clone()].copy_from_slice(&values);
            }
        }
        Ok(())
    }

    /// Writes the learner's weights into the variables of `online` and `target`.
    pub fn store(&self, online: &QNet, target: &QNet) -> Result<()> {
        for (net, flat) in [(online, &self.online), (target, &self.target)] {
            for (var, range) in net.vars().iter().zip(&self.vars) {
                set(var, &flat[range.clone()])?;
            }
        }
        Ok(())
    }

    /// The online weights, flat in [`QNet::vars`]' order (the acting copy reads them).
    pub fn online_params(&self) -> &[f32] {
        &self.online
    }

    /// The priorities of the last step's batch: `|delta|`, or the C51 cross-entropy.
    pub fn priorities(&self) -> &[f32] {
        &self.priorities
    }

    /// The optimizer's hyperparameters.
    pub fn optimizer(&self) -> &OptimizerConfig {
        &self.optimizer
    }

    /// Sets the optimizer's learning rate.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_lr(lr)
    }

    /// `target <- online` (`tau >= 1`) or `target <- tau online + (1 - tau) target`,
    /// rounded as candle's `affine` + `add` do.
    pub fn update_target(&mut self, tau: f64) {
        if tau >= 1.0 {
            self.target.copy_from_slice(&self.online);
            return;
        }
        let (t, keep) = (tau as f32, (1.0 - tau) as f32);
        for (target, &online) in self.target.iter_mut().zip(&self.online) {
            *target = online * t + *target * keep;
        }
    }

    /// The optimizer state of every variable in the fused `Optim`'s checkpoint form
    /// (buffers widened to `f64`, exactly).
    pub fn export_state(&self) -> Vec<SavedState> {
        let widen = |b: &[f32]| b.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        self.states
            .iter()
            .map(|s| SavedState {
                step: s.step,
                mu_product: s.mu_product,
                buffers: [widen(&s.first), widen(&s.second), widen(&s.third)],
            })
            .collect()
    }

    /// Restores what [`export_state`](Self::export_state) (or `Optim::export_state` for the
    /// same network) returned; a count or length mismatch is an error and changes nothing.
    pub fn import_state(&mut self, saved: &[SavedState]) -> Result<()> {
        if saved.len() != self.vars.len() {
            return Err(shape_error(format!(
                "optimizer state for {} variables, the network has {}",
                saved.len(),
                self.vars.len()
            )));
        }
        let mut states = Vec::with_capacity(saved.len());
        for (s, range) in saved.iter().zip(&self.vars) {
            let mut buffers = [vec![], vec![], vec![]];
            for (out, b) in buffers.iter_mut().zip(&s.buffers) {
                if !b.is_empty() && b.len() != range.len() {
                    return Err(shape_error(format!(
                        "an optimizer buffer of {} values for a variable of {}",
                        b.len(),
                        range.len()
                    )));
                }
                *out = b.iter().map(|&x| x as f32).collect();
            }
            let [first, second, third] = buffers;
            states.push(ParamState {
                step: s.step,
                mu_product: s.mu_product,
                first,
                second,
                third,
            });
        }
        self.states = states;
        Ok(())
    }
}

/// Writes `values` into `var` (same element count).
fn set(var: &Var, values: &[f32]) -> Result<()> {
    let t = Tensor::from_slice(values, var.shape(), var.device())?.to_dtype(var.dtype())?;
    var.set(&t)?;
    Ok(())
}
