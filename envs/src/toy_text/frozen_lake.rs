//! FrozenLake: cross a frozen lake from the start `S` to the goal `G` without falling into
//! a hole `H`, on ice that may be slippery.
//!
//! Source: Gymnasium 1.4 `gymnasium.envs.toy_text.frozen_lake.FrozenLakeEnv` (registered
//! as `FrozenLake-v1` with the 4x4 map and `FrozenLake8x8-v1` with the 8x8 map), itself
//! from OpenAI Gym. This implementation builds the same transition table `P[s][a]`, entry
//! for entry.
//!
//! Rules:
//! * The map is a grid of tiles `S` (start, frozen), `F` (frozen), `H` (hole), `G` (goal),
//!   row 0 on top. State = `row * ncol + col`; the episode starts on `S`.
//! * Actions: 0 LEFT, 1 DOWN, 2 RIGHT, 3 UP. A move off the grid leaves the agent in place.
//! * Not slippery: the agent moves in the chosen direction. Slippery: it moves in
//!   directions `(a - 1) % 4`, `a`, `(a + 1) % 4` with probabilities `fail_rate`,
//!   `success_rate`, `fail_rate`, listed in that order and not merged when two lead to the
//!   same cell; `fail_rate = (1 - success_rate) / 2` (with the default `success_rate = 1/3`
//!   this double, `0.33333333333333337`, differs from `success_rate` by one ulp).
//! * Entering `G` or `H` terminates the episode; the rewards for entering `G`, `H` and any
//!   other tile are `reward_schedule = (1, 0, 0)` by default. Holes and the goal are
//!   absorbing in `P` (every action: probability 1, same state, reward 0, terminated).
//! * Random maps follow Gymnasium's `generate_random_map(size, p, seed)`: every tile is
//!   frozen with probability `p`, `S` top-left, `G` bottom-right, redrawn until a path of
//!   non-hole tiles joins them. The draws come from [`EnvRng`], so a seed gives the same map
//!   on every platform, but not the map numpy would draw.
//!
//! Stricter than Gymnasium: a map with no start, several starts, no goal, ragged rows, an
//! unknown tile or no tiles is rejected with [`EnvError::InvalidMap`].

use crate::env::{Env, EnvRng, Step};
use crate::error::{EnvError, Result};
use crate::mdp::{TabularCore, Transition, TransitionModel};
use crate::render::{Canvas, Frame};
use crate::space::Space;
use rand::{Rng, SeedableRng};

/// Action 0: move left.
pub const LEFT: usize = 0;
/// Action 1: move down.
pub const DOWN: usize = 1;
/// Action 2: move right.
pub const RIGHT: usize = 2;
/// Action 3: move up.
pub const UP: usize = 3;

/// Gymnasium's `MAPS["4x4"]`.
pub const MAP_4X4: [&str; 4] = ["SFFF", "FHFH", "FFFH", "HFFG"];
/// Gymnasium's `MAPS["8x8"]`.
pub const MAP_8X8: [&str; 8] = [
    "SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG",
];

/// Most maps [`generate_random_map`] draws before giving up (Gymnasium would loop forever).
const MAX_MAP_ATTEMPTS: usize = 1_000_000;

/// Which map to play on (Gymnasium's `map_name` / `desc` arguments).
#[derive(Debug, Clone, PartialEq)]
pub enum FrozenLakeMap {
    /// A named map: `"4x4"` or `"8x8"`.
    Named(String),
    /// Rows of `S`/`F`/`H`/`G`, top row first (Gymnasium's `desc`).
    Custom(Vec<String>),
    /// A random `size x size` map with frozen probability `p` (`generate_random_map`);
    /// `seed: None` draws from OS entropy.
    Random { size: usize, p: f64, seed: Option<u64> },
}

/// FrozenLake's constructor arguments, as Gymnasium 1.4's keyword arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenLakeConfig {
    pub map: FrozenLakeMap,
    pub is_slippery: bool,
    /// Probability of moving in the chosen direction on slippery ice (default 1/3).
    pub success_rate: f64,
    /// Rewards for entering the goal, a hole, and any other tile (default `(1, 0, 0)`).
    pub reward_schedule: (f64, f64, f64),
}

impl Default for FrozenLakeConfig {
    /// `FrozenLake-v1`: the 4x4 map, slippery, success rate 1/3, rewards (1, 0, 0).
    fn default() -> Self {
        FrozenLakeConfig {
            map: FrozenLakeMap::Named("4x4".into()),
            is_slippery: true,
            success_rate: 1.0 / 3.0,
            reward_schedule: (1.0, 0.0, 0.0),
        }
    }
}

