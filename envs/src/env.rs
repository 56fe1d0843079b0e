//! The step trait every environment implements, with Gymnasium 1.x semantics.

use crate::error::{EnvError, Result};
use crate::mdp::TransitionModel;
use crate::render::Frame;
use crate::space::Space;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The portable generator every built-in env draws from: ChaCha with 8 rounds, the same
/// stream on every platform for the same seed.
pub type EnvRng = ChaCha8Rng;

/// A new generator from OS entropy, for an env that has not been seeded yet (Gymnasium's
/// behaviour for `reset(seed=None)` on a fresh env).
pub fn entropy_rng() -> EnvRng {
    EnvRng::from_rng(&mut rand::rng())
}

/// Re-seeds `rng` when `seed` is `Some`; with `None` the stream continues.
pub fn reseed(rng: &mut EnvRng, seed: Option<u64>) {
    if let Some(seed) = seed {
        *rng = EnvRng::seed_from_u64(seed);
    }
}

/// What one step returns.
///
/// * `terminated`: the agent reached a terminal state of the MDP (the pole fell, the goal
///   was reached, a hole was entered). The return after it is zero, so a TD target must not
///   bootstrap from `obs`.
/// * `truncated`: the episode was cut from outside the MDP, usually by a time limit
///   ([`crate::wrappers::TimeLimit`]). The state is not terminal, so a TD target should
///   still bootstrap from `obs`. Base envs never truncate.
///
/// Either flag ends the episode: the next call must be `reset`. Both may be true at once
/// (a terminal state reached on the last allowed step), as in Gymnasium.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step<O> {
    pub obs: O,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

impl<O> Step<O> {
    /// True when the episode ended, by termination or truncation.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A reinforcement-learning environment (Gymnasium's `Env`).
///
/// `reset(Some(seed))` re-seeds the env's own [`EnvRng`] and starts an episode;
/// `reset(None)` starts one while continuing the random stream. The same seed and the same
/// actions give the same episode, bit for bit. `step` returns an error, and changes nothing,
/// for an action outside [`Env::action_space`], before the first reset, and after the end of
/// an episode.
///
/// Instead of Gymnasium's `info` dict, extras are typed methods with defaults: rendering,
/// the time limit, the transition model of a tabular env.
pub trait Env {
    /// The observation type; built-in envs use fixed-size values (`[f32; 4]`, `usize`) so
    /// that a step allocates nothing.
    type Obs: Clone;
    /// The action type: `usize` for discrete actions, `[f32; N]` for continuous ones.
    type Action: Clone;

    /// The set of observations.
    fn observation_space(&self) -> Space;
    /// The set of valid actions.
    fn action_space(&self) -> Space;
    /// Starts an episode and returns its first observation.
    fn reset(&mut self, seed: Option<u64>) -> Self::Obs;
    /// Applies one action.
    fn step(&mut self, action: &Self::Action) -> Result<Step<Self::Obs>>;

