//! Tabular transition models and the finite-MDP environment.
//!
//! A [`TransitionModel`] is Gymnasium's `P[s][a] = [(probability, next_state, reward,
//! terminated), ...]` plus the initial-state distribution, stored flat so that a step looks
//! its row up with one index. [`TabularCore`] steps any such model (the toy-text envs and
//! [`FiniteMdp`] are built on it); [`FiniteMdp`] is a model loaded from a TOML or JSON file,
//! or the three-state example MDP of Géron's *Hands-On Machine Learning*, chapter 18.

use crate::env::{check_discrete, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EnvError, EpisodePhase, Result};
use crate::render::{Canvas, Frame};
use crate::space::Space;
use rand::Rng;
use serde::Deserialize;
use std::path::Path;

/// One possible outcome of taking an action in a state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub probability: f64,
    pub next_state: usize,
    pub reward: f64,
    /// True when entering `next_state` this way ends the episode.
    pub terminated: bool,
}

/// The full model of a finite MDP: for every state and action the list of outcomes, in
/// Gymnasium's order and not merged. An action with no outcomes is not possible in that state.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionModel {
    n_states: usize,
    n_actions: usize,
    transitions: Vec<Transition>,
    /// `transitions[offsets[s * n_actions + a]..offsets[s * n_actions + a + 1]]` is `P[s][a]`.
    offsets: Vec<usize>,
    initial: Vec<f64>,
}

/// How far a row of probabilities may sum from 1.
const PROBABILITY_TOLERANCE: f64 = 1e-9;

impl TransitionModel {
    /// Builds and validates a model from `table[s][a]` and the initial-state distribution.
    /// Each non-empty row must have probabilities in `[0, 1]` summing to 1, next states in
    /// range and finite rewards; `initial` must be a distribution over the states.
    pub fn new(table: Vec<Vec<Vec<Transition>>>, initial: Vec<f64>) -> Result<Self> {
        let n_states = table.len();
        let n_actions = table.first().map_or(0, Vec::len);
        let bad = |msg: String| Err(EnvError::InvalidMdp(msg));
        if n_states == 0 || n_actions == 0 {
            return bad(format!("need at least one state and one action, got {n_states} states and {n_actions} actions"));
        }
        let mut transitions = Vec::new();
        let mut offsets = vec![0];
        for (s, row) in table.into_iter().enumerate() {
            if row.len() != n_actions {
                return bad(format!(
                    "state {s} has {} actions, state 0 has {n_actions}",
                    row.len()
                ));
            }
            for (a, outcomes) in row.into_iter().enumerate() {
                let mut total = 0.0;
                for t in &outcomes {
                    if !(0.0..=1.0).contains(&t.probability) {
                        return bad(format!(
                            "P[{s}][{a}] has probability {} outside [0, 1]",
                            t.probability
                        ));
                    }
                    if t.next_state >= n_states {
                        return bad(format!(
                            "P[{s}][{a}] leads to state {} but there are {n_states} states",
                            t.next_state
                        ));
                    }
                    if !t.reward.is_finite() {
                        return bad(format!("P[{s}][{a}] has a non-finite reward {}", t.reward));
                    }
                    total += t.probability;
                }
                if !outcomes.is_empty() && (total - 1.0).abs() > PROBABILITY_TOLERANCE {
                    return bad(format!("probabilities of P[{s}][{a}] sum to {total}, not 1"));
                }
                transitions.extend(outcomes);
                offsets.push(transitions.len());
            }
        }
        if initial.len() != n_states {
            return bad(format!(
                "initial distribution has {} entries for {n_states} states",
                initial.len()
            ));
        }
        let total: f64 = initial.iter().sum();
        if initial.iter().any(|p| !(0.0..=1.0).contains(p))
            || (total - 1.0).abs() > PROBABILITY_TOLERANCE
        {
            return bad(format!(
                "initial distribution {initial:?} is not a probability distribution"
            ));
        }
        Ok(TransitionModel { n_states, n_actions, transitions, offsets, initial })
    }

