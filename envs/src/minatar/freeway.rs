//! Freeway: lead a chicken across eight lanes of traffic, as many times as possible.
//!
//! The paper's description (Young & Tian 2019, appendix): "The player begins at the bottom
//! of the screen and motion is restricted to traveling up and down. Player speed is also
//! restricted such that the player can only move every 3 frames. A reward of +1 is given
//! when the player reaches the top of the screen, at which point the player is returned to
//! the bottom. Cars travel horizontally on the screen and teleport to the other side when
//! the edge is reached. When hit by a car, the player is returned to the bottom of the
//! screen. Car direction and speed is indicated by 5 trail channels, the location of the
//! trail gives direction while the specific channel indicates how frequently the car moves
//! (from once every frame to once every 5 frames). Each time the player successfully reaches
//! the top of the screen, the car speeds are randomized. Termination occurs after 2500
//! frames have elapsed."
//!
//! The rules as implemented (row 0 at the top, rows and columns 0..=9):
//! * The chicken lives in column 4 and starts in row 9. Action 2 (up) moves it one row up,
//!   action 4 (down) one row down (not below row 9); the other actions leave it in place.
//!   After a move it cannot move again for 3 frames (it moves at most every third frame).
//! * Rows 1..=8 are lanes with one car each. Cars in rows 1..=4 drive left, cars in rows
//!   5..=8 drive right (as the two carriageways of Atari's Freeway); a car moves one cell
//!   every `period` frames, `period` drawn uniformly from 1..=5 for each car at reset and
//!   after every crossing, and wraps around at the edges. At reset every car stands at the
//!   edge it drives away from (column 9 for left-going cars, column 0 for right-going ones).
//! * Each frame: the chicken moves; reaching row 0 pays +1, puts it back in row 9 and
//!   redraws the car speeds; a chicken on a car's cell is sent back to row 9; the cars move;
//!   a car that drives onto the chicken sends it back to row 9 too.
//! * The game itself never terminates: the paper's end after 2,500 frames is a time limit
//!   (the frame count is not observed), applied by the registry
//!   ([`super::FREEWAY_MAX_STEPS`]) as a truncation. No difficulty ramping (the paper
//!   describes none for Freeway besides the speed redraws).
//!
//! Observation channels (`[7, 10, 10]`): 0 chicken, 1 car, then five trail channels
//! 2..=6: the cell behind each car (in the direction it came from, wrapping around) is set
//! in channel `1 + period`, so channel 2 marks cars that move every frame and channel 6 cars
//! that move every fifth frame. Actions: MinAtar's full set of 6 (see [`super`]).

use super::{
    check_cell, check_last_action, observation_space, render_grid_rgb, render_grid_text, set_cell,
    sticky_action, MinAtarConfig, CELLS, DOWN, GRID, NOOP, N_ACTIONS, UP,
};
use crate::env::{check_discrete, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EnvError, EpisodePhase, Result};
use crate::render::Frame;
use crate::space::Space;
use rand::Rng;

/// Number of observation channels.
pub const CHANNELS: usize = 7;
/// Channel of the chicken.
pub const CHICKEN: usize = 0;
/// Channel of the cars.
pub const CAR: usize = 1;
/// Channel of the trails of cars that move every frame; `FIRST_TRAIL + period - 1` in general.
pub const FIRST_TRAIL: usize = 2;
/// Number of lanes (one car each), rows 1..=8.
pub const LANES: usize = 8;
/// The column the chicken walks along.
pub const CHICKEN_COL: usize = 4;
/// The row the chicken starts from and is sent back to.
pub const START_ROW: usize = GRID - 1;
/// Frames between two moves of the chicken.
pub const MOVE_PERIOD: usize = 3;
/// The slowest car moves once every this many frames.
pub const MAX_PERIOD: usize = 5;

/// One car: it moves `dir` columns every `period` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Car {
    pub col: usize,
    /// -1 left, +1 right.
    pub dir: i32,
    /// Frames per move, 1..=5.
    pub period: usize,
    /// Frames until the next move, 1..=`period`.
    pub timer: usize,
}

impl Car {
    /// The cell behind the car, where its trail is drawn.
    pub fn trail_col(&self) -> usize {
        (self.col as i32 - self.dir).rem_euclid(GRID as i32) as usize
    }
}

/// Everything that determines the future of a Freeway game (besides the random stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreewayState {
    /// Row of the chicken, 1..=9 (its column is [`CHICKEN_COL`]).
    pub chicken_row: usize,
    /// Frames before the chicken may move again, 0..=3 (it may move when this reaches 0 at
    /// the start of a frame).
    pub move_cooldown: usize,
    /// `cars[i]` drives along row `1 + i`.
    pub cars: [Car; LANES],
    /// The action executed on the previous frame (what a sticky frame repeats).
    pub last_action: usize,
}

