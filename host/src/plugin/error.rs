//! Typed errors for loading and calling plugins.
//!
//! Why typed: the engine decides retries from the variant (a `Transient`
//! plugin error or a `Timeout` may be retried with the same invocation id;
//! `Permanent` and `Config` are not), and status pages count crashes.

use super::api::{HttpRecord, World};
use serde::{Deserialize, Serialize};

/// An error a plugin returned on purpose (the WIT `plugin-error` variant),
/// passed through unchanged. Why: the plugin knows whether upstream said
/// "retry" or "never".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "lowercase")]
pub enum PluginError {
    #[error("configuration error: {0}")]
    Config(String),
    #[error("denied: {0}")]
    Denied(String),
    #[error("transient error (may be retried): {0}")]
    Transient(String),
    #[error("permanent error: {0}")]
    Permanent(String),
}

/// Why a call did not produce a value. Each message names the plugin and
/// says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginCallError {
    #[error("plugin `{plugin}` ran past its {budget_ms} ms budget and was stopped{}", if *in_guest { "; raise `limits.timeout_ms` in its grant if the work is legitimately slow" } else { " while it waited on the host (a slow upstream); the call may be retried" })]
    Timeout {
        plugin: String,
        budget_ms: u64,
        /// True when the deadline interrupted guest code (the plugin was
        /// computing: a fault); false when the guest was parked in a host
        /// wait such as a sleep or a slow upstream (transient, never a fault).
        in_guest: bool,
        /// Outbound requests made before the deadline (journal them: some may have been sent).
        http: Vec<HttpRecord>,
    },
    #[error("plugin `{plugin}` exhausted a resource limit ({detail}); raise `limits.memory_mb` in its grant or fix the plugin")]
    ResourceExhausted { plugin: String, detail: String },
    #[error("plugin `{plugin}` crashed: {trap}")]
    Crashed { plugin: String, trap: String, http: Vec<HttpRecord> },
    #[error("plugin `{plugin}` returned an error: {error}")]
    Plugin {
        plugin: String,
        error: PluginError,
        /// Outbound requests the call made (e.g. the request that got a 503).
        http: Vec<HttpRecord>,
    },
    #[error("plugin `{plugin}` may not do this: {reason}")]
    Denied { plugin: String, reason: String },
    #[error("plugin `{plugin}` version {sha256_short} is quarantined after {crashes} crashes for {}s more; fix or replace the file (a new version is loaded fresh) or run `crisis plugin unquarantine {plugin}`", remaining.as_secs().max(1))]
    Quarantined {
        plugin: String,
        sha256_short: String,
        crashes: u32,
        /// Until the quarantine ends by itself (then the next call is let through).
        remaining: std::time::Duration,
    },
    #[error("no plugin named `{plugin}` is loaded; built-ins are webhook-notify, appease-script and drill-sim, others come from the plugin directory")]
    NotFound { plugin: String },
    #[error("plugin `{plugin}` could not be loaded: {source}")]
    Load { plugin: String, source: LoadError },
    #[error("plugin `{plugin}` could not start: the host's instance pool is full ({detail}); retry, or raise the engine's pool sizes")]
    Busy { plugin: String, detail: String },
    #[error("bad input for plugin `{plugin}`: {message}")]
    Input { plugin: String, message: String },
}

