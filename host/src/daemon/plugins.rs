//! Builds the plugin host from `crisis.toml` and keeps it in step on reload.
//!
//! `[plugins.NAME]` grants become [`PluginGrant`]s (secrets resolved from the
//! `[secrets]` they name); plugins declared with `file` are loaded from it,
//! and `plugin_dir` is scanned for more. It lives in the daemon because it
//! translates configuration into plugin-host terms; the host never reads
//! `crisis.toml` types.
//!
//! Grants and plugins are staged as one set and committed together with the
//! playbook generation (see `reload.rs`): a rejected reload changes none of
//! them, an accepted one replaces the whole grant map.

use crate::config::{self, Config};
use crate::plugin::{
    DeclaredFile, InjectRule, LimitOverrides, PluginGrant, PluginHost, PluginHostConfig, SecretRef, SecretValue,
    StagedPlugins,
};
use std::collections::BTreeMap;

/// Converts the config's plugin declarations into grants.
pub(crate) fn grants(cfg: &Config) -> BTreeMap<String, PluginGrant> {
    cfg.plugins.iter().map(|(name, p)| (name.clone(), grant(p, cfg))).collect()
}

/// The host's form of a `[secrets.NAME]` source.
fn secret_source(r: &config::SecretRef) -> SecretRef {
    match r {
        config::SecretRef::Env(v) => SecretRef::Env(v.clone()),
        config::SecretRef::File(f) => SecretRef::File(f.clone()),
    }
}

/// One `[plugins.NAME]` declaration as the host's grant. Secret references
/// become `{env}`/`{file}` sources the host reads itself, for injected
/// headers and for `secret:NAME` config values alike (the plugin gets the
/// value; the host scrubs it from everything the plugin returns).
pub(crate) fn grant(p: &config::PluginSpec, cfg: &Config) -> PluginGrant {
    let inject = p
        .inject
        .iter()
        .filter_map(|i| {
            let secret = secret_source(cfg.secrets.get(&i.secret)?);
            Some(InjectRule {
                host: i.host.clone(),
                header: i.header.clone(),
                secret,
                prefix: i.prefix.clone(),
                name: Some(i.secret.clone()),
                basic_user: i.basic_user.clone(),
            })
        })
        .collect();
    PluginGrant {
        allowed_hosts: p.allowed_hosts.clone(),
        allow_private: p.allow_private.clone(),
        drill_allow: p.drill_allow.clone(),
        inject,
        sign_secrets: p
            .sign_secrets
            .iter()
            .filter_map(|n| Some((n.clone(), secret_source(cfg.secrets.get(n)?))))
            .collect(),
        config: p
            .config
            .iter()
            .filter(|(_, v)| !v.starts_with("secret:"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        secret_config: p
            .config
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), secret_source(cfg.secrets.get(v.strip_prefix("secret:")?)?))))
            .collect(),
        limits: LimitOverrides {
            timeout_ms: p.timeout.map(|t| t.as_millis() as u64),
            memory_mb: p.memory_mb.map(u64::from),
            warm_calls: p.warm_calls,
            ..Default::default()
        },
        max_in_flight: p.max_in_flight,
        max_buffered_bytes: p.max_buffered_bytes,
    }
}

/// A target's `secret:NAME` config values, read now from `[secrets]`.
/// Why at call time: the value is handed to the plugin only for this call
/// and scrubbed from its results; a secret that cannot be read fails the
/// call with the secret's name (never its value).
pub(crate) fn target_secrets(target: &config::Target, cfg: &Config) -> Result<BTreeMap<String, SecretValue>, String> {
    let mut out = BTreeMap::new();
    for (key, value) in &target.config {
        let Some(name) = value.strip_prefix("secret:") else { continue };
        let source = cfg.secrets.get(name).ok_or_else(|| format!("config `{key}` names unknown secret `{name}`"))?;
        let v = source.read().map_err(|e| format!("config `{key}`: secret `{name}`: {e}"))?;
        out.insert(key.clone(), SecretValue::new(v));
    }
    Ok(out)
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

/// Stages the configuration's grants, declared plugin files and
/// `plugin_dir` without changing what serves calls. Returns the staged set
/// and its problems as `path:line:col: message`-style lines.
pub(crate) fn stage(host: &PluginHost, cfg: &Config) -> (StagedPlugins, Vec<String>) {
    let cfg_path = cfg.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "crisis.toml".into());
    let files: Vec<DeclaredFile> = cfg
        .plugins
        .iter()
        .filter_map(|(name, p)| Some(DeclaredFile { name: name.clone(), path: p.file.clone()? }))
        .collect();
    let staged = host.stage(&grants(cfg), &files, cfg.plugin_dir.as_deref());
    let mut errors = Vec::new();
    for (name, e) in &staged.grant_errors {
        errors.push(format!("{cfg_path}:1:1: plugin `{name}`: {e}"));
    }
    for e in &staged.file_errors {
        errors.push(format!("{}:1:1: plugin `{}` refused: {}", e.path.display(), e.plugin, e.message));
    }
    (staged, errors)
}

/// Stages and commits everything that could be loaded (daemon start): a
/// broken file or grant is reported and left out, the rest serves.
pub(crate) fn apply(host: &PluginHost, cfg: &Config) -> Vec<String> {
    let (staged, errors) = stage(host, cfg);
    host.set_quarantine_base(cfg.plugin_quarantine_base);
    host.commit(staged);
    errors
}
