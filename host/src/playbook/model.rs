//! The playbook file format, as written by people.
//!
//! Values that can be wrong in ways serde cannot see (durations, references,
//! cron strings) are kept as `Spanned<String>` so validation can point at
//! them. Every section is optional here; validation reports missing phases
//! all at once instead of stopping at the first.

use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;

/// A spanned string: a value plus where it was written.
pub(crate) type Str = Spanned<String>;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Meta {
    pub id: Option<Str>,
    pub name: Option<Str>,
    pub category: Option<Str>,
    pub severity: Option<Str>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Trigger {
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, Str>,
    pub dedup_key: Option<Str>,
    pub surge: Option<Spanned<Surge>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Surge {
    pub category: Option<Str>,
    pub count: Option<Spanned<i64>>,
    pub within: Option<Str>,
    #[serde(default)]
    pub by: Vec<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ReportPhase {
    #[serde(default)]
    pub require: Vec<Str>,
    #[serde(default)]
    pub notify: Vec<Str>,
    pub within: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ActivatePhase {
    pub approval: Option<Str>,
    #[serde(default)]
    pub channels: Vec<Str>,
    pub within: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Escalation {
    pub after: Str,
    pub to: Str,
    pub repeat: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AssignPhase {
    pub commander: Option<Str>,
    pub liaison: Option<Str>,
    pub scribe: Option<Str>,
    pub ack_within: Option<Str>,
    #[serde(default)]
    pub escalate: Vec<Escalation>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Audience {
    pub segment: Option<String>,
    #[serde(default)]
    pub tier: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StepLimits {
    pub max_messages: Option<u32>,
    pub per_minute: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Step {
    pub id: Option<Str>,
    pub kind: Option<Str>,
    pub owner: Option<Str>,
    #[serde(default)]
    pub tasks: Vec<String>,
    pub within: Option<Str>,
    #[serde(default)]
    pub after: Vec<Str>,
    pub when: Option<Str>,
    pub plugin: Option<Str>,
    /// Notification targets for `notify` steps.
    #[serde(default)]
    pub notify: Vec<Str>,
    /// Message text for `notify` steps; rendered with the incident's fields.
    pub message: Option<String>,
    pub audience: Option<Audience>,
    pub channel: Option<Str>,
    pub limits: Option<StepLimits>,
    /// Who must approve before an `approval` step (or a gated appease step) completes.
    pub approval: Option<Str>,
    /// `[act.status]`: what a notify step publishes to `status` targets.
    pub status: Option<Spanned<StatusDecl>>,
}

/// `[act.status]` as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StatusDecl {
    #[serde(default)]
    pub components: Vec<Str>,
    pub state: Option<Str>,
    pub title: Option<Str>,
    pub message: Option<String>,
    pub resolved: Option<String>,
    #[serde(default)]
    pub locales: BTreeMap<String, Spanned<StatusTextDecl>>,
}

/// `[act.status.locales.LOCALE]` as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StatusTextDecl {
    pub title: Option<String>,
    pub message: Option<String>,
    pub resolved: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TrackPhase {
    pub update_every: Option<Str>,
    #[serde(default)]
    pub notify: Vec<Str>,
    pub stale_after: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OutcomePhase {
    #[serde(default)]
    pub require: Vec<Str>,
    #[serde(default)]
    pub notify: Vec<Str>,
    pub within: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DrillSection {
    pub schedule: Option<Str>,
    pub timezone: Option<Str>,
    pub clock: Option<Str>,
    pub simulator: Option<Str>,
    /// The lowest total that passes a drill, 0..=100.
    pub pass_score: Option<Spanned<i64>>,
    /// Inline scenario entries: `[[drill.inject]] at = "5m" kind = "..."`.
    #[serde(default)]
    pub inject: Vec<Spanned<DrillInject>>,
}

/// One `[[drill.inject]]` entry; which keys apply depends on `kind`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DrillInject {
    pub kind: Str,
    pub at: Option<Str>,
    pub after: Option<Str>,
    pub by: Option<Str>,
    pub step: Option<Str>,
    pub count: Option<u32>,
    pub channel: Option<Str>,
    pub duration: Option<Str>,
    pub retry_after: Option<Str>,
    pub reason: Option<String>,
    pub severity: Option<Str>,
    pub title: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    pub cause: Option<String>,
    pub process: Option<String>,
    pub aftermath: Option<String>,
}
