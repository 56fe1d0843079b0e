//! MountainCar: drive an under-powered car up a hill by first swinging back and forth.
//!
//! The mountain-car task of Andrew Moore's PhD thesis, "Efficient Memory-based Learning for
//! Robot Control" (University of Cambridge, 1990), in the discrete-action form of Gymnasium
//! 1.4.0's `MountainCarEnv` (`MountainCar-v0`). The track is `y = sin(3x)·0.45 + 0.55`;
//! with action `a ∈ {0, 1, 2}` (push left, nothing, push right) one step is semi-implicit:
//!
//! ```text
//! v ← clip(v + (a − 1)·0.001 − 0.0025·cos(3x), −0.07, 0.07)
//! x ← clip(x + v, −1.2, 0.6);   v ← 0 if x = −1.2 and v < 0   (only the left wall is inelastic)
//! ```
//!
//! The episode terminates when `x ≥ 0.5` and `v ≥ 0`; the reward is −1 on every step, the
//! terminating one included. The state is `f64`, the observation `[x, v]` cast to `f32`.
//! Reset draws `x` uniformly from `[-0.6, -0.4)` with `v = 0`.

use super::drawing::{box_corners, rotate, FlippedCanvas, BLACK};
use super::{check_state, uniform};
use crate::env::{check_discrete, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EpisodePhase, Result};
use crate::render::Frame;
use crate::space::Space;

/// The discrete mountain-car task (Gymnasium's `MountainCar-v0`, without its time limit).
#[derive(Debug, Clone)]
pub struct MountainCar {
    state: [f64; 2],
    rng: EnvRng,
    phase: EpisodePhase,
}

impl MountainCar {
    pub const MIN_POSITION: f64 = -1.2;
    pub const MAX_POSITION: f64 = 0.6;
    pub const MAX_SPEED: f64 = 0.07;
    pub const GOAL_POSITION: f64 = 0.5;
    pub const GOAL_VELOCITY: f64 = 0.0;
    pub const FORCE: f64 = 0.001;
    pub const GRAVITY: f64 = 0.0025;
    /// Names of the state entries, in order.
    pub const STATE_NAMES: [&'static str; 2] = ["position", "velocity"];

    /// A new env seeded from OS entropy; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        MountainCar { state: [0.0; 2], rng: entropy_rng(), phase: EpisodePhase::NeedsReset }
    }

    /// The internal state `[position, velocity]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Sets the internal state and puts the env inside a running episode. Non-finite values
    /// are rejected; values outside the track or the speed limit are accepted, as Gymnasium
    /// does (the next step clips them).
    pub fn set_state(&mut self, state: [f64; 2]) -> Result<()> {
        check_state(&state, &Self::STATE_NAMES)?;
        self.state = state;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// The observation of the current state: the state cast to `f32`.
    pub fn observation(&self) -> [f32; 2] {
        self.state.map(|v| v as f32)
    }
}

impl Default for MountainCar {
    fn default() -> Self {
        Self::new()
    }
}

/// The observation space shared with `MountainCarContinuous`.
pub(crate) fn mountain_observation_space() -> Space {
    Space::boxed(
        vec![MountainCar::MIN_POSITION as f32, -MountainCar::MAX_SPEED as f32],
        vec![MountainCar::MAX_POSITION as f32, MountainCar::MAX_SPEED as f32],
    )
}

impl Env for MountainCar {
    type Obs = [f32; 2];
    type Action = usize;

    fn observation_space(&self) -> Space {
        mountain_observation_space()
    }

    fn action_space(&self) -> Space {
        Space::discrete(3)
    }

    fn reset(&mut self, seed: Option<u64>) -> [f32; 2] {
        reseed(&mut self.rng, seed);
        self.state = [uniform(&mut self.rng, -0.6, -0.4), 0.0];
        self.phase = EpisodePhase::Running;
        self.observation()
    }

    fn step(&mut self, action: &usize) -> Result<Step<[f32; 2]>> {
        check_discrete(*action, 3)?;
        self.phase.check_step()?;
        let [mut position, mut velocity] = self.state;
        velocity +=
            (*action as f64 - 1.0) * Self::FORCE + libm::cos(3.0 * position) * -Self::GRAVITY;
        velocity = velocity.clamp(-Self::MAX_SPEED, Self::MAX_SPEED);
        position += velocity;
        position = position.clamp(Self::MIN_POSITION, Self::MAX_POSITION);
        if position == Self::MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        self.state = [position, velocity];
        let terminated = position >= Self::GOAL_POSITION && velocity >= Self::GOAL_VELOCITY;
        self.phase = EpisodePhase::after_step(terminated, false);
        Ok(Step { obs: self.observation(), reward: -1.0, terminated, truncated: false })
    }

    fn render_text(&self) -> Option<String> {
        let [position, velocity] = self.state;
        Some(format!("position={position:.4} velocity={velocity:.5}"))
    }

