//! The uniform replay buffer: a preallocated ring of struct-of-arrays storage.

use crate::batch::Batch;
use crate::error::{ReplayError, Result};
use crate::experience::{check_numbers, Action, ActionKind, Experience};
use rand::Rng;

/// A fixed-capacity ring of experiences that overwrites the oldest once full (Lin 1992;
/// Mnih et al. 2015), stored as flat arrays: observations, actions, rewards, next
/// observations and discounts. Everything is allocated at construction; `push` and `sample`
/// allocate nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayBuffer {
    pub(crate) capacity: usize,
    pub(crate) obs_len: usize,
    pub(crate) action: ActionKind,
    pub(crate) obs: Vec<f32>,
    pub(crate) next_obs: Vec<f32>,
    pub(crate) actions_discrete: Vec<u32>,
    pub(crate) actions_continuous: Vec<f32>,
    pub(crate) rewards: Vec<f32>,
    pub(crate) discounts: Vec<f32>,
    pub(crate) len: usize,
    /// Where the next experience goes.
    pub(crate) cursor: usize,
}

/// Where experiences go: a replay buffer, uniform or prioritized.
pub trait ExperienceSink {
    /// Stores an experience and returns its index in the buffer.
    fn push(&mut self, experience: &Experience<'_>) -> Result<usize>;
}

impl ReplayBuffer {
    /// A buffer for `capacity` experiences with observations of `obs_len` values.
    pub fn new(capacity: usize, obs_len: usize, action: ActionKind) -> Result<Self> {
        if capacity == 0 || obs_len == 0 {
            return Err(ReplayError::InvalidConfig(format!(
                "capacity {capacity} and observation length {obs_len} must both be at least 1"
            )));
        }
        let dim = match action {
            ActionKind::Discrete => 0,
            ActionKind::Continuous { dim: 0 } => {
                return Err(ReplayError::InvalidConfig("continuous actions of dimension 0".into()))
            }
            ActionKind::Continuous { dim } => dim,
        };
        let too_big = || ReplayError::InvalidConfig(format!("capacity {capacity} is too large"));
        let obs_total = capacity.checked_mul(obs_len).ok_or_else(too_big)?;
        let act_total = capacity.checked_mul(dim).ok_or_else(too_big)?;
        Ok(ReplayBuffer {
            capacity,
            obs_len,
            action,
            obs: vec![0.0; obs_total],
            next_obs: vec![0.0; obs_total],
            actions_discrete: vec![0; if dim == 0 { capacity } else { 0 }],
            actions_continuous: vec![0.0; act_total],
            rewards: vec![0.0; capacity],
            discounts: vec![0.0; capacity],
            len: 0,
            cursor: 0,
        })
    }

    /// The number of experiences held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most experiences it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The length of one observation.
    pub fn obs_len(&self) -> usize {
        self.obs_len
    }

    /// The kind of actions stored.
    pub fn action_kind(&self) -> ActionKind {
        self.action
    }

    /// Checks an experience against the buffer's shapes.
    fn check(&self, e: &Experience<'_>) -> Result<()> {
        for (which, got) in [("obs", e.obs.len()), ("next_obs", e.next_obs.len())] {
            if got != self.obs_len {
                return Err(ReplayError::ObsLength { which, got, expected: self.obs_len });
            }
        }
        match (self.action, e.action) {
            (ActionKind::Discrete, Action::Discrete(a)) if a <= u32::MAX as usize => {}
            (ActionKind::Continuous { dim }, Action::Continuous(v)) if v.len() == dim => {}
            (kind, action) => {
                return Err(ReplayError::InvalidAction(format!(
                    "{action:?} does not fit a buffer of {kind:?} actions"
                )))
            }
        }
        check_numbers(e)
    }

    /// Stores an experience at the cursor, overwriting the oldest one once full, and
    /// returns its index.
    pub fn push(&mut self, e: &Experience<'_>) -> Result<usize> {
        self.check(e)?;
        let i = self.cursor;
        let rows = i * self.obs_len..(i + 1) * self.obs_len;
        self.obs[rows.clone()].copy_from_slice(e.obs);
        self.next_obs[rows].copy_from_slice(e.next_obs);
        match e.action {
            Action::Discrete(a) => self.actions_discrete[i] = a as u32,
            Action::Continuous(v) => {
                let dim = v.len();
                self.actions_continuous[i * dim..(i + 1) * dim].copy_from_slice(v);
            }
        }
        self.rewards[i] = e.reward;
        self.discounts[i] = e.discount;
        self.cursor = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
        Ok(i)
    }

    /// The experience at `index`.
    pub fn get(&self, index: usize) -> Result<Experience<'_>> {
        if index >= self.len {
            return Err(ReplayError::IndexOutOfRange { index, len: self.len });
        }
        let rows = index * self.obs_len..(index + 1) * self.obs_len;
        let action = match self.action {
            ActionKind::Discrete => Action::Discrete(self.actions_discrete[index] as usize),
            ActionKind::Continuous { dim } => {
                Action::Continuous(&self.actions_continuous[index * dim..(index + 1) * dim])
            }
        };
        Ok(Experience {
            obs: &self.obs[rows.clone()],
            action,
            reward: self.rewards[index],
            next_obs: &self.next_obs[rows],
            discount: self.discounts[index],
        })
    }

