//! What a drill's journal says happened, read once into facts the scoring
//! criteria ask about.

use crate::incident::events::{Event, JournalEvent};
use crate::playbook::types::{OutcomeField, Phase, Purpose};
use crate::store::EventRecord;
use std::collections::BTreeMap;

/// Where an event sits in the journal.
#[derive(Debug, Clone, Copy)]
pub(super) struct At {
    pub(super) seq: i64,
    pub(super) at: i64,
}

/// What happened to steps, in journal order.
#[derive(Debug, Clone)]
pub(super) enum StepFact {
    Ready(String),
    Waiting(String),
    Done {
        step: String,
        by: String,
    },
    Skipped {
        step: String,
        reason: String,
    },
    Failed {
        step: String,
        reason: String,
    },
    /// A missed deadline (`step:ID` for steps).
    Missed(String),
    /// A note, which may report an injected step failure.
    Note(String),
}

impl StepFact {
    pub(super) fn concerns(&self, step: &str) -> bool {
        match self {
            StepFact::Ready(s) | StepFact::Waiting(s) => s == step,
            StepFact::Done { step: s, .. } | StepFact::Skipped { step: s, .. } | StepFact::Failed { step: s, .. } => {
                s == step
            }
            StepFact::Missed(what) => what.strip_prefix("step:") == Some(step),
            StepFact::Note(n) => n.starts_with(&format!("step {step} failed")),
        }
    }
}

/// The facts scoring is judged on, read once from the typed journal.
#[derive(Debug, Default)]
pub(super) struct Facts {
    pub(super) opened: Option<At>,
    pub(super) report_results: Vec<(At, bool)>,
    pub(super) acked: Option<(At, String)>,
    /// Escalation pages in order, with the level (1-based) each one paged.
    pub(super) escalations: Vec<(At, usize)>,
    pub(super) assign_entered: Option<i64>,
    pub(super) assign_completed: Option<At>,
    pub(super) activated: Option<(At, String)>,
    /// Approvals of the activation and missed activation deadlines.
    pub(super) activation_evidence: Vec<i64>,
    /// The last holder of each role: acking as someone else makes them commander.
    pub(super) roles: BTreeMap<String, (At, String)>,
    pub(super) steps: Vec<(At, StepFact)>,
    /// Every missed deadline: what (`ack`, `activate`, `step:ID`, ...) and when it was due.
    pub(super) missed: Vec<(At, String, i64)>,
    pub(super) intents: BTreeMap<String, i64>,
    /// Results of notices (not customer messages): invocation id, ok.
    pub(super) notice_results: Vec<(At, String, bool)>,
    pub(super) effect_results: usize,
    pub(super) attached_by_drill: Vec<i64>,
    pub(super) resolved: Option<At>,
    pub(super) outcome: Option<(At, Written)>,
    pub(super) closed: Option<At>,
}

/// The first outcome report written.
#[derive(Debug)]
pub(super) struct Written {
    pub(super) cause: String,
    pub(super) process: String,
    pub(super) aftermath: String,
    pub(super) by: String,
}

impl Written {
    pub(super) fn field(&self, f: OutcomeField) -> &str {
        match f {
            OutcomeField::Cause => &self.cause,
            OutcomeField::Process => &self.process,
            OutcomeField::Aftermath => &self.aftermath,
        }
    }
}

impl Facts {
    /// Reads the journal; rows this version cannot read are left out.
    pub(super) fn read(events: &[EventRecord]) -> Facts {
        let mut f = Facts::default();
        for e in events {
            let Ok(ev) = e.event() else { continue };
            let at = At { seq: e.seq, at: e.at };
            match ev {
                Event::Opened { .. } => {
                    f.opened.get_or_insert(at);
                }
                Event::Acknowledged { by } => {
                    f.acked.get_or_insert((at, by));
                }
                Event::Escalated { level, .. } => f.escalations.push((at, level)),
                Event::PhaseEntered { phase } => {
                    if phase == Phase::Assign {
                        f.assign_entered.get_or_insert(at.at);
                    }
                }
                Event::PhaseCompleted { phase } => {
                    if phase == Phase::Assign {
                        f.assign_completed.get_or_insert(at);
                    }
                }
                Event::Activated { by, .. } => {
                    f.activated.get_or_insert((at, by));
                }
                Event::Approved { what, .. } => {
                    if what == "activation" {
                        f.activation_evidence.push(at.seq);
                    }
                }
                Event::DeadlineMissed { what, due_at } => {
                    if what == "activate" {
                        f.activation_evidence.push(at.seq);
                    }
                    f.missed.push((at, what.clone(), due_at));
                    f.steps.push((at, StepFact::Missed(what)));
                }
                Event::RoleAssigned { role, person, .. } => {
                    f.roles.insert(role, (at, person));
                }
                Event::StepReady { step } => f.steps.push((at, StepFact::Ready(step))),
                Event::StepWaiting { step, .. } => f.steps.push((at, StepFact::Waiting(step))),
                Event::StepDone { step, by, .. } => f.steps.push((at, StepFact::Done { step, by })),
                Event::StepSkipped { step, reason, .. } => f.steps.push((at, StepFact::Skipped { step, reason })),
                Event::StepFailed { step, reason } => f.steps.push((at, StepFact::Failed { step, reason })),
                Event::Note { note, .. } => f.steps.push((at, StepFact::Note(note))),
                Event::IntentRecorded { invocation_id, .. } => {
                    f.intents.insert(invocation_id, at.at);
                }
                Event::EffectResult { invocation_id, purpose, customer, ok, .. } => {
                    f.effect_results += 1;
                    if purpose == Purpose::Report {
                        f.report_results.push((at, ok));
                    }
                    if customer.is_none() {
                        f.notice_results.push((at, invocation_id, ok));
                    }
                }
                Event::Attached { source, .. } => {
                    if source == "drill" {
                        f.attached_by_drill.push(at.seq);
                    }
                }
                Event::Resolved { .. } => {
                    f.resolved.get_or_insert(at);
                }
                Event::OutcomeRecorded { cause, process, aftermath, by } => {
                    f.outcome.get_or_insert((at, Written { cause, process, aftermath, by }));
                }
                Event::Closed {} => {
                    f.closed.get_or_insert(at);
                }
                // Not judged here.
                // Delivery trouble is the outbox's, not the participants'.
                Event::UpdateDue {}
                | Event::Stale { .. }
                | Event::DeadLettered { .. }
                | Event::Redriven { .. }
                | Event::NoticeLate { .. }
                | Event::Reclaimed { .. } => {}
                // Who may act, and for whom, is the API's business, not the drill's score.
                Event::ApprovalRefused { .. } | Event::ActingFor { .. } => {}
                // A folded notice is judged by its digest's result, on the incident that carries it.
                Event::IncludedInDigest { .. } => {}
                // Steering the drill is the controller's doing; paused time never reaches the drill clock.
                Event::DrillCancelled { .. }
                | Event::DrillPaused { .. }
                | Event::DrillResumed { .. }
                | Event::ControllerInject { .. }
                | Event::DrillHeld { .. }
                | Event::DrillReleased { .. } => {}
            }
        }
        f
    }
}
