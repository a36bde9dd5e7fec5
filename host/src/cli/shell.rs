//! `crisis completions SHELL` and `crisis man`: generated from the same
//! command definition the parser uses, so they never drift from `--help`.

use super::Cli;
use super::output::Failure;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Writes the completion script for `shell` to stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    // Rendered into memory first: the generator panics on a write error
    // (such as a closed pipe), the caller gets a clean error instead.
    let mut script: Vec<u8> = Vec::new();
    clap_complete::generate(shell, &mut cmd, "crisis", &mut script);
    write_stdout(&script, "the completion script")
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8], what: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::failed(format!("cannot write {what}: {e}")))
        }
        _ => Ok(()),
    }
}

/// Writes the man page (roff, section 1) to stdout: options, every
/// subcommand with its summary, exit codes and version. With `dir`, writes
/// that page and one per subcommand (the pages it refers to) into `dir`.
pub(crate) fn man(dir: Option<&Path>) -> Result<(), Failure> {
    if let Some(dir) = dir {
        if !dir.is_dir() {
            return Err(Failure::invalid(format!(
                "{} is not a directory: create it first (e.g. /usr/local/share/man/man1)",
                dir.display()
            )));
        }
        clap_mangen::generate_to(Cli::command(), dir)
            .map_err(|e| Failure::failed(format!("cannot write man pages into {}: {e}", dir.display())))?;
        println!("man pages written to {}", dir.display());
        return Ok(());
    }
    let mut page: Vec<u8> = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Failure::failed(format!("cannot render the man page: {e}")))?;
    write_stdout(&page, "the man page")
}
