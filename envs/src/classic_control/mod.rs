//! Classic control: CartPole, MountainCar, MountainCarContinuous, Acrobot, Pendulum.
//!
//! Each env reproduces Gymnasium 1.4.0 step for step: the same constants, the same order of
//! floating-point operations, the same float32/float64 mix (numpy-2 promotion rules are
//! replayed where Gymnasium mixes the two), the same reset distributions (drawn from the
//! env's own [`crate::EnvRng`]). Sines, cosines and powers come from the pure-Rust `libm`
//! crate rather than the platform's C library, so that a seed gives the same episode, bit for
//! bit, on every platform (glibc, which Gymnasium used, agrees with it to within one ulp). Conformance tests against recorded Gymnasium trajectories
//! live in the root package (`tests/conformance_classic_control.rs`).
//!
//! Besides the [`crate::Env`] trait, every env has `state()` / `set_state()` on its internal
//! `f64` state (Gymnasium's `env.unwrapped.state`) and `observation()` for the observation of
//! the current state.

mod acrobot;
mod cartpole;
mod drawing;
mod mountain_car;
mod mountain_car_continuous;
mod pendulum;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::MountainCar;
pub use mountain_car_continuous::MountainCarContinuous;
pub use pendulum::Pendulum;

use crate::env::EnvRng;
use crate::error::{EnvError, Result};
use crate::registry::{EnvSpec, Registry, Success};
use rand::Rng;

/// Registers the classic-control ids with Gymnasium 1.4's time limits and thresholds.
pub(crate) fn register_builtins(registry: &mut Registry) {
    let results = [
        registry.register_spec(
            EnvSpec::new("CartPole-v1").with_time_limit(500).with_reward_threshold(475.0),
            CartPole::new,
        ),
        registry.register_spec(
            EnvSpec::new("MountainCar-v0")
                .with_time_limit(200)
                .with_reward_threshold(-110.0)
                .with_success(Success::Terminated),
            MountainCar::new,
        ),
        registry.register_spec(
            EnvSpec::new("MountainCarContinuous-v0")
                .with_time_limit(999)
                .with_reward_threshold(90.0)
                .with_success(Success::Terminated),
            MountainCarContinuous::new,
        ),
        registry.register_spec(
            EnvSpec::new("Acrobot-v1")
                .with_time_limit(500)
                .with_reward_threshold(-100.0)
                .with_success(Success::Terminated),
            Acrobot::new,
        ),
        registry.register_spec(EnvSpec::new("Pendulum-v1").with_time_limit(200), Pendulum::new),
    ];
    for result in results {
        result.expect("built-in ids are unique");
    }
}

/// numpy's `Generator.uniform(low, high)`: `low + (high - low) * u` with `u` uniform in
/// `[0, 1)` (53 random bits).
pub(crate) fn uniform(rng: &mut EnvRng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// Rejects a state with a NaN or infinite entry; `names` label the entries in the message.
pub(crate) fn check_state(state: &[f64], names: &[&str]) -> Result<()> {
    match state.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(EnvError::InvalidState(format!(
            "{} = {} is not a finite number (state {state:?})",
            names.get(i).copied().unwrap_or("entry"),
            state[i]
        ))),
    }
}

/// `x**2` of a float64 numpy scalar. numpy calls C `pow(x, 2.0)`; glibc's `pow` (error below
/// 0.52 ulp) rounds one ulp away from the exact `x * x` in rare cases (3 rewards of 2959
/// recorded Pendulum steps, within the conformance tolerances). The envs use the portable
/// `libm` crate for every transcendental function, so a seed gives the same episode on every
/// platform; its `pow` returns `x * x` for an exponent of 2.
pub(crate) fn numpy_square(x: f64) -> f64 {
    libm::pow(x, 2.0)
}

/// `x**2` of a float32 numpy scalar (C `powf(x, 2.0f)`); see [`numpy_square`].
pub(crate) fn numpy_square_f32(x: f32) -> f32 {
    libm::powf(x, 2.0)
}
