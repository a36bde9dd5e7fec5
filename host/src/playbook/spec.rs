//! The validated playbook the engine runs: every reference resolved, every
//! duration parsed. Incidents pin one of these by content hash.

use super::types::{Category, Channel, ComponentState, OutcomeField, ReportField, Severity, StepKind, Who};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default service level for the `report` phase: first response within 2 minutes.
pub const DEFAULT_REPORT_WITHIN: Duration = Duration::from_secs(120);

/// One validated playbook: its identity, trigger and the six phases the engine walks through.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Playbook {
    /// The `[playbook] id`, unique across the loaded set; alerts, incidents and drills name the playbook by it.
    pub id: String,
    /// Human title shown in notices and reports.
    pub name: String,
    /// The complaint category incidents of this playbook are filed under.
    pub category: Category,
    /// Severity incidents open with unless the alert says otherwise.
    pub severity: Severity,
    /// One-paragraph description of the situation this playbook handles.
    pub summary: String,
    /// Where it was loaded from (informational; the hash is the identity).
    pub path: PathBuf,
    /// sha256 of the file's bytes, hex.
    pub hash: String,
    /// How alerts start this playbook; `None` if it is only opened by hand or in drills.
    pub trigger: Option<TriggerSpec>,
    /// The `[report]` phase: what a report must say and who hears of it.
    pub report: ReportSpec,
    /// The `[activate]` phase: who approves the response and which targets are told.
    pub activate: ActivateSpec,
    /// The `[assign]` phase: incident roles, the acknowledgement deadline and escalations.
    pub assign: AssignSpec,
    /// The `[[act]]` steps, in file order; `after` decides the order they run in.
    pub act: Vec<StepSpec>,
    /// The `[track]` phase: progress updates and staleness warnings while the incident is open.
    pub track: TrackSpec,
    /// The `[outcome]` phase: the closing report and who receives it.
    pub outcome: OutcomeSpec,
    /// The `[drill]` table: schedule, clock and scenario; `None` if the playbook is only drilled by hand with defaults.
    pub drill: Option<DrillSpec>,
}

/// The `[trigger]` table: which alerts open an incident of this playbook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TriggerSpec {
    /// Labels an alert must carry (exact match) to start this playbook.
    pub matches: BTreeMap<String, String>,
    /// minijinja template over `labels` and `fields`.
    pub dedup_key: Option<String>,
    /// Opens an incident when enough complaints of one kind arrive in a window; `None` if complaints never open it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surge: Option<SurgeSpec>,
}

/// `[trigger] surge`: `count` complaints of `category` within `within`,
/// counted per group of equal `by` values, open one incident per group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SurgeSpec {
    /// Only complaints classified into this category count.
    pub category: Category,
    /// How many complaints in the window open the incident (at least 1).
    pub count: u32,
    /// How far back complaints count, from the newest one.
    #[serde(with = "dur")]
    pub within: Duration,
    /// What complaints must share to count together; empty counts all of the category as one group.
    pub by: Vec<SurgeKey>,
}

/// One value complaints of a surge group share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum SurgeKey {
    /// A complaint label (`labels.product`); complaints without it do not count.
    Label(String),
    /// The channel the complaint came in on.
    Channel,
    /// The complaint's category.
    Category,
}

impl std::fmt::Display for SurgeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SurgeKey::Label(l) => write!(f, "labels.{l}"),
            SurgeKey::Channel => f.write_str("channel"),
            SurgeKey::Category => f.write_str("category"),
        }
    }
}

impl std::str::FromStr for SurgeKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "channel" => Ok(SurgeKey::Channel),
            "category" => Ok(SurgeKey::Category),
            other => match other.strip_prefix("labels.") {
                Some(l) if !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
                    Ok(SurgeKey::Label(l.to_string()))
                }
                _ => Err(format!(
                    "unknown surge group key `{other}`: use labels.NAME (a complaint label), channel or category"
                )),
            },
        }
    }
}

