//! [`Reinforce`]: the agent, its networks and its update. The algorithm is described in the
//! [module documentation](super).

use super::buffer::EpisodeBatch;
use super::config::ReinforceConfig;
use super::host_mlp::HostMlp;
use super::policy;
use super::returns::{normalize, NORMALIZE_EPS};
use crate::agent::{ActionBuf, Agent, TrainInfo, Transition};
use crate::error::{AgentError, Result};
use crate::spec::BuildContext;
use crate::state::AgentState;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarMap};
use deeprl_envs::{ActionRef, Space};
use deeprl_nets::mlp::{Activation, Mlp, MlpConfig};
use deeprl_nets::optim::{AdamConfig, Optim, OptimizerConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The registry name.
pub const NAME: &str = "reinforce";

/// The name of the Gaussian policy's `log sigma` in the policy's [`VarMap`].
pub const LOG_STD: &str = "log_std";

/// The ChaCha8 stream of the action sampler (stream 0 of the seed initialises the policy).
const ACTION_STREAM: u64 = 7;

/// What the policy outputs and how actions are drawn from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Head {
    /// Softmax over `n_actions` logits.
    Categorical { n_actions: usize },
    /// Diagonal Gaussian around the network's output, clipped into `[low, high]` for the env.
    Gaussian { low: Vec<f32>, high: Vec<f32> },
}

impl Head {
    /// The head for an action space, or why REINFORCE cannot act in it.
    pub fn for_space(space: &Space) -> std::result::Result<Head, String> {
        match space {
            Space::Discrete { n: 0 } => Err("its action space Discrete(0) has no action".into()),
            Space::Discrete { n } => Ok(Head::Categorical { n_actions: *n }),
            Space::Box(b) if b.is_empty() => Err("its action box has no element".into()),
            Space::Box(b) => Ok(Head::Gaussian { low: b.low.clone(), high: b.high.clone() }),
            other => Err(format!(
                "it needs a discrete or box action space, this env's is {}",
                other.describe()
            )),
        }
    }

    /// The network's output size: logits or means.
    pub fn output_len(&self) -> usize {
        match self {
            Head::Categorical { n_actions } => *n_actions,
            Head::Gaussian { low, .. } => low.len(),
        }
    }

    /// Numbers stored per action in the episode batch.
    fn action_len(&self) -> usize {
        match self {
            Head::Categorical { .. } => 1,
            Head::Gaussian { low, .. } => low.len(),
        }
    }
}

/// The learned state-value baseline `b(s)`: an MLP regressed on the returns by MSE.
struct Baseline {
    vars: VarMap,
    net: Mlp,
    optim: Optim,
}

/// Counters and last-update figures, stored as JSON in checkpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Counters {
    steps: u64,
    episodes: u64,
    updates: u64,
    last_loss: f64,
    last_entropy: f64,
    last_value_loss: f64,
    /// True between an exploring `act` and the `observe` of its step (continuous actions:
    /// `last_sample` holds the unclipped draw).
    pending_sample: bool,
}

/// The REINFORCE agent (see the [module documentation](super)).
pub struct Reinforce {
    config: ReinforceConfig,
    head: Head,
    obs_dim: usize,
    device: Device,
    policy_vars: VarMap,
    policy: Mlp,
    log_std: Option<Var>,
    optim: Optim,
    baseline: Option<Baseline>,
    /// Host copy of the policy weights for per-step acting.
    host: HostMlp,
    /// `exp(log_std)` on the host (Gaussian head).
    std: Vec<f32>,
    /// The last unclipped Gaussian sample, whose log-probability the update uses.
    last_sample: Vec<f32>,
    rng: ChaCha8Rng,
    batch: EpisodeBatch,
    /// Advantages of the current update (kept to reuse its allocation).
    advantages: Vec<f32>,
    counters: Counters,
}

fn mlp_config(sizes: Vec<usize>, activation: Activation) -> MlpConfig {
    MlpConfig { activation, ..MlpConfig::new(sizes) }
}

fn adam(vars: Vec<Var>, lr: f64) -> Result<Optim> {
    Ok(Optim::new(vars, OptimizerConfig::Adam(AdamConfig { lr, ..AdamConfig::default() }))?)
}

/// The variables of `varmap` sorted by name, so that the optimizer's (and its checkpoint's)
/// order does not depend on the map's hashing.
fn sorted_vars(varmap: &VarMap) -> Result<Vec<Var>> {
    let data =
        varmap.data().lock().map_err(|_| AgentError::Shape("VarMap lock poisoned".into()))?;
    let mut named: Vec<(&String, &Var)> = data.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    Ok(named.into_iter().map(|(_, v)| v.clone()).collect())
}

