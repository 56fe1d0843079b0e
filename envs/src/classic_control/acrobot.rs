//! Acrobot: swing the tip of a two-link pendulum, actuated at the middle joint only, above a
//! line.
//!
//! The acrobot of Sutton, "Generalization in Reinforcement Learning: Successful Examples
//! Using Sparse Coarse Coding" (NIPS 1996) and Sutton & Barto, *Reinforcement Learning: An
//! Introduction* (the "book" dynamics), as Gymnasium 1.4.0's `AcrobotEnv` (`Acrobot-v1`).
//! Both links have length 1, mass 1, centre of mass at 0.5 and moment of inertia 1; `g = 9.8`;
//! the action `a ∈ {0, 1, 2}` applies the torque `τ = a − 1` at the joint. With
//! `d₁ = m₁l꜀₁² + m₂(l₁² + l꜀₂² + 2l₁l꜀₂cos θ₂) + I₁ + I₂`, `d₂ = m₂(l꜀₂² + l₁l꜀₂cos θ₂) + I₂`,
//! `φ₂ = m₂l꜀₂g cos(θ₁ + θ₂ − π/2)` and
//! `φ₁ = −m₂l₁l꜀₂θ̇₂² sin θ₂ − 2m₂l₁l꜀₂θ̇₂θ̇₁ sin θ₂ + (m₁l꜀₁ + m₂l₁)g cos(θ₁ − π/2) + φ₂`:
//!
//! ```text
//! θ̈₂ = (τ + d₂/d₁·φ₁ − m₂l₁l꜀₂θ̇₁² sin θ₂ − φ₂) / (m₂l꜀₂² + I₂ − d₂²/d₁)
//! θ̈₁ = −(d₂θ̈₂ + φ₁) / d₁
//! ```
//!
//! One step is a single classical Runge-Kutta-4 step of `dt = 0.2` s on
//! `[θ₁, θ₂, θ̇₁, θ̇₂, τ]`; then both angles are wrapped into `[-π, π]` and the velocities
//! clipped to `±4π` and `±9π`. The episode terminates when `−cos θ₁ − cos(θ₁ + θ₂) > 1` (the
//! tip is more than one link length above the pivot); the reward is −1 per step and 0 on the
//! terminating step. The observation is `[cos θ₁, sin θ₁, cos θ₂, sin θ₂, θ̇₁, θ̇₂]`, computed
//! in `f64` and cast to `f32`. Reset draws the four state entries uniformly from
//! `[-0.1, 0.1)` and rounds them to `f32`, as Gymnasium stores its reset state as float32.

use super::drawing::{box_corners, FlippedCanvas, BLACK};
use super::{check_state, numpy_square, uniform};
use crate::env::{check_discrete, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EpisodePhase, Result};
use crate::render::Frame;
use crate::space::Space;
use std::f64::consts::PI;

/// The acrobot swing-up task (Gymnasium's `Acrobot-v1`, without its time limit).
#[derive(Debug, Clone)]
pub struct Acrobot {
    state: [f64; 4],
    rng: EnvRng,
    phase: EpisodePhase,
}

