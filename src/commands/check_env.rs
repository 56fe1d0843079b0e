//! `deeprl check-env ID`: runs the env checker on a registered environment.

use anyhow::Result;
use deeprl::envs::{check_env, make};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CheckEnvArgs {
    /// The registered id, e.g. CartPole-v1 (see `deeprl envs`).
    id: String,
}

pub fn run(args: &CheckEnvArgs) -> Result<ExitCode> {
    make(&args.id)?; // an unknown id is an error that lists the known ones
    let report = check_env(|| make(&args.id).expect("the id was made once already"));
    print!("{}: {report}", args.id);
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
