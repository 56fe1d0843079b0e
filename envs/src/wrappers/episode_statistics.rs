//! `EpisodeStatistics`: return and length of each episode (Gymnasium's
//! `RecordEpisodeStatistics`).

use crate::env::{Env, Step};
use crate::error::{EnvError, Result};
use std::collections::{vec_deque, VecDeque};

/// The return and length of a finished episode (Gymnasium's `info["episode"]["r"]` and
/// `["l"]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeRecord {
    /// Sum of the rewards of the episode, undiscounted.
    pub episode_return: f64,
    /// Number of steps of the episode.
    pub length: usize,
}

/// Records the return and length of every episode (Gymnasium's `RecordEpisodeStatistics`).
///
/// The running episode's return (sum of rewards) and length (steps) restart at each reset and
/// after each step that ends an episode (terminated or truncated). On that step the finished
/// episode becomes [`EpisodeStatistics::last_episode`] (Gymnasium's `info["episode"]`), until
/// the next reset or step, and is appended to [`EpisodeStatistics::recent`], which keeps the
/// last `buffer_length` episodes (Gymnasium's `return_queue` and `length_queue`, default
/// 100). Observations, rewards and flags pass through unchanged; Gymnasium's wall-clock time
/// `t` is not recorded. The buffer is allocated once, so stepping allocates nothing.
#[derive(Debug, Clone)]
pub struct EpisodeStatistics<E> {
    env: E,
    episode_return: f64,
    episode_length: usize,
    last: Option<EpisodeRecord>,
    recent: VecDeque<EpisodeRecord>,
    buffer_length: usize,
    episode_count: usize,
    total_steps: u64,
}

impl<E: Env> EpisodeStatistics<E> {
    /// Gymnasium's default number of finished episodes kept.
    pub const DEFAULT_BUFFER_LENGTH: usize = 100;

    /// Wraps `env`, keeping the last 100 episodes.
    pub fn new(env: E) -> Self {
        Self::build(env, Self::DEFAULT_BUFFER_LENGTH)
    }

    /// Wraps `env`, keeping the last `buffer_length` episodes (at least 1).
    pub fn with_buffer_length(env: E, buffer_length: usize) -> Result<Self> {
        if buffer_length == 0 {
            return Err(EnvError::InvalidConfig(
                "EpisodeStatistics buffer_length is 0: expected at least 1".into(),
            ));
        }
        Ok(Self::build(env, buffer_length))
    }

    fn build(env: E, buffer_length: usize) -> Self {
        EpisodeStatistics {
            env,
            episode_return: 0.0,
            episode_length: 0,
            last: None,
            recent: VecDeque::with_capacity(buffer_length),
            buffer_length,
            episode_count: 0,
            total_steps: 0,
        }
    }

    /// The episode that the last step ended; `None` after a reset or a step that did not end
    /// an episode.
    pub fn last_episode(&self) -> Option<EpisodeRecord> {
        self.last
    }

    /// The last `buffer_length` finished episodes, oldest first.
    pub fn recent(&self) -> vec_deque::Iter<'_, EpisodeRecord> {
        self.recent.iter()
    }

    /// Mean return of [`EpisodeStatistics::recent`], `None` before the first episode ends.
    pub fn mean_return(&self) -> Option<f64> {
        self.mean_of(|r| r.episode_return)
    }

    /// Mean length of [`EpisodeStatistics::recent`], `None` before the first episode ends.
    pub fn mean_length(&self) -> Option<f64> {
        self.mean_of(|r| r.length as f64)
    }

    fn mean_of(&self, f: impl Fn(&EpisodeRecord) -> f64) -> Option<f64> {
        if self.recent.is_empty() {
            None
        } else {
            Some(self.recent.iter().map(f).sum::<f64>() / self.recent.len() as f64)
        }
    }

    /// Return of the running episode so far.
    pub fn episode_return(&self) -> f64 {
        self.episode_return
    }

    /// Steps of the running episode so far.
    pub fn episode_length(&self) -> usize {
        self.episode_length
    }

    /// Episodes finished since the wrapper was built.
    pub fn episode_count(&self) -> usize {
        self.episode_count
    }

    /// Successful steps since the wrapper was built.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// How many finished episodes [`EpisodeStatistics::recent`] keeps.
    pub fn buffer_length(&self) -> usize {
        self.buffer_length
    }

    inner_accessors!();
}

