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
    /// Bad or missing configuration (grant or target `config`); not retried:
    /// fix the configuration.
    #[error("configuration error: {0}")]
    Config(String),
    /// The host refused a capability the plugin needed (host, secret, size);
    /// not retried: widen the grant if the access is intended.
    #[error("denied: {0}")]
    Denied(String),
    /// May succeed later (upstream 5xx, timeout, rate limit); the engine
    /// retries with the same invocation id.
    #[error("transient error (may be retried): {0}")]
    Transient(String),
    /// Rejected upstream for good (4xx, invalid recipient); not retried.
    #[error("permanent error: {0}")]
    Permanent(String),
}

/// Why a call did not produce a value. Each message names the plugin and
/// says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginCallError {
    /// The call was interrupted at its deadline: a fault toward quarantine when
    /// the guest itself was computing, a slow upstream otherwise. Retryable
    /// with the same invocation id.
    #[error("plugin `{plugin}` ran past its {budget_ms} ms budget and was stopped{}", if *in_guest { "; raise `limits.timeout_ms` in its grant if the work is legitimately slow" } else { " while it waited on the host (a slow upstream); the call may be retried" })]
    Timeout {
        /// Registered name of the plugin that was called.
        plugin: String,
        /// The deadline that was exceeded, in milliseconds (the grant's limit or
        /// the invocation's tighter budget).
        budget_ms: u64,
        /// True when the deadline interrupted guest code (the plugin was
        /// computing: a fault); false when the guest was parked in a host
        /// wait such as a sleep or a slow upstream (transient, never a fault).
        in_guest: bool,
        /// Outbound requests made before the deadline (journal them: some may have been sent).
        http: Vec<HttpRecord>,
    },
    #[error(
        "plugin `{plugin}` exhausted a resource limit ({detail}); raise `limits.memory_mb` in its grant or fix the plugin"
    )]
    /// The guest hit its memory, table or stack limit. Counts as a fault;
    /// not retried.
    ResourceExhausted {
        /// Registered name of the plugin that was called.
        plugin: String,
        /// Which limit was hit, e.g. "linear memory limit of 32 MiB reached".
        detail: String,
    },
    #[error("plugin `{plugin}` crashed: {trap}")]
    /// The guest trapped (panic, `unreachable`, bad memory access). Counts as
    /// a fault; not retried.
    Crashed {
        /// Registered name of the plugin that was called.
        plugin: String,
        /// The trap message with backtrace, plus the tail of the guest's stderr.
        trap: String,
        /// Outbound requests made before the crash (journal them: some may have been sent).
        http: Vec<HttpRecord>,
    },
    /// The plugin returned an error on purpose; retried only if it is
    /// [`PluginError::Transient`].
    #[error("plugin `{plugin}` returned an error: {error}")]
    Plugin {
        /// Registered name of the plugin that was called.
        plugin: String,
        /// The error exactly as the plugin returned it.
        error: PluginError,
        /// Outbound requests the call made (e.g. the request that got a 503).
        http: Vec<HttpRecord>,
    },
    #[error("plugin `{plugin}` may not do this: {reason}")]
    /// The host refused the call itself, e.g. the plugin's world does not
    /// fit the call; fix the playbook step or the plugin choice.
    Denied {
        /// Registered name of the plugin that was called.
        plugin: String,
        /// What was refused and why, in words for the operator.
        reason: String,
    },
    #[error("plugin `{plugin}` version {sha256_short} is quarantined after {crashes} crashes for {}s more; fix or replace the file (a new version is loaded fresh) or run `crisis plugin unquarantine {plugin}`", remaining.as_secs().max(1))]
    /// This version is quarantined after repeated faults; calls are refused
    /// until the quarantine ends, new bytes are loaded or it is lifted.
    Quarantined {
        /// Registered name of the plugin that was called.
        plugin: String,
        /// First 12 hex digits of the quarantined version's SHA-256.
        sha256_short: String,
        /// Faults counted within the quarantine window.
        crashes: u32,
        /// Until the quarantine ends by itself (then the next call is let through).
        remaining: std::time::Duration,
    },
    #[error(
        "no plugin named `{plugin}` is loaded; built-ins are webhook-notify, sms-gateway, appease-script, drill-sim and keyword-classifier, others come from the plugin directory"
    )]
    /// No plugin is registered under that name; check the playbook step and
    /// the plugin directory.
    NotFound {
        /// The name that was asked for.
        plugin: String,
    },
    #[error("plugin `{plugin}` could not be loaded: {source}")]
    /// An unregistered component given for a one-off call was refused at load.
    Load {
        /// Name the component was to be called under.
        plugin: String,
        /// Why it was refused.
        source: LoadError,
    },
    #[error(
        "plugin `{plugin}` could not start: the host's instance pool is full ({detail}); retry, or raise the engine's pool sizes"
    )]
    /// Every instance slot is in use. Not the plugin's fault (never counts
    /// toward quarantine); retryable.
    Busy {
        /// Registered name of the plugin that was called.
        plugin: String,
        /// The pool's error message.
        detail: String,
    },
    #[error("bad input for plugin `{plugin}`: {message}")]
    /// The caller's input could not be turned into the plugin's arguments
    /// (e.g. malformed JSON for `crisis plugin call`); fix the input.
    Input {
        /// Name the plugin was to be called under.
        plugin: String,
        /// What is wrong with the input.
        message: String,
    },
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
                PluginCallError::Quarantined {
                    plugin: p(),
                    sha256_short: "abc".into(),
                    crashes: 3,
                    remaining: Duration::from_secs(5),
                },
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
    /// The file is a precompiled wasmtime artifact; those are never loaded (they
    /// would be trusted as native code unchecked): ship the `.wasm` component.
    #[error(
        "the file is a precompiled artifact (.cwasm); crisis only loads WebAssembly components (.wasm) and compiles them itself"
    )]
    Precompiled,
    /// The bytes are not a WebAssembly component (a core module, a corrupt or
    /// truncated file).
    #[error(
        "not a valid WebAssembly component: {0}; build it for wasm32-wasip2 (or with componentize-py/jco) against the crisis:plugin@0.1.0 WIT"
    )]
    Invalid(String),
    #[error(
        "the component exports no crisis plugin world (expected `crisis:plugin/notify`, `crisis:plugin/appease` or `crisis:plugin/simulate` @0.1.x, plus `crisis:plugin/meta`); it exports: {exports}"
    )]
    /// The component exports no plugin interface, or lacks `meta`.
    NoWorld {
        /// What the component does export, comma-separated.
        exports: String,
    },
    /// The component exports the interfaces of more than one world.
    #[error("the component exports more than one plugin world ({0}); build one component per world")]
    SeveralWorlds(String),
    #[error(
        "unsupported API version: the component targets `{found}`, this host supports crisis:plugin@0.1.x; rebuild it against plugins/wit/crisis-plugin@0.1.0"
    )]
    /// The component targets a `crisis:plugin` version this host does not speak.
    UnsupportedVersion {
        /// The export or import naming the unsupported version, e.g.
        /// `crisis:plugin/notify@0.2.0`.
        found: String,
    },
    #[error(
        "the `{world}` world may not import `{import}`{hint}; remove that import (capabilities are imports, and this world is not granted it)"
    )]
    /// The component imports something its world is not allowed, e.g.
    /// outbound HTTP in an appeasement plugin.
    ForbiddenImport {
        /// The world the component implements.
        world: World,
        /// The refused import, fully qualified with its version.
        import: String,
        /// Extra explanation appended to the message (leading space included), or empty.
        hint: String,
    },
    #[error("expected a `{expected}` plugin but the component implements `{found}`")]
    /// The manifest or caller asked for a different world than the component
    /// implements.
    WrongWorld {
        /// The world the manifest's `world` or the caller required.
        expected: World,
        /// The world the component actually implements.
        found: World,
    },
    #[error("sha256 mismatch: the manifest pins {expected} but the file hashes to {actual}")]
    /// The file does not match the manifest's `sha256` pin: the file changed
    /// or the pin is stale.
    ShaMismatch {
        /// Hex SHA-256 pinned in the manifest.
        expected: String,
        /// Hex SHA-256 of the file as read.
        actual: String,
    },
    #[error("manifest {path}: {message}")]
    /// The sidecar `NAME.toml` manifest is not valid TOML or has unknown keys.
    Manifest {
        /// Path of the manifest file, as displayed.
        path: String,
        /// The parser's error, with line and column.
        message: String,
    },
    /// wasmtime could not compile the component or load its cached artifact.
    #[error("compiling the component failed: {0}")]
    Compile(String),
    /// The component's imports could not be linked to the host's.
    #[error("linking the component failed: {0}")]
    Link(String),
    /// `meta.describe` trapped or timed out under the init budget, or declared
    /// a host pattern that does not parse.
    #[error("`meta.describe` failed at load: {0}")]
    Describe(String),
    #[error("I/O error on {path}: {message}")]
    /// A file (component, manifest or cache entry) could not be read or written.
    Io {
        /// The file or directory involved, as displayed.
        path: String,
        /// The operating-system error.
        message: String,
    },
}
