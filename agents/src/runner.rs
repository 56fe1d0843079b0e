//! The training loop. It reads top to bottom, like CleanRL's: act, step, build the
//! transition before any reset (so the true final observation is kept on truncation),
//! observe, log, evaluate every `eval_every` steps on a separate env with the greedy policy,
//! checkpoint every `checkpoint_every` steps, and stop at the step or episode budget or once
//! an evaluation reaches `target_return`.
//!
//! **Best evaluation.** The runner remembers the evaluation with the highest mean return and
//! calls the hook set by [`Runner::set_best_hook`] whenever one beats every earlier one (the
//! CLI writes the agent to `best.safetensors` there, as SB3's `EvalCallback` keeps
//! `best_model.zip`): value-based agents on CartPole often solve the task mid-run and lose
//! it again, and the best evaluated weights are the ones a user wants to keep.
//!
//! **Exact resume.** Training episode `k` starts from `reset(episode_seed(seed, 0, k))`, so
//! the env's state is a function of the episode's seed and the actions taken since. A
//! checkpoint stores the agent, the counters and those actions; resuming replays the actions
//! on a fresh env and goes on. A resumed CPU run ends bit for bit where the uninterrupted one
//! does.

use crate::agent::{ActionBuf, Agent, Transition};
use crate::config::{check_range, Config};
use crate::error::{AgentError, Result};
use crate::evaluate::{episode_seed, evaluate, EvalResult};
use crate::logger::{tags, Logger};
use crate::state::AgentState;
use deeprl_envs::{ActionRef, DynEnv, Success};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Instant;

/// The settings of a training run (the runner's config keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Env steps to train for.
    pub steps: u64,
    /// Stop after this many episodes (0: no limit).
    pub max_episodes: u64,
    /// Env steps between evaluations (0: only at the end).
    pub eval_every: u64,
    /// Episodes per evaluation.
    pub eval_episodes: u64,
    /// Step cap of one evaluation episode, for envs without a time limit.
    pub eval_max_steps: u64,
    /// Env steps between checkpoints (0: only at the end).
    pub checkpoint_every: u64,
    /// Stop once an evaluation's mean return reaches this (`inf`: never).
    pub target_return: f64,
    /// Episodes in the running mean return that the progress line shows.
    pub mean_window: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            steps: 100_000,
            max_episodes: 0,
            eval_every: 10_000,
            eval_episodes: 10,
            eval_max_steps: 10_000,
            checkpoint_every: 0,
            target_return: f64::INFINITY,
            mean_window: 100,
        }
    }
}

impl Config for RunConfig {
    fn validate(&self) -> Result<()> {
        if self.steps == 0 && self.max_episodes == 0 {
            return Err(AgentError::bad_value("steps", "0 with no episode budget: nothing to do"));
        }
        if self.eval_episodes == 0 {
            return Err(AgentError::bad_value("eval_episodes", "must be at least 1"));
        }
        if self.eval_max_steps == 0 {
            return Err(AgentError::bad_value("eval_max_steps", "must be at least 1"));
        }
        if self.mean_window == 0 {
            return Err(AgentError::bad_value("mean_window", "must be at least 1"));
        }
        if self.target_return.is_nan() {
            return check_range("target_return", self.target_return, f64::MIN, f64::MAX);
        }
        Ok(())
    }
}

/// Counters and the current episode, everything besides the agent that a resume needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    step: u64,
    episode: u64,
    episode_return: f64,
    episode_length: u64,
    /// The actions of the current episode, flattened (a discrete action is one number).
    episode_actions: Vec<f32>,
    recent_returns: VecDeque<f64>,
    last_eval: Option<EvalResult>,
    /// The evaluation with the highest mean return so far and the step it was made at.
    #[serde(default)]
    best_eval: Option<(u64, EvalResult)>,
    wall_s: f64,
    /// Sum and count of the losses since they were last logged, and the last learning rate.
    loss_sum: f64,
    loss_count: u64,
    lr: Option<f64>,
}

