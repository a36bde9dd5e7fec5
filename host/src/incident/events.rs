//! The journal's vocabulary: every change to an incident is one of these.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::playbook::types::{Category, Mode, Phase, Purpose, Severity};
use crate::store::{DeadItemKind, EventRecord};

/// An incident event as stored in the journal (`kind` + JSON data).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The incident opened; the playbook version is pinned here and the mode fixed for good.
    Opened {
        playbook_id: String,
        playbook_hash: String,
        mode: Mode,
        title: String,
        severity: Severity,
        category: Category,
        dedup_key: Option<String>,
        fields: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        source: String,
        by: String,
    },
    /// A trigger with the dedup key of this open incident was attached to it;
    /// `complaint` names the customer complaint a surge attached (its own stream holds the rest).
    Attached {
        fields: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        complaint: Option<String>,
    },
    PhaseEntered {
        phase: Phase,
    },
    PhaseCompleted {
        phase: Phase,
    },
    /// Someone approved the activation (`what = "activation"`) or a step.
    Approved {
        what: String,
        by: String,
    },
    Activated {
        by: String,
        channels: Vec<String>,
    },
    RoleAssigned {
        role: String,
        person: String,
        by: String,
    },
    Acknowledged {
        by: String,
    },
    Escalated {
        level: usize,
        to: String,
        people: Vec<String>,
        round: u32,
    },
    DeadlineMissed {
        what: String,
        due_at: i64,
    },
    StepReady {
        step: String,
    },
    StepWaiting {
        step: String,
        reason: String,
    },
    StepDone {
        step: String,
        by: String,
        note: Option<String>,
    },
    StepSkipped {
        step: String,
        reason: String,
        by: Option<String>,
    },
    StepFailed {
        step: String,
        reason: String,
    },
    Note {
        by: String,
        note: String,
    },
    UpdateDue {},
    Stale {
        idle_ms: i64,
    },
    OutcomeRecorded {
        cause: String,
        process: String,
        aftermath: String,
        by: String,
    },
    Resolved {
        by: String,
        source: String,
    },
    Closed {},
    /// A side effect was recorded before it runs; the invocation id is its idempotency key.
    IntentRecorded {
        invocation_id: String,
        purpose: Purpose,
        target: String,
        channel: Option<String>,
        customer: Option<String>,
    },
    /// The side effect ran (or finally failed).
    EffectResult {
        invocation_id: String,
        purpose: Purpose,
        target: String,
        channel: Option<String>,
        customer: Option<String>,
        ok: bool,
        detail: String,
    },
    /// A timer or intent failed persistently, or its row could not be read,
    /// and was set aside: it is no longer claimed. An intent can be re-driven;
    /// until then it counts as a failed delivery of its `purpose` (if readable).
    DeadLettered {
        item: DeadItemKind,
        id: String,
        purpose: Option<Purpose>,
        reason: String,
    },
    /// A dead-lettered intent was put back in the outbox with a fresh attempt budget.
    Redriven {
        invocation_id: String,
        purpose: Option<Purpose>,
        by: String,
    },
    /// A timer or intent was claimed by this node after the lease of `node`,
    /// which had claimed it, ran out (that node stopped: died or lost the
    /// database). An intent then runs again with the same invocation id, so
    /// its receiver may see it twice and dedupes by that id.
    Reclaimed {
        item: DeadItemKind,
        id: String,
        node: String,
    },
    /// This incident's message has waited in the outbox longer than the
    /// first-response time: delivery to `target` is not keeping up.
    NoticeLate {
        invocation_id: String,
        target: String,
        waited_secs: i64,
    },
    /// Someone tried to approve (`what` as in [`Event::Approved`]) without
    /// holding `needs` (the playbook's approver: a person, role, team or rota).
    ApprovalRefused {
        what: String,
        by: String,
        needs: String,
    },
    /// An admin (`by`: its person, or `bootstrap-admin`; `token`: its public id)
    /// acts for `person` in the `action` that follows in the journal.
    ActingFor {
        by: String,
        token: Option<String>,
        person: String,
        action: String,
    },
    /// Storm control folded a notice to `target` into the digest `digest`
    /// (an intent of its own) instead of sending it alone.
    IncludedInDigest {
        digest: String,
        purpose: Purpose,
        target: String,
    },
    /// The exercise controller (`by`, or `crisis` for a blackout or shutdown)
    /// cancelled this drill; its pending timers and intents were dropped.
    DrillCancelled {
        by: String,
        reason: Option<String>,
        timers_dropped: usize,
        intents_dropped: usize,
    },
    /// This drill's clock stopped: the controller paused it (`by`), or it
    /// yielded to the open live incident `live_incident` (`by` is `crisis`).
    DrillPaused {
        by: String,
        live_incident: Option<String>,
    },
    /// What held this drill let go (`live_incident` as in [`Event::DrillPaused`]);
    /// `clock_running` says whether the clock runs again (no other hold is left)
    /// and `paused_ms` is the real time its clock stood still, if so.
    DrillResumed {
        by: String,
        live_incident: Option<String>,
        clock_running: bool,
        paused_ms: i64,
    },
    /// The exercise controller `by` added an inject to this running drill.
    ControllerInject {
        by: String,
        inject: String,
        text: String,
        result: String,
    },
    /// Drill `run_id` (its incident `drill_incident`, if opened) paused while
    /// this live incident is open; journaled on the live incident.
    DrillHeld {
        run_id: String,
        drill_incident: Option<String>,
    },
    /// Drill `run_id` was let go by this live incident; journaled on the live incident.
    DrillReleased {
        run_id: String,
        drill_incident: Option<String>,
    },
}

