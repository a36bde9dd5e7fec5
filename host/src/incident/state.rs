//! An incident's state, derived by folding its events in order.

use super::events::Event;
use crate::playbook::types::{Category, Mode, Phase, Purpose, Severity};
use crate::store::DeadItemKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being worked; steps, timers and escalations run.
    Open,
    /// The problem is over; the outcome may still be written before closing.
    Resolved,
    /// Finished; nothing more can be recorded on it.
    Closed,
}

impl Status {
    /// The lowercase name used in the store, the API and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }
}

/// Where a playbook step stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Not yet reached: its phase has not started or the steps before it are unfinished.
    Pending,
    /// Reached but waiting for an approval or something else before it can start.
    Waiting,
    /// May be started now.
    Ready,
    /// Started; its side effects or the person doing it have not finished.
    Running,
    /// Completed by a person or by its effects.
    Done,
    /// Skipped on purpose, with a reason.
    Skipped,
    /// Could not be completed; the reason is in the journal.
    Failed,
}

impl StepStatus {
    /// Finished steps release the steps that come `after` them.
    pub fn finished(self) -> bool {
        matches!(self, StepStatus::Done | StepStatus::Skipped | StepStatus::Failed)
    }
}

/// When a phase of an incident started and finished.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PhaseTimes {
    /// Unix milliseconds when the phase was entered; `None` if not yet.
    pub entered: Option<i64>,
    /// Unix milliseconds when the phase was completed; `None` while running or not reached.
    pub completed: Option<i64>,
}

/// The state of one playbook step in an incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepState {
    /// Where the step stands.
    pub status: StepStatus,
    /// Unix milliseconds when the step became ready or waiting; `None` before that.
    pub ready_at: Option<i64>,
    /// Unix milliseconds when the step was done, skipped or failed; `None` until then.
    pub finished_at: Option<i64>,
    /// Roster id of who finished or skipped the step; `None` if not a person or not yet.
    pub by: Option<String>,
    /// The note or reason given when the step finished, if any.
    pub note: Option<String>,
}

/// Counts of side effects for one purpose, keyed in the state by its text (`report`, `step:appease`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EffectCounts {
    /// Effects recorded as intents.
    pub recorded: u32,
    /// Effects delivered successfully.
    pub ok: u32,
    /// Effects that failed for good.
    pub failed: u32,
}

impl EffectCounts {
    /// Effects recorded but not yet finished (neither ok nor failed).
    pub fn pending(&self) -> u32 {
        self.recorded - self.ok - self.failed
    }
}

/// The outcome report written before closing an incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutcomeText {
    /// What caused the incident.
    pub cause: String,
    /// How it was handled, and what went well or badly.
    pub process: String,
    /// What follows: remaining damage, follow-up work, lessons.
    pub aftermath: String,
}

/// A deadline the incident missed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Missed {
    /// What was due, e.g. `ack` or `step:bridge`.
    pub what: String,
    /// Unix milliseconds when it was due.
    pub due_at: i64,
    /// Unix milliseconds when the miss was recorded.
    pub at: i64,
}