impl Reinforce {
    /// Builds the agent for the env of `ctx` from config overrides (`--set key=value`).
    pub fn from_table(ctx: &BuildContext<'_>, table: &toml::Table) -> Result<Self> {
        Self::new(crate::config::parse(table)?, ctx)
    }

    /// Builds the agent for the env of `ctx`. The policy is initialised from `ctx.seed`
    /// (stream 0), the baseline from `ctx.seed + 1`, and actions are drawn from
    /// `ChaCha8Rng::seed_from_u64(ctx.seed)` on stream 7.
    pub fn new(config: ReinforceConfig, ctx: &BuildContext<'_>) -> Result<Self> {
        use crate::config::Config;
        config.validate()?;
        let head =
            Head::for_space(&ctx.env.action_space()).map_err(|why| ctx.incompatible(NAME, why))?;
        let obs_dim = ctx.env.obs_len();
        if obs_dim == 0 {
            return Err(ctx.incompatible(NAME, "its observations have no value".into()));
        }
        let activation = config.hidden_activation()?;
        let device = ctx.device.clone();
        let sizes = |out: usize| {
            let mut s = vec![obs_dim];
            s.extend(&config.hidden_sizes);
            s.push(out);
            s
        };

        let policy_vars = VarMap::new();
        let policy_config = mlp_config(sizes(head.output_len()), activation);
        let policy = Mlp::seeded(&policy_config, &policy_vars, "", DType::F32, &device, ctx.seed)?;
        let log_std = match &head {
            Head::Gaussian { low, .. } => {
                let init = Tensor::full(config.log_std_init as f32, low.len(), &device)?;
                let var = Var::from_tensor(&init)?;
                policy_vars
                    .data()
                    .lock()
                    .map_err(|_| AgentError::Shape("VarMap lock poisoned".into()))?
                    .insert(LOG_STD.into(), var.clone());
                Some(var)
            }
            Head::Categorical { .. } => None,
        };
        let optim = adam(sorted_vars(&policy_vars)?, config.lr)?;

        let baseline = if config.baseline {
            let vars = VarMap::new();
            let seed = ctx.seed.wrapping_add(1);
            let net = Mlp::seeded(
                &mlp_config(sizes(1), activation),
                &vars,
                "",
                DType::F32,
                &device,
                seed,
            )?;
            let optim = adam(sorted_vars(&vars)?, config.baseline_lr)?;
            Some(Baseline { vars, net, optim })
        } else {
            None
        };

        let host = HostMlp::new(&policy, activation, Activation::Identity)?;
        let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
        rng.set_stream(ACTION_STREAM);
        let action_len = head.action_len();
        let mut agent = Reinforce {
            batch: EpisodeBatch::new(obs_dim, action_len),
            last_sample: vec![0.0; action_len],
            std: Vec::new(),
            config,
            head,
            obs_dim,
            device,
            policy_vars,
            policy,
            log_std,
            optim,
            baseline,
            host,
            rng,
            advantages: Vec::new(),
            counters: Counters::default(),
        };
        agent.refresh_host()?;
        Ok(agent)
    }

    /// The config in use.
    pub fn config(&self) -> &ReinforceConfig {
        &self.config
    }

    /// The policy head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The policy network's parameters (and `log_std` for the Gaussian head).
    pub fn policy_vars(&self) -> &VarMap {
        &self.policy_vars
    }

    /// The policy network (candle), e.g. to run it on a batch.
    pub fn policy(&self) -> &Mlp {
        &self.policy
    }

    /// The policy output for one observation through the host copy of the weights (what
    /// [`act`](Agent::act) uses): logits, or the Gaussian mean.
    pub fn policy_output(&mut self, obs: &[f32]) -> Result<&[f32]> {
        self.check_obs(obs)?;
        Ok(self.host.forward(obs))
    }

    /// The steps stored since the last update.
    pub fn batch(&self) -> &EpisodeBatch {
        &self.batch
    }

    /// Completed updates.
    pub fn updates(&self) -> u64 {
        self.counters.updates
    }

    /// Completed episodes.
    pub fn episodes(&self) -> u64 {
        self.counters.episodes
    }

    fn refresh_host(&mut self) -> Result<()> {
        self.host.refresh(&self.policy)?;
        if let Some(log_std) = &self.log_std {
            self.std = log_std.as_tensor().exp()?.to_vec1::<f32>()?;
        }
        Ok(())
    }

