//! Breakout: bounce a ball off a paddle to break three rows of bricks.
//!
//! The paper's description (Young & Tian 2019, appendix): "The player controls a paddle on
//! the bottom of the screen and must bounce a ball to break 3 rows of bricks along the top
//! of the screen. A reward of +1 is given for each brick broken by the ball. When all bricks
//! are cleared another 3 rows are added. The ball travels only along diagonals, when it hits
//! the paddle it is bounced either to the left or right depending on the side of the paddle
//! hit, when it hits a wall or brick it is reflected. Termination occurs when the ball hits
//! the bottom of the screen. The ball's direction is indicated by a trail channel."
//!
//! The rules as implemented (row 0 at the top, rows and columns 0..=9):
//! * Bricks fill rows 1, 2 and 3 (30 bricks); the paddle is one cell in row 9 and starts in
//!   column 4. Actions 1 (left) and 3 (right) move it one cell, stopping at the edges; the
//!   other actions leave it in place.
//! * The ball starts in row 4, in column 0 moving down-right or in column 9 moving
//!   down-left (chosen uniformly at reset), and moves one cell diagonally per frame, after
//!   the paddle has moved.
//! * Walls: a move past the left or right edge flips the horizontal direction, a move above
//!   row 0 flips the vertical one; the ball then moves along the reflected diagonal.
//! * Bricks: a move into a brick removes it (+1) and flips the vertical direction; the ball
//!   moves along the reflected diagonal, or stays where it is for this frame when that cell
//!   is blocked too (a brick or the ceiling). At most one brick breaks per frame.
//! * Paddle: a move into row 9 is caught when the paddle is in the column the ball enters
//!   (it strikes the paddle's near side and goes back the way it came: both directions flip)
//!   or in the column the ball leaves (it strikes the paddle's far side and keeps its
//!   horizontal direction, going up). Otherwise the ball enters row 9 and the episode
//!   terminates with reward 0 for that frame.
//! * When no brick is left and the ball is below the brick rows, the three rows are refilled.
//! * No difficulty ramping (the paper describes none for Breakout).
//!
//! Observation channels (`[4, 10, 10]`): 0 paddle, 1 ball, 2 trail (the ball's cell on the
//! previous frame; empty right after reset; on the ball's own cell when it was boxed in), 3
//! brick. Actions: MinAtar's full set of 6 (see [`super`]).

use super::{
    check_cell, check_last_action, observation_space, render_grid_rgb, render_grid_text, set_cell,
    sticky_action, MinAtarConfig, CELLS, GRID, LEFT, NOOP, N_ACTIONS, RIGHT,
};
use crate::env::{check_discrete, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EnvError, EpisodePhase, Result};
use crate::render::Frame;
use crate::space::Space;
use rand::Rng;

/// Number of observation channels.
pub const CHANNELS: usize = 4;
/// Channel of the paddle.
pub const PADDLE: usize = 0;
/// Channel of the ball.
pub const BALL: usize = 1;
/// Channel of the ball's trail.
pub const TRAIL: usize = 2;
/// Channel of the bricks.
pub const BRICK: usize = 3;
/// The row of the paddle (the bottom row).
pub const PADDLE_ROW: usize = GRID - 1;
/// The top brick row; bricks fill [`BRICK_ROWS`] rows from here.
pub const FIRST_BRICK_ROW: usize = 1;
/// Number of brick rows.
pub const BRICK_ROWS: usize = 3;
/// The row the ball starts in, just below the bricks.
pub const BALL_START_ROW: usize = FIRST_BRICK_ROW + BRICK_ROWS;
/// The column the paddle starts in.
pub const PADDLE_START_COL: usize = 4;

/// Everything that determines the future of a Breakout game (besides the random stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakoutState {
    /// Column of the paddle (its row is [`PADDLE_ROW`]).
    pub paddle_col: usize,
    pub ball_row: usize,
    pub ball_col: usize,
    /// Vertical direction of the ball: -1 up, +1 down.
    pub ball_dr: i32,
    /// Horizontal direction of the ball: -1 left, +1 right.
    pub ball_dc: i32,
    /// The ball's cell on the previous frame (`None` right after reset).
    pub trail: Option<(usize, usize)>,
    /// `bricks[i][col]`: a brick at row `FIRST_BRICK_ROW + i`, column `col`.
    pub bricks: [[bool; GRID]; BRICK_ROWS],
    /// The action executed on the previous frame (what a sticky frame repeats).
    pub last_action: usize,
}

impl BreakoutState {
    /// Number of bricks left.
    pub fn bricks_left(&self) -> usize {
        self.bricks.iter().flatten().filter(|&&b| b).count()
    }

    /// `(i, col)` of cell `(row, col)` in `bricks`, `None` outside the brick rows.
    fn brick_index(row: i32, col: i32) -> Option<(usize, usize)> {
        let i = usize::try_from(row).ok()?.checked_sub(FIRST_BRICK_ROW)?;
        let col = usize::try_from(col).ok()?;
        (i < BRICK_ROWS && col < GRID).then_some((i, col))
    }

