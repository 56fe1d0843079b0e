//! Building a [`Dqn`] from its config: validation, the networks, the learner, the replay.

use super::*;

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
    /// runs on the host learner on CPU unless `learner = "candle"`.
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
        let trainer = if config.learner == LearnerKind::Auto && device.is_cpu() {
            Trainer::Host(Box::new(HostLearner::new(&online, &target, &config, support.clone())?))
        } else {
            let vars = online.vars();
            Trainer::Candle { optim: Optim::new(vars.clone(), optimizer)?, vars }
        };
        let support_tensor = match config.distributional {
            true => Some(Tensor::from_slice(&support, atoms, &device)?),
            false => None,
        };
        let host = HostNet::new(&online, support.clone())?;
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
}
