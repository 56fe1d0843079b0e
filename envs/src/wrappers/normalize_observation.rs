//! `NormalizeObservation`: observations centred and scaled by running statistics
//! (Gymnasium's `NormalizeObservation`).

use super::RunningMeanStd;
use crate::env::{Env, Step};
use crate::error::{EnvError, Result};
use crate::space::{BoxSpace, Space};

/// Normalizes each element of a box observation by running statistics of the observations
/// seen (Gymnasium's `NormalizeObservation`):
///
/// ```text
/// obs' = (obs - mean) / sqrt(var + epsilon)        epsilon = 1e-8 by default
/// ```
///
/// In training mode (the default) the statistics ([`RunningMeanStd`]: mean 0, variance 1,
/// count `1e-4` at the start) are updated with every observation, the first of each episode
/// included, *before* normalizing it, as Gymnasium does. [`NormalizeObservation::set_update`]
/// with `false` freezes them (Gymnasium's `update_running_mean = False`) for evaluation;
/// [`NormalizeObservation::set_statistics`] loads saved ones.
///
/// The observation keeps its type (e.g. `[f32; 4]`), normalized in place, so a step allocates
/// nothing. The observation space becomes an unbounded box of the same shape. A step that
/// returns an error (an invalid action) leaves the statistics unchanged.
#[derive(Debug, Clone)]
pub struct NormalizeObservation<E> {
    env: E,
    stats: RunningMeanStd,
    shape: Vec<usize>,
    epsilon: f64,
    update: bool,
}

impl<E: Env> NormalizeObservation<E>
where
    E::Obs: AsRef<[f32]> + AsMut<[f32]>,
{
    /// Gymnasium's default `epsilon`.
    pub const DEFAULT_EPSILON: f64 = 1e-8;

    /// Wraps `env`, whose observation space must be a box, with `epsilon = 1e-8`.
    pub fn new(env: E) -> Result<Self> {
        Self::with_epsilon(env, Self::DEFAULT_EPSILON)
    }

    /// Wraps `env` with the given `epsilon` (finite, `>= 0`).
    pub fn with_epsilon(env: E, epsilon: f64) -> Result<Self> {
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(EnvError::InvalidConfig(format!(
                "NormalizeObservation epsilon {epsilon}: expected a finite number >= 0"
            )));
        }
        let shape = match env.observation_space() {
            Space::Box(b) => b.shape,
            other => {
                return Err(EnvError::InvalidConfig(format!(
                    "NormalizeObservation needs a Box observation space, got {other}"
                )))
            }
        };
        let len = shape.iter().product();
        Ok(NormalizeObservation {
            env,
            stats: RunningMeanStd::new(len),
            shape,
            epsilon,
            update: true,
        })
    }

    /// Turns updating of the statistics on (training) or off (evaluation).
    pub fn set_update(&mut self, update: bool) {
        self.update = update;
    }

    /// True while the statistics are updated.
    pub fn is_updating(&self) -> bool {
        self.update
    }

    /// The running mean, one value per element of the observation.
    pub fn mean(&self) -> &[f64] {
        self.stats.mean()
    }

    /// The running variance, one value per element of the observation.
    pub fn var(&self) -> &[f64] {
        self.stats.var()
    }

    /// The running statistics.
    pub fn statistics(&self) -> &RunningMeanStd {
        &self.stats
    }

    /// Replaces the statistics, e.g. with those of a training env; their length must be the
    /// observation's.
    pub fn set_statistics(&mut self, stats: RunningMeanStd) -> Result<()> {
        if stats.len() != self.stats.len() {
            return Err(EnvError::InvalidConfig(format!(
                "statistics of length {} for observations of length {}",
                stats.len(),
                self.stats.len()
            )));
        }
        self.stats = stats;
        Ok(())
    }

    /// The `epsilon` added to the variance.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    fn normalize(&mut self, obs: &mut E::Obs) {
        let values = obs.as_mut();
        debug_assert_eq!(values.len(), self.stats.len(), "observation length");
        if self.update {
            self.stats.update(values.iter().map(|&x| f64::from(x)));
        }
        self.stats.normalize(values, self.epsilon);
    }

    inner_accessors!();
}

