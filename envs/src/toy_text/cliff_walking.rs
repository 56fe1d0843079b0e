//! CliffWalking: walk along a 4x12 grid from the bottom-left corner to the bottom-right one
//! without stepping off the cliff between them.
//!
//! Source: Sutton & Barto, *Reinforcement Learning: An Introduction* (2nd ed.), example 6.6,
//! as implemented by Gymnasium 1.4 `gymnasium.envs.toy_text.cliffwalking.CliffWalkingEnv`
//! (`CliffWalking-v1`, and `CliffWalkingSlippery-v1` with `is_slippery=True`). The
//! transition table `P[s][a]` is the same as Gymnasium's, entry for entry.
//!
//! Rules:
//! * State = `row * 12 + col`, row 0 on top; the start is 36 (row 3, col 0), the goal 47
//!   (row 3, col 11) and the cliff the cells 37..=46 between them.
//! * Actions: 0 UP, 1 RIGHT, 2 DOWN, 3 LEFT. A move off the grid leaves the agent in place.
//! * Every move costs -1; stepping into the cliff costs -100 and sends the agent back to
//!   the start without ending the episode. Entering the goal terminates the episode.
//! * The goal (and the unreachable cliff cells) are not absorbing in `P`: their rows hold
//!   ordinary moves (e.g. UP from 47 goes to 35).
//! * Slippery: the agent moves in directions `(a - 1) % 4`, `a`, `(a + 1) % 4`, each with
//!   probability 1/3, listed in that order and not merged.

use crate::env::{Env, Step};
use crate::error::Result;
use crate::mdp::{TabularCore, Transition, TransitionModel};
use crate::render::{Canvas, Frame};
use crate::space::Space;

/// Number of rows.
pub const NROW: usize = 4;
/// Number of columns.
pub const NCOL: usize = 12;
/// The start state (row 3, col 0).
pub const START: usize = 36;
/// The goal state (row 3, col 11).
pub const GOAL: usize = 47;

/// True for the cliff cells (row 3, columns 1..=10).
fn is_cliff(row: usize, col: usize) -> bool {
    row == NROW - 1 && (1..NCOL - 1).contains(&col)
}

/// Gymnasium's `_calculate_transition_prob(position, move)`.
fn transitions(state: usize, action: usize, is_slippery: bool) -> Vec<Transition> {
    let (row, col) = (state / NCOL, state % NCOL);
    let directions: &[usize] =
        if is_slippery { &[(action + 3) % 4, action, (action + 1) % 4] } else { &[action] };
    let probability = 1.0 / directions.len() as f64;
    directions
        .iter()
        .map(|&d| {
            let (r, c) = match d {
                0 => (row.saturating_sub(1), col),
                1 => (row, (col + 1).min(NCOL - 1)),
                2 => ((row + 1).min(NROW - 1), col),
                _ => (row, col.saturating_sub(1)),
            };
            if is_cliff(r, c) {
                Transition { probability, next_state: START, reward: -100.0, terminated: false }
            } else {
                let next_state = r * NCOL + c;
                Transition { probability, next_state, reward: -1.0, terminated: next_state == GOAL }
            }
        })
        .collect()
}

fn build_model(is_slippery: bool) -> Result<TransitionModel> {
    let n = NROW * NCOL;
    let table = (0..n).map(|s| (0..4).map(|a| transitions(s, a, is_slippery)).collect()).collect();
    let initial = (0..n).map(|s| if s == START { 1.0 } else { 0.0 }).collect();
    TransitionModel::new(table, initial)
}

/// The CliffWalking environment; see the module documentation.
#[derive(Debug, Clone)]
pub struct CliffWalking {
    core: TabularCore,
    is_slippery: bool,
}

impl Default for CliffWalking {
    fn default() -> Self {
        Self::new(false)
    }
}

impl CliffWalking {
    /// `CliffWalking-v1` (`is_slippery = false`) or `CliffWalkingSlippery-v1` (`true`).
    pub fn new(is_slippery: bool) -> Self {
        CliffWalking {
            core: TabularCore::new(
                build_model(is_slippery).expect("the built-in CliffWalking model is valid"),
            ),
            is_slippery,
        }
    }

    /// True for the slippery variant.
    pub fn is_slippery(&self) -> bool {
        self.is_slippery
    }

    /// The current state, `row * 12 + col`.
    pub fn state(&self) -> usize {
        self.core.state()
    }

    /// Puts the agent on `state` inside a running episode; out-of-range states are an error.
    pub fn set_state(&mut self, state: usize) -> Result<()> {
        self.core.set_state(state)
    }
}

impl Env for CliffWalking {
    type Obs = usize;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::discrete(NROW * NCOL)
    }

    fn action_space(&self) -> Space {
        Space::discrete(4)
    }

    fn reset(&mut self, seed: Option<u64>) -> usize {
        self.core.reset(seed)
    }

    fn step(&mut self, action: &usize) -> Result<Step<usize>> {
        self.core.step(*action)
    }

    /// Gymnasium's `ansi` rendering: `x` the agent, `T` the goal, `C` the cliff, `o` other
    /// cells, then an empty line.
    fn render_text(&self) -> Option<String> {
        let mut out = String::new();
        for s in 0..NROW * NCOL {
            let (row, col) = (s / NCOL, s % NCOL);
            let cell = if s == self.core.state() {
                " x "
            } else if s == GOAL {
                " T "
            } else if is_cliff(row, col) {
                " C "
            } else {
                " o "
            };
            let cell = if col == 0 { cell.trim_start() } else { cell };
            if col == NCOL - 1 {
                out.push_str(cell.trim_end());
                out.push('\n');
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
        Some(out)
    }

    /// Gymnasium's 720x240 window (60x60 cells): grass, the cliff, the start and the goal as
    /// coloured cells, the agent as a disc.
    fn render_rgb(&self) -> Option<Frame> {
        let cell = 60.0f32;
        let mut canvas = Canvas::new(720, 240, [90, 90, 90]);
        for s in 0..NROW * NCOL {
            let (row, col) = (s / NCOL, s % NCOL);
            let color = if is_cliff(row, col) {
                [110, 70, 40]
            } else if s == GOAL {
                [240, 200, 60]
            } else if s == START {
                [150, 200, 240]
            } else {
                [120, 190, 100]
            };
            let (x, y) = (col as f32 * cell, row as f32 * cell);
            canvas.rect(x + 1.0, y + 1.0, cell - 2.0, cell - 2.0, color);
        }
        let s = self.core.state();
        let (cx, cy) =
            ((s % NCOL) as f32 * cell + cell / 2.0, (s / NCOL) as f32 * cell + cell / 2.0);
        canvas.circle(cx, cy, cell * 0.3, [200, 40, 40]);
        canvas.circle(cx, cy - cell * 0.08, cell * 0.1, [250, 220, 190]);
        Some(canvas.into_frame())
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        Some(self.core.model())
    }
}
