//! MountainCarContinuous: the mountain car with a continuous force and an energy cost.
//!
//! Moore's mountain-car task (PhD thesis, University of Cambridge, 1990) as Gymnasium 1.4.0's
//! `Continuous_MountainCarEnv` (`MountainCarContinuous-v0`). With `f = clip(a, −1, 1)`:
//!
//! ```text
//! v ← clip(v + f·0.0015 − 0.0025·cos(3x), −0.07, 0.07)
//! x ← clip(x + v, −1.2, 0.6);   v ← 0 if x = −1.2 and v < 0
//! ```
//!
//! The episode terminates when `x ≥ 0.45` and `v ≥ 0`; the reward is `100·[terminated] −
//! 0.1·a²` with the *unclipped* action `a`. Reset draws `x` uniformly from `[-0.6, -0.4)`
//! with `v = 0`.
//!
//! Precision, as in Gymnasium under numpy 2's promotion rules: `reset` stores the state as
//! `f64`, but every step stores it as `f32`; the action is an `f32`, so `f·0.0015` is an `f32`
//! product when the action was inside `[-1, 1]` (a Python `float` product when clipping
//! replaced it by ±1.0), and a step from an `f32` state does its arithmetic in `f32`. This
//! file replays those rules and matches Gymnasium bit for bit.

use super::check_state;
use super::mountain_car::{mountain_observation_space, render_mountain};
use super::uniform;
use crate::env::{check_finite, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EpisodePhase, Result};
use crate::render::Frame;
use crate::space::Space;

/// The continuous mountain-car task (Gymnasium's `MountainCarContinuous-v0`, without its
/// time limit).
#[derive(Debug, Clone)]
pub struct MountainCarContinuous {
    state: [f64; 2],
    /// True when the state is held as `f32` values (after a step), as Gymnasium's
    /// `np.float32` array; false after `reset` and `set_state` (`np.float64`).
    stored_f32: bool,
    rng: EnvRng,
    phase: EpisodePhase,
}

/// A Python value inside Gymnasium's step: an `np.float32` or a (strong or weak) float64.
#[derive(Clone, Copy)]
enum Num {
    F32(f32),
    F64(f64),
}