impl FreewayState {
    /// True when a car occupies the chicken's cell.
    fn chicken_hit(&self) -> bool {
        (1..=LANES).contains(&self.chicken_row)
            && self.cars[self.chicken_row - 1].col == CHICKEN_COL
    }
}

/// The Freeway game; see the module documentation.
#[derive(Debug, Clone)]
pub struct Freeway {
    state: FreewayState,
    config: MinAtarConfig,
    rng: EnvRng,
    phase: EpisodePhase,
}

/// The direction of the cars of lane `i`: the upper four lanes drive left.
fn lane_dir(i: usize) -> i32 {
    if i < LANES / 2 {
        -1
    } else {
        1
    }
}

impl Freeway {
    /// A game with the paper's settings (sticky actions with probability 0.1), seeded from
    /// OS entropy; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        let car = |i| Car { col: 0, dir: lane_dir(i), period: 1, timer: 1 };
        Freeway {
            state: FreewayState {
                chicken_row: START_ROW,
                move_cooldown: 0,
                cars: std::array::from_fn(car),
                last_action: NOOP,
            },
            config: MinAtarConfig::default(),
            rng: entropy_rng(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// A game with the given settings; an invalid configuration is an error.
    pub fn with_config(config: MinAtarConfig) -> Result<Self> {
        config.validate()?;
        Ok(Freeway { config, ..Self::new() })
    }

    /// The settings.
    pub fn config(&self) -> MinAtarConfig {
        self.config
    }

    /// The current state.
    pub fn state(&self) -> FreewayState {
        self.state
    }

    /// Sets the state and puts the game inside a running episode. Rejected, leaving the game
    /// unchanged: the chicken outside rows 1..=9 or on a car, a car column outside the grid,
    /// a direction other than -1 or +1, a period outside 1..=5, a timer outside
    /// 1..=period, a cooldown above 3, or a previous action outside the action set.
    pub fn set_state(&mut self, state: FreewayState) -> Result<()> {
        let invalid = |msg: String| Err(EnvError::InvalidState(msg));
        if !(1..GRID).contains(&state.chicken_row) {
            return invalid(format!("chicken_row = {}, expected 1..=9", state.chicken_row));
        }
        if state.move_cooldown > MOVE_PERIOD {
            return invalid(format!("move_cooldown = {}, expected 0..=3", state.move_cooldown));
        }
        for (i, car) in state.cars.iter().enumerate() {
            check_cell(&format!("the car of lane {i}"), i + 1, car.col)?;
            if car.dir != -1 && car.dir != 1 {
                return invalid(format!("cars[{i}].dir = {}, expected -1 or 1", car.dir));
            }
            if !(1..=MAX_PERIOD).contains(&car.period) {
                return invalid(format!("cars[{i}].period = {}, expected 1..=5", car.period));
            }
            if !(1..=car.period).contains(&car.timer) {
                return invalid(format!(
                    "cars[{i}].timer = {}, expected 1..={}",
                    car.timer, car.period
                ));
            }
        }
        if state.chicken_hit() {
            return invalid(format!("the chicken in row {} is on a car", state.chicken_row));
        }
        check_last_action(state.last_action)?;
        self.state = state;
        self.phase = EpisodePhase::Running;
        Ok(())
    }

    /// The observation of the current state (channel order in the module documentation).
    pub fn observation(&self) -> [f32; CHANNELS * CELLS] {
        let s = &self.state;
        let mut obs = [0.0; CHANNELS * CELLS];
        set_cell(&mut obs, CHICKEN, s.chicken_row, CHICKEN_COL);
        for (i, car) in s.cars.iter().enumerate() {
            set_cell(&mut obs, CAR, i + 1, car.col);
            set_cell(&mut obs, FIRST_TRAIL + car.period - 1, i + 1, car.trail_col());
        }
        obs
    }

    /// Draws a new period for every car and restarts its timer.
    fn redraw_speeds(&mut self) {
        for car in &mut self.state.cars {
            car.period = self.rng.random_range(1..=MAX_PERIOD);
            car.timer = car.period;
        }
    }
}

impl Default for Freeway {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for Freeway {
    type Obs = [f32; CHANNELS * CELLS];
    type Action = usize;

    fn observation_space(&self) -> Space {
        observation_space(CHANNELS)
    }

    fn action_space(&self) -> Space {
        Space::discrete(N_ACTIONS)
    }

    fn reset(&mut self, seed: Option<u64>) -> Self::Obs {
        reseed(&mut self.rng, seed);
        let s = &mut self.state;
        s.chicken_row = START_ROW;
        s.move_cooldown = 0;
        s.last_action = NOOP;
        for (i, car) in s.cars.iter_mut().enumerate() {
            car.dir = lane_dir(i);
            car.col = if car.dir < 0 { GRID - 1 } else { 0 };
        }
        self.redraw_speeds();
        self.phase = EpisodePhase::Running;
        self.observation()
    }

    fn step(&mut self, action: &usize) -> Result<Step<Self::Obs>> {
        check_discrete(*action, N_ACTIONS)?;
        self.phase.check_step()?;
        let s = &mut self.state;
        let executed =
            sticky_action(&mut self.rng, self.config.sticky_action_prob, *action, s.last_action);
        s.last_action = executed;
        s.move_cooldown = s.move_cooldown.saturating_sub(1);
        if s.move_cooldown == 0 {
            let moved_to = match executed {
                UP => Some(s.chicken_row - 1),
                DOWN if s.chicken_row < START_ROW => Some(s.chicken_row + 1),
                _ => None,
            };
            if let Some(row) = moved_to {
                s.chicken_row = row;
                s.move_cooldown = MOVE_PERIOD;
            }
        }
        let mut reward = 0.0;
        if s.chicken_row == 0 {
            reward = 1.0;
            s.chicken_row = START_ROW;
            self.redraw_speeds();
        }
        let s = &mut self.state;
        if s.chicken_hit() {
            s.chicken_row = START_ROW;
        }
        for car in &mut s.cars {
            car.timer -= 1;
            if car.timer == 0 {
                car.col = (car.col as i32 + car.dir).rem_euclid(GRID as i32) as usize;
                car.timer = car.period;
            }
        }
        if s.chicken_hit() {
            s.chicken_row = START_ROW;
        }
        Ok(Step { obs: self.observation(), reward, terminated: false, truncated: false })
    }

    /// Ten rows of ten characters: `C` chicken, `V` car, `1`..`5` a car's trail by its
    /// period (1 = moves every frame), `.` empty.
    fn render_text(&self) -> Option<String> {
        let symbols = ['C', 'V', '1', '2', '3', '4', '5'];
        Some(render_grid_text(&self.observation(), &PRIORITY, &symbols))
    }

    /// A 240x240 picture, 24 pixels per cell: a yellow chicken, red cars, and their trails
    /// in greys that darken with the car's period.
    fn render_rgb(&self) -> Option<Frame> {
        let colors = [
            [245, 215, 66],
            [220, 50, 50],
            [200, 200, 200],
            [165, 165, 165],
            [130, 130, 130],
            [95, 95, 95],
            [60, 60, 60],
        ];
        Some(render_grid_rgb(&self.observation(), &PRIORITY, &colors))
    }
}

/// Channels from front to back when drawing.
const PRIORITY: [usize; CHANNELS] = [CHICKEN, CAR, 2, 3, 4, 5, 6];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_places_the_chicken_and_one_car_per_lane() {
        let mut env = Freeway::new();
        let obs = env.reset(Some(0));
        let s = env.state();
        assert_eq!((s.chicken_row, s.move_cooldown), (9, 0));
        for (i, car) in s.cars.iter().enumerate() {
            assert_eq!(car.col, if i < 4 { 9 } else { 0 }, "lane {i}");
            assert!((1..=5).contains(&car.period) && car.timer == car.period);
        }
        let count = |ch: usize| obs[ch * CELLS..(ch + 1) * CELLS].iter().sum::<f32>();
        assert_eq!(count(CHICKEN), 1.0);
        assert_eq!(count(CAR), 8.0);
        assert_eq!((FIRST_TRAIL..CHANNELS).map(count).sum::<f32>(), 8.0);
        // A left-going car in column 9 has its trail in column 0 (it wrapped from there).
        assert_eq!(s.cars[0].trail_col(), 0);
        assert_eq!(s.cars[7].trail_col(), 9);
    }

    #[test]
    fn bad_calls_are_errors_and_change_nothing() {
        let mut env = Freeway::new();
        assert_eq!(env.step(&UP), Err(EnvError::StepBeforeReset));
        env.reset(Some(1));
        let (before, mut twin) = (env.state(), env.clone());
        assert!(matches!(env.step(&7), Err(EnvError::InvalidAction { .. })));
        assert_eq!(env.state(), before);
        for a in [2, 2, 2, 4, 0, 2] {
            assert_eq!(env.step(&a), twin.step(&a), "the error consumed randomness");
        }
        let mut bad = env.state();
        bad.cars[3].period = 6;
        assert!(env.set_state(bad).unwrap_err().to_string().contains("cars[3].period"));
        bad = env.state();
        bad.chicken_row = 0;
        assert!(env.set_state(bad).unwrap_err().to_string().contains("chicken_row"));
        bad = env.state();
        bad.chicken_row = 3;
        bad.cars[2].col = CHICKEN_COL;
        assert!(env.set_state(bad).unwrap_err().to_string().contains("on a car"));
        assert_eq!(env.state(), twin.state());
    }
}