    /// True when a brick stands at `(row, col)` (false outside the brick rows).
    fn has_brick(&self, row: i32, col: i32) -> bool {
        Self::brick_index(row, col).is_some_and(|(i, col)| self.bricks[i][col])
    }
}

/// The Breakout game; see the module documentation.
#[derive(Debug, Clone)]
pub struct Breakout {
    state: BreakoutState,
    config: MinAtarConfig,
    rng: EnvRng,
    phase: EpisodePhase,
}

/// The horizontal direction after bouncing off a side wall: flipped when `col + dc` would
/// leave the grid.
fn off_side_walls(col: i32, dc: i32) -> i32 {
    if (0..GRID as i32).contains(&(col + dc)) {
        dc
    } else {
        -dc
    }
}

impl Breakout {
    /// A game with the paper's settings (sticky actions with probability 0.1), seeded from
    /// OS entropy; call [`Env::reset`] before stepping.
    pub fn new() -> Self {
        Breakout {
            state: Self::initial_state(true),
            config: MinAtarConfig::default(),
            rng: entropy_rng(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// A game with the given settings; an invalid configuration is an error.
    pub fn with_config(config: MinAtarConfig) -> Result<Self> {
        config.validate()?;
        Ok(Breakout { config, ..Self::new() })
    }

    /// The settings.
    pub fn config(&self) -> MinAtarConfig {
        self.config
    }

    /// The current state.
    pub fn state(&self) -> BreakoutState {
        self.state
    }

    /// Sets the state and puts the game inside a running episode. Rejected, leaving the game
    /// unchanged: a cell outside the grid, the ball in the bottom row (a missed ball, which
    /// has ended the game), a direction other than -1 or +1, the ball on a brick, or a
    /// previous action outside the action set.
    pub fn set_state(&mut self, state: BreakoutState) -> Result<()> {
        check_cell("the paddle", PADDLE_ROW, state.paddle_col)?;
        check_cell("the ball", state.ball_row, state.ball_col)?;
        if let Some((row, col)) = state.trail {
            check_cell("the trail", row, col)?;
        }
        if state.ball_row == PADDLE_ROW {
            return Err(EnvError::InvalidState(format!(
                "the ball is in the bottom row {PADDLE_ROW}, where it has been missed"
            )));
        }
        for (name, d) in [("ball_dr", state.ball_dr), ("ball_dc", state.ball_dc)] {
            if d != -1 && d != 1 {
                return Err(EnvError::InvalidState(format!("{name} = {d}, expected -1 or 1")));
            }
        }
        if state.has_brick(state.ball_row as i32, state.ball_col as i32) {
            return Err(EnvError::InvalidState(format!(
                "the ball at (row {}, col {}) is on a brick",
                state.ball_row, state.ball_col
            )));
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
        set_cell(&mut obs, PADDLE, PADDLE_ROW, s.paddle_col);
        set_cell(&mut obs, BALL, s.ball_row, s.ball_col);
        if let Some((row, col)) = s.trail {
            set_cell(&mut obs, TRAIL, row, col);
        }
        for (i, bricks) in s.bricks.iter().enumerate() {
            for (col, _) in bricks.iter().enumerate().filter(|(_, &b)| b) {
                set_cell(&mut obs, BRICK, FIRST_BRICK_ROW + i, col);
            }
        }
        obs
    }

    /// The start of an episode, with the ball entering from the left or the right.
    fn initial_state(from_left: bool) -> BreakoutState {
        BreakoutState {
            paddle_col: PADDLE_START_COL,
            ball_row: BALL_START_ROW,
            ball_col: if from_left { 0 } else { GRID - 1 },
            ball_dr: 1,
            ball_dc: if from_left { 1 } else { -1 },
            trail: None,
            bricks: [[true; GRID]; BRICK_ROWS],
            last_action: NOOP,
        }
    }

    /// Moves the ball one frame (rules in the module documentation); returns the reward and
    /// whether the ball was missed.
    fn move_ball(&mut self) -> (f64, bool) {
        let s = &mut self.state;
        let (row, col) = (s.ball_row as i32, s.ball_col as i32);
        let mut dr = s.ball_dr;
        let mut dc = off_side_walls(col, s.ball_dc);
        if row + dr < 0 {
            dr = 1;
        }
        let (mut next_row, mut next_col) = (row + dr, col + dc);
        let (mut reward, mut missed) = (0.0, false);
        if let Some((i, brick_col)) =
            BreakoutState::brick_index(next_row, next_col).filter(|&(i, c)| s.bricks[i][c])
        {
            s.bricks[i][brick_col] = false;
            reward = 1.0;
            dr = -dr;
            next_row = row + dr;
            if next_row < 0 || s.has_brick(next_row, next_col) {
                (next_row, next_col) = (row, col);
            }
        } else if next_row == PADDLE_ROW as i32 {
            let paddle = s.paddle_col as i32;
            if paddle == next_col {
                dr = -1;
                dc = off_side_walls(col, -dc);
                (next_row, next_col) = (row - 1, col + dc);
            } else if paddle == col {
                dr = -1;
                next_row = row - 1;
            } else {
                missed = true;
            }
        }
        s.trail = Some((s.ball_row, s.ball_col));
        (s.ball_row, s.ball_col) = (next_row as usize, next_col as usize);
        (s.ball_dr, s.ball_dc) = (dr, dc);
        (reward, missed)
    }
}

impl Default for Breakout {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for Breakout {
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
        let from_left = self.rng.random::<bool>();
        self.state = Self::initial_state(from_left);
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
        match executed {
            LEFT => s.paddle_col = s.paddle_col.saturating_sub(1),
            RIGHT => s.paddle_col = (s.paddle_col + 1).min(GRID - 1),
            _ => {}
        }
        let (reward, terminated) = self.move_ball();
        let s = &mut self.state;
        if !terminated && s.bricks_left() == 0 && s.ball_row >= BALL_START_ROW {
            s.bricks = [[true; GRID]; BRICK_ROWS];
        }
        self.phase = EpisodePhase::after_step(terminated, false);
        Ok(Step { obs: self.observation(), reward, terminated, truncated: false })
    }

    /// Ten rows of ten characters: `P` paddle, `B` ball, `t` trail, `X` brick, `.` empty.
    fn render_text(&self) -> Option<String> {
        Some(render_grid_text(&self.observation(), &PRIORITY, &['P', 'B', 't', 'X']))
    }

    /// A 240x240 picture, 24 pixels per cell: blue paddle, white ball, grey trail, red bricks.
    fn render_rgb(&self) -> Option<Frame> {
        let colors = [[66, 135, 245], [255, 255, 255], [110, 110, 110], [214, 92, 65]];
        Some(render_grid_rgb(&self.observation(), &PRIORITY, &colors))
    }
}

/// Channels from front to back when drawing.
const PRIORITY: [usize; CHANNELS] = [BALL, PADDLE, TRAIL, BRICK];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_places_paddle_ball_and_thirty_bricks() {
        let mut env = Breakout::new();
        let mut sides = [false; 2];
        for seed in 0..20 {
            let obs = env.reset(Some(seed));
            let s = env.state();
            assert_eq!((s.paddle_col, s.ball_row, s.ball_dr, s.trail), (4, 4, 1, None));
            assert!(matches!((s.ball_col, s.ball_dc), (0, 1) | (9, -1)), "{s:?}");
            sides[s.ball_col / 9] = true;
            let count = |ch: usize| obs[ch * CELLS..(ch + 1) * CELLS].iter().sum::<f32>();
            assert_eq!([PADDLE, BALL, TRAIL, BRICK].map(count), [1.0, 1.0, 0.0, 30.0]);
            assert_eq!(obs[PADDLE * CELLS + 94], 1.0);
        }
        assert_eq!(sides, [true, true], "both starting sides occur");
    }

    #[test]
    fn bad_calls_are_errors_and_change_nothing() {
        let mut env = Breakout::new();
        assert_eq!(env.step(&0), Err(EnvError::StepBeforeReset));
        env.reset(Some(1));
        let (before, mut twin) = (env.state(), env.clone());
        let err = env.step(&6).unwrap_err();
        assert!(err.to_string().contains("0..6"), "{err}");
        assert_eq!(env.state(), before);
        for a in [3, 3, 1, 0, 5] {
            assert_eq!(env.step(&a), twin.step(&a), "the error consumed randomness");
        }
        let mut bad = env.state();
        bad.ball_dr = 0;
        assert!(matches!(env.set_state(bad), Err(EnvError::InvalidState(_))));
        bad = env.state();
        bad.ball_row = 2;
        bad.bricks[1][bad.ball_col] = true;
        let err = env.set_state(bad).unwrap_err();
        assert!(err.to_string().contains("on a brick"), "{err}");
        bad = env.state();
        bad.paddle_col = 10;
        assert!(env.set_state(bad).unwrap_err().to_string().contains("paddle"));
        assert!(Breakout::with_config(MinAtarConfig { sticky_action_prob: 2.0 }).is_err());
    }

    #[test]
    fn text_shows_every_object() {
        let mut env = Breakout::with_config(MinAtarConfig { sticky_action_prob: 0.0 }).unwrap();
        env.reset(Some(0));
        env.step(&NOOP).unwrap();
        let text = env.render_text().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10);
        assert_eq!(lines[1], "XXXXXXXXXX");
        assert_eq!(lines[9], "....P.....");
        assert_eq!(text.matches('B').count(), 1);
        assert_eq!(text.matches('t').count(), 1);
    }
}