    /// Number of states.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// Number of actions (some may be impossible in some states).
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// `P[state][action]`: the outcomes, empty if the action is not possible there.
    /// Panics if `state` or `action` is out of range (check with `n_states`/`n_actions`).
    pub fn transitions(&self, state: usize, action: usize) -> &[Transition] {
        let i = state * self.n_actions + action;
        &self.transitions[self.offsets[i]..self.offsets[i + 1]]
    }

    /// True if `action` has outcomes in `state`.
    pub fn is_possible(&self, state: usize, action: usize) -> bool {
        state < self.n_states
            && action < self.n_actions
            && !self.transitions(state, action).is_empty()
    }

    /// The actions possible in `state`, in increasing order.
    pub fn possible_actions(&self, state: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_actions).filter(move |&a| self.is_possible(state, a))
    }

    /// The initial-state distribution (Gymnasium's `initial_state_distrib`).
    pub fn initial_distribution(&self) -> &[f64] {
        &self.initial
    }

    /// Draws an initial state.
    pub fn sample_initial<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        categorical(self.initial.iter().copied(), rng.random())
    }

    /// Draws an outcome of `action` in `state` (which must be possible).
    pub fn sample<R: Rng + ?Sized>(&self, state: usize, action: usize, rng: &mut R) -> &Transition {
        let row = self.transitions(state, action);
        &row[categorical(row.iter().map(|t| t.probability), rng.random())]
    }
}

/// Gymnasium's `categorical_sample`: the first index whose cumulative probability exceeds
/// `u`, or the last index if rounding leaves the total just below `u`.
fn categorical(probabilities: impl Iterator<Item = f64>, u: f64) -> usize {
    let mut cumulative = 0.0;
    let mut last = 0;
    for (i, p) in probabilities.enumerate() {
        cumulative += p;
        if cumulative > u {
            return i;
        }
        last = i;
    }
    last
}

/// Steps a [`TransitionModel`]: the state, the env RNG and the episode phase shared by every
/// tabular env.
#[derive(Debug, Clone)]
pub struct TabularCore {
    model: TransitionModel,
    state: usize,
    last_action: Option<usize>,
    rng: EnvRng,
    phase: EpisodePhase,
}