impl FrozenLakeConfig {
    /// The default configuration on another map.
    pub fn with_map(map: FrozenLakeMap) -> Self {
        FrozenLakeConfig { map, ..FrozenLakeConfig::default() }
    }

    /// The same configuration with `is_slippery` set.
    pub fn slippery(mut self, is_slippery: bool) -> Self {
        self.is_slippery = is_slippery;
        self
    }
}

/// Gymnasium's `generate_random_map(size, p, seed)`: a `size x size` map, `S` top-left,
/// `G` bottom-right, other tiles frozen with probability `min(p, 1)`, redrawn until the goal
/// is reachable. Needs `size >= 2` and `p > 0`.
pub fn generate_random_map(size: usize, p: f64, seed: Option<u64>) -> Result<Vec<String>> {
    if size < 2 {
        return Err(EnvError::InvalidConfig(format!(
            "random FrozenLake map of size {size}: need size >= 2 (start and goal differ)"
        )));
    }
    if p.is_nan() || p <= 0.0 {
        return Err(EnvError::InvalidConfig(format!(
            "random FrozenLake map with frozen probability {p}: need p > 0"
        )));
    }
    let p = p.min(1.0);
    let mut rng = match seed {
        Some(seed) => EnvRng::seed_from_u64(seed),
        None => crate::env::entropy_rng(),
    };
    let Some(n_tiles) = size.checked_mul(size) else {
        return Err(EnvError::InvalidConfig(format!(
            "random FrozenLake map of size {size} is too large"
        )));
    };
    let mut board = vec![b'F'; n_tiles];
    for _ in 0..MAX_MAP_ATTEMPTS {
        for tile in board.iter_mut() {
            *tile = if rng.random::<f64>() < p { b'F' } else { b'H' };
        }
        board[0] = b'S';
        board[n_tiles - 1] = b'G';
        if goal_reachable(&board, size, size) {
            return Ok(board
                .chunks(size)
                .map(|row| row.iter().map(|&b| b as char).collect())
                .collect());
        }
    }
    Err(EnvError::InvalidConfig(format!(
        "no random {size}x{size} FrozenLake map with frozen probability {p} had a path to the \
         goal in {MAX_MAP_ATTEMPTS} draws"
    )))
}

/// Gymnasium's `is_valid`: depth-first search from the top-left tile through non-holes.
fn goal_reachable(board: &[u8], nrow: usize, ncol: usize) -> bool {
    let mut seen = vec![false; board.len()];
    let mut frontier = vec![0usize];
    while let Some(i) = frontier.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let (r, c) = (i / ncol, i % ncol);
        let neighbours = [
            (r + 1 < nrow).then(|| i + ncol),
            (c + 1 < ncol).then(|| i + 1),
            (r > 0).then(|| i - ncol),
            (c > 0).then(|| i - 1),
        ];
        for j in neighbours.into_iter().flatten() {
            match board[j] {
                b'G' => return true,
                b'H' => {}
                _ => frontier.push(j),
            }
        }
    }
    false
}

/// Checks a map and returns its tiles row-major with the number of rows and columns.
fn parse_map(rows: &[String]) -> Result<(Vec<u8>, usize, usize)> {
    let bad = |msg: String| Err(EnvError::InvalidMap(msg));
    if rows.iter().all(|r| r.is_empty()) {
        return bad("the map is empty: give at least one non-empty row".into());
    }
    let ncol = rows[0].chars().count();
    let mut tiles = Vec::with_capacity(rows.len() * ncol);
    for (r, row) in rows.iter().enumerate() {
        if row.chars().count() != ncol {
            return bad(format!(
                "ragged rows: row {r} ({row:?}) has {} tiles, row 0 has {ncol}",
                row.chars().count()
            ));
        }
        for (c, ch) in row.chars().enumerate() {
            if !matches!(ch, 'S' | 'F' | 'H' | 'G') {
                return bad(format!(
                    "unknown tile {ch:?} at row {r}, column {c}: expected S, F, H or G"
                ));
            }
            tiles.push(ch as u8);
        }
    }
    match tiles.iter().filter(|&&t| t == b'S').count() {
        0 => return bad("no start tile 'S'".into()),
        1 => {}
        n => return bad(format!("{n} start tiles 'S': expected exactly one")),
    }
    if !tiles.contains(&b'G') {
        return bad("no goal tile 'G'".into());
    }
    Ok((tiles, rows.len(), ncol))
}

