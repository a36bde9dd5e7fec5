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
    /// A real incident: outbound requests are sent and customers are reached.
    #[default]
    Live,
    /// An exercise: outbound requests are captured and answered by the host (except
    /// `drill_allow` hosts), so nothing reaches customers or providers.
    Drill,
}

/// Incident severity, sev1 worst. Why here: mirrors the WIT enum so callers
/// need no generated types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The worst severity: the highest customer impact.
    Sev1,
    /// Serious, one step below the worst.
    Sev2,
    /// Moderate; the default when a playbook or caller names none.
    #[default]
    Sev3,
    /// Minor, limited customer impact.
    Sev4,
    /// The least severe level.
    Sev5,
}

/// Complaint category. Why: appeasement messages and playbooks are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Complaints about the product itself (defects, safety, quality).
    ProductQuality,
    /// Complaints about how staff treated the customer.
    ServiceAttitude,
    /// Complaints about the service process (delays, handoffs, policy).
    ServiceProcess,
    /// Complaints about pricing, charges or refunds.
    Price,
    /// Anything not covered above; the default.
    #[default]
    Other,
}

/// Customer channel. Why: the host delivers on it; the plugin only shapes text for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A phone call; the host places it, the plugin writes the script.
    Phone,
    /// A text message; the default channel.
    #[default]
    Sms,
    /// An email; `subject` is used.
    Email,
    /// A reply or direct message on a social network.
    Social,
}

/// The engine's vocabularies map one to one onto the plugin API's: a new
/// variant on either side is a compile error here, never a silent default.
impl From<crate::playbook::types::Severity> for Severity {
    fn from(s: crate::playbook::types::Severity) -> Self {
        use crate::playbook::types::Severity as S;
        match s {
            S::Sev1 => Severity::Sev1,
            S::Sev2 => Severity::Sev2,
            S::Sev3 => Severity::Sev3,
            S::Sev4 => Severity::Sev4,
            S::Sev5 => Severity::Sev5,
        }
    }
}

impl From<crate::playbook::types::Category> for Category {
    fn from(c: crate::playbook::types::Category) -> Self {
        use crate::playbook::types::Category as C;
        match c {
            C::ProductQuality => Category::ProductQuality,
            C::ServiceAttitude => Category::ServiceAttitude,
            C::ServiceProcess => Category::ServiceProcess,
            C::Price => Category::Price,
            C::Other => Category::Other,
        }
    }
}

impl From<crate::playbook::types::Channel> for Channel {
    fn from(c: crate::playbook::types::Channel) -> Self {
        use crate::playbook::types::Channel as C;
        match c {
            C::Phone => Channel::Phone,
            C::Sms => Channel::Sms,
            C::Email => Channel::Email,
            C::Social => Channel::Social,
        }
    }
}

/// One plugin call's context. Why: `invocation_id` is the idempotency key the
/// engine records with the intent before the call and reuses on retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Invocation {
    /// Unique per logical side effect and stable across retries of the same
    /// intent; plugins pass it to providers as an idempotency key.
    pub invocation_id: String,
    /// Id of the incident this call acts for (e.g. `INC-12`).
    pub incident_id: String,
    /// Live or drill, set by the host; in drills outbound HTTP is captured.
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
    /// The incident's id as the engine assigned it (e.g. `INC-12`).
    pub id: String,
    /// Human-readable incident title shown in notifications.
    pub title: String,
    /// Id of the playbook the incident runs.
    pub playbook_id: String,
    /// Current severity; may change during the incident.
    pub severity: Severity,
    /// Complaint category, taken from the playbook.
    pub category: Category,
    /// Current phase: `report`, `activate`, `assign`, `act`, `track` or `outcome`.
    pub phase: String,
    /// Short free-text description of what is happening, for message bodies.
    pub summary: String,
    /// Key/value labels from the trigger (e.g. `region=eu`), in trigger order.
    pub labels: Vec<(String, String)>,
}

/// What a notifier sends. Why: the same shape for webhook, chat, SMS gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Notification {
    /// The incident the notification is about.
    pub incident: IncidentInfo,
    /// Target name from the daemon config (e.g. `superiors`).
    pub target: String,
    /// Subject or title line, already rendered by the engine.
    pub subject: String,
    /// Plain-text body, already rendered by the engine; the plugin formats it
    /// for its provider.
    pub body_text: String,
    /// Extra key/values from the playbook step, passed through unchanged.
    pub params: Vec<(String, String)>,
}

/// Per-target configuration. Why: one notifier serves several targets
/// (`[targets.superiors] config = {url = ...}`); merged over the grant config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NotifyTarget {
    /// Target-specific settings (e.g. `url`, `channel`); on a key clash they win
    /// over the grant's `config`.
    pub config: BTreeMap<String, String>,
    /// Configuration values resolved from secrets by the caller. Passed to
    /// the plugin like `config`, and scrubbed from everything the call
    /// returns. Never serialized.
    #[serde(skip)]
    pub secrets: BTreeMap<String, super::secret::SecretValue>,
    /// Customer contact details this call carries (e.g. the `to` address),
    /// scrubbed from everything the call returns in their common encodings.
    #[serde(skip)]
    pub contacts: Vec<String>,
}

