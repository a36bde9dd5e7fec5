//! Shared harness for end-to-end tests: runs the real `crisis` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_crisis"))
}

/// The repository root (shipped playbooks and examples live there).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The result of one CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `crisis ARGS` in `dir` with no inherited config.
pub fn crisis_in(dir: &Path, args: &[&str]) -> Run {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CRISIS_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run crisis")
        .into()
}

/// Runs `crisis ARGS` from the repository root.
pub fn crisis(args: &[&str]) -> Run {
    crisis_in(&repo(), args)
}