/// Everything known about an incident, derived from its journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Incident {
    /// The incident id, e.g. `INC-42` (`DRILL-…` for drills).
    pub id: String,
    /// Id of the playbook the incident runs.
    pub playbook_id: String,
    /// Hash of the exact playbook version it opened with; later reloads do not change it.
    pub playbook_hash: String,
    /// Live or drill; drill incidents never reach real people.
    pub mode: Mode,
    /// Title people see in pages and lists.
    pub title: String,
    /// Current severity (the playbook's, or the trigger's override).
    pub severity: Severity,
    /// The playbook's incident category.
    pub category: Category,
    /// Key that later triggers attach by while the incident is open; `None` if none was given.
    pub dedup_key: Option<String>,
    /// Field values from the trigger and later attachments, by field name.
    pub fields: BTreeMap<String, String>,
    /// Labels from the trigger and later attachments.
    pub labels: BTreeMap<String, String>,
    /// Open, resolved or closed.
    pub status: Status,
    /// The phase currently being worked.
    pub phase: Phase,
    /// When each phase was entered and completed.
    pub phases: BTreeMap<Phase, PhaseTimes>,
    /// Unix milliseconds when the incident opened.
    pub opened_at: i64,
    /// Who opened it: a roster id or the sending system.
    pub opened_by: String,
    /// Unix milliseconds when someone activated the playbook response; `None` until then.
    pub activated_at: Option<i64>,
    /// Roster id of who activated it; `None` until someone does.
    pub activated_by: Option<String>,
    /// Unix milliseconds of the first acknowledgement; `None` until someone acknowledges.
    pub acked_at: Option<i64>,
    /// Roster id of the person who acknowledged; `None` until someone does.
    pub acked_by: Option<String>,
    /// Unix milliseconds when it was resolved; `None` while open.
    pub resolved_at: Option<i64>,
    /// Unix milliseconds when it was closed; `None` until then.
    pub closed_at: Option<i64>,
    /// Incident roles (e.g. `commander`) to the roster id of who fills them.
    pub roles: BTreeMap<String, String>,
    /// When each role was first filled.
    pub assigned_at: BTreeMap<String, i64>,
    /// What has been approved so far (approval names given by the playbook).
    pub approvals: BTreeSet<String>,
    /// State of each step reached so far, by step id.
    pub steps: BTreeMap<String, StepState>,
    /// The outcome report; `None` until it is recorded.
    pub outcome: Option<OutcomeText>,
    /// Deadlines missed so far, in order.
    pub missed: Vec<Missed>,
    /// How many times the incident was escalated.
    pub escalations: u32,
    /// How many later triggers attached to it by dedup key.
    pub attached: u32,
    /// How many notes were added.
    pub notes: u32,
    /// How many times it was flagged for going too long without activity.
    pub stale_warnings: u32,
    /// Unix milliseconds of the last event, for staleness checks.
    pub last_activity_at: i64,
    /// Side-effect counts by purpose (`report`, `step:appease`, ...).
    pub effects: BTreeMap<String, EffectCounts>,
    /// Storm-control digests its folded notices went out in, with how many each carried.
    #[serde(default)]
    pub digests: BTreeMap<String, u32>,
    /// Sequence number of the last journal event folded into this state.
    pub last_seq: i64,
}

impl Incident {
    /// Starts a state from the `Opened` event.
    pub fn open(id: &str, ev: &Event, at: i64) -> Option<Incident> {
        let Event::Opened {
            playbook_id,
            playbook_hash,
            mode,
            title,
            severity,
            category,
            dedup_key,
            fields,
            labels,
            by,
            ..
        } = ev
        else {
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
            digests: BTreeMap::new(),
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
            // A complaint a surge attached is no duplicate trigger; its own stream says the rest.
            Event::Attached { complaint: Some(_), .. } => {}
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
            Event::DeadlineMissed { what, due_at } => {
                self.missed.push(Missed { what: what.clone(), due_at: *due_at, at })
            }
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
                self.outcome =
                    Some(OutcomeText { cause: cause.clone(), process: process.clone(), aftermath: aftermath.clone() });
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
            // Folded into a digest: the step's notice is handed over, not pending here.
            Event::IncludedInDigest { digest, purpose, .. } => {
                *self.digests.entry(digest.clone()).or_default() += 1;
                if let Some(step) = purpose.step() {
                    let s = self.step_mut(step);
                    if s.status == StepStatus::Ready || s.status == StepStatus::Waiting {
                        s.status = StepStatus::Running;
                    }
                }
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
            Event::DeadLettered { .. }
            | Event::Redriven { .. }
            | Event::NoticeLate { .. }
            | Event::Reclaimed { .. } => {}
            // Records of who tried or who acted for whom; the state is unchanged.
            Event::ApprovalRefused { .. } | Event::ActingFor { .. } => {}
            // Steering a drill changes its clock and controller log, not the incident's state.
            Event::DrillCancelled { .. }
            | Event::DrillPaused { .. }
            | Event::DrillResumed { .. }
            | Event::ControllerInject { .. }
            | Event::DrillHeld { .. }
            | Event::DrillReleased { .. } => {}
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

    /// True once phase `p` has been entered.
    pub fn entered(&self, p: Phase) -> bool {
        self.phases.get(&p).and_then(|t| t.entered).is_some()
    }

    /// True once phase `p` has been completed.
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

    /// True if this is a drill incident (no real people are reached).
    pub fn is_drill(&self) -> bool {
        self.mode == Mode::Drill
    }
}
