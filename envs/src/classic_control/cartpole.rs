//! CartPole: balance a pole hinged on a cart that moves along a frictionless track.
//!
//! The cart-pole of Barto, Sutton & Anderson, "Neuronlike adaptive elements that can solve
//! difficult learning control problems" (IEEE SMC, 1983), as Gymnasium 1.4.0's
//! `CartPoleEnv` (`CartPole-v1`). With force `F = ±10` (action 1 pushes right, 0 left),
//! `temp = (F + m_p l θ̇² sin θ) / (m_c + m_p)`,
//!
//! ```text
//! θ̈ = (g sin θ − cos θ · temp) / (l (4/3 − m_p cos²θ / (m_c + m_p)))
//! ẍ = temp − m_p l θ̈ cos θ / (m_c + m_p)
//! ```
//!
//! integrated with explicit Euler over `τ = 0.02` s: `x` and `θ` advance with the *old*
//! velocities, then the velocities with the accelerations. The episode terminates when
//! `|x| > 2.4` or `|θ| > 12°`; the reward is 1 on every step, the terminating one included.
//! The state is `f64`, the observation `[x, ẋ, θ, θ̇]` cast to `f32`. Reset draws every
//! entry uniformly from `[-0.05, 0.05)`.

use super::drawing::{box_corners, FlippedCanvas, BLACK};
use super::{check_state, uniform};
use crate::env::{check_discrete, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EpisodePhase, Result};
use crate::render::Frame;
use crate::space::Space;

/// The cart-pole balancing task (Gymnasium's `CartPole-v1`, without its time limit).
#[derive(Debug, Clone)]
pub struct CartPole {
    state: [f64; 4],
    rng: EnvRng,
    phase: EpisodePhase,
}

impl CartPole {
    pub const GRAVITY: f64 = 9.8;
    pub const MASS_CART: f64 = 1.0;
    pub const MASS_POLE: f64 = 0.1;
    pub const TOTAL_MASS: f64 = Self::MASS_POLE + Self::MASS_CART;
    /// Half the pole's length.
    pub const LENGTH: f64 = 0.5;
    pub const POLE_MASS_LENGTH: f64 = Self::MASS_POLE * Self::LENGTH;
    pub const FORCE_MAG: f64 = 10.0;
    /// Seconds between state updates.
    pub const TAU: f64 = 0.02;
    /// 12 degrees, written as Gymnasium computes it.
    pub const THETA_THRESHOLD_RADIANS: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
    pub const X_THRESHOLD: f64 = 2.4;
    /// Names of the state entries, in order.
    pub const STATE_NAMES: [&'static str; 4] = ["x", "x_dot", "theta", "theta_dot"];

    /// A new env seeded from OS entropy; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        CartPole { state: [0.0; 4], rng: entropy_rng(), phase: EpisodePhase::NeedsReset }
    }

