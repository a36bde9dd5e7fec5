//! Building a [`Generation`]: the configuration, the validated playbook set
//! and the customer source, loaded together so they are always consistent.
//! It sits in the incident layer because a generation is the engine's unit of
//! configuration; it reads config and playbooks, which are below it.

use super::Generation;
use crate::config::{Config, customers};
use crate::diag::Diagnostic;
use crate::playbook::{self, Snapshot};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one load attempt produced.
pub struct Loaded {
    /// `None` if anything was invalid: a half-valid set is never used.
    pub generation: Option<Generation>,
    /// The playbook files as read, kept even when invalid so diagnostics can point into them.
    pub snapshot: Snapshot,
    /// Every problem found; any error means `generation` is `None`.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and validates everything a generation needs, at `now`, numbered `number`.
pub fn load(config: Config, number: u64, now: i64) -> Loaded {
    let snapshot = Snapshot::read(std::slice::from_ref(&config.playbooks));
    load_snapshot(config, snapshot, number, now)
}

/// Validates playbook files already read (e.g. a generation another node
/// published) against `config`, exactly as [`load`] validates the disk.
pub fn load_snapshot(config: Config, snapshot: Snapshot, number: u64, now: i64) -> Loaded {
    let validated = playbook::validate(&snapshot, &config.ref_context());
    let mut diagnostics = validated.diagnostics.clone();
    let ids: Vec<&str> = validated.playbooks.iter().map(|p| p.id.as_str()).collect();
    diagnostics.extend(config.pagerduty.unknown_playbooks(|id| ids.contains(&id), &ids));
    let customers = match &config.customers {
        None => Vec::new(),
        Some(p) => match customers::load(p) {
            Ok(c) => c,
            Err(e) => {
                diagnostics.push(Diagnostic { path: p.clone(), line: 1, col: 1, message: e });
                Vec::new()
            }
        },
    };
    if !diagnostics.is_empty() {
        return Loaded { generation: None, snapshot, diagnostics };
    }
    let playbooks: BTreeMap<String, Arc<playbook::Playbook>> =
        validated.playbooks.into_iter().map(|p| (p.id.clone(), Arc::new(p))).collect();
    let set_hash = combined_hash(&snapshot, &config);
    Loaded {
        generation: Some(Generation {
            number,
            set_hash,
            loaded_at: now,
            playbooks,
            config: Arc::new(config),
            customers: Arc::new(customers),
        }),
        snapshot,
        diagnostics,
    }
}

/// The hash that decides "unchanged": playbook files, config and roster,
/// and the plugin files the config names or its plugin directory holds.
pub fn combined_hash(snapshot: &Snapshot, config: &Config) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(snapshot.hash().as_bytes());
    h.update(config.hash.as_bytes());
    for f in plugin_files(config) {
        h.update(f.to_string_lossy().as_bytes());
        if let Ok(bytes) = std::fs::read(&f) {
            h.update(Sha256::digest(&bytes));
        }
    }
    hex::encode(h.finalize())
}

/// Plugin component files (and sidecar manifests) a configuration uses, sorted.
pub fn plugin_files(config: &Config) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = config.plugins.values().filter_map(|p| p.file.clone()).collect();
    if let Some(dir) = &config.plugin_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        files.extend(
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "wasm" || e == "toml")),
        );
    }
    files.sort();
    files
}

/// An empty generation: the daemon serves but is not ready.
pub fn empty(config: Config, now: i64) -> Generation {
    Generation {
        number: 0,
        set_hash: String::new(),
        loaded_at: now,
        playbooks: BTreeMap::new(),
        config: Arc::new(config),
        customers: Arc::new(Vec::new()),
    }
}
