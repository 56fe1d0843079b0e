//! The agent's replay memory: uniform or prioritized (from `deeprl-replay`), and how it goes
//! into a checkpoint.
//!
//! **Checkpoints.** The replay crate's own file format (`ReplayBuffer::save` /
//! `PrioritizedReplay::save`: the ring, its cursor, the priorities and the largest priority
//! written, with a checksum) is the one exact description of a buffer's state, so the agent
//! writes that file to a temporary path, reads its bytes back and stores them in the
//! [`AgentState`] as the array `dqn.replay` (the bytes packed four to an `f32` word, bit for
//! bit, the byte count beside it in the metadata). A checkpoint stays one file, and loading it
//! restores the buffer exactly, so a resumed run samples the same batches.

use crate::error::{AgentError, Result};
use crate::state::{AgentState, Array};
use deeprl_replay::{
    Batch, Experience, ExperienceSink, PrioritizedReplay, ReplayBuffer, ReplayError,
};
use rand::Rng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Uniform or prioritized replay.
#[derive(Debug, Clone)]
pub enum Replay {
    Uniform(ReplayBuffer),
    Prioritized(PrioritizedReplay),
}

impl ExperienceSink for Replay {
    fn push(&mut self, e: &Experience<'_>) -> deeprl_replay::Result<usize> {
        match self {
            Replay::Uniform(b) => b.push(e),
            Replay::Prioritized(p) => p.push(e),
        }
    }
}

pub(crate) fn replay_error(e: ReplayError) -> AgentError {
    AgentError::Shape(format!("replay: {e}"))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path() -> PathBuf {
    let k = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("deeprl-dqn-replay-{}-{k}.bin", std::process::id()))
}

const ARRAY: &str = "dqn.replay";
const BYTES: &str = "dqn.replay_bytes";

impl Replay {
    /// Experiences held.
    pub fn len(&self) -> usize {
        match self {
            Replay::Uniform(b) => b.len(),
            Replay::Prioritized(p) => p.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Draws a batch (uniformly with replacement, or by priority with IS weights for `beta`).
    pub fn sample<R: Rng + ?Sized>(
        &self,
        batch_size: usize,
        beta: f64,
        rng: &mut R,
        batch: &mut Batch,
    ) -> Result<()> {
        match self {
            Replay::Uniform(b) => b.sample(batch_size, rng, batch),
            Replay::Prioritized(p) => p.sample(batch_size, beta, rng, batch),
        }
        .map_err(replay_error)
    }

    /// Writes `|delta|` (or the C51 cross-entropy) back as priorities; no-op when uniform.
    pub fn update_priorities(&mut self, indices: &[usize], errors: &[f32]) -> Result<()> {
        match self {
            Replay::Uniform(_) => Ok(()),
            Replay::Prioritized(p) => p.update_priorities(indices, errors).map_err(replay_error),
        }
    }

    /// Stores the buffer in `state` (see the [module docs](self)).
    pub fn save(&self, state: &mut AgentState) -> Result<()> {
        let path = temp_path();
        let written = match self {
            Replay::Uniform(b) => b.save(&path),
            Replay::Prioritized(p) => p.save(&path),
        };
        let bytes = written.map_err(replay_error).and_then(|()| {
            std::fs::read(&path)
                .map_err(|source| AgentError::Io { path: path.display().to_string(), source })
        });
        let _ = std::fs::remove_file(&path);
        let bytes = bytes?;
        let words: Vec<f32> = bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                f32::from_bits(u32::from_le_bytes(w))
            })
            .collect();
        state.put_meta(BYTES, &bytes.len())?;
        state.put_f32(ARRAY, &[words.len()], words);
        Ok(())
    }

    /// Restores a buffer written by [`save`](Self::save) of the same kind.
    pub fn load(&mut self, state: &AgentState) -> Result<()> {
        let n: usize = state.meta(BYTES)?;
        let words = match state.array(ARRAY) {
            Some(Array::F32 { data, .. }) if data.len() * 4 >= n => data,
            _ => return Err(AgentError::checkpoint("", format!("bad or missing `{ARRAY}`"))),
        };
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_bits().to_le_bytes()).collect();
        bytes.truncate(n);
        let path = temp_path();
        std::fs::write(&path, &bytes)
            .map_err(|source| AgentError::Io { path: path.display().to_string(), source })?;
        let loaded = match self {
            Replay::Uniform(_) => ReplayBuffer::load(&path).map(Replay::Uniform),
            Replay::Prioritized(_) => PrioritizedReplay::load(&path).map(Replay::Prioritized),
        };
        let _ = std::fs::remove_file(&path);
        let loaded = loaded.map_err(|e| {
            AgentError::checkpoint("", format!("the replay buffer in the checkpoint: {e}"))
        })?;
        let (want, got) = (self.shape(), loaded.shape());
        if want != got {
            return Err(AgentError::checkpoint(
                "",
                format!(
                    "the checkpoint's replay buffer {got:?} differs from this agent's {want:?}"
                ),
            ));
        }
        *self = loaded;
        Ok(())
    }

    /// (capacity, observation length) for the load check.
    fn shape(&self) -> (usize, usize) {
        let b = match self {
            Replay::Uniform(b) => b,
            Replay::Prioritized(p) => p.buffer(),
        };
        (b.capacity(), b.obs_len())
    }
}