/// What the progress display needs after each step.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub step: u64,
    pub episode: u64,
    /// The mean return of the last `mean_window` episodes.
    pub mean_return: Option<f64>,
    pub last_eval: Option<EvalResult>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub steps: u64,
    pub episodes: u64,
    /// Wall time of the whole run, across resumes.
    pub wall_s: f64,
    pub eval: EvalResult,
    /// True when an evaluation reached `target_return`.
    pub reached_target: bool,
    /// The evaluation with the highest mean return (periodic ones and the final one) and the
    /// step it was made at.
    pub best_eval: Option<(u64, EvalResult)>,
}

/// Called with the runner after an evaluation that beats every earlier one of the run.
pub type BestHook = Box<dyn FnMut(&Runner) -> Result<()>>;

/// A training run: the env, a separate evaluation env, the agent and the counters.
pub struct Runner {
    env: Box<dyn DynEnv>,
    eval_env: Box<dyn DynEnv>,
    agent: Box<dyn Agent>,
    config: RunConfig,
    seed: u64,
    success: Option<Success>,
    progress: Progress,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    action: ActionBuf,
    on_best: Option<BestHook>,
}

const PROGRESS_KEY: &str = "runner.progress";
const CONFIG_KEY: &str = "runner.config";
const SEED_KEY: &str = "runner.seed";

impl Runner {
    /// A run at step 0: resets `env` for the first episode.
    pub fn new(
        env: Box<dyn DynEnv>,
        eval_env: Box<dyn DynEnv>,
        agent: Box<dyn Agent>,
        config: RunConfig,
        seed: u64,
        success: Option<Success>,
    ) -> Result<Self> {
        let parts = (env, eval_env, agent);
        Self::at(parts, config, seed, success, Progress::default())
    }

    /// A run whose counters are `progress`: resets `env` for the current episode.
    fn at(
        (mut env, eval_env, agent): (Box<dyn DynEnv>, Box<dyn DynEnv>, Box<dyn Agent>),
        config: RunConfig,
        seed: u64,
        success: Option<Success>,
        progress: Progress,
    ) -> Result<Self> {
        config.validate()?;
        let mut obs = vec![0.0; env.obs_len()];
        env.reset_into(Some(episode_seed(seed, 0, progress.episode)), &mut obs)?;
        let action = ActionBuf::for_space(&env.action_space());
        let next_obs = obs.clone();
        Ok(Runner {
            env,
            eval_env,
            agent,
            config,
            seed,
            success,
            progress,
            obs,
            next_obs,
            action,
            on_best: None,
        })
    }

    /// A run continued from `state` (written by [`save`](Self::save)): the agent is loaded,
    /// the current episode is replayed on `env`. `agent` must be built like the saved one.
    pub fn resume(
        env: Box<dyn DynEnv>,
        eval_env: Box<dyn DynEnv>,
        mut agent: Box<dyn Agent>,
        config: RunConfig,
        success: Option<Success>,
        state: &AgentState,
    ) -> Result<Self> {
        agent.load(state)?;
        let seed: u64 = state.meta(SEED_KEY)?;
        let progress: Progress = state.meta(PROGRESS_KEY)?;
        let mut run = Self::at((env, eval_env, agent), config, seed, success, progress)?;
        let dim = match &run.action {
            ActionBuf::Continuous(v) => v.len(),
            ActionBuf::Discrete(_) => 1,
        };
        let actions = std::mem::take(&mut run.progress.episode_actions);
        for a in actions.chunks(dim.max(1)) {
            let action = match &run.action {
                ActionBuf::Discrete(_) => ActionRef::Discrete(a[0] as usize),
                ActionBuf::Continuous(_) => ActionRef::Continuous(a),
            };
            let out = run.env.step_into(action, &mut run.obs)?;
            if out.done() {
                return Err(AgentError::checkpoint(
                    "",
                    "replaying the current episode ended it early: the env is not the one \
                     the checkpoint was written with",
                ));
            }
        }
        run.progress.episode_actions = actions;
        Ok(run)
    }

