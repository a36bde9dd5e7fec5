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
//! playbook, and later the `drill-sim` Wasm plugin's `plan` export. The inject
//! syntax itself belongs to the playbook format (`playbook::inject`); this
//! file only combines and checks scenarios.

use crate::playbook::inject::{Inject, InjectKind};
use crate::playbook::spec::Playbook;
use serde::{Deserialize, Serialize};

/// A drill scenario: what happens when, and who does what.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scenario {
    /// Human title shown in the report.
    pub title: String,
    /// Where it came from: `default`, `default+inline`, or a plugin name.
    pub source: String,
    /// Timed entries in order of `at`; exactly one is the triggering alert.
    pub injects: Vec<Inject>,
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
    let mut injects: Vec<Inject> =
        base.injects.into_iter().filter(|i| i.kind.slot().is_none_or(|s| !slots.contains(&s))).collect();
    injects.extend(inline.iter().cloned());
    injects.sort_by_key(|i| i.at);
    Scenario { title: base.title, source: format!("{}+inline", base.source), injects }
}

/// Checks a scenario against its playbook before it runs.
pub fn check(s: &Scenario, pb: &Playbook) -> Result<(), String> {
    let alerts = s.injects.iter().filter(|i| matches!(i.kind, InjectKind::Alert { .. })).count();
    if alerts != 1 {
        return Err(format!(
            "scenario `{}` has {alerts} alert injects; a drill starts from exactly one alert",
            s.title
        ));
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
            return Err(format!(
                "scenario `{}`: {} names step `{step}`, which playbook {} does not have",
                s.title,
                i.kind.name(),
                pb.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inj(at: u64, kind: InjectKind) -> Inject {
        Inject { at: Duration::from_secs(at), after: Duration::ZERO, kind }
    }

    #[test]
    fn inline_replaces_same_slot_and_adds_the_rest() {
        let base = Scenario {
            title: "t".into(),
            source: "default".into(),
            injects: vec![
                inj(
                    0,
                    InjectKind::Alert {
                        labels: Default::default(),
                        fields: Default::default(),
                        severity: None,
                        title: None,
                    },
                ),
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
}
