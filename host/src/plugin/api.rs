//! Plain Rust types for talking to plugins.
//!
//! Why separate from the generated bindings: the engine, store and CLI
//! should not depend on one WIT version's generated types. When
//! `crisis:plugin@0.2.0` arrives, it gets its own bindings module and
//! conversions into these same types.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Live or drill. Why: the host, never the plugin, decides it, and in drill
/// mode the host captures every outbound request instead of sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    #[default]
    Live,
    Drill,
}

/// Incident severity, sev1 worst. Why here: mirrors the WIT enum so callers
/// need no generated types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Sev1,
    Sev2,
    #[default]
    Sev3,
    Sev4,
    Sev5,
}

/// Complaint category. Why: appeasement messages and playbooks are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    ProductQuality,
    ServiceAttitude,
    ServiceProcess,
    Price,
    #[default]
    Other,
}

/// Customer channel. Why: the host delivers on it; the plugin only shapes text for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Phone,
    #[default]
    Sms,
    Email,
    Social,
}

/// One plugin call's context. Why: `invocation_id` is the idempotency key the
/// engine records with the intent before the call and reuses on retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Invocation {
    pub invocation_id: String,
    pub incident_id: String,
    pub mode: RunMode,
    /// Host clock (virtual in drills), Unix ms. 0 means "now".
    pub now_unix_ms: u64,
    /// Optional tighter budget than the plugin's limit (never looser).
    pub budget_ms: Option<u32>,
}

/// The incident as plugins see it. Why: no customer data, ever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct IncidentInfo {
    pub id: String,
    pub title: String,
    pub playbook_id: String,
    pub severity: Severity,
    pub category: Category,
    pub phase: String,
    pub summary: String,
    pub labels: Vec<(String, String)>,
}

/// What a notifier sends. Why: the same shape for webhook, chat, SMS gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Notification {
    pub incident: IncidentInfo,
    /// Target name from the daemon config (e.g. `superiors`).
    pub target: String,
    pub subject: String,
    pub body_text: String,
    pub params: Vec<(String, String)>,
}

/// Per-target configuration. Why: one notifier serves several targets
/// (`[targets.superiors] config = {url = ...}`); merged over the grant config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NotifyTarget {
    pub config: BTreeMap<String, String>,
    /// Configuration values resolved from secrets by the caller. Passed to
    /// the plugin like `config`, and scrubbed from everything the call
    /// returns. Never serialized.
    #[serde(skip)]
    pub secrets: BTreeMap<String, super::grant::SecretValue>,
    /// Customer contact details this call carries (e.g. the `to` address),
    /// scrubbed from everything the call returns in their common encodings.
    #[serde(skip)]
    pub contacts: Vec<String>,
}

/// A notifier's successful answer. Why: journaled as the call's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Receipt {
    pub provider_id: Option<String>,
    pub http_status: Option<u16>,
    pub detail: String,
}

/// A customer by reference. Why: contact details stay in the host; plugins
/// get only what shapes the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CustomerRef {
    pub id: String,
    pub segment: String,
    pub tier: String,
    pub locale: String,
    pub channel: Channel,
}

/// One message for one customer. Why: the host delivers and counts it (or
/// captures it in a drill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ComposedMessage {
    pub channel: Channel,
    pub locale: String,
    pub subject: Option<String>,
    pub body: String,
    pub compensation: Option<String>,
}

/// Kinds of drill injects. Why: the drill runner maps each to an engine action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectKind {
    Alert,
    ComplaintBurst,
    DuplicateAlert,
    NoAck,
    Ack,
    StepFailure,
    StepDone,
    Outcome,
}

/// One timed inject. Why: the drill runner schedules it on its (virtual) clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inject {
    pub at_offset_ms: u64,
    pub kind: InjectKind,
    pub target: Option<String>,
    pub payload_json: String,
}

/// A drill scenario. Why: what `drill_plan` returns for the runner to play.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub title: String,
    pub severity: Severity,
    pub injects: Vec<Inject>,
}

/// An extra scoring criterion from the simulator. Why: added to the host's own score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub name: String,
    pub points: u32,
    pub max_points: u32,
    pub note: String,
}

/// The three plugin kinds. Why: a playbook step kind must match its plugin's world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Notifier,
    Appeasement,
    Drill,
}

impl World {
    /// The WIT world name (`crisis:plugin/<name>@0.1.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            World::Notifier => "notifier",
            World::Appeasement => "appeasement",
            World::Drill => "drill",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for World {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "notifier" => Ok(World::Notifier),
            "appeasement" => Ok(World::Appeasement),
            "drill" => Ok(World::Drill),
            other => Err(format!("unknown world `{other}`: use notifier, appeasement or drill")),
        }
    }
}

/// What happened to one outbound HTTP request. Why: the engine journals it;
/// drills show what would have been sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HttpDisposition {
    /// Sent upstream; the upstream status.
    Sent { status: u16 },
    /// Drill mode: not sent; answered by the host with a synthetic 200.
    Captured,
    /// Refused by policy before anything left the host.
    Denied { reason: String },
    /// Sent or attempted but failed in transit.
    Failed { error: String },
}

/// A record of one outbound request. Secret header values are redacted.
/// Why: part of every call's outcome, so the journal holds what a plugin did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRecord {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body_bytes: usize,
    /// First 256 bytes of the body, lossy UTF-8.
    pub body_preview: String,
    pub disposition: HttpDisposition,
}

/// Where a log line came from. Why: stdout noise and deliberate logs differ in weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    Log,
    Stdout,
    Stderr,
}

/// One captured log line (size-capped per call). Why: returned with the
/// outcome so `crisis plugin call` and the journal can show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub source: LogSource,
    pub level: String,
    pub message: String,
}

/// Identifies the exact plugin version that served a call. Why: the
/// journal records which version produced a result across hot reloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// A successful call with what it did on the side. Why: the engine journals
/// the HTTP records (drill captures included) and logs with the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallOutcome<T> {
    pub value: T,
    pub plugin: PluginRef,
    pub http: Vec<HttpRecord>,
    pub logs: Vec<LogLine>,
}

/// Where a loaded plugin came from. Why: status shows built-in vs operator file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "path")]
pub enum PluginSource {
    Builtin,
    File(std::path::PathBuf),
    Bytes,
}

/// One row of `crisis plugin list`. Why: operators see quarantine and crash counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginStatus {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub world: World,
    pub source: PluginSource,
    pub quarantined: bool,
    /// Faults (traps, timeouts, out-of-memory) within the quarantine window.
    pub crashes: u32,
    pub calls: u64,
    /// Effective outbound allow-list (declared ∩ granted); empty = no egress.
    pub effective_hosts: Vec<String>,
    /// Last reload error for this name, if the newest file was rejected.
    pub last_error: Option<String>,
}

/// What `meta.describe` said. Why: shown by inspect and used for declared hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PluginDescription {
    pub name: String,
    pub version: String,
    pub description: String,
    pub allowed_hosts: Vec<String>,
    pub config_keys: Vec<String>,
}

/// Result of `crisis plugin inspect FILE`. Why: integrators check their
/// component before deploying it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub world: World,
    pub api_version: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Capabilities implied by imports, e.g. `outbound-http`.
    pub capabilities: Vec<String>,
    pub sha256: String,
    pub size_bytes: usize,
    pub describe: PluginDescription,
}
