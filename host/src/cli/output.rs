//! How the CLI reports results and failures, in text or JSON.

use serde::Serialize;
use std::process::ExitCode;

use crate::diag::Diagnostic;

/// A failed command: its exit code, a one-line message, and any diagnostics.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code: 1 failure, 2 invalid input, 3 not found, 4 daemon unreachable.
    pub code: u8,
    /// One-line explanation printed as `error: ...`; empty if the command already
    /// printed its result and only the exit code is left.
    pub message: String,
    /// File/line diagnostics printed before the message (e.g. playbook validation).
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    /// A failure with an explicit exit code and no diagnostics.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure { code, message: message.into(), diagnostics: Vec::new() }
    }
    /// Exit 1: something went wrong that is not the user's input.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(1, message)
    }
    /// Exit 2: the input (arguments, files) is invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(2, message)
    }
    /// Exit 3: the named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(3, message)
    }
    /// Exit 2 with positioned diagnostics.
    pub fn diagnostics(message: impl Into<String>, diagnostics: Vec<Diagnostic>) -> Self {
        Failure { code: 2, message: message.into(), diagnostics }
    }

    /// Prints the failure to stderr (or JSON to stdout) and returns the exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if self.message.is_empty() && self.diagnostics.is_empty() {
            // The command already printed its result (e.g. `validate --json`
            // with `valid: false`); only the exit code is left to give.
            return ExitCode::from(self.code);
        }
        if json {
            #[derive(Serialize)]
            struct J<'a> {
                error: &'a str,
                code: u8,
                diagnostics: Vec<String>,
            }
            let j = J {
                error: &self.message,
                code: self.code,
                diagnostics: self.diagnostics.iter().map(|d| d.to_string()).collect(),
            };
            println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
        } else {
            for d in &self.diagnostics {
                eprintln!("{d}");
            }
            if !self.message.is_empty() {
                eprintln!("error: {}", self.message);
            }
        }
        ExitCode::from(self.code)
    }
}

/// Prints a value as pretty JSON.
pub(crate) fn print_json<T: Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("serializable"));
}

/// Prints a daemon reply as pretty JSON, keys in the order `serde_json::Value`
/// keeps them, so `--json` output is the same as printing the raw reply.
pub(crate) fn print_reply<T: Serialize>(value: &T) {
    match serde_json::to_value(value) {
        Ok(v) => print_json(&v),
        Err(e) => eprintln!("error: cannot print the reply: {e}"),
    }
}

/// The wire spelling of a serde enum (`"rejected"`, `"skip"`), for text output.
pub(crate) fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}

/// Renders rows as an aligned text table.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}
