//! The gradient step of the whole family (host learner or candle's autograd) and the
//! target-network updates.

use super::*;

impl Dqn {
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
    /// learner ([`super::learner`]) or, on other devices and with `learner = "candle"`,
    /// through candle's autograd ([`Dqn::candle_step`], the reference
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

    /// Copies the online weights to the host copy used for acting: from the host learner's
    /// flat weights when
    /// it trains, else from the variables.
    pub(super) fn refresh_host(&mut self) -> Result<()> {
        self.reclaim()?;
        match (&mut self.host, &self.trainer) {
            (host, Trainer::Host(learner)) => host.copy_flat(learner.online_params()),
            (host, Trainer::Candle { .. }) => host.refresh(&self.online),
        }
    }

    /// Updates the target network from the online one (`tau`, see [`QNet::update_from`]).
    pub(super) fn update_target(&mut self) -> Result<()> {
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
