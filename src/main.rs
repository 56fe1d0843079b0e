//! The `deeprl` command-line interface.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc rather than the system allocator: the neural layers allocate their tensors anew
/// at every step, and glibc's allocator hands large freed blocks back to the kernel, so
/// that every step faults their pages in again (measured, one core: 28% less CPU time per
/// LeNet-5 step, 11% per ResNet residual unit, 13% per LSTM step; the README's figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "deeprl", version, about = "Deep reinforcement learning on candle")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the registered environments with their spaces, and play one random episode of each.
    Envs(commands::envs::EnvsArgs),
    /// Check that an environment keeps the contract of the Env trait.
    CheckEnv(commands::check_env::CheckEnvArgs),
    /// List the agents with their config keys and defaults.
    Agents(commands::agents::AgentsArgs),
    /// Train an agent on an environment (or resume a run).
    Train(commands::train::TrainArgs),
    /// Evaluate a trained agent with its greedy policy.
    Eval(commands::eval::EvalArgs),
    /// Record a GIF of a trained agent.
    Record(commands::record::RecordArgs),
    /// Plot learning curves of runs to a PNG.
    Plot(commands::plot::PlotArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Envs(args) => commands::envs::run(&args),
        Command::CheckEnv(args) => commands::check_env::run(&args),
        Command::Agents(args) => commands::agents::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::Record(args) => commands::record::run(&args),
        Command::Plot(args) => commands::plot::run(&args),
    };
    match result {
        Ok(code) => code,
        // A closed pipe (`deeprl envs | head`) is the reader's choice, not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