impl Event {
    /// The `kind` column value; the same text serde writes as the tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Opened { .. } => "opened",
            Event::Attached { .. } => "attached",
            Event::PhaseEntered { .. } => "phase_entered",
            Event::PhaseCompleted { .. } => "phase_completed",
            Event::Approved { .. } => "approved",
            Event::Activated { .. } => "activated",
            Event::RoleAssigned { .. } => "role_assigned",
            Event::Acknowledged { .. } => "acknowledged",
            Event::Escalated { .. } => "escalated",
            Event::DeadlineMissed { .. } => "deadline_missed",
            Event::StepReady { .. } => "step_ready",
            Event::StepWaiting { .. } => "step_waiting",
            Event::StepDone { .. } => "step_done",
            Event::StepSkipped { .. } => "step_skipped",
            Event::StepFailed { .. } => "step_failed",
            Event::Note { .. } => "note",
            Event::UpdateDue {} => "update_due",
            Event::Stale { .. } => "stale",
            Event::OutcomeRecorded { .. } => "outcome_recorded",
            Event::Resolved { .. } => "resolved",
            Event::Closed {} => "closed",
            Event::IntentRecorded { .. } => "intent_recorded",
            Event::EffectResult { .. } => "effect_result",
            Event::DeadLettered { .. } => "dead_lettered",
            Event::Redriven { .. } => "redriven",
            Event::NoticeLate { .. } => "notice_late",
            Event::Reclaimed { .. } => "reclaimed",
            Event::ApprovalRefused { .. } => "approval_refused",
            Event::ActingFor { .. } => "acting_for",
            Event::IncludedInDigest { .. } => "included_in_digest",
            Event::DrillCancelled { .. } => "drill_cancelled",
            Event::DrillPaused { .. } => "drill_paused",
            Event::DrillResumed { .. } => "drill_resumed",
            Event::ControllerInject { .. } => "controller_inject",
            Event::DrillHeld { .. } => "drill_held",
            Event::DrillReleased { .. } => "drill_released",
        }
    }

    /// Whether this event shows people working the incident (resets "stale").
    pub fn is_activity(&self) -> bool {
        matches!(
            self,
            Event::Opened { .. }
                | Event::Approved { .. }
                | Event::RoleAssigned { .. }
                | Event::Acknowledged { .. }
                | Event::StepDone { .. }
                | Event::StepSkipped { by: Some(_), .. }
                | Event::Note { .. }
                | Event::OutcomeRecorded { .. }
                | Event::Resolved { .. }
        )
    }
}

/// Reads the typed event back from a journal row. The store cannot know
/// [`Event`], so readers of the journal (timeline, reports, drill scoring)
/// go through this and match on the enum instead of on `kind` strings.
pub trait JournalEvent {
    /// The event this row holds; an error if the row is not one.
    fn event(&self) -> anyhow::Result<Event>;
}

impl JournalEvent for EventRecord {
    fn event(&self) -> anyhow::Result<Event> {
        let mut data = self.data.clone();
        if let Some(obj) = data.as_object_mut() {
            obj.entry("kind").or_insert_with(|| serde_json::Value::String(self.kind.clone()));
        }
        serde_json::from_value(data).map_err(|e| {
            anyhow::anyhow!("event {} ({}) of {} is unreadable: {e}", self.seq, self.kind, self.incident_id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_the_serde_tag() {
        let evs = [
            Event::UpdateDue {},
            Event::Closed {},
            Event::StepReady { step: "a".into() },
            Event::DeadlineMissed { what: "ack".into(), due_at: 1 },
            Event::IntentRecorded {
                invocation_id: "I.1".into(),
                purpose: Purpose::Step("a".into()),
                target: "t".into(),
                channel: None,
                customer: None,
            },
            Event::DeadLettered {
                item: DeadItemKind::Intent,
                id: "I.1".into(),
                purpose: Some(Purpose::Page),
                reason: "r".into(),
            },
            Event::Redriven { invocation_id: "I.1".into(), purpose: None, by: "x".into() },
            Event::NoticeLate { invocation_id: "I.1".into(), target: "t".into(), waited_secs: 130 },
            Event::Reclaimed { item: DeadItemKind::Timer, id: "7".into(), node: "n-1".into() },
            Event::ApprovalRefused { what: "activation".into(), by: "bob".into(), needs: "role:duty-manager".into() },
            Event::ActingFor {
                by: "carol".into(),
                token: Some("tok_1".into()),
                person: "bob".into(),
                action: "ack".into(),
            },
            Event::IncludedInDigest { digest: "DIG-1".into(), purpose: Purpose::Report, target: "t".into() },
            Event::DrillCancelled { by: "carol".into(), reason: None, timers_dropped: 2, intents_dropped: 1 },
            Event::DrillPaused { by: "crisis".into(), live_incident: Some("INC-1".into()) },
            Event::DrillResumed { by: "carol".into(), live_incident: None, clock_running: true, paused_ms: 5 },
            Event::ControllerInject {
                by: "carol".into(),
                inject: "no-ack".into(),
                text: "t".into(),
                result: "r".into(),
            },
            Event::DrillHeld { run_id: "r.m1".into(), drill_incident: Some("DRL-r.m1-1".into()) },
            Event::DrillReleased { run_id: "r.m1".into(), drill_incident: None },
        ];
        for e in evs {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["kind"], e.kind());
            let rec = EventRecord {
                seq: 1,
                incident_id: "I".into(),
                at: 0,
                kind: e.kind().into(),
                data: v,
                prev_hash: String::new(),
                hash: String::new(),
            };
            assert_eq!(rec.event().unwrap(), e);
        }
    }
}
