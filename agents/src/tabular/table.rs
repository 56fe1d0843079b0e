//! The pieces every tabular agent shares: reading a state index out of a flat observation
//! ([`StateIndex`]), the actions possible in each state ([`PossibleActions`]), and greedy
//! choices over a row of action values.
//!
//! Tables are flat `f64` vectors, row-major: the values of state `s` are the contiguous slice
//! `table[s * n_actions..(s + 1) * n_actions]`, so an update touches one cache line or two.

use crate::error::{AgentError, Result};
use crate::spec::BuildContext;
use deeprl_envs::mdp::TransitionModel;
use deeprl_envs::{ActionRef, Space};

/// Maps a flat observation to a row of the table.
///
/// * `Discrete { n }`: the observation is the state index as one `f32`.
/// * `MultiDiscrete { nvec }`: the indices are raveled row-major (the last index varies
///   fastest), numpy's `ravel_multi_index`; this is the state index of Blackjack's
///   transition model (`sum * 22 + card * 2 + ace` over `[32, 11, 2]`).
///
/// A value that is not a whole number in range is an error, never a wrong row.
#[derive(Debug, Clone, PartialEq)]
pub struct StateIndex {
    /// The number of values of each observation entry.
    dims: Vec<usize>,
    n_states: usize,
}

impl StateIndex {
    /// The indexer for the env's observation space, or an `Incompatible` error saying why
    /// `agent` needs a discrete one.
    pub fn for_env(ctx: &BuildContext<'_>, agent: &str) -> Result<Self> {
        match ctx.env.observation_space() {
            Space::MultiDiscrete { nvec } if !nvec.is_empty() => {
                let n_states = nvec.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
                match n_states {
                    Some(n_states) if n_states <= MAX_STATES => {
                        Ok(StateIndex { dims: nvec, n_states })
                    }
                    _ => Err(ctx.incompatible(
                        agent,
                        format!(
                            "its observation space MultiDiscrete({nvec:?}) has more than \
                             {MAX_STATES} combinations, too many for a table"
                        ),
                    )),
                }
            }
            _ => {
                let n = ctx.discrete_states(agent)?;
                Ok(StateIndex { dims: vec![n], n_states: n })
            }
        }
    }

    /// An indexer for `Discrete(n_states)` observations.
    pub fn discrete(n_states: usize) -> Self {
        StateIndex { dims: vec![n_states], n_states }
    }

    /// The number of states (table rows).
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// The row of `obs`.
    #[inline]
    pub fn index(&self, obs: &[f32]) -> Result<usize> {
        if let ([x], [n]) = (obs, self.dims.as_slice()) {
            return whole_below(*x, *n).ok_or_else(|| self.bad(obs));
        }
        if obs.len() != self.dims.len() {
            return Err(self.bad(obs));
        }
        let mut index = 0;
        for (&x, &n) in obs.iter().zip(&self.dims) {
            index = index * n + whole_below(x, n).ok_or_else(|| self.bad(obs))?;
        }
        Ok(index)
    }

    #[cold]
    fn bad(&self, obs: &[f32]) -> AgentError {
        let expected = match self.dims.as_slice() {
            [n] => format!("a state index, a whole number in 0..{n}"),
            dims => format!("{} whole numbers below {dims:?}", dims.len()),
        };
        AgentError::Shape(format!("observation {obs:?} is not a table state: expected {expected}"))
    }
}

/// The largest table an agent builds (rows); beyond it the observation space is not tabular.
const MAX_STATES: usize = 1 << 26;

/// `x` as an index when it is a whole number in `0..n`.
#[inline]
fn whole_below(x: f32, n: usize) -> Option<usize> {
    let i = x as usize; // saturates: negative and NaN give 0, caught by the comparison
    (i as f32 == x && i < n).then_some(i)
}