/// A notifier's successful answer. Why: journaled as the call's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Receipt {
    /// The provider's id for the sent message, or None if it returned none.
    pub provider_id: Option<String>,
    /// HTTP status of the final provider response, or None if no request was made.
    pub http_status: Option<u16>,
    /// Free-text note from the plugin for the journal (e.g. "posted to #ops").
    pub detail: String,
}

/// A customer by reference. Why: contact details stay in the host; plugins
/// get only what shapes the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CustomerRef {
    /// The host's customer id; opaque to the plugin, never contact data.
    pub id: String,
    /// Customer segment, e.g. `affected` or `enterprise`.
    pub segment: String,
    /// Service tier, e.g. `vip` or `standard`; plugins may vary tone or compensation by it.
    pub tier: String,
    /// Preferred language as a BCP 47 tag, e.g. `zh-CN` or `en`.
    pub locale: String,
    /// The channel the host will deliver on; the plugin shapes text for it.
    pub channel: Channel,
}

/// One message for one customer. Why: the host delivers and counts it (or
/// captures it in a drill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ComposedMessage {
    /// Channel this message is written for; normally the customer's channel.
    pub channel: Channel,
    /// BCP 47 language tag of the text.
    pub locale: String,
    /// Subject line for channels that have one (email), else None.
    pub subject: Option<String>,
    /// The text the customer receives.
    pub body: String,
    /// The compensation offer included in `body`, stated separately so the host
    /// can count and report it; None if nothing is offered.
    pub compensation: Option<String>,
}

/// Kinds of drill injects. Why: the drill runner maps each to an engine action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectKind {
    /// The triggering alert that opens the incident.
    Alert,
    /// A burst of customer complaints; `payload_json` is `{"count": n, "channel": ..}`.
    ComplaintBurst,
    /// The same alert again; the engine is expected to dedup it.
    DuplicateAlert,
    /// A participant does not acknowledge; `target` names the role.
    NoAck,
    /// A scripted acknowledgement.
    Ack,
    /// A playbook step fails; `target` names the step id.
    StepFailure,
    /// A playbook step completes; `target` names the step id.
    StepDone,
    /// A scripted outcome report.
    Outcome,
}

/// One timed inject. Why: the drill runner schedules it on its (virtual) clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inject {
    /// When to fire, in milliseconds after the drill starts (drill clock).
    pub at_offset_ms: u64,
    /// What happens; decides how `target` and `payload_json` are read.
    pub kind: InjectKind,
    /// Role or step id the inject is about (see [`InjectKind`]), None if unused.
    pub target: Option<String>,
    /// Kind-specific details as a JSON document; empty when the kind needs none.
    pub payload_json: String,
}

/// A drill scenario. Why: what `drill_plan` returns for the runner to play.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Scenario title shown in the drill report.
    pub title: String,
    /// Severity the drill incident is opened with.
    pub severity: Severity,
    /// The timed events to play, in any order; the runner sorts by offset.
    pub injects: Vec<Inject>,
}

/// An extra scoring criterion from the simulator. Why: added to the host's own score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// Short criterion name shown in the score table (e.g. `ack within 5 min`).
    pub name: String,
    /// Points earned, at most `max_points`.
    pub points: u32,
    /// Points available for this criterion; added to the drill's maximum score.
    pub max_points: u32,
    /// Why these points were given or withheld, for the after-action report.
    pub note: String,
}

/// The plugin kinds. Why: a playbook step kind must match its plugin's world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Sends notifications (webhook, chat, SMS, email); may use outbound HTTP.
    Notifier,
    /// Composes customer messages; pure text work, no network.
    Appeasement,
    /// Plans and scores drill scenarios; no network.
    Drill,
    /// Classifies complaint text into a category; no network.
    Classifier,
}

impl World {
    /// The WIT world name (`crisis:plugin/<name>@0.1.x`).
    pub fn as_str(self) -> &'static str {
        match self {
            World::Notifier => "notifier",
            World::Appeasement => "appeasement",
            World::Drill => "drill",
            World::Classifier => "classifier",
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
            "classifier" => Ok(World::Classifier),
            other => Err(format!("unknown world `{other}`: use notifier, appeasement, drill or classifier")),
        }
    }
}

/// What happened to one outbound HTTP request. Why: the engine journals it;
/// drills show what would have been sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HttpDisposition {
    /// Sent upstream; the upstream status.
    Sent {
        /// HTTP status of the upstream response.
        status: u16,
    },
    /// Drill mode: not sent; answered by the host with a synthetic 200.
    Captured,
    /// Refused by policy before anything left the host.
    Denied {
        /// Which rule refused it (allow-list, private address, size), for the operator.
        reason: String,
    },
    /// Sent or attempted but failed in transit.
    Failed {
        /// The transport error (DNS, connect, TLS, timeout, body too large).
        error: String,
    },
}

