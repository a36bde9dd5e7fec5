//! The engine: turns commands, timers and effect results into journaled
//! events, and advances incidents through the plan.
//!
//! Every mutation runs in one store transaction under one writer lock:
//! the incident's state is loaded, the command's events are appended (each
//! applied to the state as it is journaled), the plan is advanced as far as
//! it goes on its own, and the projection is saved. Nothing takes effect
//! unless its event is durable.

use super::clock::{fmt_ms, Clock};
use super::effects::{CustomerRef, EffectKind, EffectOutcome, IncidentSummary, IntentPayload};
use super::events::Event;
use super::state::{Incident, Status, StepStatus};
use super::when;
use crate::config::customers::Customer;
use crate::config::Config;
use crate::playbook::spec::{Playbook, StepSpec};
use crate::playbook::types::{Phase, ReportField, Severity, StepKind, Who, INCIDENT_ROLES};
use crate::store::{IncidentRow, IntentRow, Store, TimerRow, Tx};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Maximum bytes in a dedup key.
pub const MAX_DEDUP_KEY: usize = 255;

/// One applied set of playbooks and configuration. Swapped whole on reload.
pub struct Generation {
    pub number: u64,
    pub set_hash: String,
    pub loaded_at: i64,
    pub playbooks: BTreeMap<String, Arc<Playbook>>,
    pub config: Arc<Config>,
    pub customers: Arc<Vec<Customer>>,
}

