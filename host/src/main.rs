//! The `crisis` command: parses the command line and hands it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    crisis::cli::run(crisis::cli::Cli::parse())
}