    fn check_obs(&self, obs: &[f32]) -> Result<()> {
        if obs.len() == self.obs_dim {
            Ok(())
        } else {
            Err(AgentError::Shape(format!(
                "reinforce: observation of {} values, the policy takes {}",
                obs.len(),
                self.obs_dim
            )))
        }
    }

    /// One policy-gradient step on the stored episodes (and one baseline step).
    fn update(&mut self) -> Result<TrainInfo> {
        let n = self.batch.len();
        let dev = &self.device;
        let obs = Tensor::from_slice(&self.batch.obs, (n, self.obs_dim), dev)?;
        let out = self.policy.forward(&obs)?;
        let (log_prob, entropy) = match &self.head {
            Head::Categorical { .. } => {
                let a: Vec<u32> = self.batch.actions.iter().map(|&a| a as u32).collect();
                let a = Tensor::from_vec(a, n, dev)?;
                (policy::categorical_log_prob(&out, &a)?, policy::mean_categorical_entropy(&out)?)
            }
            Head::Gaussian { low, .. } => {
                let a = Tensor::from_slice(&self.batch.actions, (n, low.len()), dev)?;
                let log_std = self.log_std.as_ref().ok_or_else(|| {
                    AgentError::Shape("reinforce: Gaussian head without log_std".into())
                })?;
                let entropy = policy::gaussian_entropy(log_std.as_tensor())?.to_scalar::<f32>()?;
                (policy::gaussian_log_prob(&out, log_std.as_tensor(), &a)?, entropy as f64)
            }
        };

        self.advantages.clear();
        self.advantages.extend_from_slice(&self.batch.returns);
        if let Some(b) = &mut self.baseline {
            let values = b.net.forward(&obs)?.squeeze(1)?;
            let v: Vec<f32> = values.to_vec1()?;
            self.advantages.iter_mut().zip(&v).for_each(|(a, v)| *a -= v);
            let returns = Tensor::from_slice(&self.batch.returns, n, dev)?;
            let value_loss = (values - returns)?.sqr()?.mean_all()?;
            b.optim.backward_step(&value_loss)?;
            self.counters.last_value_loss = value_loss.to_scalar::<f32>()? as f64;
        }
        if self.config.normalize_advantages {
            normalize(&mut self.advantages, NORMALIZE_EPS);
        }
        let adv = Tensor::from_slice(&self.advantages, n, dev)?;
        // loss = -mean_t[log pi(a_t|s_t) A_t]
        let loss = (log_prob * adv)?.mean_all()?.neg()?;
        self.optim.backward_step(&loss)?;
        self.refresh_host()?;

        self.counters.updates += 1;
        self.counters.last_loss = loss.to_scalar::<f32>()? as f64;
        self.counters.last_entropy = entropy;
        Ok(TrainInfo { loss: self.counters.last_loss, lr: self.optim.learning_rate() })
    }
}