impl Acrobot {
    /// Seconds per step.
    pub const DT: f64 = 0.2;
    pub const LINK_LENGTH_1: f64 = 1.0;
    pub const LINK_LENGTH_2: f64 = 1.0;
    pub const LINK_MASS_1: f64 = 1.0;
    pub const LINK_MASS_2: f64 = 1.0;
    /// Position of the centre of mass of link 1.
    pub const LINK_COM_POS_1: f64 = 0.5;
    /// Position of the centre of mass of link 2.
    pub const LINK_COM_POS_2: f64 = 0.5;
    /// Moment of inertia of both links.
    pub const LINK_MOI: f64 = 1.0;
    pub const MAX_VEL_1: f64 = 4.0 * PI;
    pub const MAX_VEL_2: f64 = 9.0 * PI;
    /// The torque of each action.
    pub const AVAIL_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];
    /// Gravity, a literal in Gymnasium's `_dsdt`.
    pub const GRAVITY: f64 = 9.8;
    /// Names of the state entries, in order.
    pub const STATE_NAMES: [&'static str; 4] = ["theta1", "theta2", "dtheta1", "dtheta2"];

    /// A new env seeded from OS entropy; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        Acrobot { state: [0.0; 4], rng: entropy_rng(), phase: EpisodePhase::NeedsReset }
    }

    /// The internal state `[theta1, theta2, dtheta1, dtheta2]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Sets the internal state and puts the env inside a running episode. Non-finite values
    /// are rejected; angles outside `[-π, π]` and fast velocities are accepted, as Gymnasium
    /// does (the next step wraps and clips them).
    pub fn set_state(&mut self, state: [f64; 4]) -> Result<()> {
        check_state(&state, &Self::STATE_NAMES)?;
        self.state = state;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// The observation of the current state.
    pub fn observation(&self) -> [f32; 6] {
        let [t1, t2, dt1, dt2] = self.state;
        [libm::cos(t1), libm::sin(t1), libm::cos(t2), libm::sin(t2), dt1, dt2].map(|v| v as f32)
    }

    fn terminal(&self) -> bool {
        let [t1, t2, _, _] = self.state;
        -libm::cos(t1) - libm::cos(t2 + t1) > 1.0
    }

    /// Gymnasium's `_dsdt` ("book" dynamics), in its order of operations.
    fn derivatives(s: [f64; 5]) -> [f64; 5] {
        let (m1, m2) = (Self::LINK_MASS_1, Self::LINK_MASS_2);
        let l1 = Self::LINK_LENGTH_1;
        let (lc1, lc2) = (Self::LINK_COM_POS_1, Self::LINK_COM_POS_2);
        let (i1, i2) = (Self::LINK_MOI, Self::LINK_MOI);
        let g = Self::GRAVITY;
        let [theta1, theta2, dtheta1, dtheta2, a] = s;
        let (sin2, cos2) = libm::sincos(theta2);
        let d1 = m1 * (lc1 * lc1) + m2 * (l1 * l1 + lc2 * lc2 + 2.0 * l1 * lc2 * cos2) + i1 + i2;
        let d2 = m2 * (lc2 * lc2 + l1 * lc2 * cos2) + i2;
        let phi2 = m2 * lc2 * g * libm::cos(theta1 + theta2 - PI / 2.0);
        let phi1 = -m2 * l1 * lc2 * numpy_square(dtheta2) * sin2
            - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
            + (m1 * lc1 + m2 * l1) * g * libm::cos(theta1 - PI / 2.0)
            + phi2;
        let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * numpy_square(dtheta1) * sin2 - phi2)
            / (m2 * (lc2 * lc2) + i2 - numpy_square(d2) / d1);
        let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
        [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
    }

    /// One classical RK4 step of size `dt` (Gymnasium's `rk4` with `t = [0, dt]`).
    fn rk4(y0: [f64; 5], dt: f64) -> [f64; 5] {
        let dt2 = dt / 2.0;
        let shifted = |k: &[f64; 5], h: f64| std::array::from_fn(|i| y0[i] + h * k[i]);
        let k1 = Self::derivatives(y0);
        let k2 = Self::derivatives(shifted(&k1, dt2));
        let k3 = Self::derivatives(shifted(&k2, dt2));
        let k4 = Self::derivatives(shifted(&k3, dt));
        std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
    }
}

/// Gymnasium's `wrap`: moves `x` into `[m, M]` by whole periods `M − m`.
fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

impl Default for Acrobot {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for Acrobot {
    type Obs = [f32; 6];
    type Action = usize;

    fn observation_space(&self) -> Space {
        let (v1, v2) = (Self::MAX_VEL_1 as f32, Self::MAX_VEL_2 as f32);
        Space::boxed(vec![-1.0, -1.0, -1.0, -1.0, -v1, -v2], vec![1.0, 1.0, 1.0, 1.0, v1, v2])
    }

    fn action_space(&self) -> Space {
        Space::discrete(3)
    }

    fn reset(&mut self, seed: Option<u64>) -> [f32; 6] {
        reseed(&mut self.rng, seed);
        for v in &mut self.state {
            *v = f64::from(uniform(&mut self.rng, -0.1, 0.1) as f32);
        }
        self.phase = EpisodePhase::Running;
        self.observation()
    }

    fn step(&mut self, action: &usize) -> Result<Step<[f32; 6]>> {
        check_discrete(*action, 3)?;
        self.phase.check_step()?;
        let [t1, t2, dt1, dt2] = self.state;
        let torque = Self::AVAIL_TORQUE[*action];
        let ns = Self::rk4([t1, t2, dt1, dt2, torque], Self::DT);
        self.state = [
            wrap(ns[0], -PI, PI),
            wrap(ns[1], -PI, PI),
            ns[2].clamp(-Self::MAX_VEL_1, Self::MAX_VEL_1),
            ns[3].clamp(-Self::MAX_VEL_2, Self::MAX_VEL_2),
        ];
        let terminated = self.terminal();
        self.phase = EpisodePhase::after_step(terminated, false);
        Ok(Step {
            obs: self.observation(),
            reward: if terminated { 0.0 } else { -1.0 },
            terminated,
            truncated: false,
        })
    }

    fn render_text(&self) -> Option<String> {
        let [t1, t2, dt1, dt2] = self.state;
        Some(format!("theta1={t1:.4} theta2={t2:.4} dtheta1={dt1:.4} dtheta2={dt2:.4}"))
    }