impl MountainCarContinuous {
    pub const MIN_ACTION: f64 = -1.0;
    pub const MAX_ACTION: f64 = 1.0;
    pub const MIN_POSITION: f64 = -1.2;
    pub const MAX_POSITION: f64 = 0.6;
    pub const MAX_SPEED: f64 = 0.07;
    pub const GOAL_POSITION: f64 = 0.45;
    pub const GOAL_VELOCITY: f64 = 0.0;
    pub const POWER: f64 = 0.0015;
    /// The hill coefficient, a literal in Gymnasium's `step()`.
    pub const HILL: f64 = 0.0025;
    /// Names of the state entries, in order.
    pub const STATE_NAMES: [&'static str; 2] = ["position", "velocity"];

    /// A new env seeded from OS entropy; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        MountainCarContinuous {
            state: [0.0; 2],
            stored_f32: false,
            rng: entropy_rng(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// The internal state `[position, velocity]` (values of `f32` after a step).
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Sets the internal state, held as `f64` as after `reset` (assigning a float64 array to
    /// Gymnasium's `env.unwrapped.state`), and puts the env inside a running episode.
    /// Non-finite values are rejected.
    pub fn set_state(&mut self, state: [f64; 2]) -> Result<()> {
        check_state(&state, &Self::STATE_NAMES)?;
        self.state = state;
        self.stored_f32 = false;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// Sets the internal state held as `f32`, the way every step stores it, and puts the env
    /// inside a running episode: the next step continues exactly as Gymnasium continues from
    /// a stepped state. Non-finite values are rejected.
    pub fn set_state_f32(&mut self, state: [f32; 2]) -> Result<()> {
        let wide = state.map(f64::from);
        check_state(&wide, &Self::STATE_NAMES)?;
        self.state = wide;
        self.stored_f32 = true;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// True when the state is held as `f32` (after a step or [`Self::set_state_f32`]).
    pub fn state_is_f32(&self) -> bool {
        self.stored_f32
    }

    /// The observation of the current state: the state cast to `f32`.
    pub fn observation(&self) -> [f32; 2] {
        self.state.map(|v| v as f32)
    }

    /// One step from an `f64` state: every operation is float64 except the `f32` increment.
    fn step_from_f64(&self, increment: Num) -> ([f64; 2], bool) {
        let [mut position, mut velocity] = self.state;
        velocity += match increment {
            Num::F32(v) => f64::from(v),
            Num::F64(v) => v,
        };
        velocity = velocity.clamp(-Self::MAX_SPEED, Self::MAX_SPEED);
        position += velocity;
        position = position.clamp(Self::MIN_POSITION, Self::MAX_POSITION);
        if position == Self::MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        let terminated = position >= Self::GOAL_POSITION && velocity >= Self::GOAL_VELOCITY;
        ([position, velocity].map(|v| f64::from(v as f32)), terminated)
    }

    /// One step from an `f32` state: numpy-2 computes with `np.float32` and turns every
    /// Python float it meets into `f32` first (constants and clipped values alike).
    fn step_from_f32(&self, increment: Num) -> ([f64; 2], bool) {
        let [mut position, mut velocity] = self.state.map(|v| v as f32);
        velocity += match increment {
            Num::F32(v) => v,
            Num::F64(v) => v as f32,
        };
        let max_speed = Self::MAX_SPEED as f32;
        velocity = velocity.clamp(-max_speed, max_speed);
        position += velocity;
        let min_position = Self::MIN_POSITION as f32;
        position = position.clamp(min_position, Self::MAX_POSITION as f32);
        if position == min_position && velocity < 0.0 {
            velocity = 0.0;
        }
        let terminated =
            position >= Self::GOAL_POSITION as f32 && velocity >= Self::GOAL_VELOCITY as f32;
        ([f64::from(position), f64::from(velocity)], terminated)
    }
}

impl Default for MountainCarContinuous {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for MountainCarContinuous {
    type Obs = [f32; 2];
    type Action = [f32; 1];

    fn observation_space(&self) -> Space {
        mountain_observation_space()
    }

    fn action_space(&self) -> Space {
        Space::boxed(vec![Self::MIN_ACTION as f32], vec![Self::MAX_ACTION as f32])
    }

    fn reset(&mut self, seed: Option<u64>) -> [f32; 2] {
        reseed(&mut self.rng, seed);
        self.state = [uniform(&mut self.rng, -0.6, -0.4), 0.0];
        self.stored_f32 = false;
        self.phase = EpisodePhase::Running;
        self.observation()
    }

    fn step(&mut self, action: &[f32; 1]) -> Result<Step<[f32; 2]>> {
        check_finite(action)?;
        self.phase.check_step()?;
        let a = action[0];
        // `3 * position` is a float32 product when the state is float32; math.cos is float64.
        let three_x = if self.stored_f32 {
            f64::from(3.0 * self.state[0] as f32)
        } else {
            3.0 * self.state[0]
        };
        let hill = Self::HILL * libm::cos(three_x);
        // `min(max(a, -1.0), 1.0)` keeps the np.float32 unless a bound replaces it.
        let increment = if f64::from(a) < Self::MIN_ACTION || f64::from(a) > Self::MAX_ACTION {
            Num::F64(f64::from(a).clamp(Self::MIN_ACTION, Self::MAX_ACTION) * Self::POWER - hill)
        } else {
            Num::F32(a * Self::POWER as f32 - hill as f32)
        };
        let (state, terminated) = if self.stored_f32 {
            self.step_from_f32(increment)
        } else {
            self.step_from_f64(increment)
        };
        self.state = state;
        self.stored_f32 = true;
        self.phase = EpisodePhase::after_step(terminated, false);
        let cost = f64::from(a) * f64::from(a) * 0.1;
        let reward = if terminated { 100.0 - cost } else { -cost };
        Ok(Step { obs: self.observation(), reward, terminated, truncated: false })
    }

    fn render_text(&self) -> Option<String> {
        let [position, velocity] = self.state;
        Some(format!("position={position:.4} velocity={velocity:.5}"))
    }

    fn render_rgb(&self) -> Option<Frame> {
        Some(render_mountain(self.state[0], Self::GOAL_POSITION))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_is_inside_its_distribution_and_seeded() {
        let mut env = MountainCarContinuous::new();
        for seed in 0..200 {
            env.reset(Some(seed));
            let [x, v] = env.state();
            assert!((-0.6..-0.4).contains(&x) && v == 0.0 && !env.state_is_f32());
        }
        let first = env.reset(Some(2));
        assert_ne!(env.reset(None), first);
        assert_eq!(env.reset(Some(2)), first);
    }

    #[test]
    fn state_becomes_f32_and_reward_uses_the_unclipped_action() {
        let mut env = MountainCarContinuous::new();
        env.set_state([-0.5123456789, 0.0]).unwrap();
        let s = env.step(&[1.5]).unwrap();
        assert!(env.state_is_f32());
        assert_eq!(env.state().map(|v| v as f32), s.obs);
        assert_eq!(env.state().map(|v| f64::from(v as f32)), env.state());
        assert_eq!(s.reward, -(1.5f64 * 1.5 * 0.1));
        // The force was clipped: a push of 1.5 moves the car as a push of 1.0 does.
        let mut other = MountainCarContinuous::new();
        other.set_state([-0.5123456789, 0.0]).unwrap();
        assert_eq!(other.step(&[1.0]).unwrap().obs, s.obs);
    }

    #[test]
    fn goal_terminates_with_the_bonus() {
        let mut env = MountainCarContinuous::new();
        env.set_state([0.44, 0.03]).unwrap();
        let s = env.step(&[0.5]).unwrap();
        assert!(s.terminated);
        assert_eq!(s.reward, 100.0 - f64::from(0.5f32).powi(2) * 0.1);
        assert!(env.step(&[0.5]).is_err());
    }

    #[test]
    fn bad_calls_are_errors_and_change_nothing() {
        let mut env = MountainCarContinuous::new();
        assert!(env.step(&[0.0]).is_err());
        env.reset(Some(1));
        env.step(&[0.3]).unwrap();
        let before = (env.state(), env.state_is_f32());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(env.step(&[bad]).is_err());
        }
        assert_eq!((env.state(), env.state_is_f32()), before);
        assert!(env.set_state_f32([f32::NAN, 0.0]).is_err());
        assert_eq!((env.state(), env.state_is_f32()), before);
    }

    #[test]
    fn frame_follows_the_state() {
        let mut env = MountainCarContinuous::new();
        env.set_state([-0.5, 0.0]).unwrap();
        let a = env.render_rgb().unwrap();
        env.set_state([0.2, 0.0]).unwrap();
        let b = env.render_rgb().unwrap();
        assert_eq!((a.width, a.height), (600, 400));
        assert_ne!(a, b);
    }
}
