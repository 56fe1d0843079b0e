//! Evaluation: episodes played with the greedy policy on a separate env instance, each from a
//! seed of its own, so that every evaluation of a run sees the same start states.

use crate::agent::{ActionBuf, Agent};
use crate::error::Result;
use deeprl_envs::{DynEnv, Success};
use serde::{Deserialize, Serialize};

/// What an evaluation measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub episodes: u64,
    pub mean_return: f64,
    /// The population standard deviation (numpy's default, as SB3's `evaluate_policy`).
    pub std_return: f64,
    pub mean_length: f64,
    /// The fraction of successful episodes, for envs with a goal.
    pub success_rate: Option<f64>,
}

/// The seed of evaluation episode `index` of a run seeded `seed` (SplitMix64 of both).
pub fn episode_seed(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed stream of evaluation episodes (training episodes use stream 0).
pub const EVAL_STREAM: u64 = 1;

/// Plays `episodes` greedy episodes. Episode `i` starts from `reset(episode_seed(seed,
/// EVAL_STREAM, i))`; an episode longer than `max_steps` is cut there (for envs without a
/// time limit, where a greedy policy may loop). `on_step` sees the env after every reset and
/// step (for recording frames).
pub fn evaluate(
    env: &mut dyn DynEnv,
    agent: &mut dyn Agent,
    episodes: u64,
    seed: u64,
    max_steps: u64,
    success: Option<Success>,
    on_step: &mut dyn FnMut(&dyn DynEnv) -> Result<()>,
) -> Result<EvalResult> {
    let mut obs = vec![0.0; env.obs_len()];
    let mut action = ActionBuf::for_space(&env.action_space());
    let (mut returns, mut lengths, mut successes) = (Vec::new(), Vec::new(), 0u64);
    for i in 0..episodes {
        env.reset_into(Some(episode_seed(seed, EVAL_STREAM, i)), &mut obs)?;
        on_step(env)?;
        let (mut total, mut length, mut terminated) = (0.0, 0u64, false);
        while length < max_steps {
            agent.act_greedy(&obs, &mut action)?;
            let out = env.step_into(action.as_ref(), &mut obs)?;
            on_step(env)?;
            total += out.reward;
            length += 1;
            if out.done() {
                terminated = out.terminated;
                break;
            }
        }
        if success.is_some_and(|s| s.judge(total, terminated)) {
            successes += 1;
        }
        returns.push(total);
        lengths.push(length as f64);
    }
    let n = episodes.max(1) as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    Ok(EvalResult {
        episodes,
        mean_return: mean,
        std_return: var.sqrt(),
        mean_length: lengths.iter().sum::<f64>() / n,
        success_rate: success.map(|_| successes as f64 / n),
    })
}
