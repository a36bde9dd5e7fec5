//! What people and intake ask of the engine: trigger, ack, assign, approve,
//! step, update, outcome, resolve; and effect results coming back.

use super::clock::fmt_ms;
use super::ctx::Ctx;
use super::dedup::{self, FallbackKey};
use super::effects::IntentPayload;
use super::engine::{Engine, MAX_DEDUP_KEY};
use super::error::{EngineError, Hint};
use super::events::Event;
use super::generation::Generation;
use super::state::{Incident, Status, StepStatus};
use super::timers::{DeadlineKind, Timer, TimerFamily};
pub use super::trigger_types::TriggerRequest;
pub(super) use super::trigger_types::{PreparedTrigger, TriggerDone};
use crate::playbook::spec::Playbook;
use crate::playbook::types::{INCIDENT_ROLES, OutcomeField, Phase, ReportField};
use crate::store::Tx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The incident a trigger opened or attached to.
#[derive(Debug, Clone, Serialize)]
pub struct TriggerOutcome {
    /// The incident's state after the trigger.
    pub incident: Incident,
    /// True if the trigger attached to an open incident with the same dedup key.
    pub deduped: bool,
}

/// What a person does with a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepAction {
    /// Mark the step completed.
    Done,
    /// Skip the step; it counts as finished without being done.
    Skip,
}

impl Engine {
    /// Opens an incident, or attaches the trigger to the open incident with its dedup key.
    pub fn trigger(&self, req: TriggerRequest) -> Result<TriggerOutcome, EngineError> {
        self.note_intake();
        let generation_ = self.generation();
        let prepared = self.prepare_trigger(&generation_, req, None)?;
        self.trigger_grouped(generation_, prepared)
    }

    /// Checks a trigger and settles its fields and dedup key, before any
    /// write: what is refused here is the request's fault, never the store's.
    pub(super) fn prepare_trigger(
        &self,
        generation_: &Generation,
        req: TriggerRequest,
        fallback: Option<&FallbackKey>,
    ) -> Result<PreparedTrigger, EngineError> {
        let Some(pb) = generation_.playbooks.get(&req.playbook).cloned() else {
            let nearby = crate::diag::nearby(&req.playbook, generation_.playbooks.keys().map(String::as_str));
            return Err(EngineError::NotFound { what: "playbook", id: req.playbook.clone(), nearby });
        };
        let severity = req.severity.unwrap_or(pb.severity);
        let now = self.now();
        let mut fields = req.fields.clone();
        if let Some(scope) = &req.scope {
            fields.insert("scope".into(), scope.clone());
        }
        for f in &pb.report.require {
            match f {
                ReportField::Time => {
                    fields.entry("time".into()).or_insert_with(|| fmt_ms(now));
                }
                other => {
                    let present = fields.get(other.as_str()).is_some_and(|v| !v.trim().is_empty());
                    if !present {
                        return Err(EngineError::invalid(format!(
                            "missing report field `{other}`: playbook {} requires it in the report",
                            pb.id
                        ))
                        .with_hint(Hint::PassField(*other)));
                    }
                }
            }
        }
        let dedup = dedup::choose(&pb, req.dedup_key.as_deref(), &req.labels, &fields, severity, fallback)
            .map_err(EngineError::invalid)?;
        if let Some(k) = dedup.key()
            && k.len() > MAX_DEDUP_KEY
        {
            return Err(EngineError::invalid(format!("dedup key is {} bytes; the limit is {MAX_DEDUP_KEY}", k.len()))
                .with_hint(Hint::ShortenDedupKey));
        }
        let source = if req.source.is_empty() { "cli".to_string() } else { req.source.clone() };
        let by = if req.by.is_empty() { source.clone() } else { req.by.clone() };
        Ok(PreparedTrigger { pb, req, severity, fields, dedup, source, by })
    }

