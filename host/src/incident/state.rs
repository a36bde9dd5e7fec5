//! An incident's state, derived by folding its events in order.

use super::events::Event;
use crate::store::DeadItemKind;
use crate::playbook::types::{Category, Mode, Phase, Purpose, Severity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Resolved,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Waiting,
    Ready,
    Running,
    Done,
    Skipped,
    Failed,
}

impl StepStatus {
    /// Finished steps release the steps that come `after` them.
    pub fn finished(self) -> bool {
        matches!(self, StepStatus::Done | StepStatus::Skipped | StepStatus::Failed)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PhaseTimes {
    pub entered: Option<i64>,
    pub completed: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepState {
    pub status: StepStatus,
    pub ready_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub by: Option<String>,
    pub note: Option<String>,
}

/// Counts of side effects for one purpose, keyed in the state by its text (`report`, `step:appease`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EffectCounts {
    pub recorded: u32,
    pub ok: u32,
    pub failed: u32,
}

impl EffectCounts {
    pub fn pending(&self) -> u32 {
        self.recorded - self.ok - self.failed
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeText {
    pub cause: String,
    pub process: String,
    pub aftermath: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Missed {
    pub what: String,
    pub due_at: i64,
    pub at: i64,
}

/// Everything known about an incident, derived from its journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Incident {
    pub id: String,
    pub playbook_id: String,
    pub playbook_hash: String,
    pub mode: Mode,
    pub title: String,
    pub severity: Severity,
    pub category: Category,
    pub dedup_key: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub status: Status,
    pub phase: Phase,
    pub phases: BTreeMap<Phase, PhaseTimes>,
    pub opened_at: i64,
    pub opened_by: String,
    pub activated_at: Option<i64>,
    pub activated_by: Option<String>,
    pub acked_at: Option<i64>,
    pub acked_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub roles: BTreeMap<String, String>,
    /// When each role was first filled.
    pub assigned_at: BTreeMap<String, i64>,
    pub approvals: BTreeSet<String>,
    pub steps: BTreeMap<String, StepState>,
    pub outcome: Option<OutcomeText>,
    pub missed: Vec<Missed>,
    pub escalations: u32,
    pub attached: u32,
    pub notes: u32,
    pub stale_warnings: u32,
    pub last_activity_at: i64,
    pub effects: BTreeMap<String, EffectCounts>,
    pub last_seq: i64,
}

impl Incident {
    /// Starts a state from the `Opened` event.
    pub fn open(id: &str, ev: &Event, at: i64) -> Option<Incident> {
        let Event::Opened { playbook_id, playbook_hash, mode, title, severity, category, dedup_key, fields, labels, by, .. } = ev else {
            return None;
        };
        Some(Incident {
            id: id.to_string(),
            playbook_id: playbook_id.clone(),
            playbook_hash: playbook_hash.clone(),
            mode: *mode,
            title: title.clone(),
            severity: *severity,
            category: *category,
            dedup_key: dedup_key.clone(),
            fields: fields.clone(),
            labels: labels.clone(),
            status: Status::Open,
            phase: Phase::Report,
            phases: BTreeMap::new(),
            opened_at: at,
            opened_by: by.clone(),
            activated_at: None,
            activated_by: None,
            acked_at: None,
            acked_by: None,
            resolved_at: None,
            closed_at: None,
            roles: BTreeMap::new(),
            assigned_at: BTreeMap::new(),
            approvals: BTreeSet::new(),
            steps: BTreeMap::new(),
            outcome: None,
            missed: Vec::new(),
            escalations: 0,
            attached: 0,
            notes: 0,
            stale_warnings: 0,
            last_activity_at: at,
            effects: BTreeMap::new(),
            last_seq: 0,
        })
    }

    /// Folds one more event into the state.
    pub fn apply(&mut self, ev: &Event, at: i64, seq: i64) {
        self.last_seq = seq;
        if ev.is_activity() {
            self.last_activity_at = at;
        }
        match ev {
            Event::Opened { .. } => {}
            Event::Attached { fields, labels, .. } => {
                self.attached += 1;
                for (k, v) in fields {
                    self.fields.entry(k.clone()).or_insert_with(|| v.clone());
                }
                for (k, v) in labels {
                    self.labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            Event::PhaseEntered { phase } => {
                self.phases.entry(*phase).or_default().entered = Some(at);
                self.phase = self.current_phase();
            }
            Event::PhaseCompleted { phase } => {
                self.phases.entry(*phase).or_default().completed = Some(at);
                self.phase = self.current_phase();
            }
            Event::Approved { what, .. } => {
                self.approvals.insert(what.clone());
            }
            Event::Activated { by, .. } => {
                self.activated_at = Some(at);
                self.activated_by = Some(by.clone());
            }
            Event::RoleAssigned { role, person, .. } => {
                self.roles.insert(role.clone(), person.clone());
                self.assigned_at.entry(role.clone()).or_insert(at);
            }
            Event::Acknowledged { by } => {
                if self.acked_at.is_none() {
                    self.acked_at = Some(at);
                    self.acked_by = Some(by.clone());
                }
            }
            Event::Escalated { .. } => self.escalations += 1,
            Event::DeadlineMissed { what, due_at } => self.missed.push(Missed { what: what.clone(), due_at: *due_at, at }),
            Event::StepReady { step } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Ready;
                s.ready_at.get_or_insert(at);
            }
            Event::StepWaiting { step, .. } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Waiting;
                s.ready_at.get_or_insert(at);
            }
            Event::StepDone { step, by, note } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Done;
                s.finished_at = Some(at);
                s.by = Some(by.clone());
                s.note = note.clone();
            }
            Event::StepSkipped { step, reason, by } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Skipped;
                s.finished_at = Some(at);
                s.by = by.clone();
                s.note = Some(reason.clone());
            }
            Event::StepFailed { step, reason } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Failed;
                s.finished_at = Some(at);
                s.note = Some(reason.clone());
            }
            Event::Note { .. } => self.notes += 1,
            Event::UpdateDue {} => {}
            Event::Stale { .. } => self.stale_warnings += 1,
            Event::OutcomeRecorded { cause, process, aftermath, .. } => {
                self.outcome = Some(OutcomeText { cause: cause.clone(), process: process.clone(), aftermath: aftermath.clone() });
            }
            Event::Resolved { .. } => {
                self.status = Status::Resolved;
                self.resolved_at = Some(at);
                self.phase = self.current_phase();
            }
            Event::Closed {} => {
                self.status = Status::Closed;
                self.closed_at = Some(at);
            }
            Event::IntentRecorded { purpose, .. } => {
                self.effects.entry(purpose.to_string()).or_default().recorded += 1;
                if let Some(step) = purpose.step() {
                    let s = self.step_mut(step);
                    if s.status == StepStatus::Ready || s.status == StepStatus::Waiting {
                        s.status = StepStatus::Running;
                    }
                }
            }
            Event::EffectResult { purpose, ok, .. } => {
                let c = self.effects.entry(purpose.to_string()).or_default();
                if *ok {
                    c.ok += 1;
                } else {
                    c.failed += 1;
                }
            }
            // A set-aside intent is a failed delivery until it is re-driven.
            Event::DeadLettered { item: DeadItemKind::Intent, purpose: Some(purpose), .. } => {
                self.effects.entry(purpose.to_string()).or_default().failed += 1;
            }
            Event::Redriven { purpose: Some(purpose), .. } => {
                let c = self.effects.entry(purpose.to_string()).or_default();
                c.failed = c.failed.saturating_sub(1);
            }
            Event::DeadLettered { .. } | Event::Redriven { .. } => {}
        }
    }

    fn step_mut(&mut self, step: &str) -> &mut StepState {
        self.steps.entry(step.to_string()).or_insert(StepState {
            status: StepStatus::Pending,
            ready_at: None,
            finished_at: None,
            by: None,
            note: None,
        })
    }

    /// The first phase of the plan not yet completed (`outcome` once all are).
    pub fn current_phase(&self) -> Phase {
        Phase::ORDER
            .into_iter()
            .find(|p| self.phases.get(p).and_then(|t| t.completed).is_none() && !self.skipped_phase(*p))
            .unwrap_or(Phase::Outcome)
    }

    /// A phase never entered because the incident was resolved first.
    pub fn skipped_phase(&self, p: Phase) -> bool {
        self.status != Status::Open && p != Phase::Outcome && self.phases.get(&p).and_then(|t| t.entered).is_none()
    }

    pub fn entered(&self, p: Phase) -> bool {
        self.phases.get(&p).and_then(|t| t.entered).is_some()
    }

    pub fn completed(&self, p: Phase) -> bool {
        self.phases.get(&p).and_then(|t| t.completed).is_some()
    }

    /// Status of a step; steps not yet reached are pending.
    pub fn step_status(&self, step: &str) -> StepStatus {
        self.steps.get(step).map(|s| s.status).unwrap_or(StepStatus::Pending)
    }

    /// Side effects of one purpose.
    pub fn effects_for(&self, purpose: &Purpose) -> EffectCounts {
        self.effects.get(&purpose.to_string()).cloned().unwrap_or_default()
    }

    pub fn is_drill(&self) -> bool {
        self.mode == Mode::Drill
    }
}