/// The discrete action of a transition, checked against `n_actions`.
#[inline]
pub fn discrete_action(action: ActionRef<'_>, n_actions: usize) -> Result<usize> {
    match action {
        ActionRef::Discrete(a) if a < n_actions => Ok(a),
        ActionRef::Discrete(a) => Err(AgentError::Shape(format!(
            "action {a} is out of range: the env has {n_actions} actions"
        ))),
        ActionRef::Continuous(v) => Err(AgentError::Shape(format!(
            "continuous action {v:?} given to a tabular agent: expected a discrete action index \
             below {n_actions}"
        ))),
    }
}

/// The actions possible in each state: all of them, or those with outcomes in the env's
/// transition model ([`TransitionModel::is_possible`]), as flat lists so choosing among them
/// allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct PossibleActions {
    n_actions: usize,
    /// `None` when every action is possible everywhere (the fast path).
    lists: Option<(Vec<usize>, Vec<usize>)>,
}

impl PossibleActions {
    /// Every action possible in every state.
    pub fn all(n_actions: usize) -> Self {
        PossibleActions { n_actions, lists: None }
    }

    /// The actions the model allows.
    pub fn from_model(model: &TransitionModel) -> Self {
        let n_actions = model.n_actions();
        let all = (0..model.n_states()).all(|s| model.possible_actions(s).count() == n_actions);
        if all {
            return Self::all(n_actions);
        }
        let mut actions = Vec::new();
        let mut offsets = vec![0];
        for s in 0..model.n_states() {
            actions.extend(model.possible_actions(s));
            offsets.push(actions.len());
        }
        PossibleActions { n_actions, lists: Some((actions, offsets)) }
    }

    /// The number of actions (possible or not).
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// The actions possible in `state`, increasing, or `None` when all are.
    #[inline]
    pub fn restricted(&self, state: usize) -> Option<&[usize]> {
        self.lists.as_ref().map(|(actions, offsets)| &actions[offsets[state]..offsets[state + 1]])
    }

    /// True if `action` is possible in `state`.
    pub fn contains(&self, state: usize, action: usize) -> bool {
        action < self.n_actions && self.restricted(state).is_none_or(|list| list.contains(&action))
    }

    /// The error for a state where nothing is possible (a terminal state of the model).
    #[cold]
    pub fn none_possible(&self, state: usize) -> AgentError {
        AgentError::Shape(format!(
            "no action is possible in state {state} (a terminal state of the env's model)"
        ))
    }

    /// The greedy action of `row` (the values of `state`'s actions) among the possible ones:
    /// the first maximum, as numpy's `argmax`.
    #[inline]
    pub fn argmax(&self, state: usize, row: &[f64]) -> Result<usize> {
        self.argmax_by(state, row.len(), |a| row[a])
    }

    /// The first possible action maximising `value(a)`.
    #[inline]
    pub fn argmax_by(&self, state: usize, n: usize, value: impl Fn(usize) -> f64) -> Result<usize> {
        if self.lists.is_none() && n > 0 {
            // Every action possible: a plain scan, first maximum kept by `>`.
            let (mut best, mut best_value) = (0, value(0));
            for a in 1..n {
                let v = value(a);
                if v > best_value {
                    best = a;
                    best_value = v;
                }
            }
            return Ok(best);
        }
        let mut best = None;
        let mut best_value = f64::NEG_INFINITY;
        let mut consider = |a: usize| {
            let v = value(a);
            // `>` keeps the first maximum; the `is_none` arm takes a first value of -inf.
            if best.is_none() || v > best_value {
                best = Some(a);
                best_value = v;
            }
        };
        match self.restricted(state) {
            None => (0..n).for_each(&mut consider),
            Some(list) => list.iter().copied().for_each(&mut consider),
        }
        best.ok_or_else(|| self.none_possible(state))
    }

