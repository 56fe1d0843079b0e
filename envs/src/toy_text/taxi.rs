//! Taxi: drive a taxi on a 5x5 grid with walls, pick a passenger up at one of four
//! coloured stands and drop them off at their destination.
//!
//! Source: Dietterich, "Hierarchical Reinforcement Learning with the MAXQ Value Function
//! Decomposition" (2000), as implemented by Gymnasium 1.4 `gymnasium.envs.toy_text.taxi.
//! TaxiEnv` with its default arguments (`is_rainy=False`, `fickle_passenger=False`), i.e. the
//! classic `Taxi-v3` rules; Gymnasium 1.4 registers it as `Taxi-v4`. The transition table
//! `P[s][a]` and the initial distribution are the same as Gymnasium's, entry for entry. The
//! optional rainy and fickle-passenger variants of v4 are not implemented.
//!
//! Rules:
//! * State = `((taxi_row * 5 + taxi_col) * 5 + passenger) * 4 + destination` (500 states),
//!   with `passenger` 0..=3 a stand of [`LOCS`] (R, G, Y, B) or 4 = in the taxi, and
//!   `destination` 0..=3 a stand.
//! * Actions: 0 south (row + 1), 1 north, 2 east (col + 1), 3 west, 4 pickup, 5 dropoff.
//!   Moves into a wall or the border leave the taxi in place.
//! * Rewards: -1 per step; -10 for a pickup where the passenger is not, or a dropoff that
//!   is not allowed; +20 and termination for dropping the passenger at the destination.
//!   Dropping a carried passenger at another stand is allowed (-1) and leaves them there.
//! * No state is absorbing: after the successful dropoff the state still has ordinary
//!   transitions, so bootstrapping through `P` must respect `terminated`.
//! * The episode starts uniformly (probability 1/300) among the states whose passenger
//!   waits at a stand that is not the destination.

use crate::env::{Env, Step};
use crate::error::{EnvError, Result};
use crate::mdp::{TabularCore, Transition, TransitionModel};
use crate::render::{Canvas, Frame, Rgb};
use crate::space::Space;

/// The map, as Gymnasium's `MAP`: `|` is a wall, `:` a passage.
pub const MAP: [&str; 7] = [
    "+---------+",
    "|R: | : :G|",
    "| : | : : |",
    "| : : : : |",
    "| | : | : |",
    "|Y| : |B: |",
    "+---------+",
];

/// The four stands R, G, Y, B as `(row, col)`.
pub const LOCS: [(usize, usize); 4] = [(0, 0), (0, 4), (4, 0), (4, 3)];

/// Colours of the stands R, G, Y, B (Gymnasium's `locs_colors`).
const LOC_COLORS: [Rgb; 4] = [[255, 0, 0], [0, 255, 0], [255, 255, 0], [0, 0, 255]];

/// Number of states.
pub const N_STATES: usize = 500;
/// Number of actions.
pub const N_ACTIONS: usize = 6;

/// Encodes `(taxi_row, taxi_col, passenger, destination)` as a state index.
pub fn encode(taxi_row: usize, taxi_col: usize, passenger: usize, destination: usize) -> usize {
    ((taxi_row * 5 + taxi_col) * 5 + passenger) * 4 + destination
}

/// Decodes a state index into `(taxi_row, taxi_col, passenger, destination)`.
pub fn decode(state: usize) -> (usize, usize, usize, usize) {
    let destination = state % 4;
    let passenger = (state / 4) % 5;
    let taxi_col = (state / 20) % 5;
    let taxi_row = state / 100;
    (taxi_row, taxi_col, passenger, destination)
}

/// True if there is a passage (no wall) east of `(row, col)`.
fn open_east(row: usize, col: usize) -> bool {
    MAP[1 + row].as_bytes()[2 * col + 2] == b':'
}

/// True if there is a passage (no wall) west of `(row, col)`.
fn open_west(row: usize, col: usize) -> bool {
    MAP[1 + row].as_bytes()[2 * col] == b':'
}

fn stand_at(pos: (usize, usize)) -> Option<usize> {
    LOCS.iter().position(|&l| l == pos)
}

