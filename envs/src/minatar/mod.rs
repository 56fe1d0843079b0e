//! MinAtar-style games: miniature Atari games on a 10x10 grid with one binary channel per
//! kind of object.
//!
//! After Young & Tian, "MinAtar: An Atari-inspired testbed for thorough and reproducible
//! reinforcement learning" (arXiv:1903.03176, 2019). The games here are written from the
//! paper's published game descriptions, not from MinAtar's code, so trajectories are not
//! expected to match MinAtar's frame for frame; where the paper leaves a rule open, the
//! game's module documentation says which rule was chosen.
//!
//! Shared conventions:
//! * Observation: `C` channels of a 10x10 grid, `f32` values 0 or 1, flattened channel-major
//!   as `[channel][row][col]` (index `channel * 100 + row * 10 + col`), row 0 at the top.
//!   The observation space is a box `[0, 1]` of shape `[C, 10, 10]`; each game lists its
//!   channel order.
//! * Actions: MinAtar's full action set of 6, the same for every game so that one network
//!   fits all of them: 0 no-op, 1 left, 2 up, 3 right, 4 down, 5 fire. Actions a game does
//!   not use act as no-ops.
//! * Sticky actions (the paper's stochasticity, after Machado et al. 2018): on each frame,
//!   with probability [`MinAtarConfig::sticky_action_prob`] (0.1 by default) the agent's
//!   action is ignored and the previously executed action is repeated. The first frame of an
//!   episode repeats a no-op.
//! * Randomness comes from the env's own [`crate::EnvRng`]: `reset(Some(seed))` re-seeds it,
//!   `reset(None)` continues its stream. Exactly one number is drawn per frame for the sticky
//!   decision, whatever its probability, so the stream does not depend on the agent.
//! * Difficulty: the paper ramps difficulty up over time in Asterix, Seaquest and Space
//!   Invaders only; Breakout and Freeway have none.
//!
//! Registered ids: `MinAtar/Breakout-v1` (time limit [`BREAKOUT_MAX_STEPS`]) and
//! `MinAtar/Freeway-v1` (time limit [`FREEWAY_MAX_STEPS`]), in the `MinAtar/` namespace of
//! MinAtar's own Gymnasium ids.

pub mod breakout;
pub mod freeway;

pub use breakout::{Breakout, BreakoutState};
pub use freeway::{Car, Freeway, FreewayState};

use crate::env::EnvRng;
use crate::error::{EnvError, Result};
use crate::registry::{EnvSpec, Registry};
use crate::render::{Canvas, Frame, Rgb};
use crate::space::{BoxSpace, Space};
use rand::Rng;

/// Side of the square grid, in cells.
pub const GRID: usize = 10;
/// Cells of one channel.
pub const CELLS: usize = GRID * GRID;
/// Number of actions: MinAtar's full action set.
pub const N_ACTIONS: usize = 6;
/// Action 0: do nothing.
pub const NOOP: usize = 0;
/// Action 1: move left.
pub const LEFT: usize = 1;
/// Action 2: move up.
pub const UP: usize = 2;
/// Action 3: move right.
pub const RIGHT: usize = 3;
/// Action 4: move down.
pub const DOWN: usize = 4;
/// Action 5: fire.
pub const FIRE: usize = 5;
/// One-letter names of the actions, MinAtar's `n l u r d f`.
pub const ACTION_NAMES: [char; N_ACTIONS] = ['n', 'l', 'u', 'r', 'd', 'f'];
/// Side of one rendered cell, in pixels: a frame is 240x240.
pub const CELL_PX: u32 = 24;

/// Breakout's time limit. The paper sets none (an episode ends only when the ball is
/// missed), but an agent that never misses would play forever; 10,000 frames is far beyond
/// the paper's reported scores and stops such an episode with a truncation.
pub const BREAKOUT_MAX_STEPS: usize = 10_000;
/// Freeway's episode length: the paper ends the game after 2,500 frames. The frame count is
/// not part of the observation, so the end is a time-limit truncation, not a terminal state.
pub const FREEWAY_MAX_STEPS: usize = 2_500;

/// Settings shared by the MinAtar games.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinAtarConfig {
    /// Probability that a frame repeats the previous action instead of the agent's
    /// (default 0.1, the paper's value; 0 makes the games deterministic given the seed).
    pub sticky_action_prob: f64,
}

impl Default for MinAtarConfig {
    fn default() -> Self {
        MinAtarConfig { sticky_action_prob: 0.1 }
    }
}

impl MinAtarConfig {
    /// Checks that the sticky-action probability is a number in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if (0.0..=1.0).contains(&self.sticky_action_prob) {
            Ok(())
        } else {
            Err(EnvError::InvalidConfig(format!(
                "sticky_action_prob = {} is not a probability in [0, 1]",
                self.sticky_action_prob
            )))
        }
    }
}

/// Chooses the action a frame executes: the agent's, or with probability `prob` the one
/// executed on the previous frame. Draws one number from `rng` whatever the outcome.
pub(crate) fn sticky_action(rng: &mut EnvRng, prob: f64, requested: usize, last: usize) -> usize {
    let u: f64 = rng.random();
    if u < prob {
        last
    } else {
        requested
    }
}

/// The observation space of a game with `channels` channels: a box `[0, 1]` of shape
/// `[channels, 10, 10]`.
pub(crate) fn observation_space(channels: usize) -> Space {
    let n = channels * CELLS;
    Space::Box(BoxSpace::new(vec![0.0; n], vec![1.0; n], vec![channels, GRID, GRID]))
}