    /// `max_a value(a)` over the possible actions of `state`; 0 where none is possible (a
    /// state the model only enters by terminating, whose value is never bootstrapped).
    #[inline]
    pub fn max_by(&self, state: usize, n: usize, value: impl Fn(usize) -> f64) -> f64 {
        if self.lists.is_none() && n > 0 {
            return (1..n).fold(value(0), |m, a| {
                let v = value(a);
                if v > m {
                    v
                } else {
                    m
                }
            });
        }
        let fold = |acc: Option<f64>, a: usize| {
            let v = value(a);
            Some(acc.map_or(v, |m: f64| m.max(v)))
        };
        match self.restricted(state) {
            None => (0..n).fold(None, fold),
            Some(list) => list.iter().copied().fold(None, fold),
        }
        .unwrap_or(0.0)
    }

    /// A uniformly random possible action of `state`.
    #[inline]
    pub fn sample<R: rand::Rng>(&self, state: usize, rng: &mut R) -> Result<usize> {
        match self.restricted(state) {
            None => Ok(rng.random_range(0..self.n_actions)),
            Some([]) => Err(self.none_possible(state)),
            Some(list) => Ok(list[rng.random_range(0..list.len())]),
        }
    }
}

/// The model of the env when it has one whose size matches the table, or `None`.
pub fn matching_model<'a>(
    ctx: &'a BuildContext<'_>,
    agent: &str,
    states: &StateIndex,
    n_actions: usize,
) -> Result<Option<&'a TransitionModel>> {
    match ctx.env.transition_model() {
        Some(m) if m.n_states() != states.n_states() || m.n_actions() != n_actions => Err(ctx
            .incompatible(
                agent,
                format!(
                    "its transition model has {} states and {} actions but its spaces have {} \
                     states and {n_actions} actions",
                    m.n_states(),
                    m.n_actions(),
                    states.n_states()
                ),
            )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_index_reads_whole_numbers_in_range_only() {
        let s = StateIndex::discrete(5);
        assert_eq!(s.index(&[3.0]).unwrap(), 3);
        for bad in [[5.0], [-1.0], [2.5], [f32::NAN], [f32::INFINITY]] {
            let err = s.index(&bad).unwrap_err().to_string();
            assert!(err.contains("0..5"), "{err}");
        }
        assert!(s.index(&[1.0, 2.0]).is_err());
        let m = StateIndex { dims: vec![32, 11, 2], n_states: 704 };
        assert_eq!(m.index(&[14.0, 10.0, 1.0]).unwrap(), 14 * 22 + 10 * 2 + 1);
        assert_eq!(
            m.index(&[14.0, 10.0, 1.0]).unwrap(),
            deeprl_envs::toy_text::blackjack::state_index(14, 10, 1)
        );
        assert!(m.index(&[14.0, 11.0, 1.0]).is_err());
    }

    #[test]
    fn possible_actions_of_the_three_state_mdp() {
        let env = deeprl_envs::mdp::FiniteMdp::three_state_example();
        let p = PossibleActions::from_model(deeprl_envs::Env::transition_model(&env).unwrap());
        assert_eq!(p.restricted(1), Some(&[0, 2][..]));
        assert!(!p.contains(2, 0) && p.contains(2, 1));
        // The impossible action 1 of state 1 is never chosen, even with the largest value.
        assert_eq!(p.argmax(1, &[0.0, 9.0, -1.0]).unwrap(), 0);
        assert_eq!(p.max_by(1, 3, |a| [0.0, 9.0, -1.0][a]), 0.0);
        assert_eq!(PossibleActions::all(3).argmax(0, &[1.0, 2.0, 2.0]).unwrap(), 1);
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert!((0..100).all(|_| p.sample(2, &mut rng).unwrap() == 1));
        let actions = discrete_action(ActionRef::Continuous(&[0.5]), 3).unwrap_err();
        assert!(actions.to_string().contains("continuous"), "{actions}");
        assert!(discrete_action(ActionRef::Discrete(3), 3).is_err());
    }
}