    fn render_rgb(&self) -> Option<Frame> {
        Some(render_mountain(self.state[0], Self::GOAL_POSITION))
    }
}

/// Gymnasium's 600x400 mountain-car picture: the track `sin(3x)·0.45 + 0.55`, the car tilted
/// with the slope, its two grey wheels, and the yellow flag at `goal`.
pub(crate) fn render_mountain(position: f64, goal: f64) -> Frame {
    let (width, height) = (600.0, 400.0);
    let (min, max) = (MountainCar::MIN_POSITION, MountainCar::MAX_POSITION);
    let scale = width / (max - min);
    let track = |x: f64| (3.0 * x).sin() * 0.45 + 0.55;
    let (car_width, car_height, clearance) = (40.0, 20.0, 10.0);
    let mut c = FlippedCanvas::new(width as u32, height as u32);

    let curve: Vec<(f64, f64)> = (0..100)
        .map(|i| {
            let x = min + (max - min) * i as f64 / 99.0;
            ((x - min) * scale, track(x) * scale)
        })
        .collect();
    c.polyline(&curve, 1.5, BLACK);

    let angle = (3.0 * position).cos();
    let base = ((position - min) * scale, clearance + track(position) * scale);
    let body = [-car_width / 2.0, car_width / 2.0, car_height, 0.0];
    c.polygon(&box_corners(body, angle, base), BLACK);
    for offset in [car_width / 4.0, -car_width / 4.0] {
        let (x, y) = rotate((offset, 0.0), angle);
        let wheel = ((x + base.0).trunc(), (y + base.1).trunc());
        c.circle(wheel, (car_height / 2.5).trunc(), [128, 128, 128]);
    }

    let flag_x = ((goal - min) * scale).trunc();
    let flag_y1 = (track(goal) * scale).trunc();
    let flag_y2 = flag_y1 + 50.0;
    c.line((flag_x, flag_y1), (flag_x, flag_y2), 1.0, BLACK);
    let flag = [(flag_x, flag_y2), (flag_x, flag_y2 - 10.0), (flag_x + 25.0, flag_y2 - 5.0)];
    c.polygon(&flag, [204, 204, 0]);
    c.canvas.into_frame()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EnvError;

    #[test]
    fn reset_is_inside_its_distribution_and_seeded() {
        let mut env = MountainCar::new();
        for seed in 0..200 {
            let obs = env.reset(Some(seed));
            let [x, v] = env.state();
            assert!((-0.6..-0.4).contains(&x) && v == 0.0);
            assert!(env.observation_space().contains_values(&obs));
        }
        let first = env.reset(Some(11));
        assert_ne!(env.reset(None), first);
        assert_eq!(env.reset(Some(11)), first);
    }

    #[test]
    fn left_wall_is_inelastic_and_goal_terminates() {
        let mut env = MountainCar::new();
        env.set_state([-1.19, -0.05]).unwrap();
        let s = env.step(&0).unwrap();
        assert_eq!(env.state(), [MountainCar::MIN_POSITION, 0.0]);
        assert!(!s.terminated && s.reward == -1.0);
        env.set_state([0.49, 0.02]).unwrap();
        let s = env.step(&2).unwrap();
        assert!(s.terminated && s.reward == -1.0);
        assert!(matches!(env.step(&1), Err(EnvError::StepAfterEpisodeEnd { .. })));
    }

    #[test]
    fn bad_calls_are_errors_and_change_nothing() {
        let mut env = MountainCar::new();
        assert_eq!(env.step(&1), Err(EnvError::StepBeforeReset));
        env.reset(Some(0));
        let before = env.state();
        assert!(matches!(env.step(&3), Err(EnvError::InvalidAction { .. })));
        assert_eq!(env.state(), before);
        assert!(env.set_state([f64::INFINITY, 0.0]).is_err());
        assert_eq!(env.state(), before);
    }

    #[test]
    fn same_seed_same_episode() {
        let run = || {
            let mut env = MountainCar::new();
            let mut trace = vec![env.reset(Some(5))];
            for t in 0..100 {
                trace.push(env.step(&(t % 3)).unwrap().obs);
            }
            trace
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn frame_has_gymnasium_size_and_follows_the_state() {
        let mut env = MountainCar::new();
        env.set_state([-0.5, 0.0]).unwrap();
        let a = env.render_rgb().unwrap();
        assert_eq!((a.width, a.height, a.rgb.len()), (600, 400, 600 * 400 * 3));
        env.set_state([0.3, 0.0]).unwrap();
        let b = env.render_rgb().unwrap();
        assert_ne!(a, b);
        // The flag is yellow in both pictures.
        let yellow = |f: &Frame| f.rgb.chunks(3).any(|p| p == [204, 204, 0]);
        assert!(yellow(&a) && yellow(&b));
        assert!(env.render_text().unwrap().contains("position=0.3000"));
    }
}
