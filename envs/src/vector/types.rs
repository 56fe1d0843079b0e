//! The small types of the vector env: execution mode, actions, and the view of a step.

use crate::env::ActionRef;
use crate::error::{EnvError, Result};
use crate::space::Space;

/// How a [`super::VecEnv`] steps its envs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Execution {
    /// One env after the other on the calling thread (Gymnasium's `SyncVectorEnv`): the best
    /// choice for cheap envs such as CartPole.
    #[default]
    Sequential,
    /// One contiguous run of envs per core, the calling thread stepping the first and a rayon
    /// pool of (cores - 1) helper threads the others: worth it when a vector step holds tens
    /// of microseconds of work. Results are identical to [`Execution::Sequential`].
    Parallel,
}

/// The actions of one vector step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VecActions<'a> {
    /// One action index per env, for a `Discrete` action space.
    Discrete(&'a [usize]),
    /// `n_envs * act_dim` values, row `i` for env `i`, for a `Box` action space (or a
    /// `MultiDiscrete` one, written as numbers).
    Continuous(&'a [f32]),
}

impl<'a> VecActions<'a> {
    /// The action of env `i` (the lengths were checked).
    pub(super) fn of_env(self, i: usize, act_dim: usize) -> ActionRef<'a> {
        match self {
            VecActions::Discrete(a) => ActionRef::Discrete(a[i]),
            VecActions::Continuous(v) => ActionRef::Continuous(&v[i * act_dim..(i + 1) * act_dim]),
        }
    }
}

/// The buffers after a vector step or reset, borrowed from the [`super::VecEnv`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VecStep<'a> {
    /// `n_envs * obs_len` values, row `i` = the current observation of env `i` (after an
    /// autoreset, the first observation of its new episode).
    pub obs: &'a [f32],
    /// The reward of each env.
    pub rewards: &'a [f64],
    /// Whether each env reached a terminal state.
    pub terminated: &'a [bool],
    /// Whether each env's episode was cut (time limit).
    pub truncated: &'a [bool],
    /// `n_envs * obs_len` values; row `i` is the last observation of the episode env `i` just
    /// ended, where `has_final_obs[i]` (other rows hold stale values).
    pub final_obs: &'a [f32],
    /// True for the envs whose episode ended (terminated or truncated) on this step.
    pub has_final_obs: &'a [bool],
    pub(super) obs_len: usize,
}

impl<'a> VecStep<'a> {
    /// The number of envs.
    pub fn num_envs(&self) -> usize {
        self.rewards.len()
    }

    /// The observation of env `i` (empty when `i` is out of range).
    pub fn obs_row(&self, i: usize) -> &'a [f32] {
        self.obs.get(i * self.obs_len..(i + 1) * self.obs_len).unwrap_or(&[])
    }

    /// The last observation of the episode env `i` ended on this step, if it ended one.
    pub fn final_obs_row(&self, i: usize) -> Option<&'a [f32]> {
        match self.has_final_obs.get(i) {
            Some(true) => self.final_obs.get(i * self.obs_len..(i + 1) * self.obs_len),
            _ => None,
        }
    }

    /// True when env `i` ended an episode (terminated or truncated) on this step.
    pub fn done(&self, i: usize) -> bool {
        self.terminated.get(i).copied().unwrap_or(false)
            || self.truncated.get(i).copied().unwrap_or(false)
    }
}

/// The form of a vector env's actions: `Discrete(n)` or `Continuous(values per env)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ActionKind {
    Discrete(usize),
    Continuous(usize),
}

impl ActionKind {
    /// Values per env of an action: 1 for a discrete action.
    pub(super) fn dim(self) -> usize {
        match self {
            ActionKind::Discrete(_) => 1,
            ActionKind::Continuous(d) => d,
        }
    }

    /// Checks the actions of `n` envs against this kind (`space` names the action space in
    /// messages).
    pub(super) fn check(self, actions: VecActions<'_>, n: usize, space: &Space) -> Result<()> {
        let invalid =
            |action: String, expected: String| Err(EnvError::InvalidAction { action, expected });
        match (self, actions) {
            (ActionKind::Discrete(k), VecActions::Discrete(a)) => {
                if a.len() != n {
                    return invalid(
                        format!("{} discrete actions", a.len()),
                        format!("one per env ({n})"),
                    );
                }
                if let Some(i) = a.iter().position(|&x| x >= k) {
                    return invalid(
                        format!("{} (env {i})", a[i]),
                        format!("an integer in 0..{k} (Discrete({k}))"),
                    );
                }
                Ok(())
            }
            (ActionKind::Continuous(d), VecActions::Continuous(v)) => {
                if v.len() != n * d {
                    return invalid(
                        format!("{} continuous values", v.len()),
                        format!("{d} per env for {n} envs ({} values)", n * d),
                    );
                }
                if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                    return invalid(
                        format!("{} (env {}, value {})", v[j], j / d, j % d),
                        "finite numbers (no NaN or infinity)".into(),
                    );
                }
                Ok(())
            }
            (ActionKind::Discrete(_), VecActions::Continuous(_)) => invalid(
                "continuous values".into(),
                format!("one discrete action per env for {space}"),
            ),
            (ActionKind::Continuous(d), VecActions::Discrete(_)) => invalid(
                "discrete indices".into(),
                format!("{d} continuous values per env for {space}"),
            ),
        }
    }
}
