//! A sampled batch in reusable flat storage, and its conversion to candle tensors.

use crate::error::Result;
use crate::experience::ActionKind;
use candle_core::{Device, Tensor};

/// A batch of experiences, row `j` of every field for the `j`-th sampled experience.
///
/// The vectors keep their capacity between samples, so sampling into the same `Batch` again
/// allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// `len * obs_len` observations.
    pub obs: Vec<f32>,
    /// `len` action indices (discrete buffers).
    pub actions_discrete: Vec<u32>,
    /// `len * dim` action values (continuous buffers).
    pub actions_continuous: Vec<f32>,
    pub rewards: Vec<f32>,
    /// `len * obs_len` observations the targets bootstrap from.
    pub next_obs: Vec<f32>,
    pub discounts: Vec<f32>,
    /// Where each experience sits in the buffer (for `update_priorities`).
    pub indices: Vec<usize>,
    /// Importance-sampling weights (all 1 for uniform sampling).
    pub weights: Vec<f32>,
    pub(crate) obs_len: usize,
    pub(crate) action: Option<ActionKind>,
    /// Scratch space of prioritized sampling: the masses looked up in the sum tree.
    pub(crate) masses: Vec<f64>,
}

/// A batch as tensors on a device: `obs` and `next_obs` `[batch, obs_len]` f32, `actions`
/// `[batch]` u32 (discrete) or `[batch, dim]` f32 (continuous), `rewards`, `discounts` and
/// `weights` `[batch]` f32.
#[derive(Debug, Clone)]
pub struct TensorBatch {
    pub obs: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_obs: Tensor,
    pub discounts: Tensor,
    pub weights: Tensor,
}

impl Batch {
    /// An empty batch; sampling sizes it.
    pub fn new() -> Self {
        Batch::default()
    }

    /// The number of experiences.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// True when the batch holds no experience.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// The length of one observation.
    pub fn obs_len(&self) -> usize {
        self.obs_len
    }

    /// Resizes every field for `len` experiences (keeping capacity).
    pub(crate) fn prepare(&mut self, len: usize, obs_len: usize, action: ActionKind) {
        self.obs_len = obs_len;
        self.action = Some(action);
        self.obs.resize(len * obs_len, 0.0);
        self.next_obs.resize(len * obs_len, 0.0);
        match action {
            ActionKind::Discrete => {
                self.actions_discrete.resize(len, 0);
                self.actions_continuous.clear();
            }
            ActionKind::Continuous { dim } => {
                self.actions_continuous.resize(len * dim, 0.0);
                self.actions_discrete.clear();
            }
        }
        self.rewards.resize(len, 0.0);
        self.discounts.resize(len, 0.0);
        self.indices.resize(len, 0);
        self.weights.resize(len, 1.0);
    }

    /// Copies the batch into tensors on `device`.
    pub fn to_tensors(&self, device: &Device) -> Result<TensorBatch> {
        let n = self.len();
        let actions = match self.action {
            Some(ActionKind::Continuous { dim }) => {
                Tensor::from_slice(&self.actions_continuous, (n, dim), device)?
            }
            _ => Tensor::from_slice(&self.actions_discrete, n, device)?,
        };
        Ok(TensorBatch {
            obs: Tensor::from_slice(&self.obs, (n, self.obs_len), device)?,
            actions,
            rewards: Tensor::from_slice(&self.rewards, n, device)?,
            next_obs: Tensor::from_slice(&self.next_obs, (n, self.obs_len), device)?,
            discounts: Tensor::from_slice(&self.discounts, n, device)?,
            weights: Tensor::from_slice(&self.weights, n, device)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Action, ActionKind, Batch, Experience, ReplayBuffer};
    use candle_core::{DType, Device};
    use rand::SeedableRng;

    #[test]
    fn a_batch_becomes_tensors_of_the_right_shapes_and_values() {
        for action in [ActionKind::Discrete, ActionKind::Continuous { dim: 2 }] {
            let mut buf = ReplayBuffer::new(8, 3, action).unwrap();
            for k in 0..8 {
                let x = k as f32;
                let values = [x, 2.0 * x];
                let a = match action {
                    ActionKind::Discrete => Action::Discrete(k),
                    ActionKind::Continuous { .. } => Action::Continuous(&values),
                };
                let obs = [x, x + 0.5, -x];
                let e =
                    Experience { obs: &obs, action: a, reward: x, next_obs: &obs, discount: 0.5 };
                buf.push(&e).unwrap();
            }
            let mut batch = Batch::new();
            buf.sample(5, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1), &mut batch).unwrap();
            let t = batch.to_tensors(&Device::Cpu).unwrap();
            assert_eq!(t.obs.dims(), &[5, 3]);
            assert_eq!(t.next_obs.dims(), &[5, 3]);
            assert_eq!(t.rewards.dims(), &[5]);
            assert_eq!(t.obs.to_vec2::<f32>().unwrap().concat(), batch.obs);
            assert_eq!(t.rewards.to_vec1::<f32>().unwrap(), batch.rewards);
            assert_eq!(t.weights.to_vec1::<f32>().unwrap(), vec![1.0; 5]);
            match action {
                ActionKind::Discrete => {
                    assert_eq!(t.actions.dtype(), DType::U32);
                    assert_eq!(t.actions.to_vec1::<u32>().unwrap(), batch.actions_discrete);
                }
                ActionKind::Continuous { .. } => assert_eq!(t.actions.dims(), &[5, 2]),
            }
        }
    }
}
