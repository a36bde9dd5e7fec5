//! The `crisis.toml` and roster file formats, as written by operators.

use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;

pub(crate) type Str = Spanned<String>;

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct ConfigFile {
    /// Where the journal, token and caches live. Restart required to change.
    pub state_dir: Option<Str>,
    /// API listen address. Restart required to change.
    pub listen: Option<Str>,
    pub playbooks: Option<Str>,
    pub roster: Option<Str>,
    pub customers: Option<Str>,
    /// Extra Wasm plugins (hot-reloaded).
    pub plugin_dir: Option<Str>,
    /// How long a crashing plugin version's first quarantine lasts.
    pub plugin_quarantine_base: Option<Str>,
    #[serde(default)]
    pub targets: BTreeMap<String, Spanned<TargetDecl>>,
    #[serde(default)]
    pub plugins: BTreeMap<String, Spanned<PluginDecl>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Spanned<SecretDecl>>,
    pub limits: Option<LimitsDecl>,
    pub drills: Option<DrillsDecl>,
    /// How long side effects already running may finish after SIGTERM.
    pub shutdown_grace: Option<Str>,
    /// `secret:NAME`: the bearer token non-loopback peers must send to read
    /// `/metrics`, `/healthz` and `/readyz`. Restart required to change.
    pub metrics_token: Option<Str>,
    /// `secret:NAME`: the journal's chain key (64 hex characters) instead of
    /// `state_dir/journal.key`. Restart required to change.
    pub journal_key: Option<Str>,
    /// HTTPS for the API; required for a non-loopback `listen` unless
    /// `insecure_listen` is set. Restart required to change.
    pub tls: Option<TlsDecl>,
    /// Accept a non-loopback `listen` without TLS (warned at every start).
    pub insecure_listen: Option<bool>,
}

/// `[tls]`: the daemon's certificate and key, and the CA the CLI trusts.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TlsDecl {
    /// PEM certificate chain the daemon serves.
    pub cert: Str,
    /// PEM private key of the certificate.
    pub key: Str,
    /// PEM CA certificate the CLI trusts for this daemon (for a self-signed
    /// or private-CA certificate; the CLI trusts public roots otherwise).
    pub ca: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TargetDecl {
    /// `log` (journal + tracing only) or a notifier plugin name.
    pub plugin: Str,
    /// Whether drills may notify this target for real (participants, not customers).
    #[serde(default)]
    pub drill_safe: bool,
    #[serde(default)]
    pub config: BTreeMap<String, Str>,
    /// Calls to this target (per channel for customer messages) run at once.
    pub concurrency: Option<u32>,
    /// Consecutive failures that open the target's circuit.
    pub breaker_failures: Option<u32>,
    /// How long an open circuit waits before one probe call.
    pub breaker_cooldown: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InjectDecl {
    pub host: Str,
    pub header: Str,
    pub secret: Str,
    /// Text put before the secret in the header value, e.g. `Bearer `.
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PluginDecl {
    /// Component file, for plugins that are not built in.
    pub file: Option<Str>,
    pub world: Option<Str>,
    #[serde(default)]
    pub allowed_hosts: Vec<Str>,
    #[serde(default)]
    pub allow_private: Vec<Str>,
    #[serde(default)]
    pub drill_allow: Vec<Str>,
    #[serde(default)]
    pub inject: Vec<InjectDecl>,
    #[serde(default)]
    pub config: BTreeMap<String, Str>,
    pub timeout: Option<Str>,
    pub memory_mb: Option<u32>,
    /// Reuse one instance for up to this many live calls (interpreted guests).
    pub warm_calls: Option<u32>,
    /// Outgoing requests one call may have in flight (default 4).
    pub max_in_flight: Option<u32>,
    /// Body bytes the host holds for one call at once (default 4 MiB).
    pub max_buffered_bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SecretDecl {
    pub env: Option<Str>,
    pub file: Option<Str>,
    /// Only here to be refused with a clear message.
    pub value: Option<Str>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct LimitsDecl {
    /// Intake requests accepted per source per minute before 429.
    pub intake_per_minute: Option<u32>,
    /// Largest accepted request body.
    pub max_body_kb: Option<u32>,
    /// Side-effect calls running at once across every target.
    pub effects_concurrency: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct DrillsDecl {
    #[serde(default)]
    pub blackout: Vec<BlackoutDecl>,
    /// How late a missed scheduled drill may still start.
    pub grace: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BlackoutDecl {
    /// RFC 3339 start and end.
    pub start: Str,
    pub end: Str,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RosterFile {
    #[serde(default)]
    pub people: BTreeMap<String, Spanned<PersonDecl>>,
    #[serde(default)]
    pub teams: BTreeMap<String, Spanned<TeamDecl>>,
    #[serde(default)]
    pub rotas: BTreeMap<String, Spanned<RotaDecl>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PersonDecl {
    pub name: Option<String>,
    pub timezone: Option<Str>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Notification target used to page this person (default: the rota's or none).
    pub target: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TeamDecl {
    #[serde(default)]
    pub members: Vec<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RotaDecl {
    pub timezone: Str,
    /// Local time of day the shift changes, `HH:MM`.
    pub handoff: Str,
    /// Shift length in whole days (`1d`, `7d`).
    pub shift: Option<Str>,
    /// Local date on which the first member starts a shift, `YYYY-MM-DD`.
    pub start: Str,
    pub members: Vec<Str>,
}
