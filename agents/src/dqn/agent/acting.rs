//! Acting and observing: the greedy and exploring policies on the host copy, and the
//! [`Agent`] interface (storing transitions and training on schedule).

use super::*;

impl Dqn {
    /// The Q-values (expected values with C51) of every action for one env observation,
    /// from the mean weights: what the greedy policy maximises.
    pub fn q_values(&mut self, obs: &[f32]) -> Result<Vec<f32>> {
        self.check_obs(obs)?;
        encode(obs, self.one_hot, &mut self.obs_buf)?;
        Ok(self.host.q_values(&self.obs_buf, false).to_vec())
    }

    /// The greedy action on `obs_buf` (noisy layers with their current noise when `noise`).
    fn greedy(&mut self, noise: bool) -> usize {
        argmax(self.host.q_values(&self.obs_buf, noise))
    }
}

impl Agent for Dqn {
    fn name(&self) -> &'static str {
        self.name
    }

    /// Uniformly random during the warm-up (`random_warmup`, the first `learning_starts`
    /// steps); then epsilon-greedy on the host copy (epsilon from the linear schedule), or,
    /// with noisy nets, greedy on the noisy host copy with fresh noise.
    fn act(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.check_obs(obs)?;
        if self.config.random_warmup && self.counters.steps < self.config.learning_starts {
            action.set_discrete(self.explore_rng.random_range(0..self.n_actions));
            return Ok(());
        }
        encode(obs, self.one_hot, &mut self.obs_buf)?;
        if self.config.noisy {
            self.host.resample_noise(&mut self.explore_rng);
            action.set_discrete(self.greedy(true));
            return Ok(());
        }
        let eps = self.config.epsilon(self.counters.steps);
        if self.explore_rng.random::<f64>() < eps {
            action.set_discrete(self.explore_rng.random_range(0..self.n_actions));
        } else {
            action.set_discrete(self.greedy(false));
        }
        Ok(())
    }

    /// `argmax_a Q(obs, a)` from the mean weights (noise off).
    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.check_obs(obs)?;
        encode(obs, self.one_hot, &mut self.obs_buf)?;
        action.set_discrete(self.greedy(false));
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
        if step.is_multiple_of(self.config.target_update_interval) {
            self.update_target()?;
        }
        let c = &self.config;
        if step <= c.learning_starts
            || !step.is_multiple_of(c.train_freq)
            || self.replay.len() < c.batch_size
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
        self.save_checkpoint(state)
    }

    /// Restores weights (online and target), the optimizer, the replay memory, the n-step
    /// folder's pending steps, counters and RNGs. The network and replay shapes and the
    /// optimizer (Adam or RMSprop) must match this agent's; the other hyperparameters are
    /// this agent's config. Either learner reads the other's checkpoints.
    fn load(&mut self, state: &AgentState) -> Result<()> {
        self.load_checkpoint(state)
    }
}
