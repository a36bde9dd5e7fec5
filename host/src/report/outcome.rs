//! The outcome report: what happened, when, what was sent, what was missed.

use super::timeline::{describe, describe_event};
use crate::incident::clock::{fmt_ms, fmt_span};
use crate::incident::complaint::Complaint;
use crate::incident::complaint_surge::{AttachedSummary, attached_summary};
use crate::incident::events::{Event, JournalEvent};
use crate::incident::state::Incident;
use crate::playbook::types::{Category, Mode, Phase, Severity};
use crate::store::EventRecord;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseRow {
    pub phase: Phase,
    pub entered: Option<String>,
    pub completed: Option<String>,
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TimelineEntry {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub(crate) struct Counts {
    pub sent: u32,
    pub failed: u32,
    pub pending: u32,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MissedRow {
    pub what: String,
    pub due_at: String,
    pub noticed_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Times {
    pub to_acknowledge_ms: Option<i64>,
    pub to_assign_ms: Option<i64>,
    pub to_resolve_ms: Option<i64>,
}

/// The outcome report of one incident (Markdown via [`OutcomeReport::markdown`], or JSON).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OutcomeReport {
    pub id: String,
    pub title: String,
    pub mode: Mode,
    pub playbook_id: String,
    pub playbook_hash: String,
    pub severity: Severity,
    pub category: Category,
    pub status: String,
    pub summary: String,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub roles: BTreeMap<String, String>,
    pub phases: Vec<PhaseRow>,
    pub cause: Option<String>,
    pub process: Vec<TimelineEntry>,
    pub process_summary: Option<String>,
    pub aftermath: Option<String>,
    /// Notifications by target: sent / failed / pending.
    pub notifications: BTreeMap<String, Counts>,
    /// Customer messages by channel.
    pub customer_messages: BTreeMap<String, Counts>,
    pub customers_reached: usize,
    pub missed_deadlines: Vec<MissedRow>,
    pub escalations: u32,
    pub duplicate_triggers: u32,
    pub times: Times,
    /// The customer complaints a complaint surge attached (counts only: no text, no customer).
    pub complaints: AttachedSummary,
}

/// Builds the report from the incident's state and journal.
pub(crate) fn build(inc: &Incident, events: &[EventRecord], summary: &str, complaints: &[Complaint]) -> OutcomeReport {
    let phases = Phase::ORDER
        .iter()
        .map(|p| {
            let t = inc.phases.get(p).cloned().unwrap_or_default();
            PhaseRow {
                phase: *p,
                entered: t.entered.map(fmt_ms),
                completed: t.completed.map(fmt_ms),
                duration_ms: match (t.entered, t.completed) {
                    (Some(a), Some(b)) => Some(b - a),
                    _ => None,
                },
            }
        })
        .collect();
    let mut notifications: BTreeMap<String, Counts> = BTreeMap::new();
    let mut customer_messages: BTreeMap<String, Counts> = BTreeMap::new();
    let mut reached = std::collections::BTreeSet::new();
    let mut intents: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut process = Vec::new();
    for e in events {
        let ev = match e.event() {
            Ok(ev) => ev,
            Err(_) => {
                process.push(TimelineEntry { seq: e.seq, at: fmt_ms(e.at), kind: e.kind.clone(), text: describe(e) });
                continue;
            }
        };
        match &ev {
            Event::IntentRecorded { invocation_id, target, channel, .. } => {
                match channel {
                    Some(c) => customer_messages.entry(c.clone()).or_default().pending += 1,
                    None => notifications.entry(target.clone()).or_default().pending += 1,
                }
                intents.insert(invocation_id.clone(), (target.clone(), channel.clone()));
            }
            Event::EffectResult { invocation_id, ok, customer, .. } => {
                let Some((target, channel)) = intents.get(invocation_id) else { continue };
                let c = match channel {
                    Some(ch) => customer_messages.entry(ch.clone()).or_default(),
                    None => notifications.entry(target.clone()).or_default(),
                };
                c.pending = c.pending.saturating_sub(1);
                if *ok {
                    c.sent += 1;
                    if let Some(cust) = customer {
                        reached.insert(cust.clone());
                    }
                } else {
                    c.failed += 1;
                }
            }
            // Everything else is the process people followed.
            Event::Opened { .. }
            | Event::Attached { .. }
            | Event::PhaseEntered { .. }
            | Event::PhaseCompleted { .. }
            | Event::Approved { .. }
            | Event::Activated { .. }
            | Event::RoleAssigned { .. }
            | Event::Acknowledged { .. }
            | Event::Escalated { .. }
            | Event::DeadlineMissed { .. }
            | Event::StepReady { .. }
            | Event::StepWaiting { .. }
            | Event::StepDone { .. }
            | Event::StepSkipped { .. }
            | Event::StepFailed { .. }
            | Event::Note { .. }
            | Event::UpdateDue {}
            | Event::Stale { .. }
            | Event::OutcomeRecorded { .. }
            | Event::Resolved { .. }
            | Event::DeadLettered { .. }
            | Event::Redriven { .. }
            | Event::NoticeLate { .. }
            | Event::Reclaimed { .. }
            | Event::ApprovalRefused { .. }
            | Event::ActingFor { .. }
            | Event::IncludedInDigest { .. }
            | Event::DrillCancelled { .. }
            | Event::DrillPaused { .. }
            | Event::DrillResumed { .. }
            | Event::ControllerInject { .. }
            | Event::DrillHeld { .. }
            | Event::DrillReleased { .. }
            | Event::Closed {} => {
                process.push(TimelineEntry {
                    seq: e.seq,
                    at: fmt_ms(e.at),
                    kind: ev.kind().to_string(),
                    text: describe_event(&ev),
                });
            }
        }
    }
    let assigned = inc.assigned_at.get("commander").copied();
    OutcomeReport {
        id: inc.id.clone(),
        title: inc.title.clone(),
        mode: inc.mode,
        playbook_id: inc.playbook_id.clone(),
        playbook_hash: inc.playbook_hash.clone(),
        severity: inc.severity,
        category: inc.category,
        status: inc.status.as_str().to_string(),
        summary: summary.to_string(),
        opened_at: fmt_ms(inc.opened_at),
        closed_at: inc.closed_at.map(fmt_ms),
        roles: inc.roles.clone(),
        phases,
        cause: inc.outcome.as_ref().map(|o| o.cause.clone()),
        process,
        process_summary: inc.outcome.as_ref().map(|o| o.process.clone()),
        aftermath: inc.outcome.as_ref().map(|o| o.aftermath.clone()),
        notifications,
        customer_messages,
        customers_reached: reached.len(),
        missed_deadlines: inc
            .missed
            .iter()
            .map(|m| MissedRow { what: m.what.clone(), due_at: fmt_ms(m.due_at), noticed_at: fmt_ms(m.at) })
            .collect(),
        escalations: inc.escalations,
        duplicate_triggers: inc.attached,
        times: Times {
            to_acknowledge_ms: inc.acked_at.map(|a| a - inc.opened_at),
            to_assign_ms: assigned.map(|a| a - inc.opened_at),
            to_resolve_ms: inc.resolved_at.map(|a| a - inc.opened_at),
        },
        complaints: attached_summary(complaints),
    }
}

impl OutcomeReport {
    /// The report as Markdown, for people and for pasting into a post-mortem.
    pub(crate) fn markdown(&self) -> String {
        let span = |ms: Option<i64>| ms.map(fmt_span).unwrap_or_else(|| "—".into());
        let mut s = String::new();
        let drill = if self.mode == Mode::Drill { " (DRILL)" } else { "" };
        let _ = writeln!(s, "# Outcome report: {} — {}{drill}\n", self.id, self.title);
        let _ = writeln!(s, "## Summary\n");
        let _ = writeln!(
            s,
            "- Playbook: `{}` (version `{}`)",
            self.playbook_id,
            &self.playbook_hash[..12.min(self.playbook_hash.len())]
        );
        let _ = writeln!(s, "- Severity: {}; category: {}; status: {}", self.severity, self.category, self.status);
        let _ = writeln!(
            s,
            "- Opened {}{}",
            self.opened_at,
            self.closed_at.as_ref().map(|c| format!(", closed {c}")).unwrap_or_default()
        );
        if !self.summary.is_empty() {
            let _ = writeln!(s, "- {}", self.summary);
        }
        for (role, person) in &self.roles {
            let _ = writeln!(s, "- {role}: {person}");
        }
        let _ = writeln!(
            s,
            "- Time to acknowledge: {}; to assign: {}; to resolve: {}",
            span(self.times.to_acknowledge_ms),
            span(self.times.to_assign_ms),
            span(self.times.to_resolve_ms)
        );
        let _ = writeln!(
            s,
            "- Escalations: {}; duplicate triggers attached: {}\n",
            self.escalations, self.duplicate_triggers
        );
        let _ = writeln!(s, "## Phases\n");
        let _ = writeln!(s, "| phase | entered | completed | duration |");
        let _ = writeln!(s, "|---|---|---|---|");
        for p in &self.phases {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                p.phase,
                p.entered.as_deref().unwrap_or("not reached"),
                p.completed.as_deref().unwrap_or("—"),
                span(p.duration_ms)
            );
        }
        let _ = writeln!(s, "\n## Cause\n\n{}\n", self.cause.as_deref().unwrap_or("_not yet written_"));
        let _ = writeln!(s, "## Process\n");
        if let Some(p) = &self.process_summary {
            let _ = writeln!(s, "{p}\n");
        }
        for e in &self.process {
            let _ = writeln!(s, "- {} — {}", e.at, e.text);
        }
        let _ = writeln!(s, "\n## Aftermath\n\n{}\n", self.aftermath.as_deref().unwrap_or("_not yet written_"));
        let _ = writeln!(s, "## Notifications\n");
        if self.notifications.is_empty() {
            let _ = writeln!(s, "None.");
        } else {
            let _ = writeln!(s, "| target | sent | failed | pending |\n|---|---|---|---|");
            for (t, c) in &self.notifications {
                let _ = writeln!(s, "| {t} | {} | {} | {} |", c.sent, c.failed, c.pending);
            }
        }
        let _ = writeln!(s, "\n## Customer messages\n");
        if self.customer_messages.is_empty() {
            let _ = writeln!(s, "None.");
        } else {
            let _ = writeln!(s, "| channel | sent | failed | pending |\n|---|---|---|---|");
            for (t, c) in &self.customer_messages {
                let _ = writeln!(s, "| {t} | {} | {} | {} |", c.sent, c.failed, c.pending);
            }
            let _ = writeln!(
                s,
                "\nCustomers reached: {} (by id in the journal; no contact details here).",
                self.customers_reached
            );
        }
        self.complaints_markdown(&mut s);
        let _ = writeln!(s, "\n## Missed deadlines\n");
        if self.missed_deadlines.is_empty() {
            let _ = writeln!(s, "None.");
        } else {
            for m in &self.missed_deadlines {
                let _ = writeln!(s, "- {} (due {}, noticed {})", m.what, m.due_at, m.noticed_at);
            }
        }
        s
    }

    /// The attached complaints section, when a surge attached any.
    fn complaints_markdown(&self, s: &mut String) {
        let c = &self.complaints;
        if c.total == 0 {
            return;
        }
        let span = |ms: Option<i64>| ms.map(fmt_span).unwrap_or_else(|| "—".into());
        let list =
            |m: &BTreeMap<String, usize>| m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(s, "\n## Customer complaints\n");
        let _ = writeln!(
            s,
            "- Attached: {}; by category: {}; by channel: {}",
            c.total,
            list(&c.by_category),
            list(&c.by_channel)
        );
        let _ = writeln!(
            s,
            "- First response p50: {}; p95: {}; missed: {}",
            span(c.first_response_p50_ms),
            span(c.first_response_p95_ms),
            c.first_response_missed
        );
    }
}