impl Agent for Reinforce {
    fn name(&self) -> &'static str {
        NAME
    }

    fn act(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.check_obs(obs)?;
        let out = self.host.forward(obs);
        match &self.head {
            Head::Categorical { .. } => {
                action.set_discrete(policy::sample_categorical(out, &mut self.rng))
            }
            Head::Gaussian { low, high } => {
                policy::sample_gaussian(out, &self.std, &mut self.rng, &mut self.last_sample);
                let buf = action.continuous_mut(low.len());
                policy::clip_into(&self.last_sample, low, high, buf);
                self.counters.pending_sample = true;
            }
        }
        Ok(())
    }

    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.check_obs(obs)?;
        let out = self.host.forward(obs);
        match &self.head {
            Head::Categorical { .. } => action.set_discrete(policy::argmax(out)),
            Head::Gaussian { low, high } => {
                let buf = action.continuous_mut(low.len());
                policy::clip_into(out, low, high, buf);
            }
        }
        Ok(())
    }

    /// Stores the step; at the end of an episode (terminated or truncated, without
    /// bootstrapping) computes its returns, and after `episodes_per_update` episodes updates.
    ///
    /// For a continuous action, the stored action is the unclipped sample of the last
    /// [`act`](Agent::act) when the transition's action is that sample clipped (the usual
    /// case); any other action (e.g. one the runner chose) is stored as it is.
    fn observe(&mut self, t: &Transition<'_>) -> Result<Option<TrainInfo>> {
        self.check_obs(t.obs)?;
        if !t.reward.is_finite() {
            return Err(AgentError::Shape(format!("reinforce: reward {} is not finite", t.reward)));
        }
        let pending = std::mem::take(&mut self.counters.pending_sample);
        match (&self.head, t.action) {
            (Head::Categorical { n_actions }, ActionRef::Discrete(a)) if a < *n_actions => {
                self.batch.push(t.obs, &[a as f32], t.reward)
            }
            (Head::Gaussian { low, high }, ActionRef::Continuous(v)) if v.len() == low.len() => {
                let from_last_sample = pending
                    && v.iter()
                        .zip(&self.last_sample)
                        .zip(low.iter().zip(high))
                        .all(|((&x, &s), (&lo, &hi))| x.to_bits() == s.max(lo).min(hi).to_bits());
                let stored = if from_last_sample { &self.last_sample[..] } else { v };
                self.batch.push(t.obs, stored, t.reward)
            }
            (head, action) => {
                return Err(AgentError::Shape(format!(
                    "reinforce: action {action:?} does not fit the policy ({head:?})"
                )))
            }
        }
        self.counters.steps += 1;
        if !t.done() {
            return Ok(None);
        }
        self.batch.finish_episode(self.config.gamma);
        self.counters.episodes += 1;
        if self.batch.episodes < self.config.episodes_per_update {
            return Ok(None);
        }
        let info = self.update()?;
        self.batch.clear();
        Ok(Some(info))
    }

    fn scalars(&self, out: &mut dyn FnMut(&'static str, f64)) {
        out("train/lr", self.optim.learning_rate());
        if self.counters.updates > 0 {
            out("train/entropy", self.counters.last_entropy);
            if self.baseline.is_some() {
                out("train/value_loss", self.counters.last_value_loss);
            }
        }
    }

    fn save(&self, state: &mut AgentState) -> Result<()> {
        state.put_meta("reinforce.config", &self.config)?;
        state.put_meta("reinforce.head", &self.head)?;
        state.put_meta("reinforce.obs_dim", &self.obs_dim)?;
        state.put_meta("reinforce.counters", &self.counters)?;
        state.put_rng("reinforce.rng", &self.rng)?;
        state.put_varmap("policy.", &self.policy_vars)?;
        state.put_optim("policy_optim.", &self.optim)?;
        if let Some(b) = &self.baseline {
            state.put_varmap("baseline.", &b.vars)?;
            state.put_optim("baseline_optim.", &b.optim)?;
        }
        state.put_f32("reinforce.last_sample", &[self.last_sample.len()], self.last_sample.clone());
        self.batch.save("batch.", state)
    }

    /// Restores weights, optimizer state (its learning rate included), the episode batch,
    /// counters and the RNG. The networks' shapes must match this agent's; the other
    /// hyperparameters (`gamma`, `episodes_per_update`, ...) are this agent's config.
    fn load(&mut self, state: &AgentState) -> Result<()> {
        let config: ReinforceConfig = state.meta("reinforce.config")?;
        let head: Head = state.meta("reinforce.head")?;
        let obs_dim: usize = state.meta("reinforce.obs_dim")?;
        if head != self.head || obs_dim != self.obs_dim {
            return Err(AgentError::checkpoint(
                "",
                format!(
                    "the checkpoint's policy ({head:?}, observations of {obs_dim}) differs from \
                     this agent's ({:?}, observations of {})",
                    self.head, self.obs_dim
                ),
            ));
        }
        if config.hidden_sizes != self.config.hidden_sizes
            || config.activation != self.config.activation
            || config.baseline != self.config.baseline
        {
            return Err(AgentError::checkpoint(
                "",
                format!(
                    "the checkpoint's networks (hidden_sizes {:?}, activation {}, baseline {}) \
                     differ from this agent's ({:?}, {}, {})",
                    config.hidden_sizes,
                    config.activation,
                    config.baseline,
                    self.config.hidden_sizes,
                    self.config.activation,
                    self.config.baseline
                ),
            ));
        }
        state.load_varmap("policy.", &self.policy_vars)?;
        state.load_optim("policy_optim.", &mut self.optim)?;
        if let Some(b) = &mut self.baseline {
            state.load_varmap("baseline.", &b.vars)?;
            state.load_optim("baseline_optim.", &mut b.optim)?;
        }
        let sample = state.array("reinforce.last_sample");
        match sample {
            Some(crate::state::Array::F32 { data, .. }) if data.len() == self.last_sample.len() => {
                self.last_sample.copy_from_slice(data)
            }
            _ => return Err(AgentError::checkpoint("", "bad or missing `reinforce.last_sample`")),
        }
        self.batch.load("batch.", state)?;
        self.counters = state.meta("reinforce.counters")?;
        self.rng = state.rng("reinforce.rng")?;
        self.refresh_host()
    }
}
