//! `deeprl envs`: the registered environments, their spaces, and one random episode each.

use anyhow::Result;
use deeprl::envs::{make, registered, ActionRef, DynEnv, SpaceSample};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct EnvsArgs {
    /// Seed of the random episodes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only list the ids and spaces; play no episode.
    #[arg(long)]
    no_play: bool,
}

pub fn run(args: &EnvsArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<26} {:>9} {:>9} {:>13} {:>6}  {:<16} observation space",
        "id", "max steps", "threshold", "random return", "length", "action space"
    )?;
    for spec in registered() {
        let mut env = make(&spec.id)?;
        let limit = spec.max_episode_steps.map_or("-".to_string(), |n| n.to_string());
        let threshold = spec.reward_threshold.map_or("-".to_string(), |x| x.to_string());
        let (ret, len) = if args.no_play {
            ("-".to_string(), "-".to_string())
        } else {
            let (ret, len) = random_episode(env.as_mut(), args.seed)?;
            (format!("{ret:.2}"), len.to_string())
        };
        writeln!(
            out,
            "{:<26} {:>9} {:>9} {:>13} {:>6}  {:<16} {}",
            spec.id,
            limit,
            threshold,
            ret,
            len,
            env.action_space().to_string(),
            env.observation_space()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Plays one episode with uniformly random actions; stops after 10,000 steps for envs with
/// no time limit that do not end by themselves.
fn random_episode(env: &mut dyn DynEnv, seed: u64) -> Result<(f64, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut obs = vec![0.0; env.obs_len()];
    env.reset_into(Some(seed), &mut obs)?;
    let space = env.action_space();
    let (mut ret, mut len) = (0.0, 0);
    let mut refused = 0;
    while len < 10_000 {
        let sample = space.sample(&mut rng);
        let action = match &sample {
            SpaceSample::Discrete(i) => ActionRef::Discrete(*i),
            SpaceSample::Box(v) => ActionRef::Continuous(v),
            SpaceSample::MultiDiscrete(_) => {
                anyhow::bail!("MultiDiscrete actions are not supported")
            }
        };
        let out = match env.step_into(action, &mut obs) {
            Ok(out) => out,
            // A state-dependent action set (a finite MDP): try another random action, but give
            // up on an env that refuses 1,000 in a row.
            Err(deeprl::envs::EnvError::InvalidAction { .. }) if refused < 1_000 => {
                refused += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        refused = 0;
        ret += out.reward;
        len += 1;
        if out.done() {
            break;
        }
    }
    Ok((ret, len))
}