    /// Draws `batch_size` experiences uniformly, with replacement (as SB3 and CleanRL do),
    /// into `batch`; the weights are all 1.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        batch_size: usize,
        rng: &mut R,
        batch: &mut Batch,
    ) -> Result<()> {
        self.check_sample(batch_size)?;
        batch.prepare(batch_size, self.obs_len, self.action);
        for j in 0..batch_size {
            batch.indices[j] = rng.random_range(0..self.len);
        }
        batch.weights.fill(1.0);
        self.gather(batch);
        Ok(())
    }

    /// Errors unless `batch_size` experiences can be drawn.
    pub(crate) fn check_sample(&self, batch_size: usize) -> Result<()> {
        if batch_size == 0 || batch_size > self.len {
            return Err(ReplayError::NotEnough { requested: batch_size, len: self.len });
        }
        Ok(())
    }

    /// Copies the experiences at `batch.indices` (already checked to be in range) into the
    /// batch's other fields.
    pub(crate) fn gather(&self, batch: &mut Batch) {
        let n = self.obs_len;
        for (j, &i) in batch.indices.iter().enumerate() {
            batch.obs[j * n..(j + 1) * n].copy_from_slice(&self.obs[i * n..(i + 1) * n]);
            batch.next_obs[j * n..(j + 1) * n].copy_from_slice(&self.next_obs[i * n..(i + 1) * n]);
            batch.rewards[j] = self.rewards[i];
            batch.discounts[j] = self.discounts[i];
            match self.action {
                ActionKind::Discrete => batch.actions_discrete[j] = self.actions_discrete[i],
                ActionKind::Continuous { dim } => batch.actions_continuous[j * dim..(j + 1) * dim]
                    .copy_from_slice(&self.actions_continuous[i * dim..(i + 1) * dim]),
            }
        }
    }
}

impl ExperienceSink for ReplayBuffer {
    fn push(&mut self, experience: &Experience<'_>) -> Result<usize> {
        ReplayBuffer::push(self, experience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn exp(obs: &[f32], a: usize, r: f32, next: &[f32], d: f32) -> Experience<'static> {
        let obs: &'static [f32] = Box::leak(obs.to_vec().into_boxed_slice());
        let next: &'static [f32] = Box::leak(next.to_vec().into_boxed_slice());
        Experience { obs, action: Action::Discrete(a), reward: r, next_obs: next, discount: d }
    }

    #[test]
    fn the_ring_wraps_around_and_keeps_the_newest() {
        let mut buf = ReplayBuffer::new(3, 2, ActionKind::Discrete).unwrap();
        for k in 0..5 {
            let x = k as f32;
            assert_eq!(buf.push(&exp(&[x, x], k, x, &[x + 1.0, x], 0.9)).unwrap(), k % 3);
        }
        assert_eq!(buf.len(), 3);
        let rewards: Vec<f32> = (0..3).map(|i| buf.get(i).unwrap().reward).collect();
        assert_eq!(rewards, vec![3.0, 4.0, 2.0]);
        assert_eq!(buf.get(0).unwrap().action, Action::Discrete(3));
        assert_eq!(buf.get(1).unwrap().next_obs, &[5.0, 4.0]);
    }

    #[test]
    fn uniform_sampling_covers_the_buffer_and_reuses_the_batch() {
        let mut buf = ReplayBuffer::new(10, 1, ActionKind::Continuous { dim: 2 }).unwrap();
        for k in 0..10 {
            let x = k as f32;
            let e = Experience {
                obs: &[x],
                action: Action::Continuous(&[x, -x]),
                reward: x,
                next_obs: &[x + 1.0],
                discount: 1.0,
            };
            buf.push(&e).unwrap();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut batch = Batch::new();
        let mut counts = [0usize; 10];
        for _ in 0..2_000 {
            buf.sample(5, &mut rng, &mut batch).unwrap();
            for (j, &i) in batch.indices.iter().enumerate() {
                counts[i] += 1;
                assert_eq!(batch.obs[j], i as f32);
                assert_eq!(batch.actions_continuous[2 * j..2 * j + 2], [i as f32, -(i as f32)]);
                assert_eq!(batch.next_obs[j], i as f32 + 1.0);
            }
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }

    #[test]
    fn bad_input_is_an_error_and_changes_nothing() {
        let mut buf = ReplayBuffer::new(4, 2, ActionKind::Discrete).unwrap();
        let mut batch = Batch::new();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(matches!(buf.sample(1, &mut rng, &mut batch), Err(ReplayError::NotEnough { .. })));
        let err = buf.push(&exp(&[1.0], 0, 0.0, &[1.0, 2.0], 1.0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "obs has length 1, but the buffer stores observations of length 2"
        );
        let cont = Experience {
            obs: &[0.0, 0.0],
            action: Action::Continuous(&[1.0]),
            reward: 0.0,
            next_obs: &[0.0, 0.0],
            discount: 1.0,
        };
        assert!(matches!(buf.push(&cont), Err(ReplayError::InvalidAction(_))));
        assert!(buf.push(&exp(&[0.0, 0.0], 0, f32::NAN, &[0.0, 0.0], 1.0)).is_err());
        assert!(buf.is_empty());
        buf.push(&exp(&[0.0, 0.0], 0, 1.0, &[0.0, 0.0], 1.0)).unwrap();
        let err = buf.sample(2, &mut rng, &mut batch).unwrap_err();
        assert_eq!(err.to_string(), "cannot sample 2 experiences from a buffer holding 1");
        assert!(matches!(buf.get(1), Err(ReplayError::IndexOutOfRange { index: 1, len: 1 })));
        assert!(ReplayBuffer::new(0, 2, ActionKind::Discrete).is_err());
    }
}
