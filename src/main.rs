//! The `deeprl` command-line interface.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Envs(args) => commands::envs::run(&args),
        Command::CheckEnv(args) => commands::check_env::run(&args),
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
