//! Wrappers: generic structs that hold an env, delegate to it and change one thing.
//!
//! Each has `inner()`, `inner_mut()` and `into_inner()` to reach the wrapped env; a
//! constructor whose parameter can be out of range returns [`crate::EnvError::InvalidConfig`].
//! A wrapper allocates nothing per step (beyond what cloning the inner observation costs),
//! passes every error of the inner env through, and changes none of its own state when the
//! inner env returns an error.
//!
//! | wrapper | Gymnasium |
//! |---|---|
//! | [`TimeLimit`] | `TimeLimit` |
//! | [`OrderEnforcing`] | `OrderEnforcing` |
//! | [`EpisodeStatistics`] | `RecordEpisodeStatistics` |
//! | [`NormalizeObservation`] | `NormalizeObservation` |
//! | [`ScaleReward`] | `TransformReward(env, lambda r: factor * r)` |
//! | [`ClipReward`] | `ClipReward` |
//! | [`NormalizeReward`] | `NormalizeReward` |
//! | [`FrameStack`] | `FrameStackObservation` (padding `"reset"`) |
//! | [`OneHot`] | `FlattenObservation` on a `Discrete` space |
//! | [`ActionRepeat`] | the frame skip of `MaxAndSkipObservation`, without the max |

/// The `inner`, `inner_mut` and `into_inner` accessors of a wrapper whose field is `env: E`.
macro_rules! inner_accessors {
    () => {
        /// The wrapped env.
        pub fn inner(&self) -> &E {
            &self.env
        }

        /// The wrapped env, mutably. Stepping or resetting it directly bypasses this wrapper.
        pub fn inner_mut(&mut self) -> &mut E {
            &mut self.env
        }

        /// Unwraps.
        pub fn into_inner(self) -> E {
            self.env
        }
    };
}

/// Forwards `observation_space` and `action_space` to `self.env`.
macro_rules! delegate_spaces {
    () => {
        fn observation_space(&self) -> $crate::space::Space {
            self.env.observation_space()
        }

        fn action_space(&self) -> $crate::space::Space {
            self.env.action_space()
        }
    };
}

/// Forwards `render_text` and `render_rgb` to `self.env`.
macro_rules! delegate_render {
    () => {
        fn render_text(&self) -> Option<String> {
            self.env.render_text()
        }

        fn render_rgb(&self) -> Option<$crate::render::Frame> {
            self.env.render_rgb()
        }
    };
}

/// Forwards `render_text`, `render_rgb` and `max_episode_steps` to `self.env`.
macro_rules! delegate_render_and_limit {
    () => {
        delegate_render!();

        fn max_episode_steps(&self) -> Option<usize> {
            self.env.max_episode_steps()
        }
    };
}

/// Forwards `transition_model` to `self.env` (for wrappers that change neither rewards nor
/// dynamics).
macro_rules! delegate_model {
    () => {
        fn transition_model(&self) -> Option<&$crate::mdp::TransitionModel> {
            self.env.transition_model()
        }
    };
}

mod action_repeat;
mod clip_reward;
mod episode_statistics;
mod frame_stack;
mod normalize_observation;
mod normalize_reward;
mod one_hot;
mod order_enforcing;
mod running_mean_std;
mod scale_reward;
mod time_limit;

#[cfg(test)]
pub(crate) mod test_envs;

pub use action_repeat::ActionRepeat;
pub use clip_reward::ClipReward;
pub use episode_statistics::{EpisodeRecord, EpisodeStatistics};
pub use frame_stack::FrameStack;
pub use normalize_observation::NormalizeObservation;
pub use normalize_reward::NormalizeReward;
pub use one_hot::{OneHot, OneHotObs};
pub use order_enforcing::OrderEnforcing;
pub use running_mean_std::RunningMeanStd;
pub use scale_reward::ScaleReward;
pub use time_limit::TimeLimit;

#[cfg(test)]
mod tests {
    use super::test_envs::{allocations_in, small_mdp, Counter};
    use super::*;
    use crate::env::Env;

    #[test]
    fn a_stack_of_wrappers_steps_without_allocating() {
        let env = TimeLimit::new(Counter::new(None), 7);
        let env = NormalizeObservation::new(env).unwrap();
        let env = NormalizeReward::new(env).unwrap();
        let env = ScaleReward::new(env, 0.5).unwrap();
        let env = ClipReward::new(env, -1.0, 1.0).unwrap();
        let env = ActionRepeat::new(env, 2).unwrap();
        let mut env = FrameStack::<_, 4>::new(EpisodeStatistics::new(env));
        let mut tabular = EpisodeStatistics::new(OneHot::new(small_mdp()).unwrap());
        env.reset(Some(0));
        tabular.reset(Some(0));
        let n = allocations_in(|| {
            for _ in 0..20 {
                match env.step(&1) {
                    Ok(s) if s.done() => drop(env.reset(None)),
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                }
                match tabular.step(&0) {
                    Ok(s) if s.done() => drop(tabular.reset(None)),
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        });
        assert_eq!(n, 0);
        // 20 steps of 2 inner steps, truncated every 7 inner steps: 5 episodes.
        assert_eq!(env.inner().episode_count(), 5);
        assert!(env.inner().recent().all(|r| r.length == 4));
    }
}
