//! Prioritized experience replay (Schaul, Quan, Antonoglou and Silver, "Prioritized
//! Experience Replay", ICLR 2016), proportional variant.
//!
//! Experience `i` has priority `p_i = |delta_i| + epsilon` (its last TD error) and is drawn
//! with probability
//!
//! ```text
//! P(i) = p_i^zeta / sum_k p_k^zeta        (zeta in [0, 1]; zeta = 0 is uniform)
//! ```
//!
//! by stratified sampling: the total is cut into `batch_size` equal segments and one mass is
//! drawn uniformly in each, then found in a [`SumTree`] of the `p^zeta` in O(log n). The
//! bias this introduces is corrected by importance-sampling weights
//!
//! ```text
//! w_i = (n P(i))^-beta / max_j w_j,       max_j w_j = (n min_k P(k))^-beta (a [`MinTree`])
//! ```
//!
//! with `beta` annealed towards 1 by the caller's schedule. A new experience enters with the
//! current maximum priority so that it is replayed at least once: before the first
//! [`PrioritizedReplay::update_priorities`] that is `initial_priority` (a very large value, as
//! Géron's *Hands-On Machine Learning* describes it), afterwards the largest priority any
//! update has written (as in Schaul et al. and OpenAI Baselines).

use crate::batch::Batch;
use crate::buffer::{ExperienceSink, ReplayBuffer};
use crate::error::{ReplayError, Result};
use crate::experience::{ActionKind, Experience};
use crate::persist::{self, FileKind};
use crate::segment_tree::{MinTree, SumTree};
use rand::Rng;
use std::path::Path;

/// Hyperparameters of [`PrioritizedReplay`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrioritizedConfig {
    /// How much prioritization is used: 0 is uniform, 1 is fully proportional (the paper's
    /// alpha; 0.6 in its proportional Atari runs and in Rainbow uses 0.5).
    pub zeta: f64,
    /// Added to `|delta|` so that no experience gets priority 0 (1e-6, as OpenAI Baselines).
    pub epsilon: f64,
    /// The priority of new experiences before any update: very large, so that each is
    /// replayed at least once.
    pub initial_priority: f64,
}

impl Default for PrioritizedConfig {
    fn default() -> Self {
        PrioritizedConfig { zeta: 0.6, epsilon: 1e-6, initial_priority: 1e6 }
    }
}

/// A replay buffer that samples experiences in proportion to their priority.
#[derive(Debug, Clone)]
pub struct PrioritizedReplay {
    buffer: ReplayBuffer,
    config: PrioritizedConfig,
    /// `p_i^zeta` of every experience (0 for empty slots).
    sum: SumTree,
    /// `p_i^zeta` of every experience (+inf for empty slots).
    min: MinTree,
    /// The raw priorities `p_i`.
    priorities: Vec<f64>,
    /// The largest priority written by an update, once there was one.
    max_updated: Option<f64>,
}

fn check_unit(name: &'static str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ReplayError::OutOfUnitInterval { name, value })
    }
}

impl PrioritizedReplay {
    /// A buffer of `capacity` experiences (the trees round it up to a power of two).
    pub fn new(
        capacity: usize,
        obs_len: usize,
        action: ActionKind,
        config: PrioritizedConfig,
    ) -> Result<Self> {
        check_unit("zeta", config.zeta)?;
        for (name, value) in
            [("epsilon", config.epsilon), ("initial_priority", config.initial_priority)]
        {
            if !(value.is_finite() && value > 0.0) {
                return Err(ReplayError::InvalidConfig(format!(
                    "{name} = {value}: expected a positive number"
                )));
            }
        }
        let buffer = ReplayBuffer::new(capacity, obs_len, action)?;
        Ok(PrioritizedReplay {
            buffer,
            config,
            sum: SumTree::new(capacity),
            min: MinTree::new(capacity),
            priorities: vec![0.0; capacity],
            max_updated: None,
        })
    }

    /// The underlying ring of experiences.
    pub fn buffer(&self) -> &ReplayBuffer {
        &self.buffer
    }

    /// The hyperparameters.
    pub fn config(&self) -> PrioritizedConfig {
        self.config
    }

    /// The number of experiences held.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// The priority `p_i` of experience `index`.
    pub fn priority(&self, index: usize) -> Result<f64> {
        match index < self.len() {
            true => Ok(self.priorities[index]),
            false => Err(ReplayError::IndexOutOfRange { index, len: self.len() }),
        }
    }

    /// The priority a new experience gets now.
    pub fn max_priority(&self) -> f64 {
        self.max_updated.unwrap_or(self.config.initial_priority)
    }

    /// The sampling probability `P(i)` of experience `index`.
    pub fn probability(&self, index: usize) -> Result<f64> {
        self.priority(index)?;
        Ok(self.sum.values()[index] / self.sum.total())
    }

    fn set_priority(&mut self, index: usize, priority: f64) {
        let scaled = priority.powf(self.config.zeta);
        // Indices are in range and priorities positive and finite: the trees accept them.
        let ok = self.sum.set(index, scaled).is_ok() && self.min.set(index, scaled).is_ok();
        debug_assert!(ok, "tree rejected priority {scaled} at {index}");
        self.priorities[index] = priority;
    }