/// Why an engine call was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no {what} `{id}`{}", nearby_hint(.nearby))]
    NotFound { what: &'static str, id: String, nearby: Vec<String> },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

fn nearby_hint(n: &[String]) -> String {
    if n.is_empty() { String::new() } else { format!("; did you mean {}?", n.join(", ")) }
}

/// Who did something, as recorded in the journal.
pub type Actor = String;

/// A request to start (or attach to) an incident.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct TriggerRequest {
    pub playbook: String,
    pub title: Option<String>,
    pub severity: Option<String>,
    pub scope: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub dedup_key: Option<String>,
    /// `cli`, `alertmanager`, `events`, `drill`.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TriggerOutcome {
    pub incident: Incident,
    /// True if the trigger attached to an open incident with the same dedup key.
    pub deduped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepAction {
    Done,
    Skip,
}

/// Called after commit with each event an operation journaled and the incident's
/// resulting state; metrics hang off this.
pub type Observer = Arc<dyn Fn(&Event, &Incident) + Send + Sync>;

/// The incident engine. Cheap to share behind an `Arc`.
pub struct Engine {
    observer: Mutex<Option<Observer>>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    generation: ArcSwap<Generation>,
    pinned: Mutex<HashMap<String, Arc<Playbook>>>,
    /// Playbook versions known to be in the store, so a trigger does not rewrite them.
    stored_versions: Mutex<std::collections::HashSet<String>>,
    writer: Mutex<()>,
    mode: &'static str,
    /// Incident ids are `{id_prefix}-{n}`.
    id_prefix: String,
    /// Woken whenever new timers or intents may be due.
    pub wake: Arc<tokio::sync::Notify>,
}

/// Marker used to abort a store transaction with a typed engine error.
#[derive(Debug, thiserror::Error)]
#[error("aborted")]
struct Abort;

impl Engine {
    /// An engine for live incidents.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, generation: Generation) -> Self {
        Self::with_mode(store, clock, generation, "live")
    }

    /// An engine whose incidents all run in `mode` (`live` or `drill`); the mode
    /// is fixed here by the host and journaled in each incident's first event.
    pub fn with_mode(store: Arc<dyn Store>, clock: Arc<dyn Clock>, generation: Generation, mode: &'static str) -> Self {
        Engine {
            observer: Mutex::new(None),
            store,
            clock,
            generation: ArcSwap::from_pointee(generation),
            pinned: Mutex::new(HashMap::new()),
            stored_versions: Mutex::new(std::collections::HashSet::new()),
            writer: Mutex::new(()),
            mode,
            id_prefix: if mode == "drill" { "DRL".into() } else { "INC".into() },
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Numbers incidents `{prefix}-{n}` instead of `INC-n`/`DRL-n`; drills run
    /// by the daemon use their run id so their incidents are unique across runs.
    pub fn with_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = prefix.into();
        self
    }

    /// The prefix of this engine's incident ids.
    pub fn id_prefix(&self) -> &str {
        &self.id_prefix
    }

    /// Installs the observer called after each committed operation.
    pub fn set_observer(&self, f: Observer) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn observe(&self, events: &[Event], inc: &Incident) {
        let obs = self.observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(obs) = obs {
            for e in events {
                obs(e, inc);
            }
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The generation new incidents start from.
    pub fn generation(&self) -> Arc<Generation> {
        self.generation.load_full()
    }

    /// Swaps in a new generation atomically; running incidents keep their pinned playbooks.
    pub fn swap_generation(&self, g: Generation) {
        self.generation.store(Arc::new(g));
    }

    /// The playbook version an incident pinned when it opened.
    pub fn pinned_playbook(&self, hash: &str) -> Result<Arc<Playbook>, EngineError> {
        if let Some(p) = self.cached_pin(hash) {
            return Ok(p);
        }
        let spec = self.store.playbook_version(hash)?;
        self.remember_pin(hash, spec)
    }

    /// Same, inside a transaction (the store's connection is already held).
    fn pinned_in(&self, tx: &mut dyn Tx, hash: &str) -> Result<Arc<Playbook>, EngineError> {
        if let Some(p) = self.cached_pin(hash) {
            return Ok(p);
        }
        let spec = tx.playbook_version(hash)?;
        self.remember_pin(hash, spec)
    }

    fn cached_pin(&self, hash: &str) -> Option<Arc<Playbook>> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner()).get(hash).cloned()
    }

    fn remember_pin(&self, hash: &str, spec: Option<serde_json::Value>) -> Result<Arc<Playbook>, EngineError> {
        let spec = spec.ok_or_else(|| EngineError::Internal(anyhow::anyhow!("pinned playbook version {hash} is missing from the journal")))?;
        let pb: Playbook = serde_json::from_value(spec).map_err(|e| EngineError::Internal(e.into()))?;
        let pb = Arc::new(pb);
        self.pinned.lock().unwrap_or_else(|p| p.into_inner()).insert(hash.to_string(), pb.clone());
        Ok(pb)
    }

    /// Loads an incident's current state.
    pub fn incident(&self, id: &str) -> Result<Incident, EngineError> {
        match self.store.incident(id)? {
            Some(row) => serde_json::from_value(row.state).map_err(|e| EngineError::Internal(e.into())),
            None => Err(self.not_found(id)),
        }
    }

    fn not_found(&self, id: &str) -> EngineError {
        let ids = self.store.incident_ids().unwrap_or_default();
        let nearby = crate::diag::nearby(id, ids.iter().map(String::as_str));
        EngineError::NotFound { what: "incident", id: id.to_string(), nearby }
    }

    /// Runs `f` on an incident inside one transaction, then advances and saves it.
    fn mutate(
        &self,
        id: &str,
        allow_closed: bool,
        f: &mut dyn FnMut(&mut Ctx<'_>) -> Result<(), EngineError>,
    ) -> Result<Incident, EngineError> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now_ms();
        let generation_ = self.generation();
        let mut user_err: Option<EngineError> = None;
        let mut missing = false;
        let mut emitted = Vec::new();
        let mut out: Option<Incident> = None;
        let res = self.store.transaction_unsynced(&mut |tx| {
            let Some(row) = tx.incident(id)? else {
                missing = true;
                return Err(Abort.into());
            };
            let inc: Incident = serde_json::from_value(row.state)?;
            if inc.status == Status::Closed && !allow_closed {
                user_err = Some(EngineError::Conflict(format!(
                    "incident {id} is closed; nothing more can be done on it (open a new incident with `crisis trigger`)"
                )));
                return Err(Abort.into());
            }
            let pb = match self.pinned_in(tx, &inc.playbook_hash) {
                Ok(p) => p,
                Err(e) => {
                    user_err = Some(e);
                    return Err(Abort.into());
                }
            };
            let mut ctx = Ctx { tx, emitted: Vec::new(), inc, pb, generation_: &generation_, now };
            if let Err(e) = f(&mut ctx) {
                user_err = Some(e);
                return Err(Abort.into());
            }
            ctx.advance()?;
            ctx.save()?;
            emitted = std::mem::take(&mut ctx.emitted);
            out = Some(ctx.inc);
            Ok(())
        });
        // Release the writer before flushing, so concurrent operations share the flush.
        drop(writer);
        if missing {
            return Err(self.not_found(id));
        }
        let inc = self.finish(res, user_err, out)?;
        self.observe(&emitted, &inc);
        Ok(inc)
    }

    /// Waits for the commit to be durable, then wakes the worker and returns the incident.
    fn finish(&self, res: anyhow::Result<()>, user_err: Option<EngineError>, out: Option<Incident>) -> Result<Incident, EngineError> {
        match res {
            Ok(()) => {
                self.store.sync()?;
                self.wake.notify_one();
                Ok(out.expect("transaction produced an incident"))
            }
            Err(e) if e.is::<Abort>() => Err(user_err.expect("abort carries an error")),
            Err(e) => Err(EngineError::Internal(e)),
        }
    }

    /// Opens an incident, or attaches the trigger to the open incident with its dedup key.
    pub fn trigger(&self, req: TriggerRequest) -> Result<TriggerOutcome, EngineError> {
        let generation_ = self.generation();
        let Some(pb) = generation_.playbooks.get(&req.playbook).cloned() else {
            let nearby = crate::diag::nearby(&req.playbook, generation_.playbooks.keys().map(String::as_str));
            return Err(EngineError::NotFound { what: "playbook", id: req.playbook.clone(), nearby });
        };
        let severity = match &req.severity {
            Some(s) => s.parse::<Severity>().map_err(EngineError::Invalid)?,
            None => pb.severity,
        };
        let now = self.clock.now_ms();
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
                        let how = if *other == ReportField::Scope { "--scope TEXT".to_string() } else { format!("--field {other}=TEXT") };
                        return Err(EngineError::Invalid(format!(
                            "missing report field `{other}`: playbook {} requires it in the report; pass {how}",
                            pb.id
                        )));
                    }
                }
            }
        }
        let dedup_key = match &req.dedup_key {
            Some(k) if !k.is_empty() => Some(k.clone()),
            _ => render_dedup(&pb, &req.labels, &fields, severity).map_err(EngineError::Invalid)?,
        };
        if let Some(k) = &dedup_key {
            if k.len() > MAX_DEDUP_KEY {
                return Err(EngineError::Invalid(format!(
                    "dedup key is {} bytes; the limit is {MAX_DEDUP_KEY}: shorten --dedup-key or the playbook's dedup_key template",
                    k.len()
                )));
            }
        }
        self.pinned.lock().unwrap_or_else(|p| p.into_inner()).insert(pb.hash.clone(), pb.clone());

        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = None;
        let mut emitted = Vec::new();
        let mut deduped = false;
        let mut stored_version = false;
        let source = if req.source.is_empty() { "cli".to_string() } else { req.source.clone() };
        let by = if req.by.is_empty() { source.clone() } else { req.by.clone() };
        let res = self.store.transaction_unsynced(&mut |tx| {
            deduped = false;
            if let Some(key) = &dedup_key {
                if let Some(existing) = tx.open_by_dedup(&pb.id, key)? {
                    let row = tx.incident(&existing)?.expect("dedup index points at an incident");
                    let inc: Incident = serde_json::from_value(row.state)?;
                    let pinned = self.pinned_in(tx, &inc.playbook_hash).map_err(|e| anyhow::anyhow!("{e}"))?;
                    let mut ctx = Ctx { tx, emitted: Vec::new(), inc, pb: pinned, generation_: &generation_, now };
                    ctx.emit(Event::Attached { fields: fields.clone(), labels: req.labels.clone(), source: source.clone() })?;
                    ctx.advance()?;
                    ctx.save()?;
                    emitted = std::mem::take(&mut ctx.emitted);
                    out = Some(ctx.inc);
                    deduped = true;
                    return Ok(());
                }
            }
            let prefix = self.id_prefix.as_str();
            let n = tx.next_incident_number(prefix)?;
            let id = format!("{prefix}-{n}");
            if !self.stored_versions.lock().unwrap_or_else(|p| p.into_inner()).contains(&pb.hash) {
                tx.put_playbook_version(&pb.hash, &pb.id, &serde_json::to_value(&*pb)?)?;
                stored_version = true;
            }
            let opened = Event::Opened {
                playbook_id: pb.id.clone(),
                playbook_hash: pb.hash.clone(),
                mode: self.mode.to_string(),
                title: req.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| pb.name.clone()),
                severity: severity.to_string(),
                category: pb.category.to_string(),
                dedup_key: dedup_key.clone(),
                fields: fields.clone(),
                labels: req.labels.clone(),
                source: source.clone(),
                by: by.clone(),
            };
            let rec = tx.append(&id, now, "opened", &serde_json::to_value(&opened)?)?;
            let mut inc = Incident::open(&id, &opened, now).expect("opened event");
            inc.last_seq = rec.seq;
            let mut ctx = Ctx { tx, emitted: vec![opened.clone()], inc, pb: pb.clone(), generation_: &generation_, now };
            ctx.advance()?;
            ctx.save()?;
            emitted = std::mem::take(&mut ctx.emitted);
            out = Some(ctx.inc);
            Ok(())
        });
        if res.is_ok() && stored_version {
            self.stored_versions.lock().unwrap_or_else(|p| p.into_inner()).insert(pb.hash.clone());
        }
        drop(writer);
        let incident = self.finish(res, None, out)?;
        self.observe(&emitted, &incident);
        Ok(TriggerOutcome { incident, deduped })
    }

    /// The dedup key a playbook's template gives these labels and fields (intake "resolved").
    pub fn dedup_key_for(&self, pb: &Playbook, labels: &BTreeMap<String, String>, fields: &BTreeMap<String, String>) -> Result<Option<String>, EngineError> {
        render_dedup(pb, labels, fields, pb.severity).map_err(EngineError::Invalid)
    }

    /// Acknowledges: cancels pending escalations and repeats. Acking as someone
    /// other than the commander makes them the commander.
    pub fn ack(&self, id: &str, by: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, &mut |ctx| {
            if let Some(at) = ctx.inc.acked_at {
                return Err(EngineError::Conflict(format!(
                    "incident {id} was already acknowledged by {} at {}",
                    ctx.inc.acked_by.clone().unwrap_or_default(),
                    fmt_ms(at)
                )));
            }
            ctx.check_person(by)?;
            if ctx.inc.roles.get("commander").map(String::as_str) != Some(by) {
                ctx.emit(Event::RoleAssigned { role: "commander".into(), person: by.to_string(), by: by.to_string() })?;
            }
            ctx.emit(Event::Acknowledged { by: by.to_string() })?;
            ctx.tx.cancel_timers(&ctx.inc.id, "escalate")?;
            ctx.tx.cancel_timers(&ctx.inc.id, "deadline:ack")?;
            Ok(())
        })
    }

    /// Names a person for an incident role.
    pub fn assign(&self, id: &str, role: &str, to: &str, by: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, &mut |ctx| {
            if !INCIDENT_ROLES.contains(&role) {
                return Err(EngineError::Invalid(format!("unknown role `{role}`: use one of {}", INCIDENT_ROLES.join(", "))));
            }
            ctx.check_person(to)?;
            ctx.emit(Event::RoleAssigned { role: role.to_string(), person: to.to_string(), by: by.to_string() })
                .map_err(EngineError::Internal)
        })
    }

    /// Approves the activation (no step) or an approval-gated step.
    pub fn approve(&self, id: &str, step: Option<&str>, by: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, &mut |ctx| {
            ctx.check_person(by)?;
            let (what, who) = match step {
                None => {
                    let Some(who) = ctx.pb.activate.approval.clone() else {
                        return Err(EngineError::Conflict(format!("playbook {} does not need approval to activate", ctx.pb.id)));
                    };
                    if ctx.inc.completed(Phase::Activate) {
                        return Err(EngineError::Conflict(format!("incident {id} is already activated")));
                    }
                    ("activation".to_string(), who)
                }
                Some(s) => {
                    let spec = ctx.step_spec(s)?;
                    let Some(who) = spec.approval.clone() else {
                        return Err(EngineError::Conflict(format!("step `{s}` does not need approval")));
                    };
                    if ctx.inc.step_status(s).finished() {
                        return Err(EngineError::Conflict(format!("step `{s}` is already finished")));
                    }
                    (format!("step:{s}"), who)
                }
            };
            if !ctx.holds(by, &who) {
                return Err(EngineError::Invalid(format!("{by} cannot approve this: it needs {who}")));
            }
            if ctx.inc.approvals.contains(&what) {
                return Err(EngineError::Conflict(format!("{what} is already approved")));
            }
            ctx.emit(Event::Approved { what, by: by.to_string() }).map_err(EngineError::Internal)
        })
    }

    /// Marks a manual step done or skips a step.
    pub fn step(&self, id: &str, step: &str, action: StepAction, note: Option<&str>, by: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, &mut |ctx| {
            let spec = ctx.step_spec(step)?.clone();
            if ctx.inc.status != Status::Open {
                return Err(EngineError::Conflict(format!("incident {id} is resolved; its steps are settled")));
            }
            if !ctx.inc.entered(Phase::Act) {
                return Err(EngineError::Conflict(format!(
                    "steps start in the act phase; incident {id} is in the {} phase{}",
                    ctx.inc.phase,
                    if ctx.inc.phase == Phase::Assign { " (acknowledge it first: crisis ack)" } else { "" }
                )));
            }
            let status = ctx.inc.step_status(step);
            if status.finished() {
                return Err(EngineError::Conflict(format!("step `{step}` is already {}", serde_json::to_value(status).unwrap().as_str().unwrap_or(""))));
            }
            let by = by.to_string();
            match action {
                StepAction::Skip => {
                    ctx.emit(Event::StepSkipped { step: step.to_string(), reason: note.map(str::to_string).unwrap_or_else(|| "skipped".into()), by: Some(by) })?;
                }
                StepAction::Done => {
                    match status {
                        StepStatus::Pending => {
                            let waiting: Vec<String> = spec.after.iter().filter(|a| !ctx.inc.step_status(a).finished()).cloned().collect();
                            return Err(EngineError::Conflict(format!("step `{step}` is not ready: it waits for {}", waiting.join(", "))));
                        }
                        StepStatus::Waiting => {
                            return Err(EngineError::Conflict(format!(
                                "step `{step}` waits for approval by {}: crisis approve {id} --step {step} --as PERSON",
                                spec.approval.map(|a| a.to_string()).unwrap_or_default()
                            )));
                        }
                        StepStatus::Running => {
                            return Err(EngineError::Conflict(format!("step `{step}` runs by itself (its messages are being sent); skip it to stop waiting")));
                        }
                        _ => {}
                    }
                    ctx.emit(Event::StepDone { step: step.to_string(), by, note: note.map(str::to_string) })?;
                }
            }
            ctx.tx.cancel_timers(&ctx.inc.id, &format!("deadline:step:{step}"))?;
            Ok(())
        })
    }

    /// Adds a progress note to the timeline.
    pub fn update(&self, id: &str, note: &str, by: &str) -> Result<Incident, EngineError> {
        if note.trim().is_empty() {
            return Err(EngineError::Invalid("an update needs a note: --note TEXT".into()));
        }
        self.mutate(id, false, &mut |ctx| ctx.emit(Event::Note { by: by.to_string(), note: note.to_string() }).map_err(EngineError::Internal))
    }

    /// Records the outcome report text; the incident closes once it is also resolved.
    pub fn record_outcome(&self, id: &str, cause: &str, process: &str, aftermath: &str, by: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, &mut |ctx| {
            for (f, v) in [("cause", cause), ("process", process), ("aftermath", aftermath)] {
                let required = ctx.pb.outcome.require.iter().any(|r| r.as_str() == f);
                if required && v.trim().is_empty() {
                    return Err(EngineError::Invalid(format!("the outcome report of playbook {} requires `{f}`: pass --{f} TEXT", ctx.pb.id)));
                }
            }
            ctx.emit(Event::OutcomeRecorded { cause: cause.into(), process: process.into(), aftermath: aftermath.into(), by: by.into() })
                .map_err(EngineError::Internal)
        })
    }

    /// Resolves: the crisis is over. Unfinished steps are skipped, the dedup key
    /// is released, and the incident moves to the outcome phase.
    pub fn resolve(&self, id: &str, by: &str, source: &str) -> Result<Incident, EngineError> {
        self.mutate(id, false, &mut |ctx| {
            if ctx.inc.status != Status::Open {
                return Err(EngineError::Conflict(format!("incident {id} is already resolved")));
            }
            ctx.emit(Event::Resolved { by: by.to_string(), source: source.to_string() })?;
            for t in ["escalate", "deadline:ack", "deadline:report", "deadline:activate", "deadline:step", "track"] {
                ctx.tx.cancel_timers(&ctx.inc.id, t)?;
            }
            Ok(())
        })
    }

    /// Resolves the open incident of a playbook with a dedup key, if any (intake "resolved").
    pub fn resolve_by_key(&self, playbook: &str, key: &str, source: &str) -> Result<Option<Incident>, EngineError> {
        let open = self.store.incidents(true, None)?;
        match open.iter().find(|r| r.playbook_id == playbook && r.dedup_key.as_deref() == Some(key)) {
            Some(r) => self.resolve(&r.id, source, source).map(Some),
            None => Ok(None),
        }
    }

    /// Fires every timer that is due (late ones once). Returns how many fired.
    pub fn fire_due_timers(&self) -> Result<usize, EngineError> {
        let mut fired = 0;
        loop {
            let now = self.clock.now_ms();
            let due = self.store.due_timers(now)?;
            if due.is_empty() {
                return Ok(fired);
            }
            for t in due {
                self.fire(t)?;
                fired += 1;
            }
        }
    }

    fn fire(&self, timer: TimerRow) -> Result<(), EngineError> {
        let id = timer.incident_id.clone();
        let res = self.mutate(&id, true, &mut |ctx| {
            ctx.tx.delete_timer(timer.id)?;
            if ctx.inc.status == Status::Closed {
                return Ok(());
            }
            ctx.fire_timer(&timer).map_err(EngineError::Internal)
        });
        match res {
            Ok(_) => Ok(()),
            Err(EngineError::NotFound { .. }) => {
                // A timer for an incident that does not exist: drop it.
                self.store.transaction(&mut |tx| tx.delete_timer(timer.id))?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Journals the result of a side effect (once; repeats are ignored).
    pub fn record_effect(&self, invocation_id: &str, outcome: &EffectOutcome) -> Result<(), EngineError> {
        // A plain read to find the incident; the result is checked again inside the write.
        let incident_id = self.store.intent(invocation_id)?.filter(|i| i.result.is_none()).map(|i| i.incident_id);
        let Some(incident_id) = incident_id else { return Ok(()) };
        self.mutate(&incident_id, true, &mut |ctx| {
            let Some(intent) = ctx.tx.intent(invocation_id)? else { return Ok(()) };
            if intent.result.is_some() {
                return Ok(());
            }
            let p: IntentPayload = serde_json::from_value(intent.payload).map_err(|e| EngineError::Internal(e.into()))?;
            ctx.tx.complete_intent(invocation_id, ctx.now, &serde_json::to_value(outcome).map_err(|e| EngineError::Internal(e.into()))?)?;
            ctx.emit(Event::EffectResult {
                invocation_id: invocation_id.to_string(),
                purpose: p.purpose,
                target: p.target,
                channel: p.customer.as_ref().map(|c| c.channel.clone()),
                customer: p.customer.map(|c| c.id),
                ok: outcome.ok,
                detail: outcome.detail.clone(),
            })?;
            Ok(())
        })?;
        Ok(())
    }

    /// Intents due now that have no result yet.
    pub fn pending_intents(&self, limit: usize) -> Result<Vec<(String, IntentPayload, i64)>, EngineError> {
        let rows = self.store.pending_intents(self.clock.now_ms(), limit)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.payload).ok().map(|p| (r.invocation_id, p, r.attempts)))
            .collect())
    }
}

