//! The `[[drill.inject]]` syntax of a playbook: the timed entries of a drill
//! scenario, and how one TOML table becomes an [`Inject`].
//!
//! An inject is due at `at` (offset from the drill start). Responder actions
//! (`ack`, `step-done`, `approve`, `resolve`, `outcome`) also wait for their
//! precondition (the step is ready, the incident is resolved, ...) and then
//! for `after`; they run at whichever of the two is later. The syntax lives
//! with the playbook format so validation needs nothing from the drill
//! runner, which imports these types from here.

use super::model::{DrillInject, Str};
use super::refs::RefContext;
use super::types::{Channel, Severity};
use crate::diag::nearby;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One timed entry of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Inject {
    /// Offset from the drill start at which the inject is due.
    #[serde(with = "dur", default)]
    pub at: Duration,
    /// For responder actions: delay after the action's precondition is met.
    #[serde(with = "dur", default)]
    pub after: Duration,
    /// What happens, flattened into the same table (`kind = "..."` plus that kind's keys).
    #[serde(flatten)]
    pub kind: InjectKind,
}

/// What an inject does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum InjectKind {
    /// The triggering alert (opens the drill incident).
    Alert {
        /// Alert labels; the playbook's trigger `match` labels must be among them.
        #[serde(default)]
        labels: BTreeMap<String, String>,
        /// Report fields the alert carries (`nature`, `scope`, ...).
        #[serde(default)]
        fields: BTreeMap<String, String>,
        /// Severity spelled `sev1`..`sev5`; `None` opens at the playbook's severity.
        #[serde(default)]
        severity: Option<String>,
        /// Incident title; `None` uses the playbook's name.
        #[serde(default)]
        title: Option<String>,
    },
    /// The same alert again: must be deduplicated into the open incident.
    DuplicateAlert,
    /// `count` customer complaints arrive (attached as triggers from source `complaint`).
    ComplaintBurst {
        /// How many complaints arrive at once (1..=10000, default 10).
        count: u32,
        /// Customer channel they come in on (`phone`, `sms`, `email`, `social`); `None` if unspecified.
        #[serde(default)]
        channel: Option<String>,
    },
    /// The owner does not acknowledge for `duration` from `at`: forces escalation.
    NoAck {
        /// How long the owner stays silent.
        #[serde(with = "dur")]
        duration: Duration,
    },
    /// A step fails when tried; the scripted responder retries after `retry_after`.
    StepFailure {
        /// Id of the step that fails.
        step: String,
        /// Error text recorded for the failure (default `injected failure`).
        reason: String,
        /// Delay before the scripted responder tries the step again (default 15 minutes).
        #[serde(with = "dur")]
        retry_after: Duration,
    },
    /// Responder: acknowledge (default: the current commander).
    Ack {
        /// Roster id of the person acknowledging; `None` means the current commander.
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: mark a step done once it is ready.
    StepDone {
        /// Id of the step to mark done.
        step: String,
        /// Roster id of the person marking it done; `None` means whoever holds the step's owner reference, else the commander.
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: approve the activation (no step) or an approval step.
    Approve {
        /// Id of the approval step to approve; `None` approves the activation.
        #[serde(default)]
        step: Option<String>,
        /// Roster id of the approver; `None` means whoever holds the `approval` reference the playbook names.
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: resolve once every step is finished.
    Resolve {
        /// Roster id of the person resolving; `None` means the current commander.
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: write the outcome report once resolved.
    Outcome {
        /// Why it happened.
        cause: String,
        /// How it was handled.
        process: String,
        /// What follows for customers and the plan.
        aftermath: String,
    },
}

impl InjectKind {
    /// The kind as written in playbooks and reports.
    pub fn name(&self) -> &'static str {
        match self {
            InjectKind::Alert { .. } => "alert",
            InjectKind::DuplicateAlert => "duplicate-alert",
            InjectKind::ComplaintBurst { .. } => "complaint-burst",
            InjectKind::NoAck { .. } => "no-ack",
            InjectKind::StepFailure { .. } => "step-failure",
            InjectKind::Ack { .. } => "ack",
            InjectKind::StepDone { .. } => "step-done",
            InjectKind::Approve { .. } => "approve",
            InjectKind::Resolve { .. } => "resolve",
            InjectKind::Outcome { .. } => "outcome",
        }
    }

    /// Scripted responder actions stand in for people in a virtual drill.
    pub fn is_responder(&self) -> bool {
        matches!(
            self,
            InjectKind::Ack { .. }
                | InjectKind::StepDone { .. }
                | InjectKind::Approve { .. }
                | InjectKind::Resolve { .. }
                | InjectKind::Outcome { .. }
        )
    }

    /// Two entries with the same slot: an inline one replaces the default one.
    pub fn slot(&self) -> Option<String> {
        Some(match self {
            InjectKind::Alert { .. } => "alert".into(),
            InjectKind::Ack { .. } => "ack".into(),
            InjectKind::StepDone { step, .. } => format!("step-done:{step}"),
            InjectKind::Approve { step, .. } => {
                format!("approve:{}", step.as_deref().unwrap_or("activation"))
            }
            InjectKind::Resolve { .. } => "resolve".into(),
            InjectKind::Outcome { .. } => "outcome".into(),
            _ => return None,
        })
    }

    /// One line for timelines and reports (never customer contact data).
    pub fn describe(&self) -> String {
        match self {
            InjectKind::Alert { labels, .. } => {
                let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("alert ({})", l.join(", "))
            }
            InjectKind::DuplicateAlert => "duplicate alert (should be deduplicated)".into(),
            InjectKind::ComplaintBurst { count, channel } => {
                format!(
                    "{count} customer complaints{}",
                    channel.as_ref().map(|c| format!(" by {c}")).unwrap_or_default()
                )
            }
            InjectKind::NoAck { duration } => {
                format!("owner does not acknowledge for {}", humantime::format_duration(*duration))
            }
            InjectKind::StepFailure { step, reason, .. } => format!("step {step} fails: {reason}"),
            InjectKind::Ack { by } => {
                format!("acknowledge{}", by.as_ref().map(|b| format!(" as {b}")).unwrap_or_default())
            }
            InjectKind::StepDone { step, .. } => format!("step {step} done"),
            InjectKind::Approve { step, .. } => {
                format!("approve {}", step.as_deref().unwrap_or("activation"))
            }
            InjectKind::Resolve { .. } => "resolve".into(),
            InjectKind::Outcome { .. } => "write the outcome report".into(),
        }
    }
}

/// The inject kinds a playbook may write in `[[drill.inject]]`.
pub(crate) const KINDS: &[&str] = &[
    "alert",
    "duplicate-alert",
    "complaint-burst",
    "no-ack",
    "step-failure",
    "ack",
    "step-done",
    "approve",
    "resolve",
    "outcome",
];

type Span = std::ops::Range<usize>;

/// Validates one `[[drill.inject]]` table (entry `n`, 1-based) into an [`Inject`];
/// every problem comes back with the span to point at.
pub(crate) fn from_toml(
    raw: &serde_spanned::Spanned<DrillInject>,
    n: usize,
    steps: &[String],
    ctx: &RefContext,
) -> Result<Inject, Vec<(Span, String)>> {
    let whole = raw.span();
    let r = raw.get_ref();
    let mut errs: Vec<(Span, String)> = Vec::new();
    let kind = r.kind.get_ref().as_str();
    let dur = |v: &Option<Str>, errs: &mut Vec<(Span, String)>| -> Option<Duration> {
        let v = v.as_ref()?;
        match humantime::parse_duration(v.get_ref().trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                errs.push((v.span(), format!("bad duration `{}`: {e}; write it like 90s, 5m or 1h30m", v.get_ref())));
                None
            }
        }
    };
    let at = dur(&r.at, &mut errs).unwrap_or_default();
    let after = dur(&r.after, &mut errs).unwrap_or_default();
    let step_ref = |errs: &mut Vec<(Span, String)>| -> Option<String> {
        let s = r.step.as_ref()?;
        if !steps.iter().any(|x| x == s.get_ref()) {
            let near = nearby(s.get_ref(), steps.iter().map(String::as_str));
            errs.push((
                s.span(),
                format!(
                    "[[drill.inject]] #{n} names step `{}`, which this playbook does not have (steps: {})",
                    s.get_ref(),
                    near.join(", ")
                ),
            ));
            return None;
        }
        Some(s.get_ref().clone())
    };
    let person = |v: &Option<Str>, errs: &mut Vec<(Span, String)>| -> Option<String> {
        let v = v.as_ref()?;
        if !ctx.people.is_empty() && !ctx.people.contains(v.get_ref()) {
            let near = nearby(v.get_ref(), ctx.people.iter().map(String::as_str));
            errs.push((
                v.span(),
                format!(
                    "[[drill.inject]] #{n}: `by = \"{}\"` is not a person in the roster; did you mean {}?",
                    v.get_ref(),
                    near.join(", ")
                ),
            ));
        }
        Some(v.get_ref().clone())
    };
    let need_step = |errs: &mut Vec<(Span, String)>| -> Option<String> {
        if r.step.is_none() {
            errs.push((r.kind.span(), format!("a `{kind}` inject needs `step = \"STEP-ID\"`")));
        }
        step_ref(errs)
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    // Which optional keys each kind takes, so a misplaced key is an error, not silently ignored.
    let allowed: &[&str] = match kind {
        "alert" => &["labels", "fields", "severity", "title"],
        "duplicate-alert" => &[],
        "complaint-burst" => &["count", "channel"],
        "no-ack" => &["duration"],
        "step-failure" => &["step", "reason", "retry_after"],
        "ack" => &["by"],
        "step-done" => &["step", "by"],
        "approve" => &["step", "by"],
        "resolve" => &["by"],
        "outcome" => &["cause", "process", "aftermath"],
        other => {
            let near = nearby(other, KINDS.iter().copied());
            errs.push((
                r.kind.span(),
                format!(
                    "unknown inject kind `{other}`: use one of {} (did you mean {}?)",
                    KINDS.join(", "),
                    near.first().cloned().unwrap_or_default()
                ),
            ));
            return Err(errs);
        }
    };
    let present: [(&str, Option<Span>); 13] = [
        ("by", r.by.as_ref().map(|v| v.span())),
        ("step", r.step.as_ref().map(|v| v.span())),
        ("count", r.count.map(|_| whole.clone())),
        ("channel", r.channel.as_ref().map(|v| v.span())),
        ("duration", r.duration.as_ref().map(|v| v.span())),
        ("retry_after", r.retry_after.as_ref().map(|v| v.span())),
        ("reason", r.reason.as_ref().map(|_| whole.clone())),
        ("severity", r.severity.as_ref().map(|v| v.span())),
        ("title", r.title.as_ref().map(|_| whole.clone())),
        ("labels", (!r.labels.is_empty()).then(|| whole.clone())),
        ("fields", (!r.fields.is_empty()).then(|| whole.clone())),
        ("cause", r.cause.as_ref().or(r.process.as_ref()).or(r.aftermath.as_ref()).map(|_| whole.clone())),
        ("after", None),
    ];
    for (key, span) in present {
        let key_ok = allowed.contains(&key) || (key == "cause" && kind == "outcome");
        if let Some(span) = span
            && !key_ok
        {
            let takes = if allowed.is_empty() { "only at".to_string() } else { format!("at, {}", allowed.join(", ")) };
            errs.push((
                span,
                format!(
                    "`{key}` does not apply to {} `{kind}` inject ([[drill.inject]] #{n}); it takes {takes}",
                    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
                ),
            ));
        }
    }
    let parsed = match kind {
        "alert" => {
            if let Some(sev) = &r.severity
                && let Err(e) = sev.get_ref().parse::<Severity>()
            {
                errs.push((sev.span(), e));
            }
            InjectKind::Alert {
                labels: r.labels.clone(),
                fields: r.fields.clone(),
                severity: r.severity.as_ref().map(|s| s.get_ref().clone()),
                title: r.title.clone(),
            }
        }
        "duplicate-alert" => InjectKind::DuplicateAlert,
        "complaint-burst" => {
            let count = r.count.unwrap_or(10);
            if count == 0 || count > 10_000 {
                errs.push((
                    whole.clone(),
                    format!("[[drill.inject]] #{n}: complaint-burst `count` must be 1..=10000, got {count}"),
                ));
            }
            if let Some(c) = &r.channel
                && let Err(e) = c.get_ref().parse::<Channel>()
            {
                errs.push((c.span(), e));
            }
            InjectKind::ComplaintBurst { count, channel: r.channel.as_ref().map(|c| c.get_ref().clone()) }
        }
        "no-ack" => {
            if r.duration.is_none() {
                errs.push((
                    r.kind.span(),
                    "a `no-ack` inject needs `duration = \"15m\"` (how long the owner stays silent)".to_string(),
                ));
            }
            InjectKind::NoAck { duration: dur(&r.duration, &mut errs).unwrap_or_default() }
        }
        "step-failure" => InjectKind::StepFailure {
            step: need_step(&mut errs).unwrap_or_default(),
            reason: r.reason.clone().unwrap_or_else(|| "injected failure".into()),
            retry_after: dur(&r.retry_after, &mut errs).unwrap_or(Duration::from_secs(900)),
        },
        "ack" => InjectKind::Ack { by: person(&r.by, &mut errs) },
        "step-done" => {
            InjectKind::StepDone { step: need_step(&mut errs).unwrap_or_default(), by: person(&r.by, &mut errs) }
        }
        "approve" => InjectKind::Approve { step: step_ref(&mut errs), by: person(&r.by, &mut errs) },
        "resolve" => InjectKind::Resolve { by: person(&r.by, &mut errs) },
        "outcome" => {
            for (k, v) in [("cause", &r.cause), ("process", &r.process), ("aftermath", &r.aftermath)] {
                if v.as_ref().is_none_or(|t| t.trim().is_empty()) {
                    errs.push((whole.clone(), format!("[[drill.inject]] #{n}: an `outcome` inject needs `{k}`")));
                }
            }
            InjectKind::Outcome { cause: text(&r.cause), process: text(&r.process), aftermath: text(&r.aftermath) }
        }
        _ => unreachable!("kinds are matched above"),
    };
    if errs.is_empty() { Ok(Inject { at, after, kind: parsed }) } else { Err(errs) }
}

/// Duration as a humantime string (`5m`, `1h 30m`).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn inj(at: u64, kind: InjectKind) -> Inject {
        Inject { at: Duration::from_secs(at), after: Duration::ZERO, kind }
    }

    #[test]
    fn injects_round_trip_through_json() {
        let i = inj(
            300,
            InjectKind::StepFailure {
                step: "bridge".into(),
                reason: "bridge line down".into(),
                retry_after: Duration::from_secs(900),
            },
        );
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(v["kind"], "step-failure");
        assert_eq!(v["at"], "5m");
        assert_eq!(v["retry_after"], "15m");
        let back: Inject = serde_json::from_value(v).unwrap();
        assert_eq!(back, i);
    }
}
