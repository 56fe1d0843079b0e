//! [`Dqn`]: the agent, its networks, its replay, and the gradient step of the whole family in
//! one place ([`Dqn::gradient_step`]). The algorithms are described in the
//! [module documentation](super).
//!
//! This file holds the agent's state and the bookkeeping of its weights (who owns them while
//! the host learner trains); `build.rs` makes the agent from its config, `acting.rs` chooses
//! actions and stores experience (the [`Agent`] interface), `train.rs` runs the gradient step
//! and the target updates, `checkpoint.rs` saves and restores the agent. The submodules
//! share this file's imports (`use super::*`).

mod acting;
mod build;
mod checkpoint;
mod train;

use super::config::{DqnConfig, LearnerKind, Loss, TorsoKind};
use super::distributional::{project_batch, support};
use super::host::{argmax, HostNet};
use super::learner::{HostLearner, Outcome};
use super::network::{q_values, NetShape, QNet, Torso};
use super::replay::{replay_error, Replay};
use crate::agent::{ActionBuf, Agent, TrainInfo, Transition};
use crate::config::Config;
use crate::error::{AgentError, Result};
use crate::spec::BuildContext;
use crate::state::AgentState;
use candle_core::{Device, Tensor, Var, D};
use candle_nn::Optimizer;
use deeprl_envs::{ActionRef, Space};
use deeprl_nets::optim::{clip_grad_norm, Optim, OptimizerConfig};
use deeprl_replay::{
    Action, ActionKind, Batch, ExperienceSink, NStepFolder, PrioritizedConfig, PrioritizedReplay,
    ReplayBuffer,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::cell::Cell;

/// ChaCha8 streams of the agent's seed: exploration (epsilon draws, random actions, acting
/// noise), replay sampling, and the training networks' noise. The weights are drawn from
/// `ChaCha8Rng::seed_from_u64(seed)` on stream 0 by [`QNet::new`].
const EXPLORE_STREAM: u64 = 1;
const REPLAY_STREAM: u64 = 2;
const NOISE_STREAM: u64 = 3;

/// Counters and last-update figures, stored as JSON in checkpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Env steps observed.
    pub steps: u64,
    /// Gradient steps taken.
    pub updates: u64,
    /// Target-network updates.
    pub target_updates: u64,
    pub last_loss: f64,
    /// Mean online Q(s, a) of the last batch.
    pub last_q: f64,
}

/// The last `n - 1` transitions of the running episode (what the n-step folder holds), kept
/// so that a checkpoint can rebuild the folder exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tail {
    obs: Vec<f32>,
    actions: Vec<usize>,
    rewards: Vec<f64>,
}

/// Who runs the gradient step, with its optimizer.
enum Trainer {
    /// The host learner ([`super::learner`]): it owns the online and target weights and the
    /// optimizer state while it trains; the networks' variables mirror them ([`Mirror`]).
    Host(Box<HostLearner>),
    /// candle's autograd over the networks' variables, with the fused optimizer.
    Candle { optim: Optim, vars: Vec<Var> },
}

/// The networks' variables while the host learner owns the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mirror {
    /// They hold the learner's weights.
    Current,
    /// The learner has changed its weights since they were written.
    Stale,
    /// They were handed out ([`Dqn::online`], [`Dqn::target`]) and may have been changed
    /// through `Var::set`: the learner reads them back before it next uses its weights.
    Lent,
}

