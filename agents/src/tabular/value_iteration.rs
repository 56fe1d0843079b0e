//! The `value-iteration` agent: plans the optimal action values on the env's known model when
//! it is built, then acts greedily on them; it learns nothing from experience.
//!
//! ```text
//! Q_{k+1}(s, a) = sum_s' T(s, a, s') [R(s, a, s') + gamma * max_a' Q_k(s', a')]
//! pi*(s) = argmax_a Q*(s, a)      (first maximum, as numpy; impossible actions never)
//! ```
//!
//! With `backup = "v"` it runs value iteration on `V` instead and takes
//! `Q*(s, a) = sum_s' T(s, a, s') [R + gamma * V*(s')]`; see [`super::planning`] for both, the
//! stopping rule and the treatment of terminal outcomes.

use super::planning::{q_value_iteration, value_iteration, Plan, Stopping};
use super::table::{discrete_action, PossibleActions, StateIndex};
use crate::agent::{ActionBuf, Agent, TrainInfo, Transition};
use crate::config::{check_range, parse, Config};
use crate::error::{AgentError, Result};
use crate::spec::{AgentSpec, BuildContext};
use crate::state::AgentState;
use serde::{Deserialize, Serialize};

const NAME: &str = "value-iteration";

/// The config of [`ValueIteration`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueIterationConfig {
    /// Discount factor in `[0, 1]`. Default 0.99 (Stable-Baselines3's default `gamma`).
    pub gamma: f64,
    /// `"q"`: Q-value iteration; `"v"`: value iteration on state values. Default `"q"`
    /// (Géron's Q-value iteration; both reach the same optimum).
    pub backup: String,
    /// Stop once a sweep changes no value by this much. Default `1e-10`: values within
    /// `gamma * 1e-10 / (1 - gamma)` of the optimum, far below any reward scale. Sutton &
    /// Barto's "small threshold theta".
    pub tolerance: f64,
    /// Sweeps before giving up with an error. Default 100000 (gamma = 0.99 needs about 2300
    /// sweeps to shrink an error of 1 below `1e-10`).
    pub max_iterations: u64,
}

impl Default for ValueIterationConfig {
    fn default() -> Self {
        ValueIterationConfig {
            gamma: 0.99,
            backup: "q".into(),
            tolerance: 1e-10,
            max_iterations: 100_000,
        }
    }
}

impl Config for ValueIterationConfig {
    fn validate(&self) -> Result<()> {
        check_range("gamma", self.gamma, 0.0, 1.0)?;
        check_range("tolerance", self.tolerance, f64::MIN_POSITIVE, f64::MAX)?;
        if self.max_iterations == 0 {
            return Err(AgentError::bad_value("max_iterations", "must be at least 1"));
        }
        if self.backup != "q" && self.backup != "v" {
            return Err(AgentError::bad_value(
                "backup",
                format!("\"{}\" is neither \"q\" (Q-value iteration) nor \"v\"", self.backup),
            ));
        }
        Ok(())
    }
}

/// Plans on the env's transition model; acts greedily on the planned `Q*`.
#[derive(Debug, Clone)]
pub struct ValueIteration {
    config: ValueIterationConfig,
    states: StateIndex,
    possible: PossibleActions,
    n_actions: usize,
    plan: Plan,
}

impl ValueIteration {
    /// Plans on `ctx.env`'s transition model. An env without discrete spaces or without a
    /// model is an `Incompatible` error; not converging is a `BadValue` for `max_iterations`.
    pub fn new(ctx: &BuildContext<'_>, config: &ValueIterationConfig) -> Result<Self> {
        config.validate()?;
        let states = StateIndex::for_env(ctx, NAME)?;
        let n_actions = ctx.discrete_actions(NAME)?;
        let model =
            super::table::matching_model(ctx, NAME, &states, n_actions)?.ok_or_else(|| {
                ctx.incompatible(
                    NAME,
                    "value iteration plans on the env's transition model (its P[s][a]), and this \
                 env exposes none; use `q-learning`, which learns the action values from \
                 experience instead"
                        .into(),
                )
            })?;
        let stopping = Stopping {
            tolerance: config.tolerance,
            max_iterations: usize::try_from(config.max_iterations).unwrap_or(usize::MAX),
        };
        let plan = match config.backup.as_str() {
            "v" => value_iteration(model, config.gamma, stopping)?,
            _ => q_value_iteration(model, config.gamma, stopping)?,
        };
        Ok(ValueIteration {
            config: config.clone(),
            states,
            possible: PossibleActions::from_model(model),
            n_actions,
            plan,
        })
    }

    /// `Q*(s, a)` at `s * n_actions + a` (`-inf` for impossible actions).
    pub fn q_values(&self) -> &[f64] {
        &self.plan.q
    }

    /// `V*(s)`.
    pub fn state_values(&self) -> &[f64] {
        &self.plan.v
    }

    /// The sweeps planning took.
    pub fn iterations(&self) -> usize {
        self.plan.iterations
    }

    /// The greedy action of every state (`None` where no action is possible).
    pub fn policy(&self) -> Vec<Option<usize>> {
        (0..self.states.n_states()).map(|s| self.greedy(s).ok()).collect()
    }

    fn greedy(&self, state: usize) -> Result<usize> {
        let row = &self.plan.q[state * self.n_actions..(state + 1) * self.n_actions];
        self.possible.argmax(state, row)
    }
}

impl Agent for ValueIteration {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The greedy action: a planner has nothing to explore.
    fn act(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        self.act_greedy(obs, action)
    }

    fn act_greedy(&mut self, obs: &[f32], action: &mut ActionBuf) -> Result<()> {
        let s = self.states.index(obs)?;
        action.set_discrete(self.greedy(s)?);
        Ok(())
    }

    /// Checks the transition and learns nothing: the plan is exact for the model.
    fn observe(&mut self, t: &Transition<'_>) -> Result<Option<TrainInfo>> {
        self.states.index(t.obs)?;
        self.states.index(t.next_obs)?;
        discrete_action(t.action, self.n_actions)?;
        Ok(None)
    }

    fn scalars(&self, out: &mut dyn FnMut(&'static str, f64)) {
        out("train/planning_sweeps", self.plan.iterations as f64);
    }

    fn save(&self, state: &mut AgentState) -> Result<()> {
        let n = self.states.n_states();
        state.put_f64("value-iteration/q", &[n, self.n_actions], self.plan.q.clone());
        state.put_f64("value-iteration/v", &[n], self.plan.v.clone());
        state.put_meta("value-iteration/config", &self.config)?;
        state.put_meta(
            "value-iteration/sweeps",
            &(self.plan.iterations as u64, self.plan.last_change),
        )
    }

    fn load(&mut self, state: &AgentState) -> Result<()> {
        let n = self.states.n_states();
        let q = state.f64("value-iteration/q", n * self.n_actions)?.to_vec();
        let v = state.f64("value-iteration/v", n)?.to_vec();
        let (iterations, last_change): (u64, f64) = state.meta("value-iteration/sweeps")?;
        self.plan = Plan { q, v, iterations: iterations as usize, last_change };
        Ok(())
    }
}

/// The registry entry.
pub fn spec() -> AgentSpec {
    AgentSpec {
        name: NAME,
        about: "Q-value iteration (or value iteration on V) on the env's known transition model; \
                acts greedily on Q*",
        defaults: crate::config::defaults::<ValueIterationConfig>,
        build: |ctx, table| {
            let config: ValueIterationConfig = parse(table)?;
            Ok(Box::new(ValueIteration::new(ctx, &config)?))
        },
    }
}
