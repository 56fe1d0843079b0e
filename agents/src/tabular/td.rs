//! The `td` agent: TD(0) learning of state values (Sutton 1988; Sutton & Barto, 2nd ed.,
//! section 6.1).
//!
//! After each transition `(s, a, r, s')`:
//!
//! ```text
//! target  = r                        if the step terminated
//!         = r + gamma * V(s')        otherwise (also on truncation: the episode was cut,
//!                                    the state still has a future)
//! V(s)   <- V(s) + alpha_t * (target - V(s))
//! ```
//!
//! With the default `exploration = "random"` the behaviour policy is uniformly random over
//! the possible actions, and `V` converges (under the usual step-size conditions) to the
//! values `V^random` of that policy: TD(0) *prediction*.
//!
//! The greedy action is a one-step lookahead through the env's transition model:
//! `argmax_a sum_s' T(s, a, s') [R(s, a, s') + gamma * V(s')]` (no bootstrap on terminating
//! outcomes; first maximum as numpy; possible actions only). A state-value table alone cannot
//! rank actions, so `td` needs an env with a transition model; on one without, building it is
//! an `Incompatible` error that points to `q-learning`. With `exploration =
//! "epsilon-greedy"` the agent acts on that lookahead (random with probability `epsilon_t`),
//! which makes it a control method (generalised policy iteration); with random behaviour the
//! greedy action is one step of policy improvement over the random policy, not the optimum.

use super::planning::lookahead;
use super::schedules::{epsilon_schedule, lr_schedule, Exploration};
use super::table::{discrete_action, matching_model, PossibleActions, StateIndex};
use crate::agent::{ActionBuf, Agent, TrainInfo, Transition};
use crate::config::{check_range, parse, Config};
use crate::error::Result;
use crate::spec::{AgentSpec, BuildContext};
use crate::state::AgentState;
use deeprl_envs::mdp::TransitionModel;
use deeprl_nets::schedule::Scheduler;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

const NAME: &str = "td";

/// The config of [`TdLearning`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TdConfig {
    /// Discount factor in `[0, 1]`. Default 0.99 (Stable-Baselines3's default `gamma`).
    pub gamma: f64,
    /// Step size `alpha` in `(0, 1]` (the schedule's start). Default 0.1 (Sutton & Barto's
    /// random-walk example 6.2 compares 0.05, 0.1 and 0.15 for TD(0)).
    pub lr: f64,
    /// `"constant"`, `"linear"`, `"power"` or `"exponential"` ([`super::schedules`]).
    /// Default `"constant"`.
    pub lr_schedule: String,
    /// The final step size of the `"linear"` schedule. Default 0.01.
    pub lr_end: f64,
    /// The time scale of the lr schedule in updates. Default 100000.
    pub lr_decay_steps: u64,
    /// `"random"` (default: prediction of the random policy) or `"epsilon-greedy"` on the
    /// one-step lookahead.
    pub exploration: String,
    /// Epsilon at step 0 (epsilon-greedy only). Default 1.0 (SB3 DQN).
    pub epsilon_start: f64,
    /// Epsilon after the decay. Default 0.05 (SB3 DQN).
    pub epsilon_end: f64,
    /// Transitions over which epsilon decays linearly. Default 10000.
    pub epsilon_decay_steps: u64,
}

impl Default for TdConfig {
    fn default() -> Self {
        TdConfig {
            gamma: 0.99,
            lr: 0.1,
            lr_schedule: "constant".into(),
            lr_end: 0.01,
            lr_decay_steps: 100_000,
            exploration: "random".into(),
            epsilon_start: 1.0,
            epsilon_end: 0.05,
            epsilon_decay_steps: 10_000,
        }
    }
}

const EXPLORATIONS: [Exploration; 2] = [Exploration::Random, Exploration::EpsilonGreedy];

impl Config for TdConfig {
    fn validate(&self) -> Result<()> {
        check_range("gamma", self.gamma, 0.0, 1.0)?;
        Exploration::parse(&self.exploration, &EXPLORATIONS)?;
        lr_schedule(self.lr, &self.lr_schedule, self.lr_end, self.lr_decay_steps)?;
        epsilon_schedule(self.epsilon_start, self.epsilon_end, self.epsilon_decay_steps)?;
        Ok(())
    }
}

/// TD(0) state-value learning; see the module documentation.
#[derive(Debug, Clone)]
pub struct TdLearning {
    config: TdConfig,
    states: StateIndex,
    possible: PossibleActions,
    n_actions: usize,
    /// The env's model, for the greedy lookahead.
    model: TransitionModel,
    /// `V(s)`.
    v: Vec<f64>,
    exploration: Exploration,
    lr: Scheduler,
    epsilon: Scheduler,
    /// Transitions observed (= updates made): the position of both schedules.
    steps: u64,
    rng: ChaCha8Rng,
}