    /// Writes the agent, the counters, the seed and the run config into `state`.
    pub fn save(&self, state: &mut AgentState) -> Result<()> {
        self.agent.save(state)?;
        state.put_meta(PROGRESS_KEY, &self.progress)?;
        // As TOML: JSON has no infinity (the default target_return).
        let config = toml::to_string(&self.config)
            .map_err(|e| AgentError::bad_value("run config", e.to_string()))?;
        state.put_meta(CONFIG_KEY, &config)?;
        state.put_meta(SEED_KEY, &self.seed)
    }

    /// The run config a checkpoint was written with.
    pub fn saved_config(state: &AgentState) -> Result<RunConfig> {
        let text: String = state.meta(CONFIG_KEY)?;
        toml::from_str(&text).map_err(|e| AgentError::checkpoint("", format!("run config: {e}")))
    }

    /// The agent.
    pub fn agent(&self) -> &dyn Agent {
        self.agent.as_ref()
    }

    /// The agent, mutably (e.g. to evaluate it after the run).
    pub fn agent_mut(&mut self) -> &mut dyn Agent {
        self.agent.as_mut()
    }

    /// Env steps taken so far.
    pub fn step(&self) -> u64 {
        self.progress.step
    }

    /// The run config.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// Sets the hook called after every evaluation whose mean return beats all earlier ones
    /// of the run (write [`save`](Self::save)'s state there to keep the best weights).
    pub fn set_best_hook(&mut self, hook: BestHook) {
        self.on_best = Some(hook);
    }

    /// The evaluation with the highest mean return so far and the step it was made at.
    pub fn best_eval(&self) -> Option<(u64, EvalResult)> {
        self.progress.best_eval
    }

    /// Changes the step budget (e.g. when a resumed run is given more steps).
    pub fn set_steps(&mut self, steps: u64) {
        self.config.steps = steps;
    }

    fn evaluate(&mut self, logger: &mut dyn Logger) -> Result<EvalResult> {
        let c = &self.config;
        let result = evaluate(
            self.eval_env.as_mut(),
            self.agent.as_mut(),
            c.eval_episodes,
            self.seed,
            c.eval_max_steps,
            self.success,
            &mut |_| Ok(()),
        )?;
        let step = self.progress.step;
        logger.scalar(tags::EVAL_MEAN_RETURN, step, result.mean_return)?;
        logger.scalar(tags::EVAL_STD_RETURN, step, result.std_return)?;
        if let Some(rate) = result.success_rate {
            logger.scalar(tags::EVAL_SUCCESS_RATE, step, rate)?;
        }
        self.progress.last_eval = Some(result);
        let best = self.progress.best_eval.map_or(f64::NEG_INFINITY, |(_, e)| e.mean_return);
        if result.mean_return > best {
            self.progress.best_eval = Some((step, result));
            if let Some(mut hook) = self.on_best.take() {
                let written = hook(self);
                self.on_best = Some(hook);
                written?;
            }
        }
        Ok(result)
    }

    fn status(&self) -> Status {
        let r = &self.progress.recent_returns;
        Status {
            step: self.progress.step,
            episode: self.progress.episode,
            mean_return: (!r.is_empty()).then(|| r.iter().sum::<f64>() / r.len() as f64),
            last_eval: self.progress.last_eval,
        }
    }

    fn budget_left(&self) -> bool {
        let (p, c) = (&self.progress, &self.config);
        (c.steps == 0 || p.step < c.steps) && (c.max_episodes == 0 || p.episode < c.max_episodes)
    }

