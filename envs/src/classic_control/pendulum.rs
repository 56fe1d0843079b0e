//! Pendulum: swing a frictionless pendulum up and hold it upright with a limited torque.
//!
//! The classic inverted-pendulum swing-up problem as Gymnasium 1.4.0's `PendulumEnv`
//! (`Pendulum-v1`): mass `m = 1`, length `l = 1`, gravity `g = 10` by default, `dt = 0.05` s,
//! torque `u = clip(a, −2, 2)`. The reward is computed from the state *before* the step,
//!
//! ```text
//! r = −(norm(θ)² + 0.1·θ̇² + 0.001·u²),   norm(θ) = ((θ + π) mod 2π) − π
//! ```
//!
//! then the step is semi-implicit Euler:
//!
//! ```text
//! θ̇ ← clip(θ̇ + (3g/(2l)·sin θ + 3/(m l²)·u)·dt, −8, 8)
//! θ ← θ + θ̇·dt                                  (θ is never wrapped)
//! ```
//!
//! The episode never terminates (Gymnasium's registry truncates it after 200 steps). The
//! observation is `[cos θ, sin θ, θ̇]`, computed in `f64` and cast to `f32`. Reset draws `θ`
//! uniformly from `[-π, π)` and `θ̇` from `[-1, 1)`.
//!
//! Precision, as in Gymnasium under numpy 2's promotion rules: the action is an `f32`, so
//! `3/(m l²)·u` and `0.001·u²` are `f32` products, added to the `f64` terms; the squares in
//! the reward are C `pow(x, 2)` calls, as numpy's `x**2` on scalars. With both replayed the
//! recorded trajectories are matched bit for bit.

use super::drawing::{box_corners, rotate, FlippedCanvas, BLACK};
use super::{check_state, numpy_square, numpy_square_f32, uniform};
use crate::env::{check_finite, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EnvError, EpisodePhase, Result};
use crate::render::Frame;
use crate::space::Space;
use std::f64::consts::PI;

/// The pendulum swing-up task (Gymnasium's `Pendulum-v1`, without its time limit).
#[derive(Debug, Clone)]
pub struct Pendulum {
    state: [f64; 2],
    g: f64,
    /// The last clipped torque, drawn as an arc by `render_rgb`.
    last_u: Option<f32>,
    rng: EnvRng,
    phase: EpisodePhase,
}

