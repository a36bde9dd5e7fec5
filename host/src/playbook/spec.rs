//! The validated playbook the engine runs: every reference resolved, every
//! duration parsed. Incidents pin one of these by content hash.

use super::types::{Category, Channel, OutcomeField, ReportField, Severity, StepKind, Who};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default service level for the `report` phase: first response within 2 minutes.
pub const DEFAULT_REPORT_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Playbook {
    pub id: String,
    pub name: String,
    pub category: Category,
    pub severity: Severity,
    pub summary: String,
    /// Where it was loaded from (informational; the hash is the identity).
    pub path: PathBuf,
    /// sha256 of the file's bytes, hex.
    pub hash: String,
    pub trigger: Option<TriggerSpec>,
    pub report: ReportSpec,
    pub activate: ActivateSpec,
    pub assign: AssignSpec,
    pub act: Vec<StepSpec>,
    pub track: TrackSpec,
    pub outcome: OutcomeSpec,
    pub drill: Option<DrillSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TriggerSpec {
    /// Labels an alert must carry (exact match) to start this playbook.
    pub matches: BTreeMap<String, String>,
    /// minijinja template over `labels` and `fields`.
    pub dedup_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportSpec {
    pub require: Vec<ReportField>,
    pub notify: Vec<String>,
    #[serde(with = "dur")]
    pub within: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActivateSpec {
    pub approval: Option<Who>,
    pub channels: Vec<String>,
    #[serde(with = "opt_dur", default)]
    pub within: Option<Duration>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EscalationSpec {
    #[serde(with = "dur")]
    pub after: Duration,
    pub to: Who,
    /// How many times the escalation notice repeats (every `after`) until acknowledged.
    pub repeat: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssignSpec {
    pub commander: Who,
    pub liaison: Option<Who>,
    pub scribe: Option<Who>,
    #[serde(with = "opt_dur", default)]
    pub ack_within: Option<Duration>,
    pub escalate: Vec<EscalationSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct AudienceSpec {
    pub segment: Option<String>,
    pub tier: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LimitsSpec {
    pub max_messages: Option<u32>,
    pub per_minute: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepSpec {
    pub id: String,
    pub kind: StepKind,
    pub owner: Option<Who>,
    pub tasks: Vec<String>,
    #[serde(with = "opt_dur", default)]
    pub within: Option<Duration>,
    pub after: Vec<String>,
    /// CEL expression over `severity`, `sev1`..`sev5`, `category`, `drill`, `fields`, `labels`.
    pub when: Option<String>,
    pub plugin: Option<String>,
    pub notify: Vec<String>,
    pub message: Option<String>,
    pub audience: Option<AudienceSpec>,
    pub channel: Option<Channel>,
    pub limits: LimitsSpec,
    pub approval: Option<Who>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackSpec {
    #[serde(with = "opt_dur", default)]
    pub update_every: Option<Duration>,
    pub notify: Vec<String>,
    #[serde(with = "opt_dur", default)]
    pub stale_after: Option<Duration>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeSpec {
    pub require: Vec<OutcomeField>,
    pub notify: Vec<String>,
    #[serde(with = "opt_dur", default)]
    pub within: Option<Duration>,
}

/// How a drill's time passes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum DrillClock {
    Real,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrillSpec {
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub clock: DrillClock,
    pub simulator: Option<String>,
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
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

mod opt_dur {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => humantime::parse_duration(&s).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
