//! Loaded plugins by name, with atomic hot swap and quarantine.
//!
//! Why `ArcSwap` per name: a call takes `load_full()` once and keeps that
//! `Arc<PluginVersion>` to the end, so a reload swapping the slot mid-call
//! never disturbs it; the old version is freed when its last call returns.

use super::api::{PluginSource, World};
use super::error::LoadError;
use super::pattern::HostPattern;
use super::quarantine::Breaker;
use super::state::StoreState;
use super::warm::WarmInstance;
use arc_swap::ArcSwap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use wasmtime::component::InstancePre;

/// One compiled, linked and described plugin version.
pub(crate) struct PluginVersion {
    pub name: String,
    pub world: World,
    pub api_version: String,
    pub sha256: String,
    pub size: usize,
    pub source: PluginSource,
    pub pre: InstancePre<StoreState>,
    /// Its world's export indices, resolved once with `pre`.
    pub indices: super::indices::WorldIndices,
    pub describe: super::api::PluginDescription,
    pub declared: Vec<HostPattern>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Plugin faults and quarantine of this version (a new version starts clean).
    pub breaker: Mutex<Breaker>,
    pub calls: AtomicU64,
    /// Idle instances kept for reuse when the grant sets `limits.warm_calls`.
    pub warm: Mutex<Vec<WarmInstance>>,
}

impl PluginVersion {
    /// The breaker, even if a call panicked while holding it.
    pub(crate) fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn short_sha(&self) -> String {
        self.sha256[..12].to_string()
    }
}

pub(crate) struct Slot {
    pub current: ArcSwap<PluginVersion>,
    pub last_error: Mutex<Option<String>>,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Serialises loads so two reloads of one name cannot interleave.
    pub load_lock: Mutex<()>,
}

impl Registry {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Install or swap. Returns the previous version, if any.
    pub(crate) fn install(&self, v: Arc<PluginVersion>) -> Option<Arc<PluginVersion>> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        match slots.get(&v.name) {
            Some(slot) => {
                *slot.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Some(slot.current.swap(v))
            }
            None => {
                slots.insert(v.name.clone(), Arc::new(Slot { current: ArcSwap::new(v), last_error: Mutex::new(None) }));
                None
            }
        }
    }

    pub(crate) fn set_error(&self, name: &str, msg: String) {
        if let Some(slot) = self.get(name) {
            *slot.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg);
        }
    }

    pub(crate) fn remove(&self, name: &str) -> bool {
        self.slots.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }
}

/// Optional sidecar manifest `NAME.toml` next to `NAME.wasm`.
///
/// ```toml
/// [plugin]
/// name = "pagerduty-notify"          # default: the file stem
/// world = "notifier"                 # checked against the component
/// sha256 = "…"                       # pin: refuse the file if it differs
/// allowed_hosts = ["events.pagerduty.com"]   # declared hosts (default: from describe)
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    /// The `[plugin]` table; all of its keys are optional.
    pub plugin: ManifestPlugin,
}

/// The `[plugin]` table of a sidecar manifest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManifestPlugin {
    /// Name to register the plugin under instead of the file stem.
    pub name: Option<String>,
    /// Expected world; the file is refused if the component implements another.
    pub world: Option<World>,
    /// Hex SHA-256 pin; the file is refused if its bytes hash differently.
    pub sha256: Option<String>,
    /// Declared hosts, replacing what `meta.describe` declares; None keeps the plugin's own.
    pub allowed_hosts: Option<Vec<String>>,
}

impl PluginManifest {
    /// Read and parse a manifest; errors name the file.
    pub fn read(path: &Path) -> Result<PluginManifest, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::Io { path: path.display().to_string(), message: e.to_string() })?;
        toml::from_str(&text)
            .map_err(|e| LoadError::Manifest { path: path.display().to_string(), message: e.to_string() })
    }
}

/// What a directory scan did. Why: the reload task reports it in
/// `crisis status` and `crisis reload`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ScanReport {
    /// Newly loaded or swapped to a new version.
    pub loaded: Vec<String>,
    /// Same bytes as the running version; nothing done.
    pub unchanged: Vec<String>,
    /// File plugins whose file disappeared; unloaded (in-flight calls finish).
    pub removed: Vec<String>,
    /// Files refused; the last good version (if any) keeps running.
    pub errors: Vec<ScanError>,
}

/// One refused file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScanError {
    /// The `.wasm` or `.toml` file (or the directory) that failed.
    pub path: PathBuf,
    /// Plugin name the file would register under; empty if the directory itself failed.
    pub plugin: String,
    /// Why it failed, ready to show to the operator.
    pub message: String,
}