    /// A text picture of the current state (Gymnasium's `"ansi"` mode).
    fn render_text(&self) -> Option<String> {
        None
    }
    /// An RGB picture of the current state (Gymnasium's `"rgb_array"` mode).
    fn render_rgb(&self) -> Option<Frame> {
        None
    }
    /// The episode length at which a [`crate::wrappers::TimeLimit`] truncates, if any.
    fn max_episode_steps(&self) -> Option<usize> {
        None
    }
    /// The full transition model of a tabular env (`P[s][a]`), if it has one.
    fn transition_model(&self) -> Option<&TransitionModel> {
        None
    }
}

/// An observation written as `f32` numbers into a slice, without allocating.
///
/// Arrays and vectors of `f32` are written as they are; a discrete observation (`usize`) is
/// written as its index (wrap the env in [`crate::wrappers::OneHot`] for a one-hot vector).
pub trait FlatObs {
    /// Number of values written.
    fn flat_len(&self) -> usize;
    /// Writes the values; `out.len()` must equal [`FlatObs::flat_len`].
    fn write_flat(&self, out: &mut [f32]);
    /// The length shared by every value of the type, when the type fixes it (arrays, `usize`),
    /// so that a buffer can be checked before the env is stepped.
    fn fixed_len() -> Option<usize>
    where
        Self: Sized,
    {
        None
    }
}

impl<const N: usize> FlatObs for [f32; N] {
    fn flat_len(&self) -> usize {
        N
    }
    fn fixed_len() -> Option<usize> {
        Some(N)
    }
    fn write_flat(&self, out: &mut [f32]) {
        out.copy_from_slice(self);
    }
}

impl FlatObs for Vec<f32> {
    fn flat_len(&self) -> usize {
        self.len()
    }
    fn write_flat(&self, out: &mut [f32]) {
        out.copy_from_slice(self);
    }
}

impl FlatObs for usize {
    fn flat_len(&self) -> usize {
        1
    }
    fn fixed_len() -> Option<usize> {
        Some(1)
    }
    fn write_flat(&self, out: &mut [f32]) {
        out[0] = *self as f32;
    }
}

/// Arrays of observations flatten element after element, oldest first: `[usize; 3]`
/// (Blackjack's tuple) as its three indices, a [`crate::wrappers::FrameStack`] of
/// `[f32; 4]` as one vector of `4 * K` values.
impl<O: FlatObs, const K: usize> FlatObs for [O; K] {
    fn flat_len(&self) -> usize {
        self.iter().map(FlatObs::flat_len).sum()
    }
    fn fixed_len() -> Option<usize> {
        O::fixed_len().map(|n| n * K)
    }
    fn write_flat(&self, out: &mut [f32]) {
        let mut at = 0;
        for o in self {
            let n = o.flat_len();
            o.write_flat(&mut out[at..at + n]);
            at += n;
        }
    }
}

/// An action borrowed in a type-erased form, as the registry's envs and vector envs take it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActionRef<'a> {
    /// The index of a discrete action.
    Discrete(usize),
    /// The values of a continuous action.
    Continuous(&'a [f32]),
}

/// An action type that can be built from an [`ActionRef`] (checking its form, not its range:
/// the env checks the range).
pub trait EnvAction: Sized {
    fn from_action_ref(action: ActionRef<'_>) -> Result<Self>;
}

impl EnvAction for usize {
    fn from_action_ref(action: ActionRef<'_>) -> Result<Self> {
        match action {
            ActionRef::Discrete(i) => Ok(i),
            ActionRef::Continuous(v) => Err(EnvError::InvalidAction {
                action: format!("{v:?}"),
                expected: "a discrete action index".into(),
            }),
        }
    }
}

impl<const N: usize> EnvAction for [f32; N] {
    fn from_action_ref(action: ActionRef<'_>) -> Result<Self> {
        match action {
            ActionRef::Continuous(v) => v.try_into().map_err(|_| EnvError::InvalidAction {
                action: format!("{v:?} (length {})", v.len()),
                expected: format!("a continuous action of length {N}"),
            }),
            ActionRef::Discrete(i) => Err(EnvError::InvalidAction {
                action: format!("discrete {i}"),
                expected: format!("a continuous action of length {N}"),
            }),
        }
    }
}

impl EnvAction for Vec<f32> {
    fn from_action_ref(action: ActionRef<'_>) -> Result<Self> {
        match action {
            ActionRef::Continuous(v) => Ok(v.to_vec()),
            ActionRef::Discrete(i) => Err(EnvError::InvalidAction {
                action: format!("discrete {i}"),
                expected: "a continuous action".into(),
            }),
        }
    }
}

/// Checks a discrete action against `Discrete(n)`.
pub fn check_discrete(action: usize, n: usize) -> Result<()> {
    if action < n {
        Ok(())
    } else {
        Err(EnvError::InvalidAction {
            action: action.to_string(),
            expected: format!("an integer in 0..{n} (Discrete({n}))"),
        })
    }
}

/// Checks that every value of a continuous action is a number (not NaN or infinite).
/// Out-of-range finite values are allowed where Gymnasium clips them (MountainCarContinuous,
/// Pendulum); an env that needs a stricter check does it itself.
pub fn check_finite(action: &[f32]) -> Result<()> {
    if action.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(EnvError::InvalidAction {
            action: format!("{action:?}"),
            expected: "finite numbers (no NaN or infinity)".into(),
        })
    }
}
