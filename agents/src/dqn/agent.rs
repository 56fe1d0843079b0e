//! [`Dqn`]: the agent, its networks, its replay, and the gradient step of the whole family in
//! one place ([`Dqn::gradient_step`]). The algorithms are described in the
//! [module documentation](super).

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
    /// The host copy used for acting with the MLP torso; `None` with the CNN torso, which
    /// acts through the candle forward on one observation ([`Dqn::candle_q_values`]).
    host: Option<HostNet>,
    /// A `[1, 1]` one for the single-observation candle forward.
    one: Tensor,
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
    /// Builds the agent from config overrides over `defaults` (the `dqn` or `rainbow`
    /// defaults); unknown keys and bad values are errors naming the key.
    pub fn from_table(
        name: &'static str,
        defaults: DqnConfig,
        ctx: &BuildContext<'_>,
        table: &toml::Table,
    ) -> Result<Self> {
        let mut merged = match toml::Value::try_from(defaults) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        let known = crate::config::defaults::<DqnConfig>();
        for (k, v) in table {
            if known.contains_key(k) {
                merged.insert(k.clone(), v.clone());
            }
        }
        // Unknown keys in `table` are reported by `parse` itself.
        let mut with_unknown = merged;
        for (k, v) in table {
            with_unknown.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Self::new(name, crate::config::parse(&with_unknown)?, ctx)
    }

    /// Builds the agent for the env of `ctx`: weights from `ctx.seed` (the target a copy of
    /// the online net), exploration, replay and noise draws from streams of the same seed.
    /// `total_timesteps = 0` becomes the run's length `ctx.total_steps`. The gradient step
    /// runs on the host learner for the MLP torso on CPU unless `learner = "candle"`.
    pub fn new(name: &'static str, config: DqnConfig, ctx: &BuildContext<'_>) -> Result<Self> {
        let config = config.with_run_length(ctx.total_steps);
        config.validate()?;
        let n_actions = ctx.discrete_actions(name)?;
        if n_actions == 0 {
            return Err(ctx.incompatible(name, "its action space has no action".into()));
        }
        let env_obs_len = ctx.env.obs_len();
        let (one_hot, obs_dim) = match ctx.env.observation_space() {
            Space::Discrete { n } => (Some(n), n),
            _ => (None, env_obs_len),
        };
        if obs_dim == 0 {
            return Err(ctx.incompatible(name, "its observations have no value".into()));
        }
        let device = ctx.device.clone();
        let atoms = if config.distributional { config.atoms } else { 1 };
        let torso = match config.torso {
            TorsoKind::Mlp => Torso::Mlp { hidden: config.net_arch.clone() },
            TorsoKind::Cnn => {
                let space = ctx.env.observation_space();
                let image = match &space {
                    Space::Box(b) if b.shape.len() == 3 && b.shape[1] >= 3 && b.shape[2] >= 3 => {
                        [b.shape[0], b.shape[1], b.shape[2]]
                    }
                    other => {
                        return Err(ctx.incompatible(
                            name,
                            format!(
                                "`torso` = \"cnn\" needs image observations, a box of shape \
                                 [channels, height, width] with height and width at least 3 \
                                 (the 3x3 convolution); this env's are {}; use torso = \"mlp\"",
                                other.describe()
                            ),
                        ))
                    }
                };
                Torso::minatar(image, config.net_arch.clone())
            }
        };
        let shape = NetShape {
            obs_dim,
            n_actions,
            atoms,
            torso,
            dueling: config.dueling,
            noisy: config.noisy,
            sigma0: config.noisy_sigma0,
        };
        let online = QNet::new(shape.clone(), ctx.seed, &device)?;
        let target = QNet::new(shape, ctx.seed, &device)?;
        let support =
            if config.distributional { support(config.v_min, config.v_max, atoms) } else { vec![] };
        let optimizer = config.optimizer_config();
        optimizer.validate().map_err(|e| AgentError::bad_value("optimizer", e.to_string()))?;
        let trainer = if config.learner == LearnerKind::Auto
            && device.is_cpu()
            && online.conv.is_none()
        {
            Trainer::Host(Box::new(HostLearner::new(&online, &target, &config, support.clone())?))
        } else {
            let vars = online.vars();
            Trainer::Candle { optim: Optim::new(vars.clone(), optimizer)?, vars }
        };
        let support_tensor = match config.distributional {
            true => Some(Tensor::from_slice(&support, atoms, &device)?),
            false => None,
        };
        let host = match online.conv {
            None => Some(HostNet::new(&online, support.clone())?),
            Some(_) => None,
        };
        let one = online.ones(1)?;
        let replay = if config.prioritized {
            let per = PrioritizedConfig {
                zeta: config.per_alpha,
                epsilon: config.per_eps,
                ..PrioritizedConfig::default()
            };
            Replay::Prioritized(
                PrioritizedReplay::new(config.buffer_size, obs_dim, ActionKind::Discrete, per)
                    .map_err(replay_error)?,
            )
        } else {
            Replay::Uniform(
                ReplayBuffer::new(config.buffer_size, obs_dim, ActionKind::Discrete)
                    .map_err(replay_error)?,
            )
        };
        let folder = NStepFolder::new(config.n_step, config.gamma, obs_dim, ActionKind::Discrete)
            .map_err(replay_error)?;
        let ones = online.ones(config.batch_size)?;
        Ok(Dqn {
            name,
            env_obs_len,
            one_hot,
            obs_dim,
            n_actions,
            online,
            target,
            trainer,
            mirror: Cell::new(Mirror::Current),
            host,
            one,
            support,
            support_tensor,
            replay,
            folder,
            tail: Tail::default(),
            batch: Batch::new(),
            ones,
            explore_rng: stream(ctx.seed, EXPLORE_STREAM),
            replay_rng: stream(ctx.seed, REPLAY_STREAM),
            noise_rng: stream(ctx.seed, NOISE_STREAM),
            counters: Counters::default(),
            obs_buf: vec![0.0; obs_dim],
            next_obs_buf: vec![0.0; obs_dim],
            next_logits: Vec::new(),
            next_online: Vec::new(),
            probs: vec![0.0; atoms],
            targets: Vec::new(),
            gather_index: Vec::new(),
            priorities: Vec::new(),
            device,
            config,
        })
    }

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

    /// The Q-values (expected values with C51) of every action for one env observation,
    /// from the mean weights: what the greedy policy maximises.
    pub fn q_values(&mut self, obs: &[f32]) -> Result<Vec<f32>> {
        self.check_obs(obs)?;
        encode(obs, self.one_hot, &mut self.obs_buf)?;
        match &mut self.host {
            Some(host) => Ok(host.q_values(&self.obs_buf, false).to_vec()),
            None => self.candle_q_values(false),
        }
    }

    /// The Q-values of the encoded observation in `obs_buf` through the online network's
    /// candle forward (detached; noisy layers at their current noise when `noise`, else at
    /// their means). The CNN torso acts this way: a batch-1 convolution and a few small ops,
    /// with tensor allocations each call, where the MLP torso's host copy allocates nothing.
    /// Measured once on MinAtar/Breakout-v1 (2-core dev machine under load, release): about
    /// 0.2 ms per greedy action, against about 5 us for the MLP host copy of the same size;
    /// small next to the CNN's gradient step (about 12 ms at batch 32), so acting is not the
    /// bottleneck of `train_freq = 1` training.
    fn candle_q_values(&self, noise: bool) -> Result<Vec<f32>> {
        let x = Tensor::from_slice(&self.obs_buf, (1, self.obs_dim), &self.device)?;
        let out = self.online.forward_with(&x, &self.one, false, noise)?;
        Ok(q_values(&out, self.support_tensor.as_ref())?.flatten_all()?.to_vec1()?)
    }

    /// The greedy action on `obs_buf` (noisy layers with their current noise when `noise`).
    fn greedy(&mut self, noise: bool) -> Result<usize> {
        match &mut self.host {
            Some(host) => Ok(argmax(host.q_values(&self.obs_buf, noise))),
            None => Ok(argmax(&self.candle_q_values(noise)?)),
        }
    }

    /// One gradient step on a sampled batch, the whole family in one place:
    ///
    /// ```text
    /// sample (s, a, R, s', discount) (and IS weights w, prioritized) ; fresh noise (noisy)
    /// a*     = argmax_a Q_online(s', a)  (double)   or   argmax_a Q_target(s', a)
    /// Q-values:  y = R + discount Q_target(s', a*);  delta = Q_online(s, a) - y
    ///            loss = mean_j w_j huber(delta_j) (or delta_j^2);  priority_j = |delta_j|
    /// C51:       m = project(R + discount z, p_target(s', a*))
    ///            loss = mean_j w_j CE_j, CE_j = -sum_i m_ji log p_i(s_j, a_j); priority_j = CE_j
    /// theta <- optimizer(theta, clip_by_global_norm(grad loss, max_grad_norm))
    /// ```
    ///
    /// `R` and `discount` come from the n-step folder (`gamma^n`, 0 after termination). The
    /// targets are computed without a graph (detached weights). The step runs on the host
    /// learner ([`super::learner`]) or, for the CNN torso, other devices and
    /// `learner = "candle"`, through candle's autograd ([`Dqn::candle_step`], the reference
    /// the host learner is tested against). A non-finite loss or gradient norm is an
    /// [`AgentError::Diverged`] naming the update step and what was not finite; the weights
    /// are then left as they were.
    pub fn gradient_step(&mut self) -> Result<f64> {
        self.reclaim()?;
        let (bs, beta) = (self.config.batch_size, self.config.per_beta(self.counters.steps));
        self.replay.sample(bs, beta, &mut self.replay_rng, &mut self.batch)?;
        let outcome = match &mut self.trainer {
            Trainer::Host(learner) => learner.step(&self.batch, &mut self.noise_rng)?,
            Trainer::Candle { .. } => self.candle_step()?,
        };
        let (loss, q_mean) = match outcome {
            Outcome::Stepped { loss, q_mean } => (loss, q_mean),
            Outcome::NonFiniteLoss { loss, q_finite } => return Err(self.diverged(loss, q_finite)),
            Outcome::NonFiniteGradNorm { loss, norm } => {
                return Err(AgentError::Diverged {
                    agent: self.name.into(),
                    update: self.counters.updates + 1,
                    what: format!("the gradient norm is {norm} (loss {loss})"),
                })
            }
        };
        let priorities = match &self.trainer {
            Trainer::Host(learner) => {
                self.mirror.set(Mirror::Stale);
                learner.priorities()
            }
            Trainer::Candle { .. } => &self.priorities,
        };
        self.replay.update_priorities(&self.batch.indices, priorities)?;
        self.counters.updates += 1;
        self.counters.last_loss = loss;
        self.counters.last_q = q_mean;
        Ok(loss)
    }

    /// [`Dqn::gradient_step`] through candle's autograd on the sampled batch: the graph of
    /// the loss, `backward`, `clip_grad_norm` and the fused optimizer over the variables.
    fn candle_step(&mut self) -> Result<Outcome> {
        let c = &self.config;
        let bs = c.batch_size;
        self.online.resample_noise(&mut self.noise_rng)?;
        self.target.resample_noise(&mut self.noise_rng)?;
        let dev = &self.device;
        let b = &self.batch;
        let obs = Tensor::from_slice(&b.obs, (bs, self.obs_dim), dev)?;
        let next_obs = Tensor::from_slice(&b.next_obs, (bs, self.obs_dim), dev)?;
        let weights = Tensor::from_slice(&b.weights, bs, dev)?;
        let out = self.online.forward(&obs, &self.ones, true)?;
        let target_next = self.target.forward(&next_obs, &self.ones, false)?;
        let online_next = match c.double {
            true => Some(self.online.forward(&next_obs, &self.ones, false)?),
            false => None,
        };
        let (per_sample, q_taken, priorities) = match &self.support_tensor {
            None => {
                let q_next = q_values(&target_next, None)?;
                let next_v = match online_next {
                    Some(on) => {
                        let best = q_values(&on, None)?.argmax_keepdim(1)?;
                        q_next.gather(&best, 1)?.squeeze(1)?
                    }
                    None => q_next.max(1)?,
                };
                let rewards = Tensor::from_slice(&b.rewards, bs, dev)?;
                let discounts = Tensor::from_slice(&b.discounts, bs, dev)?;
                let y = (rewards + (discounts * next_v)?)?;
                let actions = Tensor::from_slice(&b.actions_discrete, (bs, 1), dev)?;
                let q = q_values(&out, None)?.gather(&actions, 1)?.squeeze(1)?;
                let delta = (&q - y)?;
                let loss = match c.loss {
                    Loss::Mse => delta.sqr()?,
                    Loss::Huber => {
                        // 0.5 min(|d|, 1)^2 + (|d| - min(|d|, 1)): smooth L1 with delta 1.
                        let abs = delta.abs()?;
                        let quad = abs.minimum(1.0)?;
                        ((quad.sqr()? * 0.5)? + (abs - &quad)?)?
                    }
                };
                let priorities = delta.abs()?.detach();
                (loss, q, priorities)
            }
            Some(z) => {
                let n = c.atoms;
                self.next_logits = target_next.flatten_all()?.to_vec1()?;
                if let Some(on) = &online_next {
                    self.next_online = on.flatten_all()?.to_vec1()?;
                }
                let chooser = match online_next {
                    Some(_) => &self.next_online,
                    None => &self.next_logits,
                };
                self.targets.resize(bs * n, 0.0);
                project_batch(
                    &self.support,
                    &self.next_logits,
                    chooser,
                    self.n_actions,
                    &b.rewards,
                    &b.discounts,
                    &mut self.probs,
                    &mut self.targets,
                );
                self.gather_index.clear();
                for &act in &b.actions_discrete {
                    self.gather_index.extend(std::iter::repeat_n(act, n));
                }
                let index = Tensor::from_slice(&self.gather_index, (bs, 1, n), dev)?;
                let m = Tensor::from_slice(&self.targets, (bs, n), dev)?;
                let log_p = candle_nn::ops::log_softmax(&out, D::Minus1)?;
                let log_p_taken = log_p.gather(&index, 1)?.squeeze(1)?;
                let ce = (m * log_p_taken)?.sum(1)?.neg()?;
                let q = q_values(&out.detach(), Some(z))?
                    .gather(&Tensor::from_slice(&b.actions_discrete, (bs, 1), dev)?, 1)?
                    .squeeze(1)?;
                let priorities = ce.detach();
                (ce, q, priorities)
            }
        };
        let loss = (&per_sample * weights)?.mean_all()?;
        let loss_value = loss.to_scalar::<f32>()? as f64;
        if !loss_value.is_finite() {
            let q: Vec<f32> = q_taken.detach().to_vec1()?;
            let q_finite = q.iter().all(|x| x.is_finite());
            return Ok(Outcome::NonFiniteLoss { loss: loss_value, q_finite });
        }
        let q_mean = q_taken.detach().mean_all()?.to_scalar::<f32>()? as f64;
        self.priorities = priorities.to_vec1()?;
        let mut grads = loss.backward()?;
        let Trainer::Candle { optim, vars } = &mut self.trainer else {
            return Err(AgentError::Shape("dqn: the candle step without its optimizer".into()));
        };
        if c.max_grad_norm > 0.0 {
            let norm = clip_grad_norm(&mut grads, vars, c.max_grad_norm)?;
            if !norm.is_finite() {
                return Ok(Outcome::NonFiniteGradNorm { loss: loss_value, norm });
            }
        }
        optim.step(&grads)?;
        Ok(Outcome::Stepped { loss: loss_value, q_mean })
    }

    fn diverged(&self, loss: f64, q_finite: bool) -> AgentError {
        let what = format!(
            "the loss is {loss}; the online Q-values of the batch are {}; the batch's rewards \
             are {}",
            if q_finite { "finite" } else { "not finite (the weights diverged)" },
            if self.batch.rewards.iter().all(|r| r.is_finite()) { "finite" } else { "not finite" }
        );
        AgentError::Diverged { agent: self.name.into(), update: self.counters.updates + 1, what }
    }

    /// Copies the online weights to the host copy used for acting (none with the CNN torso,
    /// which acts from the online network itself): from the host learner's flat weights when
    /// it trains, else from the variables.
    fn refresh_host(&mut self) -> Result<()> {
        self.reclaim()?;
        match (&mut self.host, &self.trainer) {
            (Some(host), Trainer::Host(learner)) => host.copy_flat(learner.online_params()),
            (Some(host), Trainer::Candle { .. }) => host.refresh(&self.online),
            (None, _) => Ok(()),
        }
    }

    /// Updates the target network from the online one (`tau`, see [`QNet::update_from`]).
    fn update_target(&mut self) -> Result<()> {
        self.reclaim()?;
        match &mut self.trainer {
            Trainer::Host(learner) => {
                learner.update_target(self.config.tau);
                self.mirror.set(Mirror::Stale);
            }
            Trainer::Candle { .. } => self.target.update_from(&self.online, self.config.tau)?,
        }
        self.counters.target_updates += 1;
        Ok(())
    }
}