impl TabularCore {
    /// A core for `model`, not yet reset.
    pub fn new(model: TransitionModel) -> Self {
        TabularCore {
            model,
            state: 0,
            last_action: None,
            rng: entropy_rng(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// The model.
    pub fn model(&self) -> &TransitionModel {
        &self.model
    }

    /// The current state.
    pub fn state(&self) -> usize {
        self.state
    }

    /// The last action applied in this episode, if any.
    pub fn last_action(&self) -> Option<usize> {
        self.last_action
    }

    /// Puts the env into `state` inside a running episode.
    pub fn set_state(&mut self, state: usize) -> Result<()> {
        if state >= self.model.n_states {
            return Err(EnvError::InvalidState(format!(
                "state {state} out of range 0..{}",
                self.model.n_states
            )));
        }
        self.state = state;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// Starts an episode from a state drawn from the initial distribution.
    pub fn reset(&mut self, seed: Option<u64>) -> usize {
        reseed(&mut self.rng, seed);
        self.state = self.model.sample_initial(&mut self.rng);
        self.last_action = None;
        self.phase = EpisodePhase::Running;
        self.state
    }

    /// Applies `action`: checks the order of calls and the action, then samples an outcome.
    pub fn step(&mut self, action: usize) -> Result<Step<usize>> {
        self.phase.check_step()?;
        check_discrete(action, self.model.n_actions)?;
        if !self.model.is_possible(self.state, action) {
            let possible: Vec<usize> = self.model.possible_actions(self.state).collect();
            return Err(EnvError::InvalidAction {
                action: action.to_string(),
                expected: format!(
                    "one of the actions possible in state {}: {possible:?}",
                    self.state
                ),
            });
        }
        let t = *self.model.sample(self.state, action, &mut self.rng);
        self.state = t.next_state;
        self.last_action = Some(action);
        self.phase = EpisodePhase::after_step(t.terminated, false);
        Ok(Step { obs: t.next_state, reward: t.reward, terminated: t.terminated, truncated: false })
    }
}

/// A finite MDP given by its transition model, as an environment: observation = state index.
///
/// Build one with [`FiniteMdp::three_state_example`], [`FiniteMdp::from_file`] (`.toml` or
/// `.json`), or [`FiniteMdp::new`] from a [`TransitionModel`]. An action that is not possible
/// in the current state is an error.
#[derive(Debug, Clone)]
pub struct FiniteMdp {
    core: TabularCore,
}

/// The file form of a finite MDP (TOML or JSON).
///
/// ```toml
/// # transition_probabilities[s][a][s'] and rewards[s][a][s']; an impossible action has an
/// # empty probability list ([] in TOML, [] or null in JSON); its rewards are ignored.
/// transition_probabilities = [[[0.7, 0.3, 0.0], [1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0], []]]
/// rewards = [[[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], []]]
/// possible_actions = [[0, 1], [0]]   # optional; checked against the non-empty rows
/// terminal_states = []               # optional; entering one ends the episode
/// initial_distribution = [1.0, 0.0]  # optional; default: always start in state 0
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdpSpec {
    pub transition_probabilities: Vec<Vec<Option<Vec<f64>>>>,
    pub rewards: Vec<Vec<Option<Vec<f64>>>>,
    #[serde(default)]
    pub possible_actions: Option<Vec<Vec<usize>>>,
    #[serde(default)]
    pub terminal_states: Vec<usize>,
    #[serde(default)]
    pub initial_distribution: Option<Vec<f64>>,
}

impl MdpSpec {
    /// Checks the shapes and builds the model.
    pub fn into_model(self) -> Result<TransitionModel> {
        let bad = |msg: String| Err(EnvError::InvalidMdp(msg));
        let n_states = self.transition_probabilities.len();
        if self.rewards.len() != n_states {
            return bad(format!(
                "transition_probabilities has {n_states} states but rewards has {}",
                self.rewards.len()
            ));
        }
        if let Some(&s) = self.terminal_states.iter().find(|&&s| s >= n_states) {
            return bad(format!("terminal state {s} out of range 0..{n_states}"));
        }
        let mut table = Vec::with_capacity(n_states);
        for (s, (p_row, r_row)) in
            self.transition_probabilities.iter().zip(&self.rewards).enumerate()
        {
            if p_row.len() != r_row.len() {
                return bad(format!(
                    "state {s}: {} probability rows but {} reward rows",
                    p_row.len(),
                    r_row.len()
                ));
            }
            let mut actions = Vec::with_capacity(p_row.len());
            for (a, (p, r)) in p_row.iter().zip(r_row).enumerate() {
                let p = p.as_deref().unwrap_or(&[]);
                let r = r.as_deref().unwrap_or(&[]);
                if !p.is_empty() && r.is_empty() {
                    return bad(format!(
                        "state {s} action {a}: the action has probabilities but no rewards"
                    ));
                }
                if !p.is_empty() && (p.len() != n_states || r.len() != n_states) {
                    return bad(format!("state {s} action {a}: rows must have one entry per next state ({n_states}), got {} probabilities and {} rewards", p.len(), r.len()));
                }
                if let Some(x) = p.iter().find(|x| !(0.0..=1.0).contains(*x)) {
                    return bad(format!("state {s} action {a}: probability {x} is outside [0, 1]"));
                }
                let outcomes = p
                    .iter()
                    .zip(r)
                    .enumerate()
                    .filter(|(_, (&prob, _))| prob > 0.0)
                    .map(|(next, (&probability, &reward))| Transition {
                        probability,
                        next_state: next,
                        reward,
                        terminated: self.terminal_states.contains(&next),
                    })
                    .collect();
                actions.push(outcomes);
            }
            table.push(actions);
        }
        let initial = match self.initial_distribution {
            Some(d) => d,
            None => (0..n_states).map(|s| if s == 0 { 1.0 } else { 0.0 }).collect(),
        };
        let model = TransitionModel::new(table, initial)?;
        if let Some(possible) = &self.possible_actions {
            if possible.len() != n_states {
                return bad(format!(
                    "possible_actions has {} entries for {n_states} states",
                    possible.len()
                ));
            }
            for (s, listed) in possible.iter().enumerate() {
                let actual: Vec<usize> = model.possible_actions(s).collect();
                let mut listed = listed.clone();
                listed.sort_unstable();
                if listed != actual {
                    return bad(format!("possible_actions[{s}] is {listed:?} but the rows with probabilities are {actual:?}"));
                }
            }
        }
        for s in 0..n_states {
            if !self.terminal_states.contains(&s) && model.possible_actions(s).next().is_none() {
                return bad(format!("state {s} is not terminal but has no possible action"));
            }
        }
        Ok(model)
    }
}

impl FiniteMdp {
    /// An environment stepping `model`.
    pub fn new(model: TransitionModel) -> Self {
        FiniteMdp { core: TabularCore::new(model) }
    }

    /// The three-state MDP of Géron, *Hands-On Machine Learning* (ch. 18): from state 0,
    /// action 0 pays +10 with probability 0.7; from state 1, action 2 leads to state 2 at a
    /// cost of -50; from state 2, action 1 returns to state 0 with +40 with probability 0.8.
    /// There is no terminal state; the registry caps episodes with a time limit.
    pub fn three_state_example() -> Self {
        let spec = MdpSpec {
            transition_probabilities: vec![
                vec![
                    Some(vec![0.7, 0.3, 0.0]),
                    Some(vec![1.0, 0.0, 0.0]),
                    Some(vec![0.8, 0.2, 0.0]),
                ],
                vec![Some(vec![0.0, 1.0, 0.0]), None, Some(vec![0.0, 0.0, 1.0])],
                vec![None, Some(vec![0.8, 0.1, 0.1]), None],
            ],
            rewards: vec![
                vec![
                    Some(vec![10.0, 0.0, 0.0]),
                    Some(vec![0.0, 0.0, 0.0]),
                    Some(vec![0.0, 0.0, 0.0]),
                ],
                vec![
                    Some(vec![0.0, 0.0, 0.0]),
                    Some(vec![0.0, 0.0, 0.0]),
                    Some(vec![0.0, 0.0, -50.0]),
                ],
                vec![
                    Some(vec![0.0, 0.0, 0.0]),
                    Some(vec![40.0, 0.0, 0.0]),
                    Some(vec![0.0, 0.0, 0.0]),
                ],
            ],
            possible_actions: Some(vec![vec![0, 1, 2], vec![0, 2], vec![1]]),
            terminal_states: vec![],
            initial_distribution: None,
        };
        FiniteMdp::new(spec.into_model().expect("the built-in example MDP is valid"))
    }

    /// Parses an MDP from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let spec: MdpSpec =
            toml::from_str(text).map_err(|e| EnvError::InvalidMdp(format!("TOML: {e}")))?;
        Ok(FiniteMdp::new(spec.into_model()?))
    }

    /// Parses an MDP from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let spec: MdpSpec =
            serde_json::from_str(text).map_err(|e| EnvError::InvalidMdp(format!("JSON: {e}")))?;
        Ok(FiniteMdp::new(spec.into_model()?))
    }

    /// Loads an MDP from a `.toml` or `.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let load_err =
            |message: String| EnvError::Load { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| load_err(e.to_string()))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml_str(&text),
            Some("json") => Self::from_json_str(&text),
            other => Err(load_err(format!("unknown extension {other:?}: expected .toml or .json"))),
        }
    }