    /// Gymnasium's 500x500 picture: the two cyan links with yellow joints and the target line.
    fn render_rgb(&self) -> Option<Frame> {
        let dim = 500.0;
        let [s0, s1, _, _] = self.state;
        let (l1, l2) = (Self::LINK_LENGTH_1, Self::LINK_LENGTH_2);
        let bound = l1 + l2 + 0.2;
        let scale = dim / (bound * 2.0);
        let offset = dim / 2.0;
        let p1 = (-l1 * s0.cos() * scale, l1 * s0.sin() * scale);
        let p2 = (p1.0 - l2 * (s0 + s1).cos() * scale, p1.1 + l2 * (s0 + s1).sin() * scale);
        // Gymnasium reverses each point's coordinates (`[:, ::-1]`).
        let joints = [(0.0, 0.0), (p1.1, p1.0), (p2.1, p2.0)];
        let thetas = [s0 - PI / 2.0, s0 + s1 - PI / 2.0];
        let lengths = [l1 * scale, l2 * scale];
        let mut c = FlippedCanvas::new(dim as u32, dim as u32);
        let line_y = scale + offset;
        c.line((-2.2 * scale + offset, line_y), (2.2 * scale + offset, line_y), 1.0, BLACK);
        for ((&(x, y), &th), &len) in joints.iter().zip(&thetas).zip(&lengths) {
            let origin = (x + offset, y + offset);
            let link = [0.0, len, 0.1 * scale, -0.1 * scale];
            c.polygon(&box_corners(link, th, origin), [0, 204, 204]);
            let centre = (origin.0.trunc(), origin.1.trunc());
            c.circle(centre, (0.1 * scale).trunc(), [204, 204, 0]);
        }
        Some(c.canvas.into_frame())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EnvError;

    #[test]
    fn reset_is_float32_inside_its_distribution_and_seeded() {
        let mut env = Acrobot::new();
        let edge = f64::from(0.1f32);
        for seed in 0..200 {
            let obs = env.reset(Some(seed));
            for v in env.state() {
                assert!((-edge..=edge).contains(&v));
                assert_eq!(f64::from(v as f32), v, "reset state is float32");
            }
            assert!(env.observation_space().contains_values(&obs));
        }
        let first = env.reset(Some(4));
        assert_ne!(env.reset(None), first);
        assert_eq!(env.reset(Some(4)), first);
    }

    #[test]
    fn resting_acrobot_stays_down_and_angles_wrap() {
        let mut env = Acrobot::new();
        env.set_state([0.0; 4]).unwrap();
        let s = env.step(&1).unwrap();
        // cos(-pi/2) is not exactly 0 in floating point, so the rest is only nearly exact.
        assert!(env.state().iter().all(|v| v.abs() < 1e-15), "{:?}", env.state());
        assert_eq!((s.reward, s.terminated), (-1.0, false));
        assert_eq!(s.obs[0], 1.0);
        env.set_state([3.1, 0.0, 2.0, 0.0]).unwrap();
        env.step(&1).unwrap();
        assert!(env.state()[0] < 0.0, "theta1 wrapped past pi");
        env.set_state([0.0, 0.0, 100.0, -100.0]).unwrap();
        env.step(&1).unwrap();
        let [_, _, v1, v2] = env.state();
        assert!(v1.abs() <= Acrobot::MAX_VEL_1 && v2.abs() <= Acrobot::MAX_VEL_2);
    }

    #[test]
    fn tip_above_the_line_terminates_with_zero_reward() {
        let mut env = Acrobot::new();
        env.set_state([PI, 0.0, 0.0, 0.0]).unwrap();
        let s = env.step(&1).unwrap();
        assert_eq!((s.reward, s.terminated), (0.0, true));
        assert!(matches!(env.step(&1), Err(EnvError::StepAfterEpisodeEnd { .. })));
    }

    #[test]
    fn bad_calls_are_errors_and_change_nothing() {
        let mut env = Acrobot::new();
        assert_eq!(env.step(&0), Err(EnvError::StepBeforeReset));
        env.reset(Some(0));
        let before = env.state();
        assert!(matches!(env.step(&3), Err(EnvError::InvalidAction { .. })));
        assert_eq!(env.state(), before);
        assert!(env.set_state([0.0, 0.0, f64::NAN, 0.0]).is_err());
        assert_eq!(env.state(), before);
    }

    #[test]
    fn frame_has_gymnasium_size_and_follows_the_state() {
        let mut env = Acrobot::new();
        env.set_state([0.0; 4]).unwrap();
        let a = env.render_rgb().unwrap();
        assert_eq!((a.width, a.height, a.rgb.len()), (500, 500, 500 * 500 * 3));
        // Hanging down, the first link is cyan just below the pivot.
        assert_eq!(a.pixel(250, 300), [0, 204, 204]);
        env.set_state([1.0, 0.5, 0.0, 0.0]).unwrap();
        let b = env.render_rgb().unwrap();
        assert_ne!(a, b);
        assert!(env.render_text().unwrap().starts_with("theta1=1.0000"));
    }
}
