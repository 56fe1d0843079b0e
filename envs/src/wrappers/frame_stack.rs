//! `FrameStack`: the last K observations stacked (Gymnasium's `FrameStackObservation`).

use crate::env::{Env, Step};
use crate::error::{EnvError, Result};
use crate::space::{BoxSpace, Space};

/// Observes the last `K` observations of the inner env, oldest first (Gymnasium's
/// `FrameStackObservation(env, stack_size=K)` with its default padding `"reset"`).
///
/// At reset all `K` slots hold the first observation; each step drops the oldest and appends
/// the new one. The observation is `[E::Obs; K]`, which [`crate::FlatObs`] writes as the
/// `K` observations one after the other, so a stack of `[f32; 4]` allocates nothing per step.
///
/// Observation space: a box of shape `S` becomes a box of shape `[K, ...S]` with the bounds
/// repeated; `Discrete(n)` becomes `MultiDiscrete([n; K])` (Gymnasium's `batch_space`); a
/// `MultiDiscrete(nvec)` becomes `nvec` repeated `K` times. `K = 0` does not compile.
/// Stepping before the first reset is an error that leaves the inner env untouched.
#[derive(Debug, Clone)]
pub struct FrameStack<E: Env, const K: usize> {
    env: E,
    frames: Option<[E::Obs; K]>,
}

impl<E: Env, const K: usize> FrameStack<E, K> {
    /// Wraps `env`, stacking `K` observations.
    pub fn new(env: E) -> Self {
        const { assert!(K >= 1, "FrameStack needs at least one frame (K >= 1)") };
        FrameStack { env, frames: None }
    }

    /// The current stack, oldest first; `None` before the first reset.
    pub fn frames(&self) -> Option<&[E::Obs; K]> {
        self.frames.as_ref()
    }

    inner_accessors!();
}

impl<E: Env, const K: usize> Env for FrameStack<E, K> {
    type Obs = [E::Obs; K];
    type Action = E::Action;

    fn observation_space(&self) -> Space {
        match self.env.observation_space() {
            Space::Box(b) => {
                let mut shape = Vec::with_capacity(b.shape.len() + 1);
                shape.push(K);
                shape.extend_from_slice(&b.shape);
                Space::Box(BoxSpace::new(b.low.repeat(K), b.high.repeat(K), shape))
            }
            Space::Discrete { n } => Space::MultiDiscrete { nvec: vec![n; K] },
            Space::MultiDiscrete { nvec } => Space::MultiDiscrete { nvec: nvec.repeat(K) },
        }
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    delegate_render_and_limit!();
    delegate_model!();

    fn reset(&mut self, seed: Option<u64>) -> [E::Obs; K] {
        let first = self.env.reset(seed);
        let frames = std::array::from_fn(|_| first.clone());
        self.frames = Some(frames.clone());
        frames
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<[E::Obs; K]>> {
        let Some(frames) = self.frames.as_mut() else {
            return Err(EnvError::StepBeforeReset);
        };
        let step = self.env.step(action)?;
        frames.rotate_left(1);
        if let Some(newest) = frames.last_mut() {
            *newest = step.obs;
        }
        Ok(Step {
            obs: frames.clone(),
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::{small_mdp, Counter};
    use crate::FlatObs;

    #[test]
    fn stacks_oldest_first_with_reset_padding() {
        let mut env = FrameStack::<_, 3>::new(Counter::new(None));
        assert!(matches!(env.step(&0), Err(EnvError::StepBeforeReset)));
        let first = env.reset(Some(2));
        let o = first[0][1];
        assert_eq!(first, [[0.0, o]; 3]);
        let s = env.step(&0).unwrap();
        assert_eq!(s.obs, [[0.0, o], [0.0, o], [1.0, o]]);
        let s = env.step(&1).unwrap();
        assert_eq!(s.obs, [[0.0, o], [1.0, o], [2.0, o]]);
        assert_eq!(s.reward, 2.0);
        assert!(env.step(&4).is_err());
        assert_eq!(env.frames(), Some(&s.obs));
        let s = env.step(&0).unwrap();
        assert_eq!(s.obs, [[1.0, o], [2.0, o], [3.0, o]]);
        let mut flat = [0.0; 6];
        s.obs.write_flat(&mut flat);
        assert_eq!(flat, [1.0, o, 2.0, o, 3.0, o]);
        // A new episode pads with its own first observation.
        let again = env.reset(None);
        assert_eq!(again[0], again[2]);
        assert_eq!(again[0][0], 0.0);
    }

    #[test]
    fn spaces_and_type_erased_layout() {
        let mut env = FrameStack::<_, 4>::new(Counter::new(None));
        let Space::Box(b) = env.observation_space() else { panic!("not a box") };
        assert_eq!(b.shape, vec![4, 2]);
        assert_eq!(b.high, [f32::INFINITY, 1.0].repeat(4));
        let mut obs = vec![0.0; crate::DynEnv::obs_len(&env)];
        crate::DynEnv::reset_into(&mut env, Some(0), &mut obs).unwrap();
        assert_eq!(obs.len(), 8);

        let mdp = FrameStack::<_, 2>::new(small_mdp());
        assert_eq!(mdp.observation_space(), Space::MultiDiscrete { nvec: vec![3, 3] });
        assert!(mdp.transition_model().is_some());
        let mut mdp: Box<dyn crate::DynEnv> = Box::new(mdp);
        let mut obs = vec![9.0; mdp.obs_len()];
        mdp.reset_into(Some(0), &mut obs).unwrap();
        assert_eq!(obs[0], obs[1]);
    }
}
