//! Vector envs: N copies of an env stepped together, their observations written into one
//! contiguous `f32` buffer (row `i` = env `i`) ready to become a `[n_envs, obs_len]` tensor.
//!
//! ```
//! use deeprl_envs::registry::{EnvSpec, Registry};
//! use deeprl_envs::vector::{Execution, VecActions, VecEnv};
//! # use deeprl_envs::{Env, Result, Space, Step};
//! # #[derive(Default)]
//! # struct Coin { t: usize }
//! # impl Env for Coin {
//! #     type Obs = [f32; 1];
//! #     type Action = usize;
//! #     fn observation_space(&self) -> Space { Space::boxed(vec![0.0], vec![10.0]) }
//! #     fn action_space(&self) -> Space { Space::discrete(2) }
//! #     fn reset(&mut self, _seed: Option<u64>) -> [f32; 1] { self.t = 0; [0.0] }
//! #     fn step(&mut self, a: &usize) -> Result<Step<[f32; 1]>> {
//! #         self.t += 1;
//! #         let obs = [self.t as f32];
//! #         Ok(Step { obs, reward: *a as f64, terminated: false, truncated: false })
//! #     }
//! # }
//! let mut registry = Registry::new();
//! registry.register_spec(EnvSpec::new("Coin-v0").with_time_limit(2), Coin::default)?;
//! let mut envs = VecEnv::try_new(4, || registry.make("Coin-v0"), Execution::Parallel)?;
//! envs.reset(Some(42))?;
//! envs.step(VecActions::Discrete(&[0, 1, 1, 0]))?;
//! let step = envs.step(VecActions::Discrete(&[1, 1, 1, 1]))?;
//! assert_eq!(step.truncated, &[true; 4]);
//! assert_eq!(step.final_obs_row(0), Some(&[2.0][..])); // the last observation of the episode
//! assert_eq!(step.obs_row(0), &[0.0]); // the first observation of the next one
//! # Ok::<(), deeprl_envs::EnvError>(())
//! ```

mod types;
mod vec_env;

#[cfg(test)]
mod tests;

pub use types::{Execution, VecActions, VecStep};
pub use vec_env::VecEnv;