impl TdLearning {
    /// A zero value table for `ctx.env`, which needs discrete spaces and a transition model.
    pub fn new(ctx: &BuildContext<'_>, config: &TdConfig) -> Result<Self> {
        config.validate()?;
        let states = StateIndex::for_env(ctx, NAME)?;
        let n_actions = ctx.discrete_actions(NAME)?;
        let model = matching_model(ctx, NAME, &states, n_actions)?.ok_or_else(|| {
            ctx.incompatible(
                NAME,
                "td learns state values V(s), and choosing an action from them takes a one-step \
                 lookahead through the env's transition model, which this env does not expose; \
                 use `q-learning`, which learns action values"
                    .into(),
            )
        })?;
        Ok(TdLearning {
            config: config.clone(),
            possible: PossibleActions::from_model(model),
            v: vec![0.0; states.n_states()],
            states,
            n_actions,
            model: model.clone(),
            exploration: Exploration::parse(&config.exploration, &EXPLORATIONS)?,
            lr: lr_schedule(config.lr, &config.lr_schedule, config.lr_end, config.lr_decay_steps)?,
            epsilon: epsilon_schedule(
                config.epsilon_start,
                config.epsilon_end,
                config.epsilon_decay_steps,
            )?,
            steps: 0,
            rng: ChaCha8Rng::seed_from_u64(ctx.seed),
        })
    }

    /// `V(s)`.
    pub fn state_values(&self) -> &[f64] {
        &self.v
    }

    /// Transitions observed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    fn greedy(&self, s: usize) -> Result<usize> {
        let (model, gamma, v) = (&self.model, self.config.gamma, &self.v);
        self.possible.argmax_by(s, self.n_actions, |a| lookahead(model, gamma, v, s, a))
    }

    fn epsilon(&self) -> f64 {
        match self.exploration {
            Exploration::EpsilonGreedy => self.epsilon.value(self.steps),
            _ => 1.0,
        }
    }
}

impl Agent for TdLearning {
    fn name(&self) -> &'static str {
        NAME
    }

    fn act(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        let s = self.states.index(obs)?;
        let a = match self.exploration {
            Exploration::EpsilonGreedy => {
                if self.rng.random::<f64>() < self.epsilon.value(self.steps) {
                    self.possible.sample(s, &mut self.rng)?
                } else {
                    self.greedy(s)?
                }
            }
            _ => self.possible.sample(s, &mut self.rng)?,
        };
        action.set_discrete(a);
        Ok(())
    }

    /// The one-step lookahead through the model (module documentation).
    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        let s = self.states.index(obs)?;
        action.set_discrete(self.greedy(s)?);
        Ok(())
    }

    /// One TD(0) update; reports the squared TD error and the step size used.
    fn observe(&mut self, t: &Transition<'_>) -> Result<Option<TrainInfo>> {
        let s = self.states.index(t.obs)?;
        discrete_action(t.action, self.n_actions)?;
        let next = self.states.index(t.next_obs)?;
        let target =
            if t.terminated { t.reward } else { t.reward + self.config.gamma * self.v[next] };
        let alpha = self.lr.value(self.steps);
        let td_error = target - self.v[s];
        self.v[s] += alpha * td_error;
        self.steps += 1;
        Ok(Some(TrainInfo { loss: td_error * td_error, lr: alpha }))
    }

    fn scalars(&self, out: &mut dyn FnMut(&'static str, f64)) {
        out("rollout/epsilon", self.epsilon());
        out("train/lr", self.lr.value(self.steps));
    }

    fn save(&self, state: &mut AgentState) -> Result<()> {
        state.put_f64("td/v", &[self.v.len()], self.v.clone());
        state.put_meta("td/config", &self.config)?;
        state.put_meta("td/steps", &self.steps)?;
        state.put_rng("td/rng", &self.rng)
    }

    fn load(&mut self, state: &AgentState) -> Result<()> {
        super::check_saved_config(state, "td/config", &self.config)?;
        let v = state.f64("td/v", self.v.len())?;
        let steps = state.meta("td/steps")?;
        let rng = state.rng("td/rng")?;
        self.v.copy_from_slice(v);
        self.steps = steps;
        self.rng = rng;
        Ok(())
    }
}

/// The registry entry.
pub fn spec() -> AgentSpec {
    AgentSpec {
        name: NAME,
        about: "TD(0) state-value learning (random behaviour by default); acts greedily by a \
                one-step lookahead through the env's model",
        defaults: crate::config::defaults::<TdConfig>,
        build: |ctx, table| {
            let config: TdConfig = parse(table)?;
            Ok(Box::new(TdLearning::new(ctx, &config)?))
        },
    }
}
