//! The `failover` command line: argument definitions and dispatch. Exit codes: 0 ok, 1 a
//! scenario failed, 2 a usage, config or policy error.

mod check;
mod classify;
mod demo;
mod demo_stream;
mod mock;
mod simulate;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use failover_host::Policy;

#[derive(Debug, Parser)]
#[command(name = "failover", version, about = "Run the LLM-provider failover policy component")]
pub struct Cli {
    /// A policy component (.wasm) to use instead of the built-in one.
    #[arg(long, global = true, value_name = "PATH")]
    policy: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Say what one failure (or a file of them) means: reason, retryable, retry-after.
    Classify(classify::Args),
    /// Replay scenario files in virtual time and compare with their golden traces.
    Simulate(simulate::Args),
    /// Reproduce two real incidents and an outage against a local mock provider over real HTTP.
    Demo,
    /// Validate a config (and snapshot) and print the engine's self-check.
    Check(check::Args),
    /// Run the policy at --policy and swap in each new version written there, live.
    Watch(watch::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let load = || match &cli.policy {
        Some(path) => Policy::load_file(path),
        None => Policy::load_default(),
    };
    match cli.command {
        Command::Classify(args) => classify::run(&load()?, args),
        Command::Simulate(args) => simulate::run(&load()?, args),
        Command::Demo => demo::run(&load()?),
        Command::Check(args) => check::run(&load()?, args),
        Command::Watch(args) => watch::run(cli.policy.as_deref(), args),
    }
}

/// The config file and, when given, the snapshot file an engine starts from.
fn read_config_and_state(config: &Path, state: Option<&Path>) -> anyhow::Result<(String, Option<String>)> {
    let config_json = std::fs::read_to_string(config).with_context(|| format!("cannot read config {}", config.display()))?;
    let state_json = match state {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("cannot read state {}", path.display()))?),
        None => None,
    };
    Ok((config_json, state_json))
}
