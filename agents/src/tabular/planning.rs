//! Dynamic programming on a known model: Q-value iteration and value iteration (Bellman
//! 1957; Sutton & Barto, *Reinforcement Learning: An Introduction*, 2nd ed., section 4.4;
//! Géron, *Hands-On Machine Learning*, chapter 18).
//!
//! Q-value iteration, synchronous sweeps from `Q_0 = 0`:
//!
//! ```text
//! Q_{k+1}(s, a) = sum_s' T(s, a, s') [R(s, a, s') + gamma * max_a' Q_k(s', a')]
//! ```
//!
//! Value iteration on state values, from `V_0 = 0`:
//!
//! ```text
//! V_{k+1}(s) = max_a sum_s' T(s, a, s') [R(s, a, s') + gamma * V_k(s')]
//! ```
//!
//! Both sum over the outcomes of the env's [`TransitionModel`], one term per listed outcome
//! (Gymnasium's `P[s][a]`). An outcome marked `terminated` ends the episode: its term is the
//! reward alone, no bootstrap from `s'`. The max runs over the actions possible in `s'`
//! ([`TransitionModel::is_possible`]); a state with none has value 0. An impossible action
//! keeps `Q = -inf` (as Géron's `np.full(..., -np.inf)`), so no argmax picks it.
//!
//! A sweep stops the iteration once the largest change `max |X_{k+1} - X_k|` falls below
//! `tolerance`; then `|X_{k+1} - X*| <= gamma * tolerance / (1 - gamma)` for `gamma < 1`
//! (the update is a `gamma`-contraction in the max norm). Not converging within
//! `max_iterations` sweeps is an error, not a silently wrong table.

use super::table::PossibleActions;
use crate::error::{AgentError, Result};
use deeprl_envs::mdp::TransitionModel;

/// The result of a planning run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `Q(s, a)` at `s * n_actions + a`; `-inf` for impossible actions.
    pub q: Vec<f64>,
    /// `V(s) = max_a Q(s, a)` over the possible actions (0 where none is possible).
    pub v: Vec<f64>,
    /// Sweeps made.
    pub iterations: usize,
    /// The largest change of the last sweep (below the tolerance).
    pub last_change: f64,
}

/// When and how to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    /// Stop once a sweep changes no value by `tolerance` or more.
    pub tolerance: f64,
    /// The most sweeps to make before giving up with an error.
    pub max_iterations: usize,
}

/// The expected one-step return of `action` in `state` under the values `v`:
/// `sum_s' T(s, a, s') [R + gamma * V(s')]`, no bootstrap on terminating outcomes.
#[inline]
pub fn lookahead(
    model: &TransitionModel,
    gamma: f64,
    v: &[f64],
    state: usize,
    action: usize,
) -> f64 {
    model
        .transitions(state, action)
        .iter()
        .map(|t| {
            let bootstrap = if t.terminated { 0.0 } else { gamma * v[t.next_state] };
            t.probability * (t.reward + bootstrap)
        })
        .sum()
}

/// The action values of `v` by one lookahead: `Q(s, a) = lookahead(s, a)`, `-inf` where `a`
/// is impossible.
pub fn q_from_v(model: &TransitionModel, gamma: f64, v: &[f64]) -> Vec<f64> {
    let n_actions = model.n_actions();
    let mut q = vec![f64::NEG_INFINITY; model.n_states() * n_actions];
    for s in 0..model.n_states() {
        for a in model.possible_actions(s) {
            q[s * n_actions + a] = lookahead(model, gamma, v, s, a);
        }
    }
    q
}

/// `V(s) = max_a Q(s, a)` over the possible actions, 0 where none is possible.
pub fn v_from_q(possible: &PossibleActions, q: &[f64], v: &mut [f64]) {
    let n = possible.n_actions();
    for (s, v) in v.iter_mut().enumerate() {
        let row = &q[s * n..(s + 1) * n];
        *v = possible.max_by(s, n, |a| row[a]);
    }
}

fn check(gamma: f64, stopping: Stopping) -> Result<()> {
    crate::config::check_range("gamma", gamma, 0.0, 1.0)?;
    if !(stopping.tolerance > 0.0 && stopping.tolerance.is_finite()) {
        return Err(AgentError::bad_value(
            "tolerance",
            format!("{} is not a positive number", stopping.tolerance),
        ));
    }
    if stopping.max_iterations == 0 {
        return Err(AgentError::bad_value("max_iterations", "must be at least 1"));
    }
    Ok(())
}

fn not_converged(stopping: Stopping, change: f64, gamma: f64) -> AgentError {
    AgentError::bad_value(
        "max_iterations",
        format!(
            "planning did not converge in {} sweeps: the last sweep changed a value by {change:e}, \
             above the tolerance {:e} (gamma = {gamma}; with gamma = 1 the values of an env \
             without terminal states grow forever); raise max_iterations or tolerance, or lower \
             gamma",
            stopping.max_iterations, stopping.tolerance
        ),
    )
}

/// Q-value iteration (module docs) on `model`.
pub fn q_value_iteration(model: &TransitionModel, gamma: f64, stopping: Stopping) -> Result<Plan> {
    check(gamma, stopping)?;
    let (n_states, n_actions) = (model.n_states(), model.n_actions());
    let possible = PossibleActions::from_model(model);
    let mut q = vec![0.0; n_states * n_actions];
    for s in 0..n_states {
        for a in 0..n_actions {
            if !model.is_possible(s, a) {
                q[s * n_actions + a] = f64::NEG_INFINITY;
            }
        }
    }
    let mut v = vec![0.0; n_states];
    let mut change = f64::INFINITY;
    for iteration in 1..=stopping.max_iterations {
        // V_k(s') = max_a' Q_k(s', a'), then Q_{k+1} from V_k: the formula, one max per state.
        v_from_q(&possible, &q, &mut v);
        change = 0.0;
        for s in 0..n_states {
            for a in model.possible_actions(s) {
                let new = lookahead(model, gamma, &v, s, a);
                let old = std::mem::replace(&mut q[s * n_actions + a], new);
                change = f64::max(change, (new - old).abs());
            }
        }
        if change < stopping.tolerance {
            v_from_q(&possible, &q, &mut v);
            return Ok(Plan { q, v, iterations: iteration, last_change: change });
        }
    }
    Err(not_converged(stopping, change, gamma))
}

/// Value iteration on `V` (module docs); `Plan::q` is the one-step lookahead of the final V.
pub fn value_iteration(model: &TransitionModel, gamma: f64, stopping: Stopping) -> Result<Plan> {
    check(gamma, stopping)?;
    let n_states = model.n_states();
    let mut v = vec![0.0; n_states];
    let mut next = vec![0.0; n_states];
    let mut change = f64::INFINITY;
    for iteration in 1..=stopping.max_iterations {
        change = 0.0;
        for (s, new) in next.iter_mut().enumerate() {
            *new = model
                .possible_actions(s)
                .map(|a| lookahead(model, gamma, &v, s, a))
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
                .unwrap_or(0.0);
            change = f64::max(change, (*new - v[s]).abs());
        }
        std::mem::swap(&mut v, &mut next);
        if change < stopping.tolerance {
            let q = q_from_v(model, gamma, &v);
            return Ok(Plan { q, v, iterations: iteration, last_change: change });
        }
    }
    Err(not_converged(stopping, change, gamma))
}
