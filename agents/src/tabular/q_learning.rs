//! The `q-learning` agent: off-policy TD control with a table of action values (Watkins
//! 1989; Sutton & Barto, 2nd ed., section 6.5; Géron, chapter 18).
//!
//! After each transition `(s, a, r, s')`:
//!
//! ```text
//! target    = r                                    if the step terminated
//!           = r + gamma * max_a' Q(s', a')          otherwise (also on truncation)
//! Q(s, a) <- Q(s, a) + alpha_t * (target - Q(s, a))  (Géron: Q(s, a) <-alpha target)
//! ```
//!
//! `alpha_t` follows the `lr` schedule over updates ([`super::schedules`]). Exploration
//! (`exploration` key):
//!
//! * `"epsilon-greedy"` (default): with probability `epsilon_t` a uniformly random possible
//!   action, else `argmax_a Q(s, a)`; `epsilon_t` decays linearly from `epsilon_start` to
//!   `epsilon_end` over `epsilon_decay_steps` transitions.
//! * `"random"`: uniformly random possible actions; Q-learning is off-policy, so `Q` still
//!   converges to `Q*` when every pair keeps being tried.
//! * `"exploration-function"`: optimism in the face of uncertainty (Russell & Norvig, *AIMA*,
//!   section 22.3; Géron's exploration function). With `N(s, a)` the number of updates of
//!   `(s, a)` so far (counted before its target is computed) and
//!   `f(Q, N) = Q + kappa / (1 + N)`, the agent acts `argmax_a f(Q(s, a), N(s, a))` and the
//!   target is `r + gamma * max_a' f(Q(s', a'), N(s', a'))`, so rarely tried actions look
//!   better until tried.
//!
//! The greedy (evaluation) action is `argmax_a Q(s, a)`, first maximum as numpy, among the
//! actions the env's transition model allows when it has one. Tables are `f64`, row-major.

use super::schedules::{epsilon_schedule, lr_schedule, Exploration};
use super::table::{discrete_action, matching_model, PossibleActions, StateIndex};
use crate::agent::{ActionBuf, Agent, TrainInfo, Transition};
use crate::config::{check_range, parse, Config};
use crate::error::{AgentError, Result};
use crate::spec::{AgentSpec, BuildContext};
use crate::state::AgentState;
use deeprl_nets::schedule::Scheduler;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

const NAME: &str = "q-learning";

/// The config of [`QLearning`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QLearningConfig {
    /// Discount factor in `[0, 1]`. Default 0.99 (Stable-Baselines3's default `gamma`).
    pub gamma: f64,
    /// Step size `alpha` in `(0, 1]` (the schedule's start). Default 0.1, the step size of
    /// Sutton & Barto's tabular examples (chapter 6 uses 0.1 and 0.5).
    pub lr: f64,
    /// `"constant"`, `"linear"`, `"power"` or `"exponential"` ([`super::schedules`]).
    /// Default `"constant"` (Sutton & Barto's constant-alpha Q-learning).
    pub lr_schedule: String,
    /// The final step size of the `"linear"` schedule. Default 0.01.
    pub lr_end: f64,
    /// The time scale of the lr schedule in updates. Default 100000.
    pub lr_decay_steps: u64,
    /// `"epsilon-greedy"`, `"random"` or `"exploration-function"`. Default `"epsilon-greedy"`.
    pub exploration: String,
    /// Epsilon at step 0. Default 1.0 (SB3 DQN `exploration_initial_eps`).
    pub epsilon_start: f64,
    /// Epsilon after the decay. Default 0.05 (SB3 DQN `exploration_final_eps`).
    pub epsilon_end: f64,
    /// Transitions over which epsilon decays linearly. Default 10000.
    pub epsilon_decay_steps: u64,
    /// Optimism bonus `kappa >= 0` of the exploration function `Q + kappa / (1 + N)`.
    /// Default 1.0 (the scale of a unit reward).
    pub kappa: f64,
}

