//! [`Dqn`]: the agent, its networks, its replay, and the gradient step of the whole family in
//! one place ([`Dqn::gradient_step`]). The algorithms are described in the
//! [module documentation](super).

use super::config::{DqnConfig, Loss, TorsoKind};
use super::distributional::{project, softmax_into, support};
use super::host::{argmax, HostNet};
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
use deeprl_nets::optim::{clip_grad_norm, AdamConfig, Optim, OptimizerConfig};
use deeprl_replay::{
    Action, ActionKind, Batch, ExperienceSink, NStepFolder, PrioritizedConfig, PrioritizedReplay,
    ReplayBuffer,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
    vars: Vec<Var>,
    optim: Optim,
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
    pub fn new(name: &'static str, config: DqnConfig, ctx: &BuildContext<'_>) -> Result<Self> {
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
        let vars = online.vars();
        let adam = AdamConfig { lr: config.lr, eps: config.adam_eps, ..AdamConfig::default() };
        let optim = Optim::new(vars.clone(), OptimizerConfig::Adam(adam))?;
        let support =
            if config.distributional { support(config.v_min, config.v_max, atoms) } else { vec![] };
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
            vars,
            optim,
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

    /// The online network (e.g. to inspect its weights in tests).
    pub fn online(&self) -> &QNet {
        &self.online
    }

    /// The target network.
    pub fn target(&self) -> &QNet {
        &self.target
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
    /// theta <- Adam(theta, clip_by_global_norm(grad loss, max_grad_norm))
    /// ```
    ///
    /// `R` and `discount` come from the n-step folder (`gamma^n`, 0 after termination). The
    /// targets are computed without a graph (detached weights). A non-finite loss is an
    /// [`AgentError::Diverged`] naming the update step and what was not finite.
    pub fn gradient_step(&mut self) -> Result<f64> {
        let c = &self.config;
        let bs = c.batch_size;
        let beta = c.per_beta(self.counters.steps);
        self.replay.sample(bs, beta, &mut self.replay_rng, &mut self.batch)?;
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
                let (a, n) = (self.n_actions, c.atoms);
                self.next_logits = target_next.flatten_all()?.to_vec1()?;
                let chooser = match &online_next {
                    Some(on) => {
                        self.next_online = on.flatten_all()?.to_vec1()?;
                        &self.next_online
                    }
                    None => &self.next_logits,
                };
                self.targets.resize(bs * n, 0.0);
                for j in 0..bs {
                    let mut best = (0, f32::NEG_INFINITY);
                    for k in 0..a {
                        let logits = &chooser[(j * a + k) * n..(j * a + k + 1) * n];
                        softmax_into(logits, &mut self.probs);
                        let q: f32 = self.probs.iter().zip(&self.support).map(|(p, z)| p * z).sum();
                        if q > best.1 {
                            best = (k, q);
                        }
                    }
                    let k = best.0;
                    softmax_into(
                        &self.next_logits[(j * a + k) * n..(j * a + k + 1) * n],
                        &mut self.probs,
                    );
                    project(
                        &self.support,
                        &self.probs,
                        b.rewards[j],
                        b.discounts[j],
                        &mut self.targets[j * n..(j + 1) * n],
                    );
                }
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
            return Err(self.diverged(loss_value, &q_taken));
        }
        let mut grads = loss.backward()?;
        if c.max_grad_norm > 0.0 {
            let norm = clip_grad_norm(&mut grads, &self.vars, c.max_grad_norm)?;
            if !norm.is_finite() {
                return Err(AgentError::Diverged {
                    agent: self.name.into(),
                    update: self.counters.updates + 1,
                    what: format!("the gradient norm is {norm} (loss {loss_value})"),
                });
            }
        }
        self.optim.step(&grads)?;
        if let Replay::Prioritized(_) = self.replay {
            let priorities: Vec<f32> = priorities.to_vec1()?;
            let indices = std::mem::take(&mut self.batch.indices);
            let written = self.replay.update_priorities(&indices, &priorities);
            self.batch.indices = indices;
            written?;
        }
        self.counters.updates += 1;
        self.counters.last_loss = loss_value;
        self.counters.last_q = q_taken.detach().mean_all()?.to_scalar::<f32>()? as f64;
        Ok(loss_value)
    }

    fn diverged(&self, loss: f64, q: &Tensor) -> AgentError {
        let q: Vec<f32> = q.detach().to_vec1().unwrap_or_default();
        let q_ok = q.iter().all(|x| x.is_finite());
        let what = format!(
            "the loss is {loss}; the online Q-values of the batch are {}; the batch's rewards \
             are {}",
            if q_ok { "finite" } else { "not finite (the weights diverged)" },
            if self.batch.rewards.iter().all(|r| r.is_finite()) { "finite" } else { "not finite" }
        );
        AgentError::Diverged { agent: self.name.into(), update: self.counters.updates + 1, what }
    }

    /// Copies the online weights to the host copy used for acting (none with the CNN torso,
    /// which acts from the online network itself).
    fn refresh_host(&mut self) -> Result<()> {
        match &mut self.host {
            Some(host) => host.refresh(&self.online),
            None => Ok(()),
        }
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
        let c = &self.config;
        let step = self.counters.steps;
        if step % c.target_update_interval == 0 {
            self.target.update_from(&self.online, c.tau)?;
            self.counters.target_updates += 1;
        }
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
        Ok(Some(TrainInfo { loss, lr: self.optim.learning_rate() }))
    }

    fn scalars(&self, out: &mut dyn FnMut(&'static str, f64)) {
        out(crate::logger::tags::EPSILON, self.config.epsilon(self.counters.steps));
        out(crate::logger::tags::LR, self.optim.learning_rate());
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
        state.put_varmap("dqn.online.", &self.online.varmap)?;
        state.put_varmap("dqn.target.", &self.target.varmap)?;
        state.put_optim("dqn.optim.", &self.optim)?;
        self.replay.save(state)
    }

    /// Restores weights (online and target), the optimizer, the replay memory, the n-step
    /// folder's pending steps, counters and RNGs. The network and replay shapes must match
    /// this agent's; the other hyperparameters are this agent's config.
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
        state.load_varmap("dqn.online.", &self.online.varmap)?;
        state.load_varmap("dqn.target.", &self.target.varmap)?;
        state.load_optim("dqn.optim.", &mut self.optim)?;
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