    /// The current state.
    pub fn state(&self) -> usize {
        self.core.state()
    }

    /// Puts the env into `state` inside a running episode.
    pub fn set_state(&mut self, state: usize) -> Result<()> {
        self.core.set_state(state)
    }
}

impl Env for FiniteMdp {
    type Obs = usize;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::discrete(self.core.model().n_states())
    }

    fn action_space(&self) -> Space {
        Space::discrete(self.core.model().n_actions())
    }

    fn reset(&mut self, seed: Option<u64>) -> usize {
        self.core.reset(seed)
    }

    fn step(&mut self, action: &usize) -> Result<Step<usize>> {
        self.core.step(*action)
    }

    fn render_text(&self) -> Option<String> {
        let s = self.core.state();
        let possible: Vec<usize> = self.core.model().possible_actions(s).collect();
        Some(match self.core.last_action() {
            Some(a) => format!("state {s} (after action {a}); possible actions {possible:?}\n"),
            None => format!("state {s}; possible actions {possible:?}\n"),
        })
    }

    fn render_rgb(&self) -> Option<Frame> {
        let n = self.core.model().n_states();
        let cell = 80.0;
        let mut canvas = Canvas::new((cell as usize * n) as u32, cell as u32, [255, 255, 255]);
        for s in 0..n {
            let cx = cell * (s as f32 + 0.5);
            let color = if s == self.core.state() { [220, 60, 60] } else { [160, 160, 160] };
            canvas.circle(cx, cell / 2.0, cell * 0.35, color);
            canvas.number(cx - 5.0, cell / 2.0 - 7.0, 3.0, s as u32, [255, 255, 255]);
        }
        Some(canvas.into_frame())
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        Some(self.core.model())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_state_example_matches_the_seed() {
        let mdp = FiniteMdp::three_state_example();
        let m = mdp.transition_model().unwrap();
        assert_eq!((m.n_states(), m.n_actions()), (3, 3));
        assert_eq!(m.possible_actions(1).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(m.possible_actions(2).collect::<Vec<_>>(), vec![1]);
        let t = m.transitions(1, 2);
        assert_eq!(
            t,
            &[Transition { probability: 1.0, next_state: 2, reward: -50.0, terminated: false }]
        );
        let t = m.transitions(2, 1);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].probability, t[0].reward), (0.8, 40.0));
    }

    #[test]
    fn impossible_action_is_an_error_and_changes_nothing() {
        let mut mdp = FiniteMdp::three_state_example();
        mdp.reset(Some(0));
        mdp.set_state(2).unwrap();
        let err = mdp.step(&0).unwrap_err();
        assert!(err.to_string().contains("possible in state 2: [1]"), "{err}");
        assert_eq!(mdp.state(), 2);
        assert!(mdp.step(&1).is_ok());
    }

    #[test]
    fn sampling_frequencies_follow_the_model() {
        let mut mdp = FiniteMdp::three_state_example();
        mdp.reset(Some(3));
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            mdp.set_state(2).unwrap();
            counts[mdp.step(&1).unwrap().obs] += 1;
        }
        let freq: Vec<f64> = counts.iter().map(|&c| c as f64 / 20_000.0).collect();
        assert!((freq[0] - 0.8).abs() < 0.02 && (freq[1] - 0.1).abs() < 0.015, "{freq:?}");
    }

    #[test]
    fn loads_toml_and_json_and_rejects_bad_files() {
        let toml_text = "transition_probabilities = [[[0.5, 0.5], [0.0, 1.0]], [[1.0, 0.0], []]]\n\
                         rewards = [[[1.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], []]]\n\
                         terminal_states = [1]\n";
        let mdp = FiniteMdp::from_toml_str(toml_text).unwrap();
        assert!(mdp.transition_model().unwrap().transitions(0, 1)[0].terminated);
        let json_text =
            r#"{"transition_probabilities": [[[0.5, 0.5], null]], "rewards": [[[1, 0], null]]}"#;
        let err = FiniteMdp::from_json_str(json_text).unwrap_err().to_string();
        assert!(err.contains("one entry per next state (1)"), "{err}");
        let sum = r#"{"transition_probabilities": [[[0.5, 0.4]], [[1.0, 0.0]]], "rewards": [[[0, 0]], [[0, 0]]]}"#;
        assert!(FiniteMdp::from_json_str(sum).unwrap_err().to_string().contains("sum to 0.9"));
        let neg = r#"{"transition_probabilities": [[[1.5, -0.5]], [[1.0, 0.0]]], "rewards": [[[0, 0]], [[0, 0]]]}"#;
        assert!(FiniteMdp::from_json_str(neg).unwrap_err().to_string().contains("outside [0, 1]"));
        let missing = FiniteMdp::from_file("/nonexistent/mdp.toml").unwrap_err();
        assert!(matches!(missing, EnvError::Load { .. }));
    }
}
