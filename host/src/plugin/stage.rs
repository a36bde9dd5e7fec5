//! Staged reloads: grants and plugin versions checked together and swapped
//! in together.
//!
//! Rule: a reload either replaces the whole grant map and every changed
//! plugin at once, or changes nothing. [`PluginHost::stage`] resolves every
//! grant and compiles every new or changed component against its new grant
//! without touching what serves calls; [`PluginHost::commit`] swaps them in.
//! A grant missing from the new map is gone after the commit, so its plugin
//! is denied all egress from the next call on.

use super::api::PluginSource;
use super::cache::sha256_hex;
use super::grant::{GrantError, PluginGrant, ResolvedGrant};
use super::host::{PluginHost, plugin_ref};
use super::registry::{PluginManifest, PluginVersion, ScanError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A plugin component found in `plugin_dir`.
pub(super) struct Candidate {
    pub name: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub manifest: Option<PluginManifest>,
}

/// What a read of `plugin_dir` found.
pub(super) struct DirContents {
    pub candidates: Vec<Candidate>,
    pub errors: Vec<ScanError>,
    /// Loaded file plugins of this directory whose file is gone.
    pub gone: Vec<String>,
}

/// A component declared with `file = "..."` in the daemon's configuration.
#[derive(Debug, Clone)]
pub struct DeclaredFile {
    /// The plugin name it serves as.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
}

/// Grants and plugin versions ready to serve, built by [`PluginHost::stage`].
/// Why a value: the daemon stages, checks the rest of the new generation,
/// and only then commits, so a rejected reload changes nothing.
pub struct StagedPlugins {
    grants: BTreeMap<String, Arc<ResolvedGrant>>,
    versions: Vec<Arc<PluginVersion>>,
    gone: Vec<String>,
    /// Grants that could not be resolved (bad pattern, unreadable secret).
    pub grant_errors: Vec<(String, GrantError)>,
    /// Component files that could not be read or were refused.
    pub file_errors: Vec<ScanError>,
}

impl StagedPlugins {
    /// True when every grant and every file was accepted.
    pub fn is_clean(&self) -> bool {
        self.grant_errors.is_empty() && self.file_errors.is_empty()
    }

    /// Names of the plugins whose new version the commit installs.
    pub fn changed(&self) -> Vec<String> {
        self.versions.iter().map(|v| v.name.clone()).collect()
    }
}

impl PluginHost {
    /// Resolve `grants` (the complete new map), and compile every declared
    /// file and every new or changed component of `plugin_dir` against its
    /// new grant. Nothing serving calls changes until [`PluginHost::commit`].
    /// Blocking (compiles).
    pub fn stage(
        &self,
        grants: &BTreeMap<String, PluginGrant>,
        files: &[DeclaredFile],
        plugin_dir: Option<&Path>,
    ) -> StagedPlugins {
        let mut staged = StagedPlugins {
            grants: BTreeMap::new(),
            versions: Vec::new(),
            gone: Vec::new(),
            grant_errors: Vec::new(),
            file_errors: Vec::new(),
        };
        for (name, g) in grants {
            match g.resolve(name) {
                Ok(r) => {
                    staged.grants.insert(name.clone(), Arc::new(r));
                }
                Err(e) => staged.grant_errors.push((name.clone(), e)),
            }
        }
        let mut candidates = Vec::new();
        for f in files {
            match std::fs::read(&f.path) {
                Ok(bytes) => candidates.push((
                    Candidate { name: f.name.clone(), path: f.path.clone(), bytes, manifest: None },
                    PluginSource::Bytes,
                )),
                Err(e) => staged.file_errors.push(ScanError {
                    path: f.path.clone(),
                    plugin: f.name.clone(),
                    message: format!("cannot read plugin `{}`: {e}", f.name),
                }),
            }
        }
        if let Some(dir) = plugin_dir.or(self.plugin_dir.as_deref()) {
            let found = self.read_plugin_dir(dir);
            staged.file_errors.extend(found.errors);
            staged.gone = found.gone;
            candidates.extend(found.candidates.into_iter().map(|c| {
                let source = PluginSource::File(c.path.clone());
                (c, source)
            }));
        }
        for (c, source) in candidates {
            if let Some(slot) = self.registry.get(&c.name) {
                let cur = slot.current.load_full();
                if cur.sha256 == sha256_hex(&c.bytes) && cur.source == source {
                    continue;
                }
            }
            let grant = staged.grants.get(&c.name).cloned().unwrap_or_default();
            match self.prepare_with(&c.name, &c.bytes, source, None, c.manifest.as_ref(), grant) {
                Ok(v) => staged.versions.push(Arc::new(v)),
                Err(e) => {
                    tracing::warn!(plugin = %c.name, error = %e, "plugin refused; the running version (if any) stays");
                    self.registry.set_error(&c.name, e.to_string());
                    staged.file_errors.push(ScanError { path: c.path, plugin: c.name, message: e.to_string() });
                }
            }
        }
        staged
    }

    /// Swap in a staged set: the grant map is replaced as a whole (a grant
    /// not in it is revoked), new versions are installed, and file plugins
    /// whose file is gone are unloaded. Calls already running finish on what
    /// they started with.
    pub fn commit(&self, staged: StagedPlugins) {
        let _serial = self.registry.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        let revoked: Vec<String> = {
            let mut grants = self.grants.write().unwrap_or_else(|p| p.into_inner());
            let revoked = grants.keys().filter(|k| !staged.grants.contains_key(*k)).cloned().collect();
            *grants = staged.grants;
            revoked
        };
        for name in revoked {
            tracing::info!(plugin = %name, "plugin grant removed: its outbound access is revoked");
        }
        for v in staged.versions {
            let r = plugin_ref(&v);
            let old = self.registry.install(v);
            tracing::info!(plugin = %r.name, sha256 = %r.sha256, previous = ?old.map(|o| o.short_sha()), "plugin loaded");
        }
        for name in staged.gone {
            self.registry.remove(&name);
            tracing::info!(plugin = %name, "plugin unloaded: its file is gone");
        }
    }

    /// Read every `NAME.wasm` (with optional `NAME.toml` manifest) in `dir`.
    /// A component named like a built-in is refused: an operator file must
    /// never take over a built-in's name, and with it its grant.
    pub(super) fn read_plugin_dir(&self, dir: &Path) -> DirContents {
        let mut out = DirContents { candidates: Vec::new(), errors: Vec::new(), gone: Vec::new() };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                out.errors.push(ScanError {
                    path: dir.to_path_buf(),
                    plugin: String::new(),
                    message: format!("cannot read the plugin directory: {e}"),
                });
                return out;
            }
        };
        let mut wasm: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect();
        wasm.sort();
        let mut seen = Vec::new();
        for path in wasm {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            let manifest_path = path.with_extension("toml");
            let manifest = if manifest_path.is_file() {
                match PluginManifest::read(&manifest_path) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        out.errors.push(ScanError {
                            path: manifest_path,
                            plugin: stem.clone(),
                            message: e.to_string(),
                        });
                        seen.push(stem);
                        continue;
                    }
                }
            } else {
                None
            };
            let name = manifest.as_ref().and_then(|m| m.plugin.name.clone()).unwrap_or(stem);
            seen.push(name.clone());
            if super::builtin::builtin_component(&name).is_some() {
                out.errors.push(ScanError {
                    message: format!(
                        "{} would load as `{name}`, the name of a built-in plugin; built-ins cannot be replaced from plugin_dir: rename the file{}",
                        path.display(),
                        if manifest.is_some() { " or the name in its manifest" } else { "" }
                    ),
                    path,
                    plugin: name,
                });
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => out.candidates.push(Candidate { name, path, bytes, manifest }),
                Err(e) => out.errors.push(ScanError { path, plugin: name, message: e.to_string() }),
            }
        }
        for name in self.registry.names() {
            if seen.contains(&name) {
                continue;
            }
            let source = self.registry.get(&name).map(|slot| slot.current.load().source.clone());
            if let Some(PluginSource::File(p)) = source
                && p.parent() == Some(dir)
                && !p.exists()
            {
                out.gone.push(name);
            }
        }
        out
    }
}