    /// The internal state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Sets the internal state and puts the env inside a running episode (as assigning
    /// Gymnasium's `env.unwrapped.state`). Non-finite values are rejected.
    pub fn set_state(&mut self, state: [f64; 4]) -> Result<()> {
        check_state(&state, &Self::STATE_NAMES)?;
        self.state = state;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// The observation of the current state: the state cast to `f32`.
    pub fn observation(&self) -> [f32; 4] {
        self.state.map(|v| v as f32)
    }

    /// Gymnasium's four comparisons, kept as written (a NaN state does not terminate there).
    #[allow(clippy::manual_range_contains)]
    fn terminal(&self) -> bool {
        let [x, _, theta, _] = self.state;
        x < -Self::X_THRESHOLD
            || x > Self::X_THRESHOLD
            || theta < -Self::THETA_THRESHOLD_RADIANS
            || theta > Self::THETA_THRESHOLD_RADIANS
    }
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for CartPole {
    type Obs = [f32; 4];
    type Action = usize;

    fn observation_space(&self) -> Space {
        let x = (Self::X_THRESHOLD * 2.0) as f32;
        let theta = (Self::THETA_THRESHOLD_RADIANS * 2.0) as f32;
        let inf = f32::INFINITY;
        Space::boxed(vec![-x, -inf, -theta, -inf], vec![x, inf, theta, inf])
    }

    fn action_space(&self) -> Space {
        Space::discrete(2)
    }

    fn reset(&mut self, seed: Option<u64>) -> [f32; 4] {
        reseed(&mut self.rng, seed);
        for v in &mut self.state {
            *v = uniform(&mut self.rng, -0.05, 0.05);
        }
        self.phase = EpisodePhase::Running;
        self.observation()
    }

    fn step(&mut self, action: &usize) -> Result<Step<[f32; 4]>> {
        check_discrete(*action, 2)?;
        self.phase.check_step()?;
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if *action == 1 { Self::FORCE_MAG } else { -Self::FORCE_MAG };
        let (sin_theta, cos_theta) = libm::sincos(theta);
        let temp = (force + Self::POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin_theta)
            / Self::TOTAL_MASS;
        let theta_acc = (Self::GRAVITY * sin_theta - cos_theta * temp)
            / (Self::LENGTH
                * (4.0 / 3.0 - Self::MASS_POLE * (cos_theta * cos_theta) / Self::TOTAL_MASS));
        let x_acc = temp - Self::POLE_MASS_LENGTH * theta_acc * cos_theta / Self::TOTAL_MASS;
        self.state = [
            x + Self::TAU * x_dot,
            x_dot + Self::TAU * x_acc,
            theta + Self::TAU * theta_dot,
            theta_dot + Self::TAU * theta_acc,
        ];
        let terminated = self.terminal();
        self.phase = EpisodePhase::after_step(terminated, false);
        Ok(Step { obs: self.observation(), reward: 1.0, terminated, truncated: false })
    }

    fn render_text(&self) -> Option<String> {
        let [x, x_dot, theta, theta_dot] = self.state;
        Some(format!("x={x:.4} x_dot={x_dot:.4} theta={theta:.4} theta_dot={theta_dot:.4}"))
    }

    /// Gymnasium's 600x400 picture: a black cart on a line, a brown pole, a blue axle.
    fn render_rgb(&self) -> Option<Frame> {
        let (width, height) = (600.0, 400.0);
        let scale = width / (Self::X_THRESHOLD * 2.0);
        let pole_width = 10.0;
        let pole_len = scale * (2.0 * Self::LENGTH);
        let (cart_width, cart_height) = (50.0, 30.0);
        let axle_offset = cart_height / 4.0;
        let cart_x = self.state[0] * scale + width / 2.0;
        let cart_y = 100.0;
        let mut c = FlippedCanvas::new(width as u32, height as u32);
        let cart = [-cart_width / 2.0, cart_width / 2.0, cart_height / 2.0, -cart_height / 2.0];
        c.polygon(&box_corners(cart, 0.0, (cart_x, cart_y)), BLACK);
        let pole =
            [-pole_width / 2.0, pole_width / 2.0, pole_len - pole_width / 2.0, -pole_width / 2.0];
        let axle = (cart_x, cart_y + axle_offset);
        c.polygon(&box_corners(pole, -self.state[2], axle), [202, 152, 101]);
        c.circle(axle, pole_width / 2.0, [129, 132, 203]);
        c.line((0.0, cart_y), (width, cart_y), 1.0, BLACK);
        Some(c.canvas.into_frame())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EnvError;

    #[test]
    fn reset_is_inside_its_distribution_and_seeded() {
        let mut env = CartPole::new();
        for seed in 0..200 {
            let obs = env.reset(Some(seed));
            assert!(env.state().iter().all(|v| (-0.05..0.05).contains(v)));
            assert_eq!(obs, env.observation());
            assert!(env.observation_space().contains_values(&obs));
        }
        let first = env.reset(Some(7));
        let next = env.reset(None);
        assert_ne!(first, next, "reset(None) continues the stream");
        assert_eq!(env.reset(Some(7)), first);
    }

    #[test]
    fn same_seed_same_episode() {
        let run = || {
            let mut env = CartPole::new();
            let mut trace = vec![env.reset(Some(3))];
            for t in 0..50 {
                let s = env.step(&(t % 2)).unwrap();
                trace.push(s.obs);
                if s.terminated {
                    break;
                }
            }
            trace
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn bad_calls_are_errors_and_change_nothing() {
        let mut env = CartPole::new();
        assert_eq!(env.step(&0), Err(EnvError::StepBeforeReset));
        env.reset(Some(0));
        let before = env.state();
        assert!(matches!(env.step(&2), Err(EnvError::InvalidAction { .. })));
        assert_eq!(env.state(), before);
        env.set_state([2.39, 1.0, 0.0, 0.0]).unwrap();
        let s = env.step(&1).unwrap();
        assert!(s.terminated && !s.truncated && s.reward == 1.0);
        let ended = env.state();
        assert!(matches!(env.step(&1), Err(EnvError::StepAfterEpisodeEnd { .. })));
        assert_eq!(env.state(), ended);
        assert!(matches!(env.set_state([0.0, f64::NAN, 0.0, 0.0]), Err(EnvError::InvalidState(_))));
        assert_eq!(env.state(), ended);
    }

    #[test]
    fn pushes_move_the_cart_and_tip_the_pole() {
        let mut env = CartPole::new();
        env.set_state([0.0; 4]).unwrap();
        let right = env.step(&1).unwrap().obs;
        assert!(right[1] > 0.0 && right[3] < 0.0, "{right:?}");
        env.set_state([0.0; 4]).unwrap();
        let left = env.step(&0).unwrap().obs;
        assert_eq!(left, right.map(|v| -v));
    }

    #[test]
    fn frame_has_gymnasium_size_and_follows_the_state() {
        let mut env = CartPole::new();
        env.set_state([0.0; 4]).unwrap();
        let a = env.render_rgb().unwrap();
        assert_eq!((a.width, a.height, a.rgb.len()), (600, 400, 600 * 400 * 3));
        // The cart is black at the centre of the track (its centre is 100 px above the bottom).
        assert_eq!(a.pixel(285, 305), [0, 0, 0]);
        env.set_state([1.0, 0.0, 0.1, 0.0]).unwrap();
        let b = env.render_rgb().unwrap();
        assert_ne!(a, b);
        assert_eq!(b.pixel(285, 305), [255, 255, 255]);
        assert!(env.render_text().unwrap().starts_with("x=1.0000"));
    }
}
