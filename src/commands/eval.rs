//! `deeprl eval`: plays greedy episodes with a trained agent and reports the mean and
//! standard deviation of the return (and the success rate where the env has one).

use anyhow::Result;
use deeprl::agents::evaluate;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A run directory written by `deeprl train` (or its checkpoint file).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Episodes to play.
    #[arg(long, default_value_t = 100)]
    episodes: u64,
    /// The seed of the evaluation episodes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Step cap of one episode, for envs without a time limit.
    #[arg(long, default_value_t = 10_000)]
    max_steps: u64,
    /// Where tensors live: cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    anyhow::ensure!(args.episodes > 0, "--episodes must be at least 1");
    let mut loaded = super::load(&args.checkpoint, &args.device)?;
    let b = &mut loaded.built;
    let result = evaluate(
        b.eval_env.as_mut(),
        b.agent.as_mut(),
        args.episodes,
        args.seed,
        args.max_steps,
        b.success,
        &mut |_| Ok(()),
    )?;
    if args.json {
        let mut json = serde_json::json!({
            "env": loaded.spec.env_id,
            "agent": loaded.spec.agent,
            "seed": args.seed,
            "eval_episodes": result.episodes,
            "eval_mean_return": result.mean_return,
            "eval_std_return": result.std_return,
            "eval_mean_length": result.mean_length,
        });
        if let Some(rate) = result.success_rate {
            json["success_rate"] = rate.into();
        }
        println!("{json}");
    } else {
        println!(
            "{} on {}: return {:.3} ± {:.3} over {} episodes (mean length {:.1}){}",
            loaded.spec.agent,
            loaded.spec.env_id,
            result.mean_return,
            result.std_return,
            result.episodes,
            result.mean_length,
            result.success_rate.map(|r| format!(", success rate {r:.3}")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