    /// Trains until a budget is spent or the target is reached. `checkpoint` is called every
    /// `checkpoint_every` steps and at the end (write [`save`](Self::save)'s state to disk
    /// there); `on_status` after every episode and evaluation.
    pub fn run(
        &mut self,
        logger: &mut dyn Logger,
        checkpoint: &mut dyn FnMut(&Runner) -> Result<()>,
        on_status: &mut dyn FnMut(Status),
    ) -> Result<Summary> {
        let started = Instant::now();
        let (wall_before, step_before) = (self.progress.wall_s, self.progress.step);
        let mut reached_target = false;
        while self.budget_left() && !reached_target {
            // Act and step; the transition is built before any reset.
            self.agent.act(&self.obs, &mut self.action)?;
            let out = self.env.step_into(self.action.as_ref(), &mut self.next_obs)?;
            match &self.action {
                ActionBuf::Discrete(a) => self.progress.episode_actions.push(*a as f32),
                ActionBuf::Continuous(v) => self.progress.episode_actions.extend_from_slice(v),
            }
            let transition = Transition {
                obs: &self.obs,
                action: self.action.as_ref(),
                reward: out.reward,
                next_obs: &self.next_obs,
                terminated: out.terminated,
                truncated: out.truncated,
            };
            let trained = self.agent.observe(&transition)?;
            let p = &mut self.progress;
            p.step += 1;
            p.episode_return += out.reward;
            p.episode_length += 1;
            let step = p.step;
            if let Some(info) = trained {
                if info.loss.is_finite() {
                    p.loss_sum += info.loss;
                    p.loss_count += 1;
                }
                p.lr = Some(info.lr);
            }

            if out.done() {
                // Training scalars once per episode (the mean loss of its updates), as SB3
                // logs once per rollout: a line per update would dwarf the run.
                if p.loss_count > 0 {
                    logger.scalar(tags::LOSS, step, p.loss_sum / p.loss_count as f64)?;
                    (p.loss_sum, p.loss_count) = (0.0, 0);
                }
                if let Some(lr) = p.lr.take() {
                    logger.scalar(tags::LR, step, lr)?;
                }
                logger.scalar(tags::EPISODE_RETURN, step, p.episode_return)?;
                logger.scalar(tags::EPISODE_LENGTH, step, p.episode_length as f64)?;
                let mut agent_result = Ok(());
                self.agent.scalars(&mut |tag, v| {
                    if agent_result.is_ok() && tag != tags::LR {
                        agent_result = logger.scalar(tag, step, v);
                    }
                });
                agent_result?;
                let elapsed = started.elapsed().as_secs_f64();
                if elapsed > 0.0 {
                    logger.scalar(tags::SPS, step, (step - step_before) as f64 / elapsed)?;
                }
                let p = &mut self.progress;
                p.recent_returns.push_back(p.episode_return);
                if p.recent_returns.len() as u64 > self.config.mean_window {
                    p.recent_returns.pop_front();
                }
                p.episode += 1;
                p.episode_return = 0.0;
                p.episode_length = 0;
                p.episode_actions.clear();
                let seed = episode_seed(self.seed, 0, p.episode);
                self.env.reset_into(Some(seed), &mut self.obs)?;
                on_status(self.status());
            } else {
                std::mem::swap(&mut self.obs, &mut self.next_obs);
            }

            let step = self.progress.step;
            if self.config.eval_every > 0 && step.is_multiple_of(self.config.eval_every) {
                let eval = self.evaluate(logger)?;
                reached_target = eval.mean_return >= self.config.target_return;
                on_status(self.status());
            }
            if self.config.checkpoint_every > 0 && step.is_multiple_of(self.config.checkpoint_every)
            {
                self.progress.wall_s = wall_before + started.elapsed().as_secs_f64();
                checkpoint(self)?;
            }
        }
        let step = self.progress.step;
        let evaluated_now =
            self.config.eval_every > 0 && step.is_multiple_of(self.config.eval_every);
        let eval = match (self.progress.last_eval, evaluated_now && step > 0) {
            (Some(eval), true) => eval,
            _ => self.evaluate(logger)?,
        };
        reached_target |= eval.mean_return >= self.config.target_return;
        self.progress.wall_s = wall_before + started.elapsed().as_secs_f64();
        checkpoint(self)?;
        logger.flush()?;
        on_status(self.status());
        Ok(Summary {
            steps: step,
            episodes: self.progress.episode,
            wall_s: self.progress.wall_s,
            eval,
            reached_target,
            best_eval: self.progress.best_eval,
        })
    }
}