/// The `[report]` phase: the first report upward when a crisis is noticed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportSpec {
    /// Fields the report must carry before the phase completes.
    pub require: Vec<ReportField>,
    /// Target names (from `crisis.toml`) the report notice goes to.
    pub notify: Vec<String>,
    /// How soon after opening the report must be out (default [`DEFAULT_REPORT_WITHIN`]); missing it records a deadline miss.
    #[serde(with = "dur")]
    pub within: Duration,
}

/// The `[activate]` phase: switching the crisis response on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActivateSpec {
    /// Who must approve activation; `None` activates without approval.
    pub approval: Option<Who>,
    /// Target names notified when the response is activated.
    pub channels: Vec<String>,
    /// Deadline for activation after the phase starts; `None` means no deadline.
    #[serde(with = "opt_dur", default)]
    pub within: Option<Duration>,
}

/// One rung of the `[assign] escalate` ladder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EscalationSpec {
    /// How long without an acknowledgement before this rung is paged.
    #[serde(with = "dur")]
    pub after: Duration,
    /// Who is paged at this rung.
    pub to: Who,
    /// How many times the escalation notice repeats (every `after`) until acknowledged.
    pub repeat: u32,
}

/// The `[assign]` phase: who leads the response and how unanswered pages escalate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssignSpec {
    /// Who becomes incident commander (the `role:commander` other entries refer to).
    pub commander: Who,
    /// Who handles outside communication (`role:liaison`); `None` leaves the role empty.
    pub liaison: Option<Who>,
    /// Who keeps the record (`role:scribe`); `None` leaves the role empty.
    pub scribe: Option<Who>,
    /// How long the commander has to acknowledge the page; `None` means no acknowledgement deadline.
    #[serde(with = "opt_dur", default)]
    pub ack_within: Option<Duration>,
    /// Escalation rungs in order, used while the page stays unacknowledged; empty means no escalation.
    pub escalate: Vec<EscalationSpec>,
}

/// Which customers an `appease` step contacts, matched against the customer list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct AudienceSpec {
    /// Customer segment to contact (e.g. `affected`); `None` matches every segment.
    pub segment: Option<String>,
    /// Customer tiers to contact (e.g. `vip`); empty matches every tier.
    pub tier: Vec<String>,
}

/// Rate limits on the customer messages one step sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LimitsSpec {
    /// Most messages the step sends in total; `None` is unlimited. Never zero.
    pub max_messages: Option<u32>,
    /// Most messages per minute, spacing the rest out; `None` is unlimited. Never zero.
    pub per_minute: Option<u32>,
}

/// One `[[act]]` step of the response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepSpec {
    /// Step id, unique within the playbook; `after`, drills and reports name the step by it.
    pub id: String,
    /// What the step does, which decides the plugin world it may call.
    pub kind: StepKind,
    /// Who carries the step out and is asked to mark it done; `None` for steps that run by themselves.
    pub owner: Option<Who>,
    /// Checklist lines shown to the owner, in order.
    pub tasks: Vec<String>,
    /// Deadline for the step once it is ready; `None` means no deadline.
    #[serde(with = "opt_dur", default)]
    pub within: Option<Duration>,
    /// Ids of steps that must finish before this one is ready; empty means ready when `act` starts.
    pub after: Vec<String>,
    /// CEL expression over `severity`, `sev1`..`sev5`, `category`, `drill`, `fields`, `labels`.
    pub when: Option<String>,
    /// Plugin an `appease` (appeasement world) or `notify` (notifier world) step calls; `None` uses the host's default delivery.
    pub plugin: Option<String>,
    /// Target names a `notify` step sends its message to.
    pub notify: Vec<String>,
    /// minijinja template of the message the step sends, over `labels` and `fields`.
    pub message: Option<String>,
    /// Customers an `appease` step contacts; `None` contacts every customer.
    pub audience: Option<AudienceSpec>,
    /// Channel an `appease` step reaches customers on (required for `appease`, `None` for other kinds).
    pub channel: Option<Channel>,
    /// Rate limits on the customer messages this step sends.
    pub limits: LimitsSpec,
    /// Who must approve before the step runs; `None` needs no approval.
    pub approval: Option<Who>,
    /// What a `notify` step publishes to its `status` targets (the public status page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusSpec>,
}

