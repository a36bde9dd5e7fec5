//! Playbooks: the TOML format, validation with `path:line:col`
//! diagnostics, and loading a whole directory as one consistent set.

pub(crate) mod describe;
mod graph;
pub(crate) mod inject;
pub(crate) mod model;
pub(crate) mod refs;
pub mod spec;
pub mod types;
pub mod validate;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::diag::{self, Diagnostic, Source};
use crate::tomlfile;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use refs::RefContext;
pub use spec::Playbook;

/// Every file of a playbook set, read at one moment, with the set's hash.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The `*.toml` files found, each with its path and full text, sorted by path within each directory.
    pub files: Vec<Source>,
    /// Problems reading paths (missing, unreadable, not UTF-8, empty directory).
    pub read_errors: Vec<Diagnostic>,
}

impl Snapshot {
    /// Reads every `*.toml` file under the given files and directories.
    pub fn read(paths: &[PathBuf]) -> Snapshot {
        let mut files = Vec::new();
        let mut read_errors = Vec::new();
        // A file named twice (`validate playbooks/ playbooks/x.toml`) is read once,
        // so it does not clash with itself as a duplicate id.
        let mut seen = std::collections::BTreeSet::new();
        let mut first_time = |p: &Path| seen.insert(p.canonicalize().unwrap_or_else(|_| p.to_path_buf()));
        for path in paths {
            if path.is_dir() {
                let mut found = Vec::new();
                collect_toml(path, &mut found, &mut read_errors);
                if found.is_empty() {
                    read_errors.push(diag::file_error(
                        path,
                        1,
                        1,
                        "no playbooks here: a playbook directory holds *.toml files",
                    ));
                }
                found.sort();
                found.retain(|f| first_time(f));
                for f in found {
                    match tomlfile::read_source(&f) {
                        Ok(s) => files.push(s),
                        Err(d) => read_errors.push(d),
                    }
                }
            } else if path.exists() {
                if !first_time(path) {
                    continue;
                }
                match tomlfile::read_source(path) {
                    Ok(s) => files.push(s),
                    Err(d) => read_errors.push(d),
                }
            } else {
                read_errors.push(diag::file_error(path, 1, 1, "no such file or directory"));
            }
        }
        Snapshot { files, read_errors }
    }

    /// sha256 over the sorted (path, content) pairs: equal sets hash equal.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        let mut files: Vec<&Source> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for f in files {
            h.update(f.path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(Sha256::digest(f.text.as_bytes()));
        }
        for e in &self.read_errors {
            h.update(e.to_string().as_bytes());
        }
        hex::encode(h.finalize())
    }
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(diag::file_error(dir, 1, 1, format!("cannot read directory: {e}")));
            return;
        }
    };
    for entry in entries.flatten() {
        let p = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue; // editor swap files, hidden dirs
        }
        if p.is_dir() {
            collect_toml(&p, out, errors);
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
}

/// The result of validating a snapshot: the playbooks if all were valid, and every problem.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Every playbook of the set sorted by id, or empty if any file had a problem.
    pub playbooks: Vec<Playbook>,
    /// Every read and validation problem, sorted by path and position; empty when the set is valid.
    pub diagnostics: Vec<Diagnostic>,
    /// Things allowed but probably not meant (`warning: ...`); they never make the set invalid.
    pub warnings: Vec<Diagnostic>,
}

impl Validated {
    /// Whether the whole set is valid, so its playbooks may be loaded.
    pub fn is_ok(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Playbooks by id.
    pub fn by_id(&self) -> BTreeMap<String, Playbook> {
        self.playbooks.iter().map(|p| (p.id.clone(), p.clone())).collect()
    }
}

/// Validates every file of a snapshot, and that ids are unique across files.
pub fn validate(snapshot: &Snapshot, ctx: &RefContext) -> Validated {
    let mut diagnostics = snapshot.read_errors.clone();
    let mut warnings = Vec::new();
    let mut playbooks: Vec<Playbook> = Vec::new();
    let mut first_seen: BTreeMap<String, (PathBuf, usize, usize)> = BTreeMap::new();
    for src in &snapshot.files {
        // Duplicate ids are checked from the raw id so they are found even
        // when one of the files has other errors.
        let (pb, raw) = validate::playbook_with_warnings(src, ctx, &mut diagnostics, &mut warnings);
        if let Some(pb) = pb {
            playbooks.push(pb);
        }
        if let Some((id, span)) = raw {
            let (line, col) = src.position(span.start);
            match first_seen.get(&id) {
                Some((p, l, c)) => diagnostics.push(src.at(
                    span,
                    format!(
                        "duplicate playbook id `{id}`: already used by {}:{l}:{c}; ids are unique across files",
                        p.display()
                    ),
                )),
                None => {
                    first_seen.insert(id, (src.path.clone(), line, col));
                }
            }
        }
    }
    diag::sort(&mut diagnostics);
    if !diagnostics.is_empty() {
        playbooks.clear();
    }
    playbooks.sort_by(|a, b| a.id.cmp(&b.id));
    diag::sort(&mut warnings);
    Validated { playbooks, diagnostics, warnings }
}

/// Parses a single playbook text against a context (used for fixtures and pinned versions).
pub fn parse_one(path: &Path, text: &str, ctx: &RefContext) -> Result<Playbook, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let src = Source::new(path, text);
    match validate::playbook(&src, ctx, &mut diags) {
        Some(p) if diags.is_empty() => Ok(p),
        _ => Err(diags),
    }
}