/// Gymnasium's `P` for a map: see the module documentation for the rules.
fn build_model(
    tiles: &[u8],
    nrow: usize,
    ncol: usize,
    cfg: &FrozenLakeConfig,
) -> Result<TransitionModel> {
    let fail_rate = (1.0 - cfg.success_rate) / 2.0;
    let (r_goal, r_hole, r_other) = cfg.reward_schedule;
    let outcome = |row: usize, col: usize, a: usize, probability: f64| {
        let (row, col) = match a {
            LEFT => (row, col.saturating_sub(1)),
            DOWN => ((row + 1).min(nrow - 1), col),
            RIGHT => (row, (col + 1).min(ncol - 1)),
            _ => (row.saturating_sub(1), col),
        };
        let next_state = row * ncol + col;
        let (reward, terminated) = match tiles[next_state] {
            b'G' => (r_goal, true),
            b'H' => (r_hole, true),
            _ => (r_other, false),
        };
        Transition { probability, next_state, reward, terminated }
    };
    let mut table = Vec::with_capacity(tiles.len());
    for (s, &tile) in tiles.iter().enumerate() {
        let (row, col) = (s / ncol, s % ncol);
        let actions = (0..4)
            .map(|a| match tile {
                b'G' | b'H' => vec![Transition {
                    probability: 1.0,
                    next_state: s,
                    reward: 0.0,
                    terminated: true,
                }],
                _ if cfg.is_slippery => [(a + 3) % 4, a, (a + 1) % 4]
                    .into_iter()
                    .map(|b| {
                        outcome(row, col, b, if b == a { cfg.success_rate } else { fail_rate })
                    })
                    .collect(),
                _ => vec![outcome(row, col, a, 1.0)],
            })
            .collect();
        table.push(actions);
    }
    let n_starts = tiles.iter().filter(|&&t| t == b'S').count() as f64;
    let initial = tiles.iter().map(|&t| if t == b'S' { 1.0 / n_starts } else { 0.0 }).collect();
    TransitionModel::new(table, initial)
}

/// The FrozenLake environment; see the module documentation.
#[derive(Debug, Clone)]
pub struct FrozenLake {
    core: TabularCore,
    tiles: Vec<u8>,
    nrow: usize,
    ncol: usize,
    config: FrozenLakeConfig,
}

impl FrozenLake {
    /// Builds the env, checking the map, `success_rate` (in `[0, 1]`) and the rewards
    /// (finite). A random map is drawn here, once.
    pub fn new(config: FrozenLakeConfig) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.success_rate) {
            return Err(EnvError::InvalidConfig(format!(
                "FrozenLake success_rate {} is outside [0, 1]",
                config.success_rate
            )));
        }
        let (g, h, f) = config.reward_schedule;
        if ![g, h, f].iter().all(|r| r.is_finite()) {
            return Err(EnvError::InvalidConfig(format!(
                "FrozenLake reward_schedule {:?} has a non-finite reward",
                config.reward_schedule
            )));
        }
        let rows: Vec<String> = match &config.map {
            FrozenLakeMap::Named(name) => match name.as_str() {
                "4x4" => MAP_4X4.iter().map(|r| r.to_string()).collect(),
                "8x8" => MAP_8X8.iter().map(|r| r.to_string()).collect(),
                other => {
                    return Err(EnvError::InvalidMap(format!(
                        "unknown map name {other:?}: expected \"4x4\" or \"8x8\""
                    )))
                }
            },
            FrozenLakeMap::Custom(rows) => rows.clone(),
            FrozenLakeMap::Random { size, p, seed } => generate_random_map(*size, *p, *seed)?,
        };
        let (tiles, nrow, ncol) = parse_map(&rows)?;
        let model = build_model(&tiles, nrow, ncol, &config)?;
        Ok(FrozenLake { core: TabularCore::new(model), tiles, nrow, ncol, config })
    }

    /// `FrozenLake-v1`: the slippery 4x4 map.
    pub fn v1() -> Self {
        Self::new(FrozenLakeConfig::default()).expect("the built-in 4x4 map is valid")
    }

    /// `FrozenLake8x8-v1`: the slippery 8x8 map.
    pub fn v1_8x8() -> Self {
        Self::new(FrozenLakeConfig::with_map(FrozenLakeMap::Named("8x8".into())))
            .expect("the built-in 8x8 map is valid")
    }

    /// The configuration the env was built with (a random map keeps its arguments; see
    /// [`FrozenLake::map_rows`] for the map drawn).
    pub fn config(&self) -> &FrozenLakeConfig {
        &self.config
    }

    /// The map as rows of `S`/`F`/`H`/`G`, top row first (Gymnasium's `desc`).
    pub fn map_rows(&self) -> Vec<String> {
        self.tiles.chunks(self.ncol).map(|row| row.iter().map(|&b| b as char).collect()).collect()
    }

    /// Number of rows.
    pub fn nrow(&self) -> usize {
        self.nrow
    }

    /// Number of columns.
    pub fn ncol(&self) -> usize {
        self.ncol
    }

    /// The tile (`'S'`, `'F'`, `'H'` or `'G'`) of `state`, if in range.
    pub fn tile(&self, state: usize) -> Option<char> {
        self.tiles.get(state).map(|&b| b as char)
    }

    /// The current state, `row * ncol + col`.
    pub fn state(&self) -> usize {
        self.core.state()
    }

    /// Puts the agent on `state` inside a running episode; out-of-range states are an error.
    pub fn set_state(&mut self, state: usize) -> Result<()> {
        self.core.set_state(state)
    }
}