/// The `[act.status]` table of a notify step: the public text and component
/// states it publishes. Only this text reaches the status page, never the
/// step's `message` to internal targets unless copied here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusSpec {
    /// Component ids from `[status_page] components` this publication is about.
    pub components: Vec<String>,
    /// The state the components are shown in while the incident is open.
    pub state: ComponentState,
    /// Headline in the status page's default locale.
    pub title: String,
    /// Body in the default locale (defaults to the step's `message`).
    pub message: String,
    /// Body published when the incident is resolved; `None` uses a built-in sentence.
    pub resolved: Option<String>,
    /// Translations by BCP 47 locale (`zh-CN`); a missing part falls back to the default locale's.
    #[serde(default)]
    pub locales: BTreeMap<String, StatusText>,
}

/// One locale's version of a status publication.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StatusText {
    /// Headline in this locale.
    pub title: Option<String>,
    /// Body in this locale.
    pub message: Option<String>,
    /// Body published on resolve in this locale.
    pub resolved: Option<String>,
}

/// The `[track]` phase: keeping people informed while the incident is open.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackSpec {
    /// Interval between progress notices; `None` sends none.
    #[serde(with = "opt_dur", default)]
    pub update_every: Option<Duration>,
    /// Target names progress and staleness notices go to.
    pub notify: Vec<String>,
    /// Idle time (no journal activity) after which a stale warning is sent; `None` never warns.
    #[serde(with = "opt_dur", default)]
    pub stale_after: Option<Duration>,
}

/// The `[outcome]` phase: the report written after the incident is resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeSpec {
    /// Sections the outcome report must contain before the incident can close.
    pub require: Vec<OutcomeField>,
    /// Target names the outcome report is sent to.
    pub notify: Vec<String>,
    /// Deadline for the outcome report once the phase starts; `None` means no deadline.
    #[serde(with = "opt_dur", default)]
    pub within: Option<Duration>,
}

/// How a drill's time passes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum DrillClock {
    /// Wall-clock time: timers fire when they would in a live incident.
    Real,
    /// Time jumps straight to the next due event, so a drill finishes in seconds.
    Virtual,
    /// Real time sped up N times.
    Speed(u32),
}

impl std::str::FromStr for DrillClock {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "real" => Ok(DrillClock::Real),
            "virtual" => Ok(DrillClock::Virtual),
            x => match x.strip_prefix('x').and_then(|n| n.parse::<u32>().ok()) {
                Some(n) if (2..=3600).contains(&n) => Ok(DrillClock::Speed(n)),
                _ => Err(format!(
                    "unknown drill clock `{s}`: expected real, virtual, or a speed-up like x10 or x60 (x2..x3600)"
                )),
            },
        }
    }
}

/// The lowest drill total that passes when `[drill] pass_score` is not set.
pub const DEFAULT_PASS_SCORE: u32 = 80;

fn default_pass_score() -> u32 {
    DEFAULT_PASS_SCORE
}

/// The `[drill]` table: how and when this playbook is rehearsed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrillSpec {
    /// Cron expression for scheduled drills; `None` means drills only run by hand.
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in (e.g. `Asia/Shanghai`); `None` means UTC.
    pub timezone: Option<String>,
    /// How time passes in this playbook's drills unless overridden with `--clock`.
    pub clock: DrillClock,
    /// Drill-world plugin that plans the scenario and adds score criteria; `None` uses the built-in default scenario.
    pub simulator: Option<String>,
    /// The lowest total (0..=100) that passes a drill of this playbook; no criterion may be `unable` either.
    #[serde(default = "default_pass_score")]
    pub pass_score: u32,
    /// Inline scenario entries from `[[drill.inject]]`, validated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injects: Vec<super::inject::Inject>,
}

impl Playbook {
    /// The step with this id, if any.
    pub fn step(&self, id: &str) -> Option<&StepSpec> {
        self.act.iter().find(|s| s.id == id)
    }
}

mod dur {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

mod opt_dur {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => humantime::parse_duration(&s).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
