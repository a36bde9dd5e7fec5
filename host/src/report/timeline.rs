//! One line of text per journal event, for `crisis timeline` and reports.

use crate::incident::clock::fmt_span;
use crate::incident::events::{Event, JournalEvent};
use crate::playbook::types::Mode;
use crate::store::{DeadItemKind, EventRecord};

/// A short human description of a journal row. Never includes contact
/// details: events only ever hold customer ids. A row this version cannot
/// read is shown raw.
pub(crate) fn describe(e: &EventRecord) -> String {
    match e.event() {
        Ok(ev) => describe_event(&ev),
        Err(_) => format!("{} {}", e.kind, e.data),
    }
}

/// A short human description of an event.
pub(crate) fn describe_event(ev: &Event) -> String {
    match ev {
        Event::Opened { playbook_id, playbook_hash, mode, severity, category, source, by, .. } => format!(
            "opened from {source} by {by} ({severity} {category}, playbook {playbook_id} @{}{})",
            playbook_hash.get(..12).unwrap_or(""),
            if *mode == Mode::Drill { ", DRILL" } else { "" }
        ),
        Event::Attached { complaint: Some(c), source, .. } => format!("complaint {c} attached ({source})"),
        Event::Attached { source, .. } => {
            format!("duplicate trigger from {source} attached (same dedup key)")
        }
        Event::PhaseEntered { phase } => format!("entered phase {phase}"),
        Event::PhaseCompleted { phase } => format!("completed phase {phase}"),
        Event::Approved { what, by } => format!("{what} approved by {by}"),
        Event::Activated { by, channels } => {
            format!(
                "plan activated ({by}); channels opened: {}",
                if channels.is_empty() { "none".into() } else { channels.join(", ") }
            )
        }
        Event::RoleAssigned { role, person, by } => format!("{person} is {role} (by {by})"),
        Event::Acknowledged { by } => format!("acknowledged by {by}"),
        Event::Escalated { level, to, people, round } => {
            format!("escalated to level {level} ({to}: {}), round {round}", people.join(", "))
        }
        Event::DeadlineMissed { what, .. } => format!("DEADLINE MISSED: {what}"),
        Event::StepReady { step } => format!("step {step} ready"),
        Event::StepWaiting { step, reason } => format!("step {step} {reason}"),
        Event::StepDone { step, by, note } => {
            format!("step {step} done by {by}{}", note.as_ref().map(|n| format!(": {n}")).unwrap_or_default())
        }
        Event::StepSkipped { step, reason, .. } => format!("step {step} skipped: {reason}"),
        Event::StepFailed { step, reason } => format!("step {step} FAILED: {reason}"),
        Event::Note { by, note } => format!("{by}: {note}"),
        Event::UpdateDue {} => "periodic update sent".to_string(),
        Event::Stale { idle_ms } => format!("STALE: no activity for {}", fmt_span(*idle_ms)),
        Event::OutcomeRecorded { by, .. } => format!("outcome report written by {by}"),
        Event::Resolved { by, source } => format!("resolved by {by} ({source})"),
        Event::Closed {} => "closed".to_string(),
        Event::IntentRecorded { invocation_id, purpose, target, customer, .. } => {
            let who = customer.as_ref().map(|c| format!(" for customer {c}")).unwrap_or_default();
            format!("{purpose} message {invocation_id} queued to {target}{who}")
        }
        Event::EffectResult { invocation_id, purpose, ok, detail, .. } => {
            format!("{purpose} message {invocation_id} {}: {detail}", if *ok { "sent" } else { "FAILED" })
        }
        Event::DeadLettered { item: DeadItemKind::Intent, id, reason, .. } => {
            format!("DEAD LETTER: message {id} set aside ({reason}); re-drive with: crisis retry {id}")
        }
        Event::DeadLettered { item: DeadItemKind::Timer, id, reason, .. } => {
            format!("DEAD LETTER: timer {id} set aside ({reason})")
        }
        Event::Redriven { invocation_id, by, .. } => {
            format!("message {invocation_id} re-driven by {by}")
        }
        Event::NoticeLate { invocation_id, target, waited_secs } => {
            format!(
                "LATE: message {invocation_id} to {target} still waiting after {waited_secs} s (delivery is not keeping up)"
            )
        }
        Event::Reclaimed { item: DeadItemKind::Intent, id, node } => {
            format!("message {id} taken over after node {node}'s lease ran out; it runs again with the same id")
        }
        Event::Reclaimed { item: DeadItemKind::Timer, id, node } => {
            format!("timer {id} taken over after node {node}'s lease ran out")
        }
        Event::ApprovalRefused { what, by, needs } => format!("REFUSED: {by} may not approve {what}: it needs {needs}"),
        Event::ActingFor { by, token, person, action } => format!(
            "{by}{} acting for {person}: {action}",
            token.as_ref().map(|t| format!(" (token {t})")).unwrap_or_default()
        ),
        Event::IncludedInDigest { digest, purpose, target } => {
            format!("{purpose} message to {target} included in digest {digest}")
        }
        Event::DrillCancelled { by, reason, timers_dropped, intents_dropped } => format!(
            "drill cancelled by {by}{}; {timers_dropped} timer(s) and {intents_dropped} pending message(s) dropped",
            reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
        ),
        Event::DrillPaused { by, live_incident: None } => format!("drill paused by {by}; its clock stopped"),
        Event::DrillPaused { live_incident: Some(live), .. } => {
            format!("drill paused while live incident {live} is open; its clock stopped")
        }
        Event::DrillResumed { by, live_incident, clock_running, paused_ms } => {
            let who = match live_incident {
                Some(live) => format!("live incident {live} no longer holds the drill"),
                None => format!("drill resumed by {by}"),
            };
            if *clock_running {
                format!("{who}; its clock runs again after {} paused", fmt_span(*paused_ms))
            } else {
                format!("{who}; its clock stays stopped while another hold remains")
            }
        }
        Event::ControllerInject { by, inject, text, result } => {
            format!("controller inject by {by}: {inject} ({text}): {result}")
        }
        Event::DrillHeld { run_id, drill_incident } => format!(
            "drill {run_id}{} paused while this incident is open",
            drill_incident.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        Event::DrillReleased { run_id, drill_incident } => format!(
            "drill {run_id}{} no longer held by this incident",
            drill_incident.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
    }
}