/// The DQN family's agent (see the [module documentation](super)).
pub struct Dqn {
    name: &'static str,
    config: DqnConfig,
    /// Length of the env's observation (1 for a discrete observation).
    env_obs_len: usize,
    /// `Some(n)`: observations are state indices in `0..n`, one-hot encoded here.
    one_hot: Option<usize>,
    /// Length of the network's input.
    obs_dim: usize,
    n_actions: usize,
    device: Device,
    online: QNet,
    target: QNet,
    trainer: Trainer,
    mirror: Cell<Mirror>,
    /// The host copy of the online network used for acting.
    host: HostNet,
    /// The C51 support on the host and as a tensor (`None` without the distributional head).
    support: Vec<f32>,
    support_tensor: Option<Tensor>,
    replay: Replay,
    folder: NStepFolder,
    tail: Tail,
    batch: Batch,
    ones: Tensor,
    explore_rng: ChaCha8Rng,
    replay_rng: ChaCha8Rng,
    noise_rng: ChaCha8Rng,
    counters: Counters,
    /// Encoded observations of the current transition (reused).
    obs_buf: Vec<f32>,
    next_obs_buf: Vec<f32>,
    /// Host scratch of the C51 target: next-state logits, probabilities, projected targets.
    next_logits: Vec<f32>,
    next_online: Vec<f32>,
    probs: Vec<f32>,
    targets: Vec<f32>,
    gather_index: Vec<u32>,
    /// The candle path's priorities of the last batch.
    priorities: Vec<f32>,
}

fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Writes `obs` (a state index when `one_hot` is set) into `out` as the network's input.
fn encode(obs: &[f32], one_hot: Option<usize>, out: &mut [f32]) -> Result<()> {
    match one_hot {
        None => out.copy_from_slice(obs),
        Some(n) => {
            let s = obs[0];
            if !(s >= 0.0 && (s as usize) < n && s.fract() == 0.0) {
                return Err(AgentError::Shape(format!(
                    "dqn: observation {s} is not a state index in 0..{n}"
                )));
            }
            out.fill(0.0);
            out[s as usize] = 1.0;
        }
    }
    Ok(())
}

impl Dqn {
    /// The config in use.
    pub fn config(&self) -> &DqnConfig {
        &self.config
    }

    /// Counters and the last update's figures.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The online network (e.g. to inspect its weights in tests). With the host learner its
    /// variables are written from the learner first, and read back before the learner next
    /// trains, so a change made through them (`Var::set`) right after this call is kept.
    pub fn online(&self) -> Result<&QNet> {
        self.lend()?;
        Ok(&self.online)
    }

    /// The target network (see [`online`](Self::online)).
    pub fn target(&self) -> Result<&QNet> {
        self.lend()?;
        Ok(&self.target)
    }

    /// True when the gradient step runs on the host learner, false on candle's autograd.
    pub fn uses_host_learner(&self) -> bool {
        matches!(self.trainer, Trainer::Host(_))
    }

    /// The optimizer's current learning rate.
    fn learning_rate(&self) -> f64 {
        match &self.trainer {
            Trainer::Host(learner) => learner.optimizer().lr(),
            Trainer::Candle { optim, .. } => optim.learning_rate(),
        }
    }

    /// Writes the host learner's weights into the variables when they are stale.
    fn sync_mirror(&self) -> Result<()> {
        if let (Trainer::Host(learner), Mirror::Stale) = (&self.trainer, self.mirror.get()) {
            learner.store(&self.online, &self.target)?;
            self.mirror.set(Mirror::Current);
        }
        Ok(())
    }

    /// Brings the variables up to date and marks them lent (see [`Mirror::Lent`]).
    fn lend(&self) -> Result<()> {
        if let Trainer::Host(_) = self.trainer {
            self.sync_mirror()?;
            self.mirror.set(Mirror::Lent);
        }
        Ok(())
    }

    /// Reads lent variables back into the host learner.
    fn reclaim(&mut self) -> Result<()> {
        if let (Trainer::Host(learner), Mirror::Lent) = (&mut self.trainer, self.mirror.get()) {
            learner.load(&self.online, &self.target)?;
            self.mirror.set(Mirror::Current);
        }
        Ok(())
    }

    /// Experiences in the replay memory.
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    fn check_obs(&self, obs: &[f32]) -> Result<()> {
        if obs.len() != self.env_obs_len {
            return Err(AgentError::Shape(format!(
                "{}: observation of {} values, expected {}",
                self.name,
                obs.len(),
                self.env_obs_len
            )));
        }
        Ok(())
    }
}