/// Renders a playbook's dedup-key template; an empty result means "no key".
fn render_dedup(pb: &Playbook, labels: &BTreeMap<String, String>, fields: &BTreeMap<String, String>, sev: Severity) -> Result<Option<String>, String> {
    let Some(tpl) = pb.trigger.as_ref().and_then(|t| t.dedup_key.as_ref()) else { return Ok(None) };
    // One environment for the process: building one per trigger costs more than rendering.
    static ENV: std::sync::OnceLock<minijinja::Environment<'static>> = std::sync::OnceLock::new();
    let env = ENV.get_or_init(minijinja::Environment::new);
    let ctx = minijinja::context! { labels => labels, fields => fields, severity => sev.as_str(), playbook => pb.id };
    let key = env
        .render_str(tpl, ctx)
        .map_err(|e| format!("cannot render the dedup key template of playbook {}: {e}", pb.id))?;
    let key = key.trim().to_string();
    Ok(if key.is_empty() || key.chars().all(|c| c == ':' || c == '/' || c == '-') { None } else { Some(key) })
}

/// One incident inside one transaction.
struct Ctx<'a> {
    tx: &'a mut dyn Tx,
    /// Events journaled in this transaction, for the observer after commit.
    emitted: Vec<Event>,
    inc: Incident,
    pb: Arc<Playbook>,
    generation_: &'a Generation,
    now: i64,
}