impl PluginCallError {
    /// True for errors where retrying the same invocation may succeed.
    /// Why: the engine's retry policy after a crash or a transient failure.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PluginCallError::Timeout { .. }
                | PluginCallError::Busy { .. }
                | PluginCallError::Plugin { error: PluginError::Transient(_), .. }
        )
    }

    /// Outbound HTTP records of the failed call, for the journal. Why: a
    /// notifier that got a 5xx did send a request; the journal must say so.
    pub fn http_records(&self) -> &[HttpRecord] {
        match self {
            PluginCallError::Timeout { http, .. }
            | PluginCallError::Crashed { http, .. }
            | PluginCallError::Plugin { http, .. } => http,
            _ => &[],
        }
    }

    /// True when the error counts as a fault toward quarantine: the plugin
    /// itself misbehaved (trap, out of memory, computing past its deadline).
    /// A timeout while parked in a host wait is the upstream's slowness.
    pub(crate) fn is_fault(&self) -> bool {
        matches!(
            self,
            PluginCallError::Timeout { in_guest: true, .. }
                | PluginCallError::ResourceExhausted { .. }
                | PluginCallError::Crashed { .. }
        )
    }

    /// True when the guest ran and the call ended without a fault, which
    /// closes a half-open quarantine. Errors raised before the guest ran
    /// (not found, denied, busy, quarantined, bad input) say nothing about it.
    pub(crate) fn guest_ran_cleanly(&self) -> bool {
        matches!(self, PluginCallError::Plugin { .. } | PluginCallError::Timeout { in_guest: false, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn all() -> Vec<(PluginCallError, bool)> {
        let p = || "p".to_string();
        vec![
            (PluginCallError::Timeout { plugin: p(), budget_ms: 1, in_guest: true, http: vec![] }, true),
            (PluginCallError::Timeout { plugin: p(), budget_ms: 1, in_guest: false, http: vec![] }, false),
            (PluginCallError::ResourceExhausted { plugin: p(), detail: "oom".into() }, true),
            (PluginCallError::Crashed { plugin: p(), trap: "unreachable".into(), http: vec![] }, true),
            (PluginCallError::Plugin { plugin: p(), error: PluginError::Transient("503".into()), http: vec![] }, false),
            (PluginCallError::Plugin { plugin: p(), error: PluginError::Permanent("400".into()), http: vec![] }, false),
            (PluginCallError::Denied { plugin: p(), reason: "world".into() }, false),
            (
                PluginCallError::Quarantined { plugin: p(), sha256_short: "abc".into(), crashes: 3, remaining: Duration::from_secs(5) },
                false,
            ),
            (PluginCallError::NotFound { plugin: p() }, false),
            (PluginCallError::Load { plugin: p(), source: LoadError::Precompiled }, false),
            (PluginCallError::Busy { plugin: p(), detail: "pool".into() }, false),
            (PluginCallError::Input { plugin: p(), message: "json".into() }, false),
        ]
    }

    #[test]
    fn only_plugin_misbehaviour_is_a_fault() {
        for (e, fault) in all() {
            assert_eq!(e.is_fault(), fault, "{e:?}");
        }
    }

    #[test]
    fn a_host_wait_timeout_is_transient_and_retryable_and_says_so() {
        let e = PluginCallError::Timeout { plugin: "w".into(), budget_ms: 1000, in_guest: false, http: vec![] };
        assert!(e.is_retryable() && e.guest_ran_cleanly() && !e.is_fault());
        assert!(e.to_string().contains("slow upstream"), "{e}");
        let g = PluginCallError::Timeout { plugin: "w".into(), budget_ms: 1000, in_guest: true, http: vec![] };
        assert!(g.to_string().contains("limits.timeout_ms"), "{g}");
    }
}

/// Why a component was refused at load. Why typed: `crisis reload` and
/// `crisis plugin inspect` print these to the person who wrote the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("the file is a precompiled artifact (.cwasm); crisis only loads WebAssembly components (.wasm) and compiles them itself")]
    Precompiled,
    #[error("not a valid WebAssembly component: {0}; build it for wasm32-wasip2 (or with componentize-py/jco) against the crisis:plugin@0.1.0 WIT")]
    Invalid(String),
    #[error("the component exports no crisis plugin world (expected `crisis:plugin/notify`, `crisis:plugin/appease` or `crisis:plugin/simulate` @0.1.x, plus `crisis:plugin/meta`); it exports: {exports}")]
    NoWorld { exports: String },
    #[error("the component exports more than one plugin world ({0}); build one component per world")]
    SeveralWorlds(String),
    #[error("unsupported API version: the component targets `{found}`, this host supports crisis:plugin@0.1.x; rebuild it against plugins/wit/crisis-plugin@0.1.0")]
    UnsupportedVersion { found: String },
    #[error("the `{world}` world may not import `{import}`{hint}; remove that import (capabilities are imports, and this world is not granted it)")]
    ForbiddenImport { world: World, import: String, hint: String },
    #[error("expected a `{expected}` plugin but the component implements `{found}`")]
    WrongWorld { expected: World, found: World },
    #[error("sha256 mismatch: the manifest pins {expected} but the file hashes to {actual}")]
    ShaMismatch { expected: String, actual: String },
    #[error("manifest {path}: {message}")]
    Manifest { path: String, message: String },
    #[error("compiling the component failed: {0}")]
    Compile(String),
    #[error("linking the component failed: {0}")]
    Link(String),
    #[error("`meta.describe` failed at load: {0}")]
    Describe(String),
    #[error("I/O error on {path}: {message}")]
    Io { path: String, message: String },
}