    /// Opens or attaches inside the caller's transaction.
    pub(super) fn trigger_in(
        &self,
        tx: &mut dyn Tx,
        generation_: &Generation,
        p: &PreparedTrigger,
    ) -> Result<TriggerDone, EngineError> {
        let (pb, req) = (&p.pb, &p.req);
        self.pin(pb);
        let now = self.now();
        let dedup_key = p.dedup.key().map(str::to_string);
        if let Some(key) = &dedup_key
            && let Some(existing) = tx.open_by_dedup(&pb.id, key)?
        {
            let row = tx
                .incident(&existing)?
                .ok_or_else(|| anyhow::anyhow!("the dedup index points at incident {existing}, which is missing"))?;
            let inc: Incident = serde_json::from_value(row.state).map_err(anyhow::Error::from)?;
            let pinned = self.pinned_in(tx, &inc.playbook_hash)?;
            let mut ctx = Ctx::new(tx, inc, pinned, generation_, now);
            ctx.emit(Event::Attached {
                fields: p.fields.clone(),
                labels: req.labels.clone(),
                source: p.source.clone(),
                complaint: None,
            })?;
            ctx.advance()?;
            ctx.save()?;
            let (incident, emitted) = ctx.finish();
            return Ok(TriggerDone { incident, emitted, deduped: true, stored_version: false });
        }
        let prefix = self.id_prefix();
        let n = tx.next_incident_number(prefix)?;
        let id = format!("{prefix}-{n}");
        let mut stored_version = false;
        if !self.stored_versions.lock().unwrap_or_else(|p| p.into_inner()).contains(&pb.hash) {
            tx.put_playbook_version(&pb.hash, &pb.id, &serde_json::to_value(&**pb).map_err(anyhow::Error::from)?)?;
            stored_version = true;
        }
        let opened = Event::Opened {
            playbook_id: pb.id.clone(),
            playbook_hash: pb.hash.clone(),
            mode: self.mode,
            title: req.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| pb.name.clone()),
            severity: p.severity,
            category: pb.category,
            dedup_key,
            fields: p.fields.clone(),
            labels: req.labels.clone(),
            source: p.source.clone(),
            by: p.by.clone(),
        };
        let rec = tx.append(&id, now, opened.kind(), &serde_json::to_value(&opened).map_err(anyhow::Error::from)?)?;
        let mut inc = Incident::open(&id, &opened, now)
            .ok_or_else(|| anyhow::anyhow!("an opened event did not open incident {id}"))?;
        inc.last_seq = rec.seq;
        let mut ctx = Ctx::new(tx, inc, pb.clone(), generation_, now);
        ctx.already_emitted(opened);
        // The key did not come from the template: say so where people look.
        if let Some(note) = p.dedup.warning(pb) {
            ctx.emit(Event::Note { by: dedup::NOTE_BY.into(), note })?;
        }
        ctx.advance()?;
        ctx.save()?;
        let (incident, emitted) = ctx.finish();
        Ok(TriggerDone { incident, emitted, deduped: false, stored_version })
    }

    /// After the commit: remembers the stored version and tells the observer.
    pub(super) fn triggered(&self, p: &PreparedTrigger, done: TriggerDone) -> TriggerOutcome {
        if done.stored_version {
            self.stored_versions.lock().unwrap_or_else(|p| p.into_inner()).insert(p.pb.hash.clone());
        }
        self.observe(&done.emitted, &done.incident);
        TriggerOutcome { incident: done.incident, deduped: done.deduped }
    }

    /// The dedup key a playbook's template gives these labels and fields (intake "resolved").
    pub fn dedup_key_for(
        &self,
        pb: &Playbook,
        labels: &BTreeMap<String, String>,
        fields: &BTreeMap<String, String>,
    ) -> Result<Option<String>, EngineError> {
        self.dedup_key_or(pb, labels, fields, None)
    }

    /// Same, falling back to the sender's key when the template renders
    /// empty, exactly as a trigger with the same labels chose it.
    pub fn dedup_key_or(
        &self,
        pb: &Playbook,
        labels: &BTreeMap<String, String>,
        fields: &BTreeMap<String, String>,
        fallback: Option<&FallbackKey>,
    ) -> Result<Option<String>, EngineError> {
        let k = dedup::choose(pb, None, labels, fields, pb.severity, fallback).map_err(EngineError::invalid)?;
        Ok(k.key().map(str::to_string))
    }

    /// Acknowledges: cancels pending escalations and repeats. Acking as someone
    /// other than the commander makes them the commander.
    pub fn ack(&self, id: &str, by: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, |ctx| {
            if let Some(at) = ctx.inc.acked_at {
                return Err(EngineError::conflict(format!(
                    "incident {id} was already acknowledged by {} at {}",
                    ctx.inc.acked_by.clone().unwrap_or_default(),
                    fmt_ms(at)
                )));
            }
            ctx.check_person(by)?;
            if ctx.inc.roles.get("commander").map(String::as_str) != Some(by) {
                ctx.emit(Event::RoleAssigned { role: "commander".into(), person: by.to_string(), by: by.to_string() })?;
            }
            Ok(ctx.acknowledge(by)?)
        })
    }

    /// Names a person for an incident role.
    pub fn assign(&self, id: &str, role: &str, to: &str, by: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, |ctx| {
            if !INCIDENT_ROLES.contains(&role) {
                return Err(EngineError::invalid(format!(
                    "unknown role `{role}`: use one of {}",
                    INCIDENT_ROLES.join(", ")
                )));
            }
            ctx.check_person(to)?;
            Ok(ctx.emit(Event::RoleAssigned { role: role.to_string(), person: to.to_string(), by: by.to_string() })?)
        })
    }

    /// Approves the activation (no step) or an approval-gated step. A person
    /// who does not hold the approver the playbook names is refused with
    /// [`EngineError::Forbidden`], and the refusal is journaled on the incident.
    pub fn approve(&self, id: &str, step: Option<&str>, by: &str) -> Result<Incident, EngineError> {
        let mut refused = None;
        let inc = self.mutate(id, false, |ctx| {
            refused = None;
            ctx.check_person(by)?;
            let (what, who) = match step {
                None => {
                    let Some(who) = ctx.pb.activate.approval.clone() else {
                        return Err(EngineError::conflict(format!(
                            "playbook {} does not need approval to activate",
                            ctx.pb.id
                        )));
                    };
                    if ctx.inc.completed(Phase::Activate) {
                        return Err(EngineError::conflict(format!("incident {id} is already activated")));
                    }
                    ("activation".to_string(), who)
                }
                Some(s) => {
                    let spec = ctx.step_spec(s)?;
                    let Some(who) = spec.approval.clone() else {
                        return Err(EngineError::conflict(format!("step `{s}` does not need approval")));
                    };
                    if ctx.inc.step_status(s).finished() {
                        return Err(EngineError::conflict(format!("step `{s}` is already finished")));
                    }
                    (format!("step:{s}"), who)
                }
            };
            if !ctx.holds(by, &who) {
                let action = match step {
                    None => "approve the activation".to_string(),
                    Some(s) => format!("approve step `{s}`"),
                };
                let needs = who.to_string();
                ctx.emit(Event::ApprovalRefused { what, by: by.to_string(), needs: needs.clone() })?;
                refused = Some(EngineError::Forbidden { by: by.to_string(), action, needs });
                return Ok(());
            }
            if ctx.inc.approvals.contains(&what) {
                return Err(EngineError::conflict(format!("{what} is already approved")));
            }
            Ok(ctx.emit(Event::Approved { what, by: by.to_string() })?)
        })?;
        match refused {
            Some(e) => Err(e),
            None => Ok(inc),
        }
    }

    /// Marks a manual step done or skips a step.
    pub fn step(
        &self,
        id: &str,
        step: &str,
        action: StepAction,
        note: Option<&str>,
        by: &str,
    ) -> Result<Incident, EngineError> {
        self.mutate(id, false, |ctx| {
            let spec = ctx.step_spec(step)?.clone();
            if ctx.inc.status != Status::Open {
                return Err(EngineError::conflict(format!("incident {id} is resolved; its steps are settled")));
            }
            if !ctx.inc.entered(Phase::Act) {
                let e = EngineError::conflict(format!(
                    "steps start in the act phase; incident {id} is in the {} phase",
                    ctx.inc.phase
                ));
                return Err(if ctx.inc.phase == Phase::Assign { e.with_hint(Hint::AckFirst) } else { e });
            }
            let status = ctx.inc.step_status(step);
            if status.finished() {
                let said = serde_json::to_value(status).map_err(anyhow::Error::from)?;
                return Err(EngineError::conflict(format!("step `{step}` is already {}", said.as_str().unwrap_or(""))));
            }
            let by = by.to_string();
            match action {
                StepAction::Skip => {
                    ctx.emit(Event::StepSkipped {
                        step: step.to_string(),
                        reason: note.map(str::to_string).unwrap_or_else(|| "skipped".into()),
                        by: Some(by),
                    })?;
                }
                StepAction::Done => {
                    match status {
                        StepStatus::Pending => {
                            let waiting: Vec<String> =
                                spec.after.iter().filter(|a| !ctx.inc.step_status(a).finished()).cloned().collect();
                            return Err(EngineError::conflict(format!(
                                "step `{step}` is not ready: it waits for {}",
                                waiting.join(", ")
                            )));
                        }
                        StepStatus::Waiting => {
                            let who = spec.approval.map(|a| a.to_string()).unwrap_or_default();
                            return Err(EngineError::conflict(format!("step `{step}` waits for approval by {who}"))
                                .with_hint(Hint::ApproveStep { incident: id.to_string(), step: step.to_string() }));
                        }
                        StepStatus::Running => {
                            return Err(EngineError::conflict(format!(
                                "step `{step}` runs by itself (its messages are being sent); skip it to stop waiting"
                            )));
                        }
                        StepStatus::Ready | StepStatus::Done | StepStatus::Skipped | StepStatus::Failed => {}
                    }
                    ctx.emit(Event::StepDone { step: step.to_string(), by, note: note.map(str::to_string) })?;
                }
            }
            ctx.cancel(&Timer::Deadline(DeadlineKind::Step(step.to_string())))?;
            Ok(())
        })
    }

    /// Adds a progress note to the timeline.
    pub fn update(&self, id: &str, note: &str, by: &str) -> Result<Incident, EngineError> {
        if note.trim().is_empty() {
            return Err(EngineError::invalid("an update needs a note").with_hint(Hint::PassNote));
        }
        self.mutate(id, false, |ctx| Ok(ctx.emit(Event::Note { by: by.to_string(), note: note.to_string() })?))
    }

    /// Records the outcome report text; the incident closes once it is also resolved.
    pub fn record_outcome(
        &self,
        id: &str,
        cause: &str,
        process: &str,
        aftermath: &str,
        by: &str,
    ) -> Result<Incident, EngineError> {
        self.mutate(id, false, |ctx| {
            for (f, v) in
                [(OutcomeField::Cause, cause), (OutcomeField::Process, process), (OutcomeField::Aftermath, aftermath)]
            {
                if ctx.pb.outcome.require.contains(&f) && v.trim().is_empty() {
                    return Err(EngineError::invalid(format!(
                        "the outcome report of playbook {} requires `{f}`",
                        ctx.pb.id
                    ))
                    .with_hint(Hint::PassOutcomeField(f)));
                }
            }
            Ok(ctx.emit(Event::OutcomeRecorded {
                cause: cause.into(),
                process: process.into(),
                aftermath: aftermath.into(),
                by: by.into(),
            })?)
        })
    }

    /// Resolves: the crisis is over. Unfinished steps are skipped, the dedup key
    /// is released, and the incident moves to the outcome phase.
    pub fn resolve(&self, id: &str, by: &str, source: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, |ctx| resolve_ctx(ctx, by, source))
    }

    /// Resolves the open incident of a playbook with a dedup key, if any (intake "resolved").
    pub fn resolve_by_key(&self, playbook: &str, key: &str, source: &str) -> Result<Option<Incident>, EngineError> {
        let open = self.store().incidents(true, None)?;
        match open.iter().find(|r| r.playbook_id == playbook && r.dedup_key.as_deref() == Some(key)) {
            Some(r) => self.resolve(&r.id, source, source).map(Some),
            None => Ok(None),
        }
    }

    /// Intents due now that have no result yet.
    pub fn pending_intents(&self, limit: usize) -> Result<Vec<(String, IntentPayload, i64)>, EngineError> {
        let rows = self.store().pending_intents(self.now(), limit)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.payload).ok().map(|p| (r.invocation_id, p, r.attempts)))
            .collect())
    }
}

/// The resolve itself, on an incident loaded in a transaction.
pub(super) fn resolve_ctx(ctx: &mut Ctx<'_>, by: &str, source: &str) -> Result<(), EngineError> {
    if ctx.inc.status != Status::Open {
        return Err(EngineError::conflict(format!("incident {} is already resolved", ctx.inc.id)));
    }
    ctx.emit(Event::Resolved { by: by.to_string(), source: source.to_string() })?;
    ctx.publish_resolved()?;
    // Every timer but the outcome deadline: the outcome phase still runs.
    for d in [DeadlineKind::Ack, DeadlineKind::Report, DeadlineKind::Activate] {
        ctx.cancel(&Timer::Deadline(d))?;
    }
    for f in [TimerFamily::StepDeadline, TimerFamily::Escalate, TimerFamily::Track] {
        ctx.cancel_family(f)?;
    }
    Ok(())
}