impl Ctx<'_> {
    fn emit(&mut self, ev: Event) -> anyhow::Result<()> {
        let data = serde_json::to_value(&ev)?;
        let rec = self.tx.append(&self.inc.id, self.now, &ev.kind(), &data)?;
        self.inc.apply(&ev, self.now, rec.seq);
        self.emitted.push(ev);
        Ok(())
    }

    fn save(&mut self) -> anyhow::Result<()> {
        let i = &self.inc;
        self.tx.put_incident(&IncidentRow {
            id: i.id.clone(),
            playbook_id: i.playbook_id.clone(),
            playbook_hash: i.playbook_hash.clone(),
            mode: i.mode.clone(),
            dedup_key: i.dedup_key.clone(),
            status: i.status.as_str().to_string(),
            phase: if i.status == Status::Closed { "closed".into() } else { i.phase.to_string() },
            severity: i.severity.clone(),
            title: i.title.clone(),
            opened_at: i.opened_at,
            updated_at: self.now,
            state: serde_json::to_value(i)?,
        })
    }

    fn step_spec(&self, step: &str) -> Result<&StepSpec, EngineError> {
        self.pb.step(step).ok_or_else(|| EngineError::NotFound {
            what: "step",
            id: step.to_string(),
            nearby: crate::diag::nearby(step, self.pb.act.iter().map(|s| s.id.as_str())),
        })
    }

    fn check_person(&self, person: &str) -> Result<(), EngineError> {
        let people = &self.generation_.config.roster.people;
        if people.is_empty() || people.contains_key(person) {
            return Ok(());
        }
        Err(EngineError::NotFound {
            what: "person in the roster",
            id: person.to_string(),
            nearby: crate::diag::nearby(person, people.keys().map(String::as_str)),
        })
    }

    /// Whether `person` may act as `who` (membership, not only who is on call now).
    fn holds(&self, person: &str, who: &Who) -> bool {
        let roster = &self.generation_.config.roster;
        match who {
            Who::Person(p) => p == person,
            Who::Team(t) => roster.teams.get(t).is_some_and(|m| m.iter().any(|x| x == person)),
            Who::Rota(r) => roster.rotas.get(r).is_some_and(|r| r.members.iter().any(|x| x == person)),
            Who::Role(role) if INCIDENT_ROLES.contains(&role.as_str()) => self.inc.roles.get(role).map(String::as_str) == Some(person),
            Who::Role(role) => roster.people.get(person).is_some_and(|p| p.roles.iter().any(|r| r == role)),
        }
    }

    /// People a reference resolves to right now (incident roles through the incident).
    fn people(&self, who: &Who) -> Vec<String> {
        match who {
            Who::Role(r) if INCIDENT_ROLES.contains(&r.as_str()) => self.inc.roles.get(r).cloned().into_iter().collect(),
            other => {
                let at = chrono::DateTime::from_timestamp_millis(self.now).unwrap_or_default();
                self.generation_.config.roster.resolve(other, at)
            }
        }
    }

    fn timer(&mut self, after_ms: i64, kind: &str, data: serde_json::Value) -> anyhow::Result<()> {
        self.tx.add_timer(&self.inc.id, self.now + after_ms, kind, &data)?;
        Ok(())
    }

    fn summary(&self) -> IncidentSummary {
        IncidentSummary {
            id: self.inc.id.clone(),
            title: self.inc.title.clone(),
            playbook_id: self.inc.playbook_id.clone(),
            severity: self.inc.severity.clone(),
            category: self.inc.category.clone(),
            phase: self.inc.phase.to_string(),
            summary: self.pb.summary.clone(),
        }
    }

    fn subject(&self, what: &str) -> String {
        let drill = if self.inc.is_drill() { "[DRILL] " } else { "" };
        format!("{drill}[{}] {} {}: {what}", self.inc.severity, self.inc.id, self.inc.title)
    }

    fn new_intent(&mut self, purpose: &str, target: &str, payload: IntentPayload, not_before: i64) -> anyhow::Result<()> {
        let n: u32 = self.inc.effects.values().map(|c| c.recorded).sum::<u32>() + 1;
        let invocation_id = format!("{}.{n}", self.inc.id);
        let customer = payload.customer.as_ref().map(|c| c.id.clone());
        let channel = payload.customer.as_ref().map(|c| c.channel.clone());
        self.tx.add_intent(&IntentRow {
            invocation_id: invocation_id.clone(),
            incident_id: self.inc.id.clone(),
            created_at: self.now,
            not_before,
            payload: serde_json::to_value(&payload)?,
            attempts: 0,
            result: None,
        })?;
        self.emit(Event::IntentRecorded { invocation_id, purpose: purpose.to_string(), target: target.to_string(), channel, customer })
    }

    /// Records a notification to each target.
    fn notify(&mut self, purpose: &str, targets: &[String], subject: &str, body: &str) -> anyhow::Result<()> {
        for t in targets {
            let Some(target) = self.generation_.config.targets.get(t) else {
                self.emit(Event::Note { by: "crisis".into(), note: format!("target `{t}` is no longer configured; {purpose} notice not sent") })?;
                continue;
            };
            let payload = IntentPayload {
                kind: EffectKind::Notify,
                purpose: purpose.to_string(),
                target: t.clone(),
                notifier: target.plugin.clone(),
                composer: None,
                mode: self.inc.mode.clone(),
                incident: self.summary(),
                subject: subject.to_string(),
                body: body.to_string(),
                recipients: Vec::new(),
                customer: None,
            };
            self.new_intent(purpose, t, payload, self.now)?;
        }
        Ok(())
    }

    /// Pages people through their roster target (default: the `oncall` target).
    fn page(&mut self, purpose: &str, people: &[String], subject: &str, body: &str) -> anyhow::Result<()> {
        let mut by_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in people {
            let target = self.generation_.config.roster.people.get(p).and_then(|x| x.target.clone()).unwrap_or_else(|| "oncall".into());
            by_target.entry(target).or_default().push(p.clone());
        }
        for (target, recipients) in by_target {
            let Some(t) = self.generation_.config.targets.get(&target) else {
                self.emit(Event::Note { by: "crisis".into(), note: format!("cannot page {}: no `{target}` target is configured", recipients.join(", ")) })?;
                continue;
            };
            let payload = IntentPayload {
                kind: EffectKind::Notify,
                purpose: purpose.to_string(),
                target: target.clone(),
                notifier: t.plugin.clone(),
                composer: None,
                mode: self.inc.mode.clone(),
                incident: self.summary(),
                subject: subject.to_string(),
                body: body.to_string(),
                recipients,
                customer: None,
            };
            self.new_intent(purpose, &target, payload, self.now)?;
        }
        Ok(())
    }

    fn enter(&mut self, phase: Phase) -> anyhow::Result<()> {
        self.emit(Event::PhaseEntered { phase })
    }

    fn complete(&mut self, phase: Phase) -> anyhow::Result<()> {
        self.tx.cancel_timers(&self.inc.id, &format!("deadline:{phase}"))?;
        self.emit(Event::PhaseCompleted { phase })
    }

    /// Moves the plan forward as far as it goes without people.
    fn advance(&mut self) -> anyhow::Result<()> {
        for _ in 0..10_000 {
            if !self.advance_once()? {
                return Ok(());
            }
        }
        anyhow::bail!("incident {} did not settle; this is a bug in crisis", self.inc.id)
    }

    fn advance_once(&mut self) -> anyhow::Result<bool> {
        if self.inc.status == Status::Closed {
            return Ok(false);
        }
        let resolved = self.inc.status != Status::Open;
        for phase in Phase::ORDER {
            if self.inc.completed(phase) || self.inc.skipped_phase(phase) {
                continue;
            }
            if !self.inc.entered(phase) {
                self.on_enter(phase)?;
                return Ok(true);
            }
            if resolved && phase != Phase::Outcome {
                self.settle_on_resolve(phase)?;
                return Ok(true);
            }
            return self.try_complete(phase);
        }
        Ok(false)
    }

    fn settle_on_resolve(&mut self, phase: Phase) -> anyhow::Result<()> {
        if phase == Phase::Act {
            for s in self.pb.act.clone() {
                if !self.inc.step_status(&s.id).finished() {
                    self.emit(Event::StepSkipped { step: s.id.clone(), reason: "incident resolved".into(), by: None })?;
                }
            }
        }
        self.complete(phase)
    }

    fn on_enter(&mut self, phase: Phase) -> anyhow::Result<()> {
        self.enter(phase)?;
        let pb = self.pb.clone();
        match phase {
            Phase::Report => {
                let scope = self.inc.fields.get("scope").cloned().unwrap_or_else(|| "not stated".into());
                let nature = self.inc.fields.get("nature").cloned().unwrap_or_else(|| self.inc.title.clone());
                let body = format!("Nature: {nature}. Scope: {scope}. Category {}. Playbook {}.", self.inc.category, pb.id);
                let subject = self.subject("crisis reported");
                self.notify("report", &pb.report.notify, &subject, &body)?;
                self.timer(pb.report.within.as_millis() as i64, "deadline:report", serde_json::json!({"what": "report"}))?;
            }
            Phase::Activate => {
                if let Some(w) = pb.activate.within {
                    self.timer(w.as_millis() as i64, "deadline:activate", serde_json::json!({"what": "activate"}))?;
                }
            }
            Phase::Assign => self.start_assign()?,
            Phase::Act => {}
            Phase::Track => {
                if let Some(every) = pb.track.update_every {
                    self.timer(every.as_millis() as i64, "track:update", serde_json::json!({}))?;
                }
                if let Some(stale) = pb.track.stale_after {
                    self.timer(stale.as_millis() as i64, "track:stale", serde_json::json!({}))?;
                }
            }
            Phase::Outcome => {
                if let Some(w) = pb.outcome.within {
                    self.timer(w.as_millis() as i64, "deadline:outcome", serde_json::json!({"what": "outcome"}))?;
                }
            }
        }
        Ok(())
    }

    fn start_assign(&mut self) -> anyhow::Result<()> {
        let a = self.pb.assign.clone();
        for (role, who) in [("commander", Some(&a.commander)), ("liaison", a.liaison.as_ref()), ("scribe", a.scribe.as_ref())] {
            let Some(who) = who else { continue };
            if self.inc.roles.contains_key(role) {
                continue;
            }
            match self.people(who).into_iter().next() {
                Some(person) => self.emit(Event::RoleAssigned { role: role.into(), person, by: who.to_string() })?,
                None => self.emit(Event::Note { by: "crisis".into(), note: format!("no one is available for {role} from {who}") })?,
            }
        }
        if self.inc.acked_at.is_some() {
            return Ok(());
        }
        if let Some(commander) = self.inc.roles.get("commander").cloned() {
            let subject = self.subject("you are the incident commander");
            let body = format!("Acknowledge with: crisis ack {} --as {commander}", self.inc.id);
            self.page("page", &[commander], &subject, &body)?;
        }
        if let Some(w) = a.ack_within {
            self.timer(w.as_millis() as i64, "deadline:ack", serde_json::json!({"what": "ack"}))?;
        }
        for (level, e) in a.escalate.iter().enumerate() {
            self.timer(e.after.as_millis() as i64, &format!("escalate:{level}"), serde_json::json!({"level": level, "round": 1}))?;
        }
        Ok(())
    }

    fn try_complete(&mut self, phase: Phase) -> anyhow::Result<bool> {
        match phase {
            Phase::Report => {
                if self.inc.effects_for("report").pending() > 0 {
                    return Ok(false);
                }
                self.complete(Phase::Report)?;
                Ok(true)
            }
            Phase::Activate => {
                let approver = if self.pb.activate.approval.is_some() {
                    if !self.inc.approvals.contains("activation") {
                        return Ok(false);
                    }
                    "approval".to_string()
                } else {
                    "plan".to_string()
                };
                let channels = self.pb.activate.channels.clone();
                self.emit(Event::Activated { by: approver, channels: channels.clone() })?;
                let subject = self.subject("crisis plan activated");
                let body = format!("The {} plan is in effect. {}", self.pb.name, self.pb.summary);
                self.notify("activate", &channels, &subject, &body)?;
                self.complete(Phase::Activate)?;
                Ok(true)
            }
            Phase::Assign => {
                if self.inc.acked_at.is_none() {
                    return Ok(false);
                }
                self.tx.cancel_timers(&self.inc.id, "escalate")?;
                self.complete(Phase::Assign)?;
                Ok(true)
            }
            Phase::Act => self.advance_steps(),
            Phase::Track => {
                // Tracking follows the action: it ends when the act phase does.
                if !self.inc.completed(Phase::Act) {
                    return Ok(false);
                }
                self.tx.cancel_timers(&self.inc.id, "track")?;
                self.complete(Phase::Track)?;
                Ok(true)
            }
            Phase::Outcome => {
                let Some(o) = self.inc.outcome.clone() else { return Ok(false) };
                if self.inc.status == Status::Open {
                    return Ok(false);
                }
                let subject = self.subject("outcome report");
                let body = format!("Cause: {}\nProcess: {}\nAftermath: {}", o.cause, o.process, o.aftermath);
                let targets = self.pb.outcome.notify.clone();
                self.notify("outcome", &targets, &subject, &body)?;
                self.complete(Phase::Outcome)?;
                self.emit(Event::Closed {})?;
                for t in ["deadline", "escalate", "track"] {
                    self.tx.cancel_timers(&self.inc.id, t)?;
                }
                Ok(true)
            }
        }
    }

    /// Starts steps whose `after` steps finished; finishes automated steps whose messages all ran.
    fn advance_steps(&mut self) -> anyhow::Result<bool> {
        // Track is entered with act: tracking runs alongside the action.
        if !self.inc.entered(Phase::Track) {
            self.on_enter(Phase::Track)?;
            return Ok(true);
        }
        let steps = self.pb.act.clone();
        for s in &steps {
            let status = self.inc.step_status(&s.id);
            match status {
                StepStatus::Pending => {
                    if !s.after.iter().all(|a| self.inc.step_status(a).finished()) {
                        continue;
                    }
                    if let Some(expr) = &s.when {
                        match when::eval(expr, &self.inc) {
                            Ok(false) => {
                                self.emit(Event::StepSkipped { step: s.id.clone(), reason: format!("`when {expr}` is false"), by: None })?;
                                return Ok(true);
                            }
                            Err(e) => {
                                self.emit(Event::StepFailed { step: s.id.clone(), reason: e })?;
                                return Ok(true);
                            }
                            Ok(true) => {}
                        }
                    }
                    if let Some(w) = s.within {
                        self.timer(w.as_millis() as i64, &format!("deadline:step:{}", s.id), serde_json::json!({"what": format!("step:{}", s.id)}))?;
                    }
                    let gated = s.kind == StepKind::Approval || s.approval.is_some();
                    if gated && !self.inc.approvals.contains(&format!("step:{}", s.id)) {
                        let who = s.approval.as_ref().map(|a| a.to_string()).unwrap_or_default();
                        self.emit(Event::StepWaiting { step: s.id.clone(), reason: format!("waiting for approval by {who}") })?;
                    } else {
                        self.emit(Event::StepReady { step: s.id.clone() })?;
                        self.start_step(s)?;
                    }
                    return Ok(true);
                }
                StepStatus::Waiting => {
                    if self.inc.approvals.contains(&format!("step:{}", s.id)) {
                        if s.kind == StepKind::Approval {
                            self.tx.cancel_timers(&self.inc.id, &format!("deadline:step:{}", s.id))?;
                            self.emit(Event::StepDone { step: s.id.clone(), by: "approval".into(), note: None })?;
                        } else {
                            self.emit(Event::StepReady { step: s.id.clone() })?;
                            self.start_step(s)?;
                        }
                        return Ok(true);
                    }
                }
                StepStatus::Running => {
                    let c = self.inc.effects_for(&format!("step:{}", s.id));
                    if c.pending() > 0 {
                        continue;
                    }
                    self.tx.cancel_timers(&self.inc.id, &format!("deadline:step:{}", s.id))?;
                    if c.failed > 0 && c.ok == 0 {
                        self.emit(Event::StepFailed { step: s.id.clone(), reason: format!("all {} deliveries failed", c.failed) })?;
                    } else {
                        let note = (c.failed > 0).then(|| format!("{} of {} deliveries failed", c.failed, c.recorded));
                        self.emit(Event::StepDone { step: s.id.clone(), by: "crisis".into(), note })?;
                    }
                    return Ok(true);
                }
                _ => {}
            }
        }
        if steps.iter().all(|s| self.inc.step_status(&s.id).finished()) {
            self.complete(Phase::Act)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Runs the automatic part of a step that just became ready.
    fn start_step(&mut self, s: &StepSpec) -> anyhow::Result<()> {
        match s.kind {
            StepKind::Notify => {
                let subject = self.subject(&s.id);
                let body = s.message.clone().unwrap_or_else(|| s.tasks.join("; "));
                self.notify(&format!("step:{}", s.id), &s.notify, &subject, &body)?;
                if s.notify.is_empty() {
                    self.emit(Event::StepDone { step: s.id.clone(), by: "crisis".into(), note: Some("no targets".into()) })?;
                }
            }
            StepKind::Appease => self.start_appease(s)?,
            _ => {}
        }
        Ok(())
    }

    /// One intent per customer in the audience, spaced to the step's per-minute rate.
    fn start_appease(&mut self, s: &StepSpec) -> anyhow::Result<()> {
        let deliver = s.notify.first().cloned().unwrap_or_else(|| "customers".to_string());
        let Some(target) = self.generation_.config.targets.get(&deliver).cloned() else {
            self.emit(Event::StepFailed { step: s.id.clone(), reason: format!("no `{deliver}` target is configured to deliver customer messages") })?;
            return Ok(());
        };
        let audience = s.audience.clone().unwrap_or_default();
        let channel = s.channel.map(|c| c.to_string()).unwrap_or_else(|| "sms".into());
        let max = s.limits.max_messages.unwrap_or(u32::MAX) as usize;
        let per_minute = s.limits.per_minute.unwrap_or(u32::MAX).max(1) as i64;
        let chosen: Vec<CustomerRef> = self
            .generation_
            .customers
            .iter()
            .filter(|c| audience.segment.as_ref().is_none_or(|seg| &c.segment == seg))
            .filter(|c| audience.tier.is_empty() || audience.tier.contains(&c.tier))
            .take(max)
            .map(|c| CustomerRef { id: c.id.clone(), segment: c.segment.clone(), tier: c.tier.clone(), locale: c.locale.clone(), channel: channel.clone() })
            .collect();
        if chosen.is_empty() {
            self.emit(Event::StepDone { step: s.id.clone(), by: "crisis".into(), note: Some("no customers matched the audience".into()) })?;
            return Ok(());
        }
        let purpose = format!("step:{}", s.id);
        let subject = self.subject("customer message");
        for (i, c) in chosen.into_iter().enumerate() {
            let not_before = self.now + (i as i64 / per_minute) * 60_000;
            let payload = IntentPayload {
                kind: EffectKind::Appease,
                purpose: purpose.clone(),
                target: deliver.clone(),
                notifier: target.plugin.clone(),
                composer: s.plugin.clone(),
                mode: self.inc.mode.clone(),
                incident: self.summary(),
                subject: subject.clone(),
                body: String::new(),
                recipients: Vec::new(),
                customer: Some(c),
            };
            self.new_intent(&purpose, &deliver, payload, not_before)?;
        }
        Ok(())
    }

    fn fire_timer(&mut self, t: &TimerRow) -> anyhow::Result<()> {
        let kind = t.kind.as_str();
        if let Some(what) = kind.strip_prefix("deadline:") {
            let done = match what {
                "report" => self.inc.completed(Phase::Report),
                "activate" => self.inc.completed(Phase::Activate),
                "ack" => self.inc.acked_at.is_some(),
                "outcome" => self.inc.completed(Phase::Outcome),
                other => other.strip_prefix("step:").is_some_and(|s| self.inc.step_status(s).finished()),
            };
            if done {
                return Ok(());
            }
            self.emit(Event::DeadlineMissed { what: what.to_string(), due_at: t.due_at })?;
            let subject = self.subject(&format!("deadline missed: {what}"));
            let body = format!("{what} was due at {} and is not done.", fmt_ms(t.due_at));
            let targets = self.pb.report.notify.clone();
            self.notify("deadline", &targets, &subject, &body)?;
            return Ok(());
        }
        if kind.starts_with("escalate:") {
            if self.inc.acked_at.is_some() {
                return Ok(());
            }
            let level = t.data.get("level").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            let round = t.data.get("round").and_then(|v| v.as_u64()).unwrap_or(1) as u32;
            let Some(e) = self.pb.assign.escalate.get(level).cloned() else { return Ok(()) };
            let people = self.people(&e.to);
            self.emit(Event::Escalated { level: level + 1, to: e.to.to_string(), people: people.clone(), round })?;
            let subject = self.subject(&format!("escalation level {} (not acknowledged)", level + 1));
            let body = format!("Nobody has acknowledged {}. Acknowledge with: crisis ack {} --as YOU", self.inc.id, self.inc.id);
            self.page("escalate", &people, &subject, &body)?;
            if round < e.repeat {
                self.timer(e.after.as_millis() as i64, kind, serde_json::json!({"level": level, "round": round + 1}))?;
            }
            return Ok(());
        }
        if kind == "track:update" {
            if self.inc.completed(Phase::Track) || self.inc.status != Status::Open {
                return Ok(());
            }
            self.emit(Event::UpdateDue {})?;
            let done = self.inc.steps.values().filter(|s| s.status.finished()).count();
            let body = format!("Progress: {done} of {} steps finished; phase {}.", self.pb.act.len(), self.inc.phase);
            let subject = self.subject("progress update");
            let targets = self.pb.track.notify.clone();
            self.notify("track", &targets, &subject, &body)?;
            if let Some(every) = self.pb.track.update_every {
                self.timer(every.as_millis() as i64, "track:update", serde_json::json!({}))?;
            }
            return Ok(());
        }
        if kind == "track:stale" {
            if self.inc.completed(Phase::Track) || self.inc.status != Status::Open {
                return Ok(());
            }
            let Some(stale) = self.pb.track.stale_after else { return Ok(()) };
            let stale = stale.as_millis() as i64;
            let idle = self.now - self.inc.last_activity_at;
            if idle >= stale {
                self.emit(Event::Stale { idle_ms: idle })?;
                let subject = self.subject("stale incident");
                let body = format!("No activity for {}.", super::clock::fmt_span(idle));
                let targets = self.pb.track.notify.clone();
                self.notify("track", &targets, &subject, &body)?;
                self.timer(stale, "track:stale", serde_json::json!({}))?;
            } else {
                self.timer(stale - idle, "track:stale", serde_json::json!({}))?;
            }
        }
        Ok(())
    }
}