    /// Stores an experience with the current maximum priority and returns its index.
    pub fn push(&mut self, e: &Experience<'_>) -> Result<usize> {
        let index = self.buffer.push(e)?;
        self.set_priority(index, self.max_priority());
        Ok(index)
    }

    /// Draws `batch_size` experiences with probability `P(i)` (stratified over equal segments
    /// of the total priority) into `batch`, with importance weights for `beta` in `[0, 1]`
    /// normalised by the largest possible weight, and the indices for
    /// [`PrioritizedReplay::update_priorities`].
    pub fn sample<R: Rng + ?Sized>(
        &self,
        batch_size: usize,
        beta: f64,
        rng: &mut R,
        batch: &mut Batch,
    ) -> Result<()> {
        check_unit("beta", beta)?;
        self.buffer.check_sample(batch_size)?;
        batch.prepare(batch_size, self.buffer.obs_len(), self.buffer.action_kind());
        let total = self.sum.total();
        let segment = total / batch_size as f64;
        let n = self.len() as f64;
        let max_weight = (n * self.min.min() / total).powf(-beta);
        let last = self.len() - 1;
        batch.masses.resize(batch_size, 0.0);
        for (j, mass) in batch.masses.iter_mut().enumerate() {
            *mass = (j as f64 + rng.random::<f64>()) * segment;
        }
        // The batched descent overlaps the cache misses of the 64 lookups.
        self.sum.find_prefix_batch(&batch.masses, &mut batch.indices);
        for (i, weight) in batch.indices.iter_mut().zip(&mut batch.weights) {
            *i = (*i).min(last);
            let p = self.sum.values()[*i] / total;
            *weight = ((n * p).powf(-beta) / max_weight) as f32;
        }
        self.buffer.gather(batch);
        Ok(())
    }

    /// Sets `p_i = |delta_i| + epsilon` for each sampled index and its TD error. Every index
    /// and error is checked before anything changes.
    pub fn update_priorities(&mut self, indices: &[usize], td_errors: &[f32]) -> Result<()> {
        if indices.len() != td_errors.len() {
            return Err(ReplayError::LengthMismatch {
                what: "indices against TD errors",
                left: indices.len(),
                right: td_errors.len(),
            });
        }
        if let Some(&index) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(ReplayError::IndexOutOfRange { index, len: self.len() });
        }
        if let Some((position, &value)) = td_errors.iter().enumerate().find(|(_, d)| !d.is_finite())
        {
            return Err(ReplayError::NonFiniteTdError { position, value: value as f64 });
        }
        for (&i, &delta) in indices.iter().zip(td_errors) {
            let p = (delta as f64).abs() + self.config.epsilon;
            self.set_priority(i, p);
            self.max_updated = Some(self.max_updated.map_or(p, |m| m.max(p)));
        }
        Ok(())
    }

    /// Writes the buffer and its priorities to `path` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        persist::save(path.as_ref(), FileKind::Prioritized, &self.buffer, |w| {
            w.f64(self.config.zeta)?;
            w.f64(self.config.epsilon)?;
            w.f64(self.config.initial_priority)?;
            w.f64(self.max_updated.unwrap_or(f64::NAN))?;
            w.f64s(&self.priorities[..self.len()])
        })
    }

    /// Reads a buffer written by [`PrioritizedReplay::save`]; sampling then continues exactly
    /// as it would have.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (buffer, (config, max_updated, priorities)) =
            persist::load(path, FileKind::Prioritized, |r, buffer| {
                let config = PrioritizedConfig {
                    zeta: r.f64()?,
                    epsilon: r.f64()?,
                    initial_priority: r.f64()?,
                };
                let max_updated = r.f64()?;
                let mut priorities = vec![0.0; buffer.capacity()];
                r.f64s(&mut priorities[..buffer.len()])?;
                Ok((config, max_updated, priorities))
            })?;
        let corrupt =
            |message: String| ReplayError::File { path: path.display().to_string(), message };
        let mut replay = PrioritizedReplay::new(
            buffer.capacity(),
            buffer.obs_len(),
            buffer.action_kind(),
            config,
        )
        .map_err(|e| corrupt(format!("invalid stored configuration: {e}")))?;
        if let Some(p) = priorities[..buffer.len()].iter().find(|p| !(p.is_finite() && **p > 0.0)) {
            return Err(corrupt(format!("invalid stored priority {p}")));
        }
        replay.max_updated = if max_updated.is_nan() { None } else { Some(max_updated) };
        for (i, &p) in priorities[..buffer.len()].iter().enumerate() {
            replay.set_priority(i, p);
        }
        replay.buffer = buffer;
        Ok(replay)
    }
}

impl ExperienceSink for PrioritizedReplay {
    fn push(&mut self, experience: &Experience<'_>) -> Result<usize> {
        PrioritizedReplay::push(self, experience)
    }
}

#[cfg(test)]
#[path = "prioritized_tests.rs"]
mod tests;