/// The `torch.optim` name of an optimizer, for messages.
fn optimizer_name(config: &OptimizerConfig) -> &'static str {
    match config {
        OptimizerConfig::Sgd(_) => "SGD",
        OptimizerConfig::Adagrad(_) => "Adagrad",
        OptimizerConfig::RmsProp(_) => "RMSprop",
        OptimizerConfig::Adam(_) => "Adam",
        OptimizerConfig::AdamW(_) => "AdamW",
        OptimizerConfig::Adamax(_) => "Adamax",
        OptimizerConfig::NAdam(_) => "NAdam",
    }
}

/// A sink that drops experiences (to rebuild the n-step folder on load).
struct Discard;

impl ExperienceSink for Discard {
    fn push(&mut self, _: &deeprl_replay::Experience<'_>) -> deeprl_replay::Result<usize> {
        Ok(0)
    }
}

impl Agent for Dqn {
    fn name(&self) -> &'static str {
        self.name
    }

    /// Epsilon-greedy on the host copy (epsilon from the linear schedule), or, with noisy
    /// nets, greedy on the noisy host copy with fresh noise.
    fn act(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.check_obs(obs)?;
        encode(obs, self.one_hot, &mut self.obs_buf)?;
        if self.config.noisy {
            // The CNN torso acts from the online net: fresh acting noise there is overwritten
            // by the training noise at the next gradient step, which resamples it first.
            match &mut self.host {
                Some(host) => host.resample_noise(&mut self.explore_rng),
                None => self.online.resample_noise(&mut self.explore_rng)?,
            }
            action.set_discrete(self.greedy(true)?);
            return Ok(());
        }
        let eps = self.config.epsilon(self.counters.steps);
        if self.explore_rng.random::<f64>() < eps {
            action.set_discrete(self.explore_rng.random_range(0..self.n_actions));
        } else {
            action.set_discrete(self.greedy(false)?);
        }
        Ok(())
    }

    /// `argmax_a Q(obs, a)` from the mean weights (noise off).
    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.check_obs(obs)?;
        encode(obs, self.one_hot, &mut self.obs_buf)?;
        action.set_discrete(self.greedy(false)?);
        Ok(())
    }

    /// Stores the transition (through the n-step folder), updates the target network every
    /// `target_update_interval` steps, and every `train_freq` steps after `learning_starts`
    /// takes `gradient_steps` gradient steps (SB3's order).
    fn observe(&mut self, t: &Transition<'_>) -> Result<Option<TrainInfo>> {
        self.check_obs(t.obs)?;
        self.check_obs(t.next_obs)?;
        let a = match t.action {
            ActionRef::Discrete(a) if a < self.n_actions => a,
            other => {
                return Err(AgentError::Shape(format!(
                    "{}: action {other:?} is not one of the {} discrete actions",
                    self.name, self.n_actions
                )))
            }
        };
        encode(t.obs, self.one_hot, &mut self.obs_buf)?;
        encode(t.next_obs, self.one_hot, &mut self.next_obs_buf)?;
        let transition = deeprl_replay::Transition {
            obs: &self.obs_buf,
            action: Action::Discrete(a),
            reward: t.reward,
            next_obs: &self.next_obs_buf,
            terminated: t.terminated,
            truncated: t.truncated,
        };
        self.folder.push(&transition, &mut self.replay).map_err(replay_error)?;
        if self.config.n_step > 1 {
            let tail = &mut self.tail;
            if t.done() {
                tail.obs.clear();
                tail.actions.clear();
                tail.rewards.clear();
            } else {
                tail.obs.extend_from_slice(&self.obs_buf);
                tail.actions.push(a);
                tail.rewards.push(t.reward);
                if tail.actions.len() >= self.config.n_step {
                    tail.obs.drain(..self.obs_dim);
                    tail.actions.remove(0);
                    tail.rewards.remove(0);
                }
            }
        }
        self.counters.steps += 1;
        let step = self.counters.steps;
        if step % self.config.target_update_interval == 0 {
            self.update_target()?;
        }
        let c = &self.config;
        if step <= c.learning_starts || step % c.train_freq != 0 || self.replay.len() < c.batch_size
        {
            return Ok(None);
        }
        let mut total = 0.0;
        for _ in 0..c.gradient_steps {
            total += self.gradient_step()?;
        }
        self.refresh_host()?;
        let loss = total / self.config.gradient_steps.max(1) as f64;
        Ok(Some(TrainInfo { loss, lr: self.learning_rate() }))
    }

    fn scalars(&self, out: &mut dyn FnMut(&'static str, f64)) {
        out(crate::logger::tags::EPSILON, self.config.epsilon(self.counters.steps));
        out(crate::logger::tags::LR, self.learning_rate());
        if self.counters.updates > 0 {
            out("train/q_mean", self.counters.last_q);
            out("train/n_updates", self.counters.updates as f64);
        }
    }

    fn save(&self, state: &mut AgentState) -> Result<()> {
        state.put_meta("dqn.config", &self.config)?;
        state.put_meta("dqn.obs_dim", &self.obs_dim)?;
        state.put_meta("dqn.n_actions", &self.n_actions)?;
        state.put_meta("dqn.counters", &self.counters)?;
        state.put_meta("dqn.tail", &self.tail)?;
        state.put_rng("dqn.explore_rng", &self.explore_rng)?;
        state.put_rng("dqn.replay_rng", &self.replay_rng)?;
        state.put_rng("dqn.noise_rng", &self.noise_rng)?;
        self.sync_mirror()?;
        state.put_varmap("dqn.online.", &self.online.varmap)?;
        state.put_varmap("dqn.target.", &self.target.varmap)?;
        match &self.trainer {
            Trainer::Host(learner) => {
                state.put_optim_state("dqn.optim.", learner.optimizer(), learner.export_state())?
            }
            Trainer::Candle { optim, .. } => state.put_optim("dqn.optim.", optim)?,
        }
        self.replay.save(state)
    }

    /// Restores weights (online and target), the optimizer, the replay memory, the n-step
    /// folder's pending steps, counters and RNGs. The network and replay shapes and the
    /// optimizer (Adam or RMSprop) must match this agent's; the other hyperparameters are
    /// this agent's config. Either learner reads the other's checkpoints.
    fn load(&mut self, state: &AgentState) -> Result<()> {
        let config: DqnConfig = state.meta("dqn.config")?;
        let obs_dim: usize = state.meta("dqn.obs_dim")?;
        let n_actions: usize = state.meta("dqn.n_actions")?;
        let c = &self.config;
        let same_net = config.net_arch == c.net_arch
            && config.torso == c.torso
            && config.dueling == c.dueling
            && config.noisy == c.noisy
            && config.distributional == c.distributional
            && (!c.distributional || config.atoms == c.atoms)
            && config.prioritized == c.prioritized
            && config.n_step == c.n_step;
        if !same_net || obs_dim != self.obs_dim || n_actions != self.n_actions {
            return Err(AgentError::checkpoint(
                "",
                format!(
                    "the checkpoint's agent (torso {:?}, net_arch {:?}, dueling {:?}, noisy {}, \
                     distributional {}, prioritized {}, n_step {}, {obs_dim} inputs, {n_actions} \
                     actions) differs from this one (torso {:?}, net_arch {:?}, dueling {:?}, noisy {}, \
                     distributional {}, prioritized {}, n_step {}, {} inputs, {} actions)",
                    config.torso,
                    config.net_arch,
                    config.dueling,
                    config.noisy,
                    config.distributional,
                    config.prioritized,
                    config.n_step,
                    c.torso,
                    c.net_arch,
                    c.dueling,
                    c.noisy,
                    c.distributional,
                    c.prioritized,
                    c.n_step,
                    self.obs_dim,
                    self.n_actions
                ),
            ));
        }
        let (saved_optimizer, _) = state.optim_state("dqn.optim.")?;
        let mine = self.config.optimizer_config();
        if std::mem::discriminant(&saved_optimizer) != std::mem::discriminant(&mine) {
            return Err(AgentError::checkpoint(
                "",
                format!(
                    "the checkpoint's optimizer is {}, this agent's is {} (`optimizer`)",
                    optimizer_name(&saved_optimizer),
                    optimizer_name(&mine)
                ),
            ));
        }
        state.load_varmap("dqn.online.", &self.online.varmap)?;
        state.load_varmap("dqn.target.", &self.target.varmap)?;
        match &mut self.trainer {
            Trainer::Host(learner) => {
                let (config, saved) = state.optim_state("dqn.optim.")?;
                learner.import_state(&saved)?;
                learner.set_learning_rate(config.lr());
                learner.load(&self.online, &self.target)?;
                self.mirror.set(Mirror::Current);
            }
            Trainer::Candle { optim, .. } => state.load_optim("dqn.optim.", optim)?,
        }
        self.replay.load(state)?;
        self.tail = state.meta("dqn.tail")?;
        self.folder.clear();
        let d = self.obs_dim;
        for (k, (&a, &r)) in self.tail.actions.iter().zip(&self.tail.rewards).enumerate() {
            let obs = self.tail.obs.get(k * d..(k + 1) * d).ok_or_else(|| {
                AgentError::checkpoint("", "`dqn.tail` is shorter than its actions")
            })?;
            let t = deeprl_replay::Transition {
                obs,
                action: Action::Discrete(a),
                reward: r,
                next_obs: obs,
                terminated: false,
                truncated: false,
            };
            self.folder.push(&t, &mut Discard).map_err(replay_error)?;
        }
        self.counters = state.meta("dqn.counters")?;
        self.explore_rng = state.rng("dqn.explore_rng")?;
        self.replay_rng = state.rng("dqn.replay_rng")?;
        self.noise_rng = state.rng("dqn.noise_rng")?;
        self.refresh_host()
    }
}