impl Default for QLearningConfig {
    fn default() -> Self {
        QLearningConfig {
            gamma: 0.99,
            lr: 0.1,
            lr_schedule: "constant".into(),
            lr_end: 0.01,
            lr_decay_steps: 100_000,
            exploration: "epsilon-greedy".into(),
            epsilon_start: 1.0,
            epsilon_end: 0.05,
            epsilon_decay_steps: 10_000,
            kappa: 1.0,
        }
    }
}

const EXPLORATIONS: [Exploration; 3] =
    [Exploration::EpsilonGreedy, Exploration::Random, Exploration::ExplorationFunction];

impl Config for QLearningConfig {
    fn validate(&self) -> Result<()> {
        check_range("gamma", self.gamma, 0.0, 1.0)?;
        check_range("kappa", self.kappa, 0.0, f64::MAX)?;
        Exploration::parse(&self.exploration, &EXPLORATIONS)?;
        lr_schedule(self.lr, &self.lr_schedule, self.lr_end, self.lr_decay_steps)?;
        epsilon_schedule(self.epsilon_start, self.epsilon_end, self.epsilon_decay_steps)?;
        Ok(())
    }
}

/// Tabular Q-learning; see the module documentation.
#[derive(Debug, Clone)]
pub struct QLearning {
    config: QLearningConfig,
    states: StateIndex,
    possible: PossibleActions,
    n_actions: usize,
    /// `Q(s, a)` at `s * n_actions + a`.
    q: Vec<f64>,
    /// `N(s, a)`: updates of `(s, a)` so far (whole numbers, kept as `f64` for `f(Q, N)`).
    visits: Vec<f64>,
    exploration: Exploration,
    lr: Scheduler,
    epsilon: Scheduler,
    /// Transitions observed (= updates made): the position of both schedules.
    steps: u64,
    rng: ChaCha8Rng,
}