/// The single outcome of `action` in `state` under the classic rules (Gymnasium's
/// `_build_dry_transitions`).
fn outcome(state: usize, action: usize) -> Transition {
    let (row, col, pass, dest) = decode(state);
    let (mut new_row, mut new_col, mut new_pass) = (row, col, pass);
    let mut reward = -1.0;
    let mut terminated = false;
    match action {
        0 => new_row = (row + 1).min(4),
        1 => new_row = row.saturating_sub(1),
        2 if open_east(row, col) => new_col = (col + 1).min(4),
        3 if open_west(row, col) => new_col = col.saturating_sub(1),
        4 => {
            if pass < 4 && (row, col) == LOCS[pass] {
                new_pass = 4;
            } else {
                reward = -10.0;
            }
        }
        5 => {
            if pass == 4 && (row, col) == LOCS[dest] {
                new_pass = dest;
                terminated = true;
                reward = 20.0;
            } else if let (4, Some(stand)) = (pass, stand_at((row, col))) {
                new_pass = stand;
            } else {
                reward = -10.0;
            }
        }
        _ => {}
    }
    Transition {
        probability: 1.0,
        next_state: encode(new_row, new_col, new_pass, dest),
        reward,
        terminated,
    }
}

fn build_model() -> Result<TransitionModel> {
    let table =
        (0..N_STATES).map(|s| (0..N_ACTIONS).map(|a| vec![outcome(s, a)]).collect()).collect();
    let initial = (0..N_STATES)
        .map(|s| {
            let (_, _, pass, dest) = decode(s);
            if pass < 4 && pass != dest {
                1.0 / 300.0
            } else {
                0.0
            }
        })
        .collect();
    TransitionModel::new(table, initial)
}

/// The Taxi environment; see the module documentation.
#[derive(Debug, Clone)]
pub struct Taxi {
    core: TabularCore,
}

impl Default for Taxi {
    fn default() -> Self {
        Self::new()
    }
}

impl Taxi {
    /// The classic Taxi (`Taxi-v3`, = Gymnasium 1.4's `Taxi-v4` with default arguments).
    pub fn new() -> Self {
        Taxi { core: TabularCore::new(build_model().expect("the built-in Taxi model is valid")) }
    }

    /// The current state index.
    pub fn state(&self) -> usize {
        self.core.state()
    }

    /// Puts the env into `state` inside a running episode; out-of-range states are an error.
    pub fn set_state(&mut self, state: usize) -> Result<()> {
        self.core.set_state(state)
    }

    /// Gymnasium's `action_mask(state)`: the actions that change the state (moves not
    /// blocked by a wall or the border, a pickup at the passenger's stand, a dropoff of a
    /// carried passenger at a stand). Out-of-range states are an error.
    pub fn action_mask(state: usize) -> Result<[bool; N_ACTIONS]> {
        if state >= N_STATES {
            return Err(EnvError::InvalidState(format!(
                "Taxi state {state} out of range 0..{N_STATES}"
            )));
        }
        let (row, col, pass, dest) = decode(state);
        let at = (row, col);
        Ok([
            row < 4,
            row > 0,
            col < 4 && open_east(row, col),
            col > 0 && open_west(row, col),
            pass < 4 && at == LOCS[pass],
            pass == 4 && (at == LOCS[dest] || stand_at(at).is_some()),
        ])
    }
}

/// Gymnasium's `utils.colorize`: `\x1b[<attrs>m<text>\x1b[0m`.
fn colorize(text: &str, code: u8, bold: bool, highlight: bool) -> String {
    let code = if highlight { code + 10 } else { code };
    let attrs = if bold { format!("{code};1") } else { code.to_string() };
    format!("\x1b[{attrs}m{text}\x1b[0m")
}

