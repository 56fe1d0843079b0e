//! Gymnasium-faithful reinforcement-learning environments.
//!
//! * [`Env`]: the step trait (Gymnasium 1.x semantics: `reset(seed)`, `step(&action)` with
//!   distinct `terminated` and `truncated`), with typed extras instead of an info dict.
//! * [`Space`]: `Discrete`, `Box` and `MultiDiscrete` spaces.
//! * Built-in envs in [`classic_control`] and [`toy_text`], and the [`mdp::FiniteMdp`]
//!   type, numerically the same as Gymnasium 1.4; MinAtar-style pixel games in [`minatar`].
//! * [`wrappers`], [`vector`] envs, [`check_env`], and the [`registry`] behind [`make`].
//!
//! This crate has no tensor types: observations are plain arrays, written into `f32`
//! buffers for neural agents through [`FlatObs`] and [`DynEnv`].

pub mod checker;
pub mod classic_control;
mod dyn_env;
mod env;
mod error;
pub mod mdp;
pub mod minatar;
pub mod registry;
pub mod render;
mod space;
pub mod toy_text;
pub mod vector;
pub mod wrappers;

pub use checker::{check_env, CheckReport};
pub use dyn_env::{DynEnv, StepOutcome};
pub use env::{
    check_discrete, check_finite, entropy_rng, reseed, ActionRef, Env, EnvAction, EnvRng, FlatObs,
    Step,
};
pub use error::{EnvError, EpisodePhase, Result};
pub use registry::{make, register, register_spec, registered, spec, EnvSpec, Registry, Success};
pub use render::Frame;
pub use space::{BoxSpace, Space, SpaceSample};