impl Pendulum {
    pub const MAX_SPEED: f64 = 8.0;
    pub const MAX_TORQUE: f64 = 2.0;
    /// Seconds per step.
    pub const DT: f64 = 0.05;
    pub const M: f64 = 1.0;
    pub const L: f64 = 1.0;
    /// Gymnasium's default gravity.
    pub const DEFAULT_GRAVITY: f64 = 10.0;
    /// Names of the state entries, in order.
    pub const STATE_NAMES: [&'static str; 2] = ["theta", "thetadot"];

    /// A new env with `g = 10`, seeded from OS entropy; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        Pendulum {
            state: [0.0; 2],
            g: Self::DEFAULT_GRAVITY,
            last_u: None,
            rng: entropy_rng(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// A new env with gravity `g` (Gymnasium's `g` keyword, e.g. 9.81). `g` must be finite.
    pub fn with_gravity(g: f64) -> Result<Self> {
        if !g.is_finite() {
            return Err(EnvError::InvalidConfig(format!(
                "Pendulum gravity must be a finite number, got {g}"
            )));
        }
        Ok(Pendulum { g, ..Self::new() })
    }

    /// The gravity of this env.
    pub fn gravity(&self) -> f64 {
        self.g
    }

    /// The internal state `[theta, thetadot]` (`theta` not wrapped).
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Sets the internal state and puts the env inside a running episode. Non-finite values
    /// are rejected; any angle and a speed beyond ±8 are accepted, as Gymnasium does.
    pub fn set_state(&mut self, state: [f64; 2]) -> Result<()> {
        check_state(&state, &Self::STATE_NAMES)?;
        self.state = state;
        self.last_u = None;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// The observation of the current state, `[cos θ, sin θ, θ̇]`.
    pub fn observation(&self) -> [f32; 3] {
        let [theta, thetadot] = self.state;
        [libm::cos(theta), libm::sin(theta), thetadot].map(|v| v as f32)
    }
}

/// Gymnasium's `angle_normalize`: `((x + π) mod 2π) − π` with numpy's floored modulo.
fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for Pendulum {
    type Obs = [f32; 3];
    type Action = [f32; 1];

    fn observation_space(&self) -> Space {
        let v = Self::MAX_SPEED as f32;
        Space::boxed(vec![-1.0, -1.0, -v], vec![1.0, 1.0, v])
    }

    fn action_space(&self) -> Space {
        let t = Self::MAX_TORQUE as f32;
        Space::boxed(vec![-t], vec![t])
    }

    fn reset(&mut self, seed: Option<u64>) -> [f32; 3] {
        reseed(&mut self.rng, seed);
        let theta = uniform(&mut self.rng, -PI, PI);
        let thetadot = uniform(&mut self.rng, -1.0, 1.0);
        self.state = [theta, thetadot];
        self.last_u = None;
        self.phase = EpisodePhase::Running;
        self.observation()
    }

    fn step(&mut self, action: &[f32; 1]) -> Result<Step<[f32; 3]>> {
        check_finite(action)?;
        self.phase.check_step()?;
        let [th, thdot] = self.state;
        let (g, m, l, dt) = (self.g, Self::M, Self::L, Self::DT);
        let max_torque = Self::MAX_TORQUE as f32;
        let u: f32 = action[0].clamp(-max_torque, max_torque);
        // `**2` and the float32 products as numpy computes them (see the module doc).
        let costs = numpy_square(angle_normalize(th))
            + 0.1 * numpy_square(thdot)
            + f64::from(0.001f64 as f32 * numpy_square_f32(u));
        let torque_term = f64::from((3.0 / (m * l * l)) as f32 * u);
        let newthdot = thdot + (3.0 * g / (2.0 * l) * libm::sin(th) + torque_term) * dt;
        let newthdot = newthdot.clamp(-Self::MAX_SPEED, Self::MAX_SPEED);
        let newth = th + newthdot * dt;
        self.state = [newth, newthdot];
        self.last_u = Some(u);
        self.phase = EpisodePhase::after_step(false, false);
        Ok(Step { obs: self.observation(), reward: -costs, terminated: false, truncated: false })
    }

    fn render_text(&self) -> Option<String> {
        let [theta, thetadot] = self.state;
        Some(format!("theta={theta:.4} thetadot={thetadot:.4}"))
    }

    /// Gymnasium's 500x500 picture: the red rod from the black pivot, and an arc for the last
    /// torque (Gymnasium draws an arrow image there).
    fn render_rgb(&self) -> Option<Frame> {
        let dim = 500.0;
        let scale = dim / (2.2 * 2.0);
        let offset = (dim / 2.0f64).floor();
        let rod_length = scale;
        let rod_width = 0.2 * scale;
        let red = [204, 77, 77];
        let angle = self.state[0] + PI / 2.0;
        let mut c = FlippedCanvas::new(dim as u32, dim as u32);
        let rod = [0.0, rod_length, rod_width / 2.0, -rod_width / 2.0];
        c.polygon(&box_corners(rod, angle, (offset, offset)), red);
        let radius = (rod_width / 2.0).trunc();
        c.circle((offset, offset), radius, red);
        let (ex, ey) = rotate((rod_length, 0.0), angle);
        c.circle(((ex + offset).trunc(), (ey + offset).trunc()), radius, red);
        if let Some(u) = self.last_u.filter(|u| *u != 0.0) {
            let sweep = f64::from(u) / Self::MAX_TORQUE * 0.75 * PI;
            let arc: Vec<(f64, f64)> = (0..=24)
                .map(|i| {
                    let a = PI / 2.0 + sweep * f64::from(i) / 24.0;
                    (offset + 0.5 * scale * a.cos(), offset + 0.5 * scale * a.sin())
                })
                .collect();
            c.polyline(&arc, 3.0, BLACK);
        }
        c.circle((offset, offset), (0.05 * scale).trunc(), BLACK);
        Some(c.canvas.into_frame())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_is_inside_its_distribution_and_seeded() {
        let mut env = Pendulum::new();
        for seed in 0..200 {
            let obs = env.reset(Some(seed));
            let [th, thdot] = env.state();
            assert!((-PI..PI).contains(&th) && (-1.0..1.0).contains(&thdot));
            assert!(env.observation_space().contains_values(&obs));
        }
        let first = env.reset(Some(9));
        assert_ne!(env.reset(None), first);
        assert_eq!(env.reset(Some(9)), first);
    }

    #[test]
    fn reward_uses_the_pre_step_state_and_the_clipped_torque() {
        let mut env = Pendulum::new();
        env.set_state([0.0, 0.0]).unwrap();
        let s = env.step(&[3.0]).unwrap();
        assert_eq!(s.reward, -f64::from(0.001f32 * 4.0));
        assert!(!s.terminated && !s.truncated);
        // u = 2 (clipped): thetadot = 3 * 2 * 0.05.
        assert!((env.state()[1] - 0.3).abs() < 1e-12);
        assert!((angle_normalize(3.0 * PI).abs() - PI).abs() < 1e-12);
        assert!((angle_normalize(2.0 * PI + 0.5) - 0.5).abs() < 1e-12);
        assert!((angle_normalize(-0.5) + 0.5).abs() < 1e-15);
    }

    #[test]
    fn gravity_is_configurable() {
        assert!(Pendulum::with_gravity(f64::NAN).is_err());
        let mut weak = Pendulum::with_gravity(1.0).unwrap();
        let mut strong = Pendulum::new();
        assert_eq!((weak.gravity(), strong.gravity()), (1.0, 10.0));
        weak.set_state([1.0, 0.0]).unwrap();
        strong.set_state([1.0, 0.0]).unwrap();
        let (w, s) = (weak.step(&[0.0]).unwrap(), strong.step(&[0.0]).unwrap());
        assert!(s.obs[2] > w.obs[2] && w.obs[2] > 0.0);
    }

    #[test]
    fn bad_calls_are_errors_and_change_nothing() {
        let mut env = Pendulum::new();
        assert!(env.step(&[0.0]).is_err());
        env.reset(Some(0));
        let before = env.state();
        assert!(env.step(&[f32::NAN]).is_err());
        assert!(env.step(&[f32::NEG_INFINITY]).is_err());
        assert!(env.set_state([f64::NAN, 0.0]).is_err());
        assert_eq!(env.state(), before);
        for _ in 0..300 {
            assert!(!env.step(&[1.0]).unwrap().done(), "Pendulum never ends");
        }
    }

    #[test]
    fn frame_has_gymnasium_size_and_follows_the_state() {
        let mut env = Pendulum::new();
        env.set_state([0.0, 0.0]).unwrap();
        let a = env.render_rgb().unwrap();
        assert_eq!((a.width, a.height, a.rgb.len()), (500, 500, 500 * 500 * 3));
        // Upright (theta = 0) the rod points up from the pivot at the centre.
        assert_eq!(a.pixel(250, 150), [204, 77, 77]);
        assert_eq!(a.pixel(250, 350), [255, 255, 255]);
        env.set_state([PI, 0.0]).unwrap();
        let b = env.render_rgb().unwrap();
        assert_eq!(b.pixel(250, 350), [204, 77, 77]);
        env.step(&[1.0]).unwrap();
        assert_ne!(env.render_rgb().unwrap(), b);
    }
}