impl Env for Taxi {
    type Obs = usize;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::discrete(N_STATES)
    }

    fn action_space(&self) -> Space {
        Space::discrete(N_ACTIONS)
    }

    fn reset(&mut self, seed: Option<u64>) -> usize {
        self.core.reset(seed)
    }

    fn step(&mut self, action: &usize) -> Result<Step<usize>> {
        self.core.step(*action)
    }

    /// Gymnasium's `ansi` rendering: the map with the taxi highlighted (yellow when empty,
    /// green when carrying), the waiting passenger in bold blue, the destination in magenta,
    /// then the last action in parentheses (or an empty line).
    fn render_text(&self) -> Option<String> {
        let mut out: Vec<Vec<String>> =
            MAP.iter().map(|line| line.chars().map(String::from).collect()).collect();
        let (row, col, pass, dest) = decode(self.core.state());
        let taxi = &mut out[1 + row][2 * col + 1];
        if pass < 4 {
            *taxi = colorize(taxi, 33, false, true);
            let (pi, pj) = LOCS[pass];
            let cell = &mut out[1 + pi][2 * pj + 1];
            *cell = colorize(cell, 34, true, false);
        } else {
            let shown = if taxi == " " { "_" } else { taxi.as_str() };
            *taxi = colorize(shown, 32, false, true);
        }
        let (di, dj) = LOCS[dest];
        let cell = &mut out[1 + di][2 * dj + 1];
        *cell = colorize(cell, 35, false, false);
        let mut text: String = out.iter().map(|line| line.concat()).collect::<Vec<_>>().join("\n");
        text.push('\n');
        match self.core.last_action() {
            Some(a) => {
                let names = ["South", "North", "East", "West", "Pickup", "Dropoff"];
                text.push_str(&format!("  ({})\n", names[a]));
            }
            None => text.push('\n'),
        }
        Some(text)
    }

    /// Gymnasium's 550x350 window: 110x70 cells, the four stands in their colours, walls as
    /// thick lines, the destination framed, the waiting passenger as a disc, the taxi as a
    /// yellow (empty) or green (carrying) car.
    fn render_rgb(&self) -> Option<Frame> {
        let (cw, ch) = (110.0f32, 70.0f32);
        let mut canvas = Canvas::new(550, 350, [200, 200, 200]);
        for r in 0..5 {
            for c in 0..5 {
                let (x, y) = (c as f32 * cw, r as f32 * ch);
                canvas.rect(x + 1.0, y + 1.0, cw - 2.0, ch - 2.0, [235, 235, 225]);
            }
        }
        for (i, &(r, c)) in LOCS.iter().enumerate() {
            let [red, green, blue] = LOC_COLORS[i];
            let light = [red / 2 + 110, green / 2 + 110, blue / 2 + 110];
            canvas.rect(c as f32 * cw + 1.0, r as f32 * ch + 1.0, cw - 2.0, ch - 2.0, light);
        }
        let (row, col, pass, dest) = decode(self.core.state());
        let (dr, dc) = LOCS[dest];
        let (dx, dy) = (dc as f32 * cw, dr as f32 * ch);
        let frame_color = LOC_COLORS[dest];
        for (x, y, w, h) in [
            (dx, dy, cw, 6.0),
            (dx, dy + ch - 6.0, cw, 6.0),
            (dx, dy, 6.0, ch),
            (dx + cw - 6.0, dy, 6.0, ch),
        ] {
            canvas.rect(x, y, w, h, frame_color);
        }
        for r in 0..5 {
            for c in 0..4 {
                if MAP[1 + r].as_bytes()[2 * c + 2] == b'|' {
                    let x = (c + 1) as f32 * cw;
                    canvas.rect(x - 4.0, r as f32 * ch, 8.0, ch, [40, 40, 40]);
                }
            }
        }
        let (tx, ty) = (col as f32 * cw, row as f32 * ch);
        let body = if pass == 4 { [40, 170, 60] } else { [250, 200, 30] };
        canvas.rect(tx + 20.0, ty + 22.0, cw - 40.0, ch - 40.0, body);
        canvas.rect(tx + 38.0, ty + 12.0, cw - 76.0, 12.0, body);
        canvas.circle(tx + 34.0, ty + ch - 18.0, 7.0, [30, 30, 30]);
        canvas.circle(tx + cw - 34.0, ty + ch - 18.0, 7.0, [30, 30, 30]);
        if pass < 4 {
            let (pr, pc) = LOCS[pass];
            let (px, py) = (pc as f32 * cw + cw * 0.8, pr as f32 * ch + ch * 0.35);
            canvas.circle(px, py, 7.0, [30, 30, 160]);
            canvas.rect(px - 6.0, py + 7.0, 12.0, 16.0, [30, 30, 160]);
        }
        Some(canvas.into_frame())
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        Some(self.core.model())
    }
}
