//! Checkpoints: the weights, the optimizer state (in the fused `Optim`'s form, whichever
//! learner trains), the replay memory, the n-step folder's pending steps, counters and RNGs.

use super::*;

impl Dqn {
    /// Writes the agent into `state` ([`Agent::save`]).
    pub(super) fn save_checkpoint(&self, state: &mut AgentState) -> Result<()> {
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
    pub(super) fn load_checkpoint(&mut self, state: &AgentState) -> Result<()> {
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
