//! Scenarios: a timed list of injects (an HSEEP master scenario events list)
//! plus scripted responders, so a virtual drill runs unattended.
//!
//! An inject is due at `at` (offset from the drill start). Responder actions
//! (`ack`, `step-done`, `approve`, `resolve`, `outcome`) also wait for their
//! precondition (the step is ready, the incident is resolved, ...) and then
//! for `after`; they run at whichever of the two is later.
//!
//! Scenarios come from a [`ScenarioSource`]: the built-in default derived from
//! the playbook (see `responders.rs`), inline `[[drill.inject]]` entries in the
//! playbook, and later the `drill-sim` Wasm plugin's `plan` export.

use crate::playbook::spec::Playbook;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A drill scenario: what happens when, and who does what.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scenario {
    pub title: String,
    /// Where it came from: `default`, `default+inline`, or a plugin name.
    pub source: String,
    pub injects: Vec<Inject>,
}

/// One timed entry of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Inject {
    /// Offset from the drill start at which the inject is due.
    #[serde(with = "dur", default)]
    pub at: Duration,
    /// For responder actions: delay after the action's precondition is met.
    #[serde(with = "dur", default)]
    pub after: Duration,
    #[serde(flatten)]
    pub kind: InjectKind,
}

/// What an inject does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum InjectKind {
    /// The triggering alert (opens the drill incident).
    Alert {
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        fields: BTreeMap<String, String>,
        #[serde(default)]
        severity: Option<String>,
        #[serde(default)]
        title: Option<String>,
    },
    /// The same alert again: must be deduplicated into the open incident.
    DuplicateAlert,
    /// `count` customer complaints arrive (attached as triggers from source `complaint`).
    ComplaintBurst {
        count: u32,
        #[serde(default)]
        channel: Option<String>,
    },
    /// The owner does not acknowledge for `duration` from `at`: forces escalation.
    NoAck {
        #[serde(with = "dur")]
        duration: Duration,
    },
    /// A step fails when tried; the scripted responder retries after `retry_after`.
    StepFailure {
        step: String,
        reason: String,
        #[serde(with = "dur")]
        retry_after: Duration,
    },
    /// Responder: acknowledge (default: the current commander).
    Ack {
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: mark a step done once it is ready.
    StepDone {
        step: String,
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: approve the activation (no step) or an approval step.
    Approve {
        #[serde(default)]
        step: Option<String>,
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: resolve once every step is finished.
    Resolve {
        #[serde(default)]
        by: Option<String>,
    },
    /// Responder: write the outcome report once resolved.
    Outcome { cause: String, process: String, aftermath: String },
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
        matches!(self, InjectKind::Ack { .. } | InjectKind::StepDone { .. } | InjectKind::Approve { .. } | InjectKind::Resolve { .. } | InjectKind::Outcome { .. })
    }

    /// Two entries with the same slot: an inline one replaces the default one.
    pub fn slot(&self) -> Option<String> {
        Some(match self {
            InjectKind::Alert { .. } => "alert".into(),
            InjectKind::Ack { .. } => "ack".into(),
            InjectKind::StepDone { step, .. } => format!("step-done:{step}"),
            InjectKind::Approve { step, .. } => format!("approve:{}", step.as_deref().unwrap_or("activation")),
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
                format!("{count} customer complaints{}", channel.as_ref().map(|c| format!(" by {c}")).unwrap_or_default())
            }
            InjectKind::NoAck { duration } => format!("owner does not acknowledge for {}", humantime::format_duration(*duration)),
            InjectKind::StepFailure { step, reason, .. } => format!("step {step} fails: {reason}"),
            InjectKind::Ack { by } => format!("acknowledge{}", by.as_ref().map(|b| format!(" as {b}")).unwrap_or_default()),
            InjectKind::StepDone { step, .. } => format!("step {step} done"),
            InjectKind::Approve { step, .. } => format!("approve {}", step.as_deref().unwrap_or("activation")),
            InjectKind::Resolve { .. } => "resolve".into(),
            InjectKind::Outcome { .. } => "write the outcome report".into(),
        }
    }
}

/// Supplies the scenario of a drill. The built-in default derives one from the
/// playbook; the `drill-sim` Wasm plugin's `plan` export will implement this
/// too (its timed injects map one-to-one onto [`Inject`]).
pub trait ScenarioSource: Send + Sync {
    /// A short name recorded as the scenario's source.
    fn name(&self) -> &str;
    /// The scenario for `playbook` with `seed`; `Ok(None)` = nothing to offer
    /// (the next source, finally the default, is asked).
    fn plan(&self, playbook: &Playbook, seed: u64) -> anyhow::Result<Option<Scenario>>;
}

/// Puts inline injects over a base scenario: an inline entry with the same
/// slot (the alert, the ack, `step-done` of a step, ...) replaces the base
/// one; everything else is added. Entries are ordered by `at` (stable).
pub fn overlay(base: Scenario, inline: &[Inject]) -> Scenario {
    if inline.is_empty() {
        return base;
    }
    let slots: std::collections::BTreeSet<String> = inline.iter().filter_map(|i| i.kind.slot()).collect();
    let mut injects: Vec<Inject> = base.injects.into_iter().filter(|i| i.kind.slot().is_none_or(|s| !slots.contains(&s))).collect();
    injects.extend(inline.iter().cloned());
    injects.sort_by_key(|i| i.at);
    Scenario { title: base.title, source: format!("{}+inline", base.source), injects }
}

/// Checks a scenario against its playbook before it runs.
pub fn check(s: &Scenario, pb: &Playbook) -> Result<(), String> {
    let alerts = s.injects.iter().filter(|i| matches!(i.kind, InjectKind::Alert { .. })).count();
    if alerts != 1 {
        return Err(format!("scenario `{}` has {alerts} alert injects; a drill starts from exactly one alert", s.title));
    }
    for i in &s.injects {
        let step = match &i.kind {
            InjectKind::StepDone { step, .. } | InjectKind::StepFailure { step, .. } => Some(step),
            InjectKind::Approve { step: Some(step), .. } => Some(step),
            _ => None,
        };
        if let Some(step) = step
            && pb.step(step).is_none()
        {
            return Err(format!("scenario `{}`: {} names step `{step}`, which playbook {} does not have", s.title, i.kind.name(), pb.id));
        }
    }
    Ok(())
}

/// The inject kinds a playbook may write in `[[drill.inject]]`.
pub const KINDS: &[&str] =
    &["alert", "duplicate-alert", "complaint-burst", "no-ack", "step-failure", "ack", "step-done", "approve", "resolve", "outcome"];

type Span = std::ops::Range<usize>;

/// Validates one `[[drill.inject]]` table (entry `n`, 1-based) into an [`Inject`];
/// every problem comes back with the span to point at.
pub fn from_toml(
    raw: &serde_spanned::Spanned<crate::playbook::model::DrillInject>,
    n: usize,
    steps: &[String],
    ctx: &crate::playbook::validate::RefContext,
) -> Result<Inject, Vec<(Span, String)>> {
    use crate::playbook::model::Str;
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
            let near = crate::diag::nearby(s.get_ref(), steps.iter().map(String::as_str));
            errs.push((s.span(), format!("[[drill.inject]] #{n} names step `{}`, which this playbook does not have (steps: {})", s.get_ref(), near.join(", "))));
            return None;
        }
        Some(s.get_ref().clone())
    };
    let person = |v: &Option<Str>, errs: &mut Vec<(Span, String)>| -> Option<String> {
        let v = v.as_ref()?;
        if !ctx.people.is_empty() && !ctx.people.contains(v.get_ref()) {
            let near = crate::diag::nearby(v.get_ref(), ctx.people.iter().map(String::as_str));
            errs.push((v.span(), format!("[[drill.inject]] #{n}: `by = \"{}\"` is not a person in the roster; did you mean {}?", v.get_ref(), near.join(", "))));
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
            let near = crate::diag::nearby(other, KINDS.iter().copied());
            errs.push((r.kind.span(), format!("unknown inject kind `{other}`: use one of {} (did you mean {}?)", KINDS.join(", "), near.first().cloned().unwrap_or_default())));
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
            errs.push((span, format!("`{key}` does not apply to {} `{kind}` inject ([[drill.inject]] #{n}); it takes {takes}", if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" })));
        }
    }
    let parsed = match kind {
        "alert" => {
            if let Some(sev) = &r.severity
                && let Err(e) = sev.get_ref().parse::<crate::playbook::types::Severity>()
            {
                errs.push((sev.span(), e));
            }
            InjectKind::Alert { labels: r.labels.clone(), fields: r.fields.clone(), severity: r.severity.as_ref().map(|s| s.get_ref().clone()), title: r.title.clone() }
        }
        "duplicate-alert" => InjectKind::DuplicateAlert,
        "complaint-burst" => {
            let count = r.count.unwrap_or(10);
            if count == 0 || count > 10_000 {
                errs.push((whole.clone(), format!("[[drill.inject]] #{n}: complaint-burst `count` must be 1..=10000, got {count}")));
            }
            if let Some(c) = &r.channel
                && let Err(e) = c.get_ref().parse::<crate::playbook::types::Channel>()
            {
                errs.push((c.span(), e));
            }
            InjectKind::ComplaintBurst { count, channel: r.channel.as_ref().map(|c| c.get_ref().clone()) }
        }
        "no-ack" => {
            if r.duration.is_none() {
                errs.push((r.kind.span(), "a `no-ack` inject needs `duration = \"15m\"` (how long the owner stays silent)".to_string()));
            }
            InjectKind::NoAck { duration: dur(&r.duration, &mut errs).unwrap_or_default() }
        }
        "step-failure" => InjectKind::StepFailure {
            step: need_step(&mut errs).unwrap_or_default(),
            reason: r.reason.clone().unwrap_or_else(|| "injected failure".into()),
            retry_after: dur(&r.retry_after, &mut errs).unwrap_or(Duration::from_secs(900)),
        },
        "ack" => InjectKind::Ack { by: person(&r.by, &mut errs) },
        "step-done" => InjectKind::StepDone { step: need_step(&mut errs).unwrap_or_default(), by: person(&r.by, &mut errs) },
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
pub(crate) mod dur {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn inj(at: u64, kind: InjectKind) -> Inject {
        Inject { at: Duration::from_secs(at), after: Duration::ZERO, kind }
    }

    #[test]
    fn inline_replaces_same_slot_and_adds_the_rest() {
        let base = Scenario {
            title: "t".into(),
            source: "default".into(),
            injects: vec![
                inj(0, InjectKind::Alert { labels: Default::default(), fields: Default::default(), severity: None, title: None }),
                inj(60, InjectKind::Ack { by: None }),
                inj(120, InjectKind::StepDone { step: "a".into(), by: None }),
            ],
        };
        let inline = vec![inj(600, InjectKind::Ack { by: Some("bob".into()) }), inj(30, InjectKind::DuplicateAlert)];
        let s = overlay(base, &inline);
        assert_eq!(s.source, "default+inline");
        let kinds: Vec<(&str, u64)> = s.injects.iter().map(|i| (i.kind.name(), i.at.as_secs())).collect();
        assert_eq!(kinds, vec![("alert", 0), ("duplicate-alert", 30), ("step-done", 120), ("ack", 600)]);
    }

    #[test]
    fn injects_round_trip_through_json() {
        let i = inj(300, InjectKind::StepFailure { step: "bridge".into(), reason: "bridge line down".into(), retry_after: Duration::from_secs(900) });
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(v["kind"], "step-failure");
        assert_eq!(v["at"], "5m");
        assert_eq!(v["retry_after"], "15m");
        let back: Inject = serde_json::from_value(v).unwrap();
        assert_eq!(back, i);
    }
}