impl<E: Env> Env for EpisodeStatistics<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    delegate_spaces!();
    delegate_render_and_limit!();
    delegate_model!();

    fn reset(&mut self, seed: Option<u64>) -> E::Obs {
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.last = None;
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let step = self.env.step(action)?;
        self.episode_return += step.reward;
        self.episode_length += 1;
        self.total_steps += 1;
        self.last = None;
        if step.done() {
            let record =
                EpisodeRecord { episode_return: self.episode_return, length: self.episode_length };
            if self.recent.len() == self.buffer_length {
                self.recent.pop_front();
            }
            self.recent.push_back(record);
            self.last = Some(record);
            self.episode_count += 1;
            self.episode_return = 0.0;
            self.episode_length = 0;
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_envs::Counter;
    use crate::wrappers::TimeLimit;

    #[test]
    fn records_terminated_and_truncated_episodes() {
        // Terminates after 3 steps; truncated at 2 steps by the time limit when shorter.
        let mut env = EpisodeStatistics::new(Counter::new(Some(3)));
        env.reset(Some(0));
        assert_eq!(env.step(&1).unwrap().reward, 2.0);
        assert_eq!(env.last_episode(), None);
        env.step(&0).unwrap();
        assert_eq!((env.episode_return(), env.episode_length()), (3.0, 2));
        assert!(env.step(&1).unwrap().terminated);
        let rec = EpisodeRecord { episode_return: 5.0, length: 3 };
        assert_eq!(env.last_episode(), Some(rec));
        assert_eq!((env.episode_return(), env.episode_length()), (0.0, 0));
        env.reset(None);
        assert_eq!(env.last_episode(), None);
        assert_eq!(env.recent().copied().collect::<Vec<_>>(), vec![rec]);

        let mut env = EpisodeStatistics::new(TimeLimit::new(Counter::new(None), 2));
        env.reset(Some(0));
        env.step(&0).unwrap();
        assert!(env.step(&0).unwrap().truncated);
        assert_eq!(env.last_episode().map(|r| r.length), Some(2));
        assert_eq!(env.mean_return(), Some(2.0));
    }

    #[test]
    fn keeps_the_last_buffer_length_episodes() {
        let mut env = EpisodeStatistics::with_buffer_length(Counter::new(Some(1)), 2).unwrap();
        for a in [0, 1, 1] {
            env.reset(None);
            env.step(&a).unwrap();
        }
        let returns: Vec<f64> = env.recent().map(|r| r.episode_return).collect();
        assert_eq!(returns, vec![2.0, 2.0]);
        assert_eq!(env.episode_count(), 3);
        assert_eq!(env.total_steps(), 3);
        assert_eq!(env.mean_length(), Some(1.0));
        assert!(matches!(
            EpisodeStatistics::with_buffer_length(Counter::new(None), 0),
            Err(EnvError::InvalidConfig(_))
        ));
    }

    #[test]
    fn an_error_changes_nothing_and_extras_are_delegated() {
        let mut env = EpisodeStatistics::new(Counter::new(Some(2)));
        env.reset(Some(1));
        env.step(&1).unwrap();
        assert!(env.step(&5).is_err());
        assert_eq!((env.episode_return(), env.episode_length()), (2.0, 1));
        env.step(&1).unwrap();
        let last = env.last_episode();
        assert!(env.step(&1).is_err(), "stepping after the end is an error");
        assert_eq!(env.last_episode(), last);
        assert_eq!(env.total_steps(), 2);
        assert_eq!(env.render_text().as_deref(), Some("t = 2\n"));
        assert_eq!(env.max_episode_steps(), Some(1000));
        assert_eq!(env.into_inner().max_episode_steps(), Some(1000));
    }
}
