//! `deeprl agents`: the agents, what they do, and their config keys with defaults.

use anyhow::Result;
use deeprl::agents::config::defaults;
use deeprl::agents::{spec, RunConfig};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct AgentsArgs {}

fn print_keys(table: &toml::Table) {
    for (key, value) in table {
        println!("    {key} = {value}");
    }
}

pub fn run(_args: &AgentsArgs) -> Result<ExitCode> {
    for agent in spec::agents() {
        println!("{}: {}", agent.name, agent.about);
        print_keys(&(agent.defaults)());
        println!();
    }
    println!("runner keys (every agent):");
    print_keys(&defaults::<RunConfig>());
    println!(
        "\nset any key with `--set key=value` or a `--config FILE.toml`; presets per (agent, env):"
    );
    for p in deeprl::presets::PRESETS {
        println!("    {}", p.name);
    }
    Ok(ExitCode::SUCCESS)
}