impl<E: Env> Env for NormalizeObservation<E>
where
    E::Obs: AsRef<[f32]> + AsMut<[f32]>,
{
    type Obs = E::Obs;
    type Action = E::Action;

    fn observation_space(&self) -> Space {
        let len = self.stats.len();
        Space::Box(BoxSpace::new(
            vec![f32::NEG_INFINITY; len],
            vec![f32::INFINITY; len],
            self.shape.clone(),
        ))
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    delegate_render_and_limit!();
    delegate_model!();

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        let mut obs = self.env.reset(seed);
        self.normalize(&mut obs);
        obs
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut step = self.env.step(action)?;
        self.normalize(&mut step.obs);
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::{small_mdp, Counter, Walker};

    #[test]
    fn normalizes_with_the_running_statistics() {
        let mut env = NormalizeObservation::new(Counter::new(None)).unwrap();
        let mut raw = Counter::new(None);
        let mut seen = vec![raw.reset(Some(4))];
        let first = env.reset(Some(4));
        for _ in 0..20 {
            seen.push(raw.step(&0).unwrap().obs);
            env.step(&0).unwrap();
        }
        let mut stats = RunningMeanStd::new(2);
        for s in &seen {
            stats.update(s.iter().map(|&x| f64::from(x)));
        }
        assert_eq!(env.statistics(), &stats);
        // The first observation was normalized by the statistics of itself alone.
        let mut one = RunningMeanStd::new(2);
        one.update(seen[0].iter().map(|&x| f64::from(x)));
        let mut expect = seen[0];
        one.normalize(&mut expect, 1e-8);
        assert_eq!(first, expect);
        // Mean of t = 0..=20 is 10 (up to the 1e-4 prior).
        assert!((env.mean()[0] - 10.0).abs() < 1e-3, "{:?}", env.mean());
        assert!((env.var()[0] - 110.0 / 3.0).abs() < 1e-2, "{:?}", env.var());
    }

    #[test]
    fn frozen_statistics_and_errors_leave_them_unchanged() {
        let mut env = NormalizeObservation::new(Walker::new(100)).unwrap();
        env.reset(Some(0));
        env.step(&[0.5, 0.5]).unwrap();
        let before = env.statistics().clone();
        assert!(env.step(&[f32::NAN, 0.0]).is_err());
        assert_eq!(env.statistics(), &before);
        env.set_update(false);
        assert!(!env.is_updating());
        let obs = env.step(&[1.0, 1.0]).unwrap().obs;
        assert_eq!(env.statistics(), &before);
        let mut expect = env.inner().pos();
        before.normalize(&mut expect, 1e-8);
        assert_eq!(obs, expect);
        assert!(env.set_statistics(RunningMeanStd::new(2)).is_err());
        assert!(env.set_statistics(RunningMeanStd::new(3)).is_ok());
    }

    #[test]
    fn space_becomes_unbounded_and_bad_configs_are_rejected() {
        let env = NormalizeObservation::new(Counter::new(None)).unwrap();
        let Space::Box(b) = env.observation_space() else { panic!("not a box") };
        assert_eq!(b.shape, vec![2]);
        assert!(b.low.iter().all(|x| *x == f32::NEG_INFINITY));
        assert!(b.high.iter().all(|x| *x == f32::INFINITY));
        assert_eq!(crate::DynEnv::obs_len(&env), 2);
        assert!(matches!(
            NormalizeObservation::with_epsilon(Counter::new(None), -1.0),
            Err(EnvError::InvalidConfig(_))
        ));
        // A discrete observation space is refused (through a wrapper that fakes the type).
        let err = NormalizeObservation::new(DiscreteAsBox(small_mdp()));
        assert!(err.unwrap_err().to_string().contains("Discrete(3)"));
    }

    /// An env with a discrete observation space but slice observations, to test the check.
    #[derive(Debug)]
    struct DiscreteAsBox(crate::mdp::FiniteMdp);

    impl Env for DiscreteAsBox {
        type Obs = [f32; 1];
        type Action = usize;
        fn observation_space(&self) -> Space {
            self.0.observation_space()
        }
        fn action_space(&self) -> Space {
            self.0.action_space()
        }
        fn reset(&mut self, seed: Option<u64>) -> [f32; 1] {
            [self.0.reset(seed) as f32]
        }
        fn step(&mut self, action: &usize) -> Result<Step<[f32; 1]>> {
            let s = self.0.step(action)?;
            Ok(Step {
                obs: [s.obs as f32],
                reward: s.reward,
                terminated: s.terminated,
                truncated: s.truncated,
            })
        }
    }
}
