//! `deeprl train`: trains an agent on an env, logging to TensorBoard and a CSV file and
//! checkpointing into the run directory; `--resume RUN_DIR` continues an interrupted run.

use super::{device, progress::ProgressLine};
use anyhow::{bail, Result};
use deeprl::agents::logger::Tee;
use deeprl::agents::{tags, AgentState, Logger, Runner, Summary};
use deeprl::csv_log::CsvLogger;
use deeprl::runs::{self, RunSpec};
use deeprl::tensorboard::EventWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The env id, e.g. CartPole-v1 (see `deeprl envs`).
    #[arg(long, required_unless_present = "resume")]
    env: Option<String>,
    /// The agent, e.g. q-learning (see `deeprl agents`).
    #[arg(long, required_unless_present = "resume")]
    agent: Option<String>,
    /// Env steps to train for (the config key `steps`).
    #[arg(long)]
    steps: Option<u64>,
    /// The seed of every random choice of the run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A TOML file of config keys, applied over the preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// `key=value` overrides, applied last (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The directory the run directory is created in.
    #[arg(long, default_value = "runs")]
    logdir: PathBuf,
    /// Where tensors live: cpu, or cuda (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON summary line on stdout at the end (the config goes to stderr).
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Continue the run in this directory from its checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["env", "agent", "config", "set"])]
    resume: Option<PathBuf>,
}

/// Writes `text` to `path` atomically.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    super::write_atomically(path, |tmp| Ok(std::fs::write(tmp, text)?))
}

pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    let device = device(&args.device)?;
    let (spec, dir, resumed) = match &args.resume {
        Some(dir) => {
            let (spec, state) = runs::load_checkpoint(dir)?;
            (spec, dir.clone(), Some(state))
        }
        None => {
            let (env, agent) = (args.env.as_deref(), args.agent.as_deref());
            let (Some(env), Some(agent)) = (env, agent) else {
                bail!("--env and --agent are required")
            };
            let mut sets = args.set.clone();
            if let Some(steps) = args.steps {
                sets.push(format!("steps={steps}"));
            }
            let spec = RunSpec::resolve(env, agent, args.seed, args.config.as_deref(), &sets)?;
            let dir = runs::create_run_dir(&args.logdir, &spec)?;
            (spec, dir, None)
        }
    };
    let built = spec.build(&device)?;
    let config_text = spec.to_toml();
    if resumed.is_none() {
        write_atomic(&dir.join("config.toml"), &config_text)?;
    }
    if args.json {
        eprint!("{config_text}");
    } else {
        print!("{config_text}");
        println!("# run directory: {}", dir.display());
    }

    let mut runner = match &resumed {
        Some(state) => {
            let file = runs::checkpoint_file(&dir);
            let run_config = Runner::saved_config(state)?;
            let mut runner = Runner::resume(
                built.env,
                built.eval_env,
                built.agent,
                run_config,
                built.success,
                state,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            if let Some(steps) = args.steps {
                runner.set_steps(steps);
            }
            runner
        }
        None => Runner::new(
            built.env,
            built.eval_env,
            built.agent,
            built.run,
            spec.seed,
            built.success,
        )?,
    };

    let mut tb = EventWriter::create(&dir)?;
    let mut csv = CsvLogger::append(&dir.join("scalars.csv"))?;
    tb.text(tags::CONFIG, runner.step(), &config_text)?;
    let mut logger = Tee(vec![&mut tb, &mut csv]);
    let checkpoint_path = dir.join(runs::CHECKPOINT_FILE);
    let mut checkpoint = |r: &Runner| write_state(&spec, r, &checkpoint_path);
    // The best evaluated weights, beside the checkpoint (SB3's EvalCallback best model).
    let (best_path, best_spec) = (dir.join(runs::BEST_FILE), spec.clone());
    runner.set_best_hook(Box::new(move |r| write_state(&best_spec, r, &best_path)));
    let mut progress =
        ProgressLine::new(runner.config().steps, runner.step(), args.quiet || args.json);
    let summary = runner.run(&mut logger, &mut checkpoint, &mut |s| progress.update(s))?;
    progress.finish();
    logger.flush()?;

    let json = summary_json(&spec, &summary, &dir);
    write_atomic(&dir.join("summary.json"), &format!("{json}\n"))?;
    if args.json {
        println!("{json}");
    } else {
        print_summary(&summary, &dir);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the run's spec and the runner's state (agent, counters) to `path`, atomically.
fn write_state(spec: &RunSpec, r: &Runner, path: &Path) -> deeprl::agents::Result<()> {
    let mut state = AgentState::new();
    spec.put(&mut state)?;
    r.save(&mut state)?;
    state.write(path)
}

fn summary_json(spec: &RunSpec, s: &Summary, dir: &Path) -> serde_json::Value {
    let mut json = serde_json::json!({
        "env": spec.env_id,
        "agent": spec.agent,
        "seed": spec.seed,
        "steps": s.steps,
        "episodes": s.episodes,
        "wall_s": s.wall_s,
        "eval_episodes": s.eval.episodes,
        "eval_mean_return": s.eval.mean_return,
        "eval_std_return": s.eval.std_return,
        "reached_target": s.reached_target,
        "run_dir": dir.display().to_string(),
    });
    if let Some(rate) = s.eval.success_rate {
        json["success_rate"] = rate.into();
    }
    if let Some((step, best)) = s.best_eval {
        json["best_eval_step"] = step.into();
        json["best_eval_mean_return"] = best.mean_return.into();
    }
    json
}

fn print_summary(s: &Summary, dir: &Path) {
    println!(
        "trained {} steps ({} episodes) in {:.1} s; greedy evaluation over {} episodes: \
         return {:.2} ± {:.2}{}",
        s.steps,
        s.episodes,
        s.wall_s,
        s.eval.episodes,
        s.eval.mean_return,
        s.eval.std_return,
        s.eval.success_rate.map(|r| format!(", success rate {r:.2}")).unwrap_or_default()
    );
    if let Some((step, best)) = s.best_eval {
        println!(
            "best evaluation: return {:.2} at step {step} ({})",
            best.mean_return,
            dir.join(runs::BEST_FILE).display()
        );
    }
    println!("run directory: {}  (tensorboard --logdir {})", dir.display(), dir.display());
}
