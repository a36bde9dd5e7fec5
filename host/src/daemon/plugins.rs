//! Builds the plugin host from `crisis.toml` and keeps it in step on reload.
//!
//! `[plugins.NAME]` grants become [`PluginGrant`]s (secrets resolved from the
//! `[secrets]` they name); plugins declared with `file` are loaded from it,
//! and `plugin_dir` is scanned for more. It lives in the daemon because it
//! translates configuration into plugin-host terms; the host never reads
//! `crisis.toml` types.

use crate::plugin::{InjectRule, LimitOverrides, PluginGrant, PluginHost, PluginHostConfig, SecretRef};
use crate::config::{self, Config};
use std::collections::BTreeMap;

/// Converts the config's plugin declarations into grants.
pub(crate) fn grants(cfg: &Config) -> BTreeMap<String, PluginGrant> {
    cfg.plugins.iter().map(|(name, p)| (name.clone(), grant(p, cfg))).collect()
}

/// One `[plugins.NAME]` declaration as the host's grant. Secret references
/// become `{env}`/`{file}` sources the host reads itself; `secret:NAME`
/// config values are for the daemon and are not passed to plugins.
pub(crate) fn grant(p: &config::PluginSpec, cfg: &Config) -> PluginGrant {
    let inject = p
        .inject
        .iter()
        .filter_map(|i| {
            let secret = match cfg.secrets.get(&i.secret)? {
                config::SecretRef::Env(v) => SecretRef::Env(v.clone()),
                config::SecretRef::File(f) => SecretRef::File(f.clone()),
            };
            Some(InjectRule { host: i.host.clone(), header: i.header.clone(), secret, prefix: i.prefix.clone(), name: Some(i.secret.clone()) })
        })
        .collect();
    PluginGrant {
        allowed_hosts: p.allowed_hosts.clone(),
        allow_private: p.allow_private.clone(),
        drill_allow: p.drill_allow.clone(),
        inject,
        config: p.config.iter().filter(|(_, v)| !v.starts_with("secret:")).map(|(k, v)| (k.clone(), v.clone())).collect(),
        limits: LimitOverrides { timeout_ms: p.timeout.map(|t| t.as_millis() as u64), memory_mb: p.memory_mb.map(u64::from), warm_calls: p.warm_calls, ..Default::default() },
    }
}

/// Creates the host for a daemon: compile cache under `state_dir/plugin-cache`.
pub(crate) fn host_for(cfg: &Config) -> Result<PluginHost, String> {
    let host = PluginHost::new(PluginHostConfig {
        cache_dir: Some(crate::config::state_dir::StateDir::new(&cfg.state_dir).plugin_cache()),
        plugin_dir: cfg.plugin_dir.clone(),
        grants: BTreeMap::new(),
        load_builtins: true,
        ..Default::default()
    })
    .map_err(|e| format!("cannot start the plugin host: {e}"))?;
    let errors = apply(&host, cfg);
    if errors.is_empty() { Ok(host) } else { Err(errors.join("\n")) }
}

/// Applies grants, loads declared plugin files and scans `plugin_dir`.
/// Returns problems as `path:line:col: message`-style lines; a refused file
/// keeps its last good version.
pub(crate) fn apply(host: &PluginHost, cfg: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    let cfg_path = cfg.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "crisis.toml".into());
    host.set_quarantine_base(cfg.plugin_quarantine_base);
    for (name, grant) in grants(cfg) {
        if let Err(e) = host.set_grant(&name, &grant) {
            errors.push(format!("{cfg_path}:1:1: plugin `{name}`: {e}"));
        }
    }
    for (name, p) in &cfg.plugins {
        let Some(file) = &p.file else { continue };
        match std::fs::read(file) {
            Ok(bytes) => {
                if let Err(e) = host.reload(name, &bytes) {
                    errors.push(format!("{}:1:1: plugin `{name}` refused: {e}", file.display()));
                }
            }
            Err(e) => errors.push(format!("{}:1:1: cannot read plugin `{name}`: {e}", file.display())),
        }
    }
    if cfg.plugin_dir.is_some() {
        let report = host.scan_dir(cfg.plugin_dir.as_deref());
        for e in report.errors {
            errors.push(format!("{}:1:1: {}", e.path.display(), e.message));
        }
    }
    errors
}
