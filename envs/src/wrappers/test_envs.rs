//! Small deterministic envs for the wrapper and vector-env tests.

use crate::env::{check_discrete, check_finite, entropy_rng, reseed, Env, EnvRng, Step};
use crate::error::{EpisodePhase, Result};
use crate::mdp::FiniteMdp;
use crate::space::Space;
use rand::Rng;

/// Observation `[t, offset]`: the step count and a number drawn from the env's RNG at each
/// reset. Actions `0` and `1` pay `1 + action`. Terminates after `horizon` steps when set.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    rng: EnvRng,
    t: usize,
    offset: f32,
    horizon: Option<usize>,
    phase: EpisodePhase,
}

impl Counter {
    pub(crate) fn new(horizon: Option<usize>) -> Self {
        Counter { rng: entropy_rng(), t: 0, offset: 0.0, horizon, phase: EpisodePhase::NeedsReset }
    }

    fn obs(&self) -> [f32; 2] {
        [self.t as f32, self.offset]
    }
}

impl Env for Counter {
    type Obs = [f32; 2];
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::boxed(vec![0.0, 0.0], vec![f32::INFINITY, 1.0])
    }

    fn action_space(&self) -> Space {
        Space::discrete(2)
    }

    fn reset(&mut self, seed: Option<u64>) -> [f32; 2] {
        reseed(&mut self.rng, seed);
        self.t = 0;
        self.offset = self.rng.random();
        self.phase = EpisodePhase::Running;
        self.obs()
    }

    fn step(&mut self, action: &usize) -> Result<Step<[f32; 2]>> {
        self.phase.check_step()?;
        check_discrete(*action, 2)?;
        self.t += 1;
        let terminated = self.horizon.is_some_and(|h| self.t >= h);
        self.phase = EpisodePhase::after_step(terminated, false);
        Ok(Step { obs: self.obs(), reward: 1.0 + *action as f64, terminated, truncated: false })
    }

    fn render_text(&self) -> Option<String> {
        Some(format!("t = {}\n", self.t))
    }

    fn max_episode_steps(&self) -> Option<usize> {
        Some(1000)
    }
}

/// A continuous-action env: observation `[x, y, t]` accumulates the actions (in `[-1, 1]^2`),
/// with a random start; reward `a0 - a1`; terminates after `horizon` steps; NaN actions are
/// errors.
#[derive(Debug, Clone)]
pub(crate) struct Walker {
    rng: EnvRng,
    pos: [f32; 3],
    horizon: usize,
    phase: EpisodePhase,
}

impl Walker {
    pub(crate) fn new(horizon: usize) -> Self {
        Walker { rng: entropy_rng(), pos: [0.0; 3], horizon, phase: EpisodePhase::NeedsReset }
    }

    /// The current (unnormalized) observation.
    pub(crate) fn pos(&self) -> [f32; 3] {
        self.pos
    }
}

impl Env for Walker {
    type Obs = [f32; 3];
    type Action = [f32; 2];

    fn observation_space(&self) -> Space {
        Space::boxed(vec![f32::NEG_INFINITY; 3], vec![f32::INFINITY; 3])
    }

    fn action_space(&self) -> Space {
        Space::boxed(vec![-1.0; 2], vec![1.0; 2])
    }

    fn reset(&mut self, seed: Option<u64>) -> [f32; 3] {
        reseed(&mut self.rng, seed);
        self.pos = [self.rng.random(), self.rng.random(), 0.0];
        self.phase = EpisodePhase::Running;
        self.pos
    }

    fn step(&mut self, action: &[f32; 2]) -> Result<Step<[f32; 3]>> {
        self.phase.check_step()?;
        check_finite(action)?;
        self.pos[0] += action[0];
        self.pos[1] += action[1];
        self.pos[2] += 1.0;
        let terminated = self.pos[2] as usize >= self.horizon;
        self.phase = EpisodePhase::after_step(terminated, false);
        Ok(Step {
            obs: self.pos,
            reward: f64::from(action[0] - action[1]),
            terminated,
            truncated: false,
        })
    }
}

/// A three-state MDP: from 0, action 0 goes to 1 (+1) and action 1 to 0 or the terminal
/// state 2 (+2 there) with probability 1/2 each; from 1, action 0 returns to 0 (-1) and
/// action 1 is impossible.
pub(crate) fn small_mdp() -> FiniteMdp {
    let json = r#"{
        "transition_probabilities": [
            [[0, 1, 0], [0.5, 0, 0.5]],
            [[1, 0, 0], null],
            [null, null]
        ],
        "rewards": [
            [[0, 1, 0], [0, 0, 2]],
            [[-1, 0, 0], null],
            [null, null]
        ],
        "terminal_states": [2]
    }"#;
    match FiniteMdp::from_json_str(json) {
        Ok(mdp) => mdp,
        Err(e) => panic!("the test MDP is valid: {e}"),
    }
}

/// The number of heap allocations `f` makes (counted by the `allocation-counter` crate).
pub(crate) fn allocations_in(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}
