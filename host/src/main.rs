use clap::Parser;

fn main() -> std::process::ExitCode {
    crisis::cli::run(crisis::cli::Cli::parse())
}