impl QLearning {
    /// A zero table for `ctx.env` (discrete observations and actions), exploring with the
    /// seed `ctx.seed`.
    pub fn new(ctx: &BuildContext<'_>, config: &QLearningConfig) -> Result<Self> {
        config.validate()?;
        let states = StateIndex::for_env(ctx, NAME)?;
        let n_actions = ctx.discrete_actions(NAME)?;
        let possible = match matching_model(ctx, NAME, &states, n_actions)? {
            Some(model) => PossibleActions::from_model(model),
            None => PossibleActions::all(n_actions),
        };
        let size = states.n_states() * n_actions;
        Ok(QLearning {
            config: config.clone(),
            states,
            possible,
            n_actions,
            q: vec![0.0; size],
            visits: vec![0.0; size],
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

    /// `Q(s, a)` at `s * n_actions + a`.
    pub fn q_values(&self) -> &[f64] {
        &self.q
    }

    /// `N(s, a)`, the updates of each pair.
    pub fn visit_counts(&self) -> &[f64] {
        &self.visits
    }

    /// Transitions observed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The exploration rate of the next action (1 for random exploration, 0 for the
    /// exploration function, which draws no random actions).
    pub fn epsilon(&self) -> f64 {
        match self.exploration {
            Exploration::EpsilonGreedy => self.epsilon.value(self.steps),
            Exploration::Random => 1.0,
            Exploration::ExplorationFunction => 0.0,
        }
    }

    #[inline]
    fn row(&self, s: usize) -> std::ops::Range<usize> {
        s * self.n_actions..(s + 1) * self.n_actions
    }

    /// `max_a f(Q(s, a), N(s, a))` for the exploration function, `max_a Q(s, a)` otherwise.
    #[inline]
    fn bootstrap_value(&self, s: usize) -> f64 {
        let row = self.row(s);
        let q = &self.q[row.clone()];
        if self.exploration == Exploration::ExplorationFunction {
            let (n, kappa) = (&self.visits[row], self.config.kappa);
            self.possible.max_by(s, self.n_actions, |a| q[a] + kappa / (1.0 + n[a]))
        } else {
            self.possible.max_by(s, self.n_actions, |a| q[a])
        }
    }
}

impl Agent for QLearning {
    fn name(&self) -> &'static str {
        NAME
    }

    fn act(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        let s = self.states.index(obs)?;
        let a = match self.exploration {
            Exploration::Random => self.possible.sample(s, &mut self.rng)?,
            Exploration::EpsilonGreedy => {
                // One uniform draw per action whatever epsilon is, so the stream of random
                // numbers depends on the steps only.
                if self.rng.random::<f64>() < self.epsilon.value(self.steps) {
                    self.possible.sample(s, &mut self.rng)?
                } else {
                    self.possible.argmax(s, &self.q[self.row(s)])?
                }
            }
            Exploration::ExplorationFunction => {
                let row = self.row(s);
                let (q, n, kappa) = (&self.q[row.clone()], &self.visits[row], self.config.kappa);
                self.possible.argmax_by(s, self.n_actions, |a| q[a] + kappa / (1.0 + n[a]))?
            }
        };
        action.set_discrete(a);
        Ok(())
    }

    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        let s = self.states.index(obs)?;
        action.set_discrete(self.possible.argmax(s, &self.q[self.row(s)])?);
        Ok(())
    }

    /// One Q-learning update; reports the squared TD error and the step size used.
    fn observe(&mut self, t: &Transition<'_>) -> Result<Option<TrainInfo>> {
        let s = self.states.index(t.obs)?;
        let a = discrete_action(t.action, self.n_actions)?;
        if !self.possible.contains(s, a) {
            return Err(AgentError::Shape(format!(
                "action {a} is not possible in state {s} of the env's model"
            )));
        }
        let next = self.states.index(t.next_obs)?;
        let i = s * self.n_actions + a;
        self.visits[i] += 1.0;
        let target = if t.terminated {
            t.reward
        } else {
            t.reward + self.config.gamma * self.bootstrap_value(next)
        };
        let alpha = self.lr.value(self.steps);
        let td_error = target - self.q[i];
        self.q[i] += alpha * td_error;
        self.steps += 1;
        Ok(Some(TrainInfo { loss: td_error * td_error, lr: alpha }))
    }

    fn scalars(&self, out: &mut dyn FnMut(&'static str, f64)) {
        if self.exploration != Exploration::ExplorationFunction {
            out("rollout/epsilon", self.epsilon());
        }
        out("train/lr", self.lr.value(self.steps));
    }

    fn save(&self, state: &mut AgentState) -> Result<()> {
        let shape = [self.states.n_states(), self.n_actions];
        state.put_f64("q-learning/q", &shape, self.q.clone());
        state.put_f64("q-learning/visits", &shape, self.visits.clone());
        state.put_meta("q-learning/config", &self.config)?;
        state.put_meta("q-learning/steps", &self.steps)?;
        state.put_rng("q-learning/rng", &self.rng)
    }

    fn load(&mut self, state: &AgentState) -> Result<()> {
        super::check_saved_config(state, "q-learning/config", &self.config)?;
        let len = self.q.len();
        let q = state.f64("q-learning/q", len)?;
        let visits = state.f64("q-learning/visits", len)?;
        let steps = state.meta("q-learning/steps")?;
        let rng = state.rng("q-learning/rng")?;
        self.q.copy_from_slice(q);
        self.visits.copy_from_slice(visits);
        self.steps = steps;
        self.rng = rng;
        Ok(())
    }
}

/// The registry entry.
pub fn spec() -> AgentSpec {
    AgentSpec {
        name: NAME,
        about: "tabular Q-learning with epsilon-greedy, random or exploration-function \
                exploration and a scheduled step size",
        defaults: crate::config::defaults::<QLearningConfig>,
        build: |ctx, table| {
            let config: QLearningConfig = parse(table)?;
            Ok(Box::new(QLearning::new(ctx, &config)?))
        },
    }
}