impl Env for FrozenLake {
    type Obs = usize;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::discrete(self.tiles.len())
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

    /// Gymnasium's `ansi` rendering: the last action in parentheses (or an empty line), then
    /// the map with the agent's tile highlighted in red.
    fn render_text(&self) -> Option<String> {
        let mut out = match self.core.last_action() {
            Some(a) => format!("  ({})\n", ["Left", "Down", "Right", "Up"][a]),
            None => "\n".to_string(),
        };
        for (s, &tile) in self.tiles.iter().enumerate() {
            if s == self.core.state() {
                out.push_str(&format!("\x1b[41m{}\x1b[0m", tile as char));
            } else {
                out.push(tile as char);
            }
            if (s + 1) % self.ncol == 0 {
                out.push('\n');
            }
        }
        Some(out)
    }

    /// Gymnasium's window size (`min(64 * ncol, 512)` by `min(64 * nrow, 512)`): ice, holes,
    /// the start and the goal as coloured cells, the agent as a red disc with a pointer in
    /// the direction of the last action.
    fn render_rgb(&self) -> Option<Frame> {
        let width = (64 * self.ncol).min(512) as u32;
        let height = (64 * self.nrow).min(512) as u32;
        let cw = (width as usize / self.ncol).max(1) as f32;
        let ch = (height as usize / self.nrow).max(1) as f32;
        let mut canvas = Canvas::new(width, height, [255, 255, 255]);
        for (s, &tile) in self.tiles.iter().enumerate() {
            let (x, y) = ((s % self.ncol) as f32 * cw, (s / self.ncol) as f32 * ch);
            canvas.rect(x, y, cw, ch, [180, 200, 230]);
            canvas.rect(x + 1.0, y + 1.0, cw - 2.0, ch - 2.0, [215, 235, 250]);
            let (cx, cy, r) = (x + cw / 2.0, y + ch / 2.0, cw.min(ch) * 0.35);
            match tile {
                b'H' => canvas.circle(cx, cy, r, [20, 40, 90]),
                b'G' => {
                    canvas.rect(cx - r, cy - r * 0.8, 2.0 * r, 1.6 * r, [230, 170, 40]);
                    canvas.rect(cx - r * 0.15, cy - r * 0.8, r * 0.3, 1.6 * r, [200, 40, 40]);
                }
                b'S' => canvas.rect(cx - r, cy - r, 2.0 * r, 2.0 * r, [170, 205, 235]),
                _ => {}
            }
        }
        let s = self.core.state();
        let (x, y) = ((s % self.ncol) as f32 * cw, (s / self.ncol) as f32 * ch);
        let (cx, cy, r) = (x + cw / 2.0, y + ch / 2.0, cw.min(ch) * 0.28);
        canvas.circle(cx, cy, r, [210, 40, 40]);
        if let Some(a) = self.core.last_action() {
            let (dx, dy) = [(-1.0, 0.0), (0.0, 1.0), (1.0, 0.0), (0.0, -1.0)][a];
            let tip = (cx + dx * r * 1.4, cy + dy * r * 1.4);
            let side = (-dy * r * 0.5, dx * r * 0.5);
            let base = (cx + dx * r * 0.6, cy + dy * r * 0.6);
            canvas.polygon(
                &[tip, (base.0 + side.0, base.1 + side.1), (base.0 - side.0, base.1 - side.1)],
                [120, 20, 20],
            );
        }
        Some(canvas.into_frame())
    }

    fn transition_model(&self) -> Option<&TransitionModel> {
        Some(self.core.model())
    }
}