/// Sets the cell `(row, col)` of `channel` in a channel-major observation.
pub(crate) fn set_cell(obs: &mut [f32], channel: usize, row: usize, col: usize) {
    obs[channel * CELLS + row * GRID + col] = 1.0;
}

/// The object shown in cell `(row, col)`: the first listed channel set there, if any.
/// `priority` lists channels from front to back.
fn visible(obs: &[f32], priority: &[usize], row: usize, col: usize) -> Option<usize> {
    priority.iter().copied().find(|&ch| obs[ch * CELLS + row * GRID + col] != 0.0)
}

/// Ten lines of ten characters: `symbols[ch]` for the frontmost channel of each cell (in
/// `priority` order), `.` for an empty cell.
pub(crate) fn render_grid_text(obs: &[f32], priority: &[usize], symbols: &[char]) -> String {
    let mut text = String::with_capacity(GRID * (GRID + 1));
    for row in 0..GRID {
        for col in 0..GRID {
            text.push(visible(obs, priority, row, col).map_or('.', |ch| symbols[ch]));
        }
        text.push('\n');
    }
    text
}

/// A 240x240 picture: each cell a [`CELL_PX`]-pixel square in `colors[ch]` of its frontmost
/// channel (in `priority` order), black when empty, with a one-pixel gap between cells.
pub(crate) fn render_grid_rgb(obs: &[f32], priority: &[usize], colors: &[Rgb]) -> Frame {
    let side = GRID as u32 * CELL_PX;
    let mut canvas = Canvas::new(side, side, [0, 0, 0]);
    let px = CELL_PX as f32;
    for row in 0..GRID {
        for col in 0..GRID {
            if let Some(ch) = visible(obs, priority, row, col) {
                let (x, y) = (col as f32 * px, row as f32 * px);
                canvas.rect(x + 1.0, y + 1.0, px - 2.0, px - 2.0, colors[ch]);
            }
        }
    }
    canvas.into_frame()
}

/// Rejects a cell outside the grid in a state given to `set_state`.
pub(crate) fn check_cell(what: &str, row: usize, col: usize) -> Result<()> {
    if row < GRID && col < GRID {
        Ok(())
    } else {
        Err(EnvError::InvalidState(format!(
            "{what} at (row {row}, col {col}) is outside the {GRID}x{GRID} grid"
        )))
    }
}

/// Rejects a previous action outside the action set in a state given to `set_state`.
pub(crate) fn check_last_action(last_action: usize) -> Result<()> {
    if last_action < N_ACTIONS {
        Ok(())
    } else {
        Err(EnvError::InvalidState(format!(
            "last_action = {last_action} is not an action in 0..{N_ACTIONS}"
        )))
    }
}

/// Registers the MinAtar ids with their time limits ([`BREAKOUT_MAX_STEPS`],
/// [`FREEWAY_MAX_STEPS`]). The paper gives no reward thresholds.
pub(crate) fn register_builtins(registry: &mut Registry) {
    let results = [
        registry.register_spec(
            EnvSpec::new("MinAtar/Breakout-v1").with_time_limit(BREAKOUT_MAX_STEPS),
            Breakout::new,
        ),
        registry.register_spec(
            EnvSpec::new("MinAtar/Freeway-v1").with_time_limit(FREEWAY_MAX_STEPS),
            Freeway::new,
        ),
    ];
    for result in results {
        result.expect("built-in ids are unique");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sticky_action_repeats_with_its_probability() {
        let mut rng = EnvRng::seed_from_u64(3);
        let n = 100_000;
        let repeated = (0..n).filter(|_| sticky_action(&mut rng, 0.1, 1, 0) == 0).count();
        let rate = repeated as f64 / n as f64;
        // Binomial standard deviation at n = 1e5, p = 0.1 is about 0.00095.
        assert!((rate - 0.1).abs() < 0.004, "{rate}");
        assert!((0..1000).all(|_| sticky_action(&mut rng, 0.0, 4, 2) == 4));
        assert!((0..1000).all(|_| sticky_action(&mut rng, 1.0, 4, 2) == 2));
    }

    #[test]
    fn config_rejects_non_probabilities() {
        assert!(MinAtarConfig::default().validate().is_ok());
        for p in [-0.1, 1.5, f64::NAN] {
            let err = MinAtarConfig { sticky_action_prob: p }.validate().unwrap_err();
            assert!(err.to_string().contains("sticky_action_prob"), "{err}");
        }
    }

    #[test]
    fn grid_rendering_shows_the_frontmost_channel() {
        let mut obs = [0.0f32; 2 * CELLS];
        set_cell(&mut obs, 0, 0, 0);
        set_cell(&mut obs, 1, 0, 0);
        set_cell(&mut obs, 1, 9, 9);
        let text = render_grid_text(&obs, &[1, 0], &['a', 'b']);
        assert_eq!(text.lines().count(), GRID);
        assert!(text.starts_with("b........."), "{text}");
        assert!(text.ends_with(".........b\n"), "{text}");
        let frame = render_grid_rgb(&obs, &[0, 1], &[[255, 0, 0], [0, 255, 0]]);
        assert_eq!((frame.width, frame.height), (240, 240));
        assert_eq!(frame.pixel(12, 12), [255, 0, 0]);
        assert_eq!(frame.pixel(228, 228), [0, 255, 0]);
        assert_eq!(frame.pixel(120, 120), [0, 0, 0]);
    }
}
