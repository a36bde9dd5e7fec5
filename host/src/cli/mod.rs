//! The command line: one binary, subcommands by concern.
//!
//! Exit codes (DESIGN §10): 0 success, 1 failure, 2 invalid input (usage,
//! validation), 3 not found, 4 daemon unreachable.

mod output;
pub use output::nearby;
mod playbook;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

pub use output::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "crisis",
    version,
    about = "Crisis and incident response: TOML playbooks, a six-phase engine, Wasm plugins, drills.",
    long_about = "crisis runs customer-facing crises through the six phases of a crisis plan \
(report, activate, assign, act, track, outcome). Playbooks are TOML files; plugins are \
WebAssembly components.\n\nExit codes: 0 success, 1 failure, 2 invalid input, 3 not found, \
4 daemon unreachable."
)]
pub struct Cli {
    /// Configuration file. Default: ./crisis.toml if present, else the embedded defaults.
    #[arg(long, global = true, env = "CRISIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate, list and show playbooks (offline: reads the files directly).
    #[command(subcommand)]
    Playbook(playbook::PlaybookCmd),
}

/// Runs a parsed command line and maps failures to exit codes.
pub fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Playbook(cmd) => playbook::run(&cli, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(cli.json),
    }
}
