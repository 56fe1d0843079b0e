//! `OneHot`: a discrete observation as a one-hot vector (Gymnasium's `FlattenObservation` on a
//! `Discrete` space).

use crate::env::{Env, FlatObs, Step};
use crate::error::{EnvError, Result};
use crate::space::{BoxSpace, Space};

/// A one-hot observation: `n` values, 1 at `index` and 0 elsewhere, stored as the two
/// numbers and written out by [`FlatObs`] without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OneHotObs {
    index: usize,
    n: usize,
}

impl OneHotObs {
    /// The one-hot vector of `index` among `n`; `index` must be below `n`.
    pub fn new(index: usize, n: usize) -> Result<Self> {
        if index < n {
            Ok(OneHotObs { index, n })
        } else {
            Err(EnvError::InvalidConfig(format!(
                "one-hot index {index}: expected an index below {n}"
            )))
        }
    }

    /// The position of the 1 (the inner env's observation).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The number of values.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The vector, allocated.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut v = vec![0.0; self.n];
        self.write_flat(&mut v);
        v
    }
}

impl FlatObs for OneHotObs {
    fn flat_len(&self) -> usize {
        self.n
    }

    fn write_flat(&self, out: &mut [f32]) {
        out.fill(0.0);
        if let Some(x) = out.get_mut(self.index) {
            *x = 1.0;
        }
    }
}

/// Turns an env with `Discrete(n)` observations (`Obs = usize`) into one with one-hot
/// observations in the box `[0, 1]^n`, so that a neural agent can play FrozenLake or Taxi
/// (Gymnasium's `FlattenObservation`, which flattens a `Discrete` space to a one-hot vector).
///
/// The observation is a [`OneHotObs`]; [`crate::DynEnv`] writes its `n` values into the
/// caller's buffer. The transition model, if any, is delegated: its states are the indices.
#[derive(Debug, Clone)]
pub struct OneHot<E> {
    env: E,
    n: usize,
}

impl<E: Env<Obs = usize>> OneHot<E> {
    /// Wraps `env`; its observation space must be `Discrete`.
    pub fn new(env: E) -> Result<Self> {
        match env.observation_space() {
            Space::Discrete { n } => Ok(OneHot { env, n }),
            other => Err(EnvError::InvalidConfig(format!(
                "OneHot needs a Discrete observation space, got {other}"
            ))),
        }
    }

    /// The number of values of an observation.
    pub fn n(&self) -> usize {
        self.n
    }

    inner_accessors!();
}

impl<E: Env<Obs = usize>> Env for OneHot<E> {
    type Obs = OneHotObs;
    type Action = E::Action;

    fn observation_space(&self) -> Space {
        Space::Box(BoxSpace::uniform(0.0, 1.0, self.n))
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    delegate_render_and_limit!();
    delegate_model!();

    fn reset(&mut self, seed: Option<u64>) -> OneHotObs {
        OneHotObs { index: self.env.reset(seed), n: self.n }
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<OneHotObs>> {
        let step = self.env.step(action)?;
        Ok(Step {
            obs: OneHotObs { index: step.obs, n: self.n },
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::small_mdp;

    #[test]
    fn one_hot_observations_and_space() {
        let mut env = OneHot::new(small_mdp()).unwrap();
        assert_eq!(env.observation_space(), Space::Box(BoxSpace::uniform(0.0, 1.0, 3)));
        let first = env.reset(Some(0));
        assert_eq!((first.index(), first.n()), (0, 3));
        assert_eq!(first.to_vec(), vec![1.0, 0.0, 0.0]);
        let s = env.step(&0).unwrap();
        assert_eq!(s.obs.to_vec(), vec![0.0, 1.0, 0.0]);
        assert_eq!(s.reward, 1.0);
        assert!(env.step(&1).is_err(), "action 1 is impossible in state 1");
        assert_eq!(env.inner().state(), 1);
        let s = env.step(&0).unwrap();
        assert_eq!((s.obs.index(), s.reward), (0, -1.0));
        assert!(env.transition_model().is_some());
        assert!(env.render_text().is_some());
    }

    #[test]
    fn type_erased_writes_n_values_and_bad_spaces_are_rejected() {
        let mut env: Box<dyn crate::DynEnv> = Box::new(OneHot::new(small_mdp()).unwrap());
        assert_eq!(env.obs_len(), 3);
        let mut obs = vec![5.0; 3];
        env.reset_into(Some(1), &mut obs).unwrap();
        assert_eq!(obs.iter().sum::<f32>(), 1.0);
        assert!(OneHotObs::new(3, 3).is_err());
        assert_eq!(OneHotObs::new(2, 3).unwrap().to_vec(), vec![0.0, 0.0, 1.0]);
        let err = OneHot::new(BoxAsIndex).unwrap_err();
        assert!(err.to_string().contains("Discrete observation space"), "{err}");
    }

    /// An env with `usize` observations but a box observation space.
    #[derive(Debug)]
    struct BoxAsIndex;

    impl Env for BoxAsIndex {
        type Obs = usize;
        type Action = usize;
        fn observation_space(&self) -> Space {
            Space::boxed(vec![0.0], vec![1.0])
        }
        fn action_space(&self) -> Space {
            Space::discrete(1)
        }
        fn reset(&mut self, _seed: Option<u64>) -> usize {
            0
        }
        fn step(&mut self, _action: &usize) -> Result<Step<usize>> {
            Err(EnvError::StepBeforeReset)
        }
    }
}