/// A record of one outbound request. Secret header values are redacted.
/// Why: part of every call's outcome, so the journal holds what a plugin did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRecord {
    /// HTTP method as sent, e.g. `POST`.
    pub method: String,
    /// Full request URL as the plugin built it.
    pub url: String,
    /// Request headers in order, with injected secret values replaced by a redaction marker.
    pub headers: Vec<(String, String)>,
    /// Size of the request body in bytes.
    pub body_bytes: usize,
    /// First 256 bytes of the body, lossy UTF-8.
    pub body_preview: String,
    /// Whether the request was sent, captured, denied or failed.
    pub disposition: HttpDisposition,
}

/// Where a log line came from. Why: stdout noise and deliberate logs differ in weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// Written deliberately through the `host.log` import.
    Log,
    /// Captured from the guest's standard output.
    Stdout,
    /// Captured from the guest's standard error.
    Stderr,
}

/// One captured log line (size-capped per call). Why: returned with the
/// outcome so `crisis plugin call` and the journal can show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Which stream the line came from.
    pub source: LogSource,
    /// `trace`, `debug`, `info`, `warn` or `error`; captured stdout/stderr is `info`.
    pub level: String,
    /// The text, truncated with a marker once the per-call log limit is reached.
    pub message: String,
}

/// Identifies the exact plugin version that served a call. Why: the
/// journal records which version produced a result across hot reloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    /// Name the plugin is registered under (file stem, manifest name or built-in name).
    pub name: String,
    /// Version string the plugin reported from `meta.describe`.
    pub version: String,
    /// Hex SHA-256 of the component bytes; identifies the exact build.
    pub sha256: String,
}

/// A successful call with what it did on the side. Why: the engine journals
/// the HTTP records (drill captures included) and logs with the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallOutcome<T> {
    /// What the plugin returned.
    pub value: T,
    /// The plugin version that served the call.
    pub plugin: PluginRef,
    /// Every outbound request the call made, in order (sent, denied or captured).
    pub http: Vec<HttpRecord>,
    /// Log and stdout/stderr lines the call produced, size-capped.
    pub logs: Vec<LogLine>,
}

/// Where a loaded plugin came from. Why: status shows built-in vs operator file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "path")]
pub enum PluginSource {
    /// Embedded in the crisis binary (`webhook-notify`, `appease-script`, `keyword-classifier`, ...).
    Builtin,
    /// Loaded from this `.wasm` file in the plugin directory.
    File(std::path::PathBuf),
    /// Handed in as bytes by a caller (e.g. [`PluginHost::reload`](super::PluginHost::reload) or inspect).
    Bytes,
}

/// One row of `crisis plugin list`. Why: operators see quarantine and crash counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginStatus {
    /// Name the plugin is registered and called under.
    pub name: String,
    /// Version string from `meta.describe`.
    pub version: String,
    /// Hex SHA-256 of the running component's bytes.
    pub sha256: String,
    /// Which kind of plugin it is; decides which playbook steps may use it.
    pub world: World,
    /// Built-in, file or bytes.
    pub source: PluginSource,
    /// True if this version is refused after repeated faults; new bytes or
    /// `crisis plugin unquarantine` lift it.
    pub quarantined: bool,
    /// When the quarantine ends by itself (the next call is then let through).
    pub quarantine_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Faults (traps, out-of-memory, timeouts while computing) within the quarantine window.
    pub crashes: u32,
    /// Calls started on this version since it was loaded.
    pub calls: u64,
    /// Effective outbound allow-list (declared ∩ granted); empty = no egress.
    pub effective_hosts: Vec<String>,
    /// Last reload error for this name, if the newest file was rejected.
    pub last_error: Option<String>,
}

/// What `meta.describe` said. Why: shown by inspect and used for declared hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PluginDescription {
    /// The name the plugin gives itself (may differ from its registered name).
    pub name: String,
    /// The plugin's own version string, e.g. `1.2.0`.
    pub version: String,
    /// One-line human description of what the plugin does.
    pub description: String,
    /// Hosts the plugin wants to reach (`host`, `host:port`, `*.domain` or `*`);
    /// the effective allow-list is this intersected with the operator's grant.
    pub allowed_hosts: Vec<String>,
    /// Configuration keys the plugin reads with `host.config`.
    pub config_keys: Vec<String>,
}

/// Result of `crisis plugin inspect FILE`. Why: integrators check their
/// component before deploying it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// The plugin world the component implements.
    pub world: World,
    /// The `crisis:plugin` package version it was built against, e.g. `0.1.0`.
    pub api_version: String,
    /// Every import of the component, fully qualified (e.g. `wasi:http/outgoing-handler@0.2.12`).
    pub imports: Vec<String>,
    /// Every export of the component, fully qualified.
    pub exports: Vec<String>,
    /// Capabilities implied by imports, e.g. `outbound-http`.
    pub capabilities: Vec<String>,
    /// Hex SHA-256 of the file; pin it in a manifest's `sha256`.
    pub sha256: String,
    /// Size of the component file in bytes.
    pub size_bytes: usize,
    /// What the plugin's `meta.describe` returned at load.
    pub describe: PluginDescription,
}
