//! Running one drill: its own journal, its own clock, the real engine in
//! drill mode, the scenario's injects and scripted responders, then the
//! score and the after-action report.

use super::clock::{ClockMode, DrillTime, start_time};
use super::contain::DrillExecutor;
use super::control::{Control, Hold};
use super::first_response::FirstResponses;
use super::report::{self, AfterActionReport, ControllerEntry};
use super::responders::{DefaultScenario, holder};
use super::scenario::{self, Scenario, ScenarioSource};
use super::score::{self, ScoreHook};
use crate::incident::effects::Executor;
use crate::incident::events::Event;
use crate::incident::outbox::run_pending;
use crate::incident::state::{Incident, Status};
use crate::incident::{Engine, EngineError, Generation, StepAction, TriggerRequest};
use crate::playbook::inject::{Inject, InjectKind};
use crate::playbook::spec::Playbook;
use crate::plugin::PluginHost;
use crate::store::{EventRecord, SqliteStore, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod burst;
mod due;
mod steer;

use due::Due;

/// Where a drill's own journal lives.
#[derive(Debug, Clone)]
pub enum Journal {
    /// In memory (`--standalone`, tests).
    Memory,
    /// A SQLite file, normally `state_dir/drills/<run-id>.db`.
    File(PathBuf),
}

/// Told about a run's engine while the run lasts (`Some` at start, `None` at
/// the end), so the daemon can route people's commands on drill incidents to it.
#[derive(Clone)]
pub struct EngineHook(pub Arc<dyn Fn(Option<Arc<Engine>>) + Send + Sync>);

impl std::fmt::Debug for EngineHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineHook")
    }
}

/// How to run one drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Incident id prefix (default `DRL`, giving `DRL-1`); daemon runs use `DRL-<run id>`.
    pub incident_prefix: Option<String>,
    /// Told about the drill's engine while it runs; `None` when nobody needs to reach it (standalone runs, tests).
    pub engine_hook: Option<EngineHook>,
    /// Id of this run, used in `[DRILL <run>]` subjects, improvement ids and the report.
    pub run_id: String,
    /// How drill time passes; on a virtual clock scripted responders always act.
    pub clock: ClockMode,
    /// Scenario seed: the same seed replays the same drill.
    pub seed: u64,
    /// The schedule occurrence this run is for (Unix ms), if scheduled.
    pub scheduled_for: Option<i64>,
    /// Where the drill incident's journal is kept.
    pub journal: Journal,
    /// Whether the default scripted responders act. Always on a virtual clock;
    /// on a real or sped-up clock people act unless this is set (responders the
    /// playbook writes in `[[drill.inject]]` always act).
    pub responders: bool,
    /// Set to stop a running drill without a record of who did it (shutdown, tests).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Commands from the exercise controller and the daemon (cancel, pause, resume, inject, live-incident holds).
    pub control: Option<Arc<Control>>,
}

impl DrillOptions {
    /// A virtual drill in memory: what `--standalone` and tests use.
    pub fn virtual_in_memory(run_id: impl Into<String>, seed: u64) -> Self {
        DrillOptions {
            run_id: run_id.into(),
            clock: ClockMode::Virtual,
            seed,
            scheduled_for: None,
            journal: Journal::Memory,
            responders: true,
            cancel: None,
            control: None,
            incident_prefix: None,
            engine_hook: None,
        }
    }
}

/// Why a drill could not run.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The playbook to drill is not loaded; `nearby` holds similar ids to suggest.
    #[error("no playbook `{id}` in the loaded set{}", if .nearby.is_empty() { String::new() } else { format!("; did you mean {}?", .nearby.join(", ")) })]
    NotFound {
        /// The playbook id that was asked for.
        id: String,
        /// Loaded playbook ids close to it.
        nearby: Vec<String>,
    },
    /// The scenario cannot be played: a scenario source failed or the scenario does not fit the playbook; fix the scenario or `[[drill.inject]]`.
    #[error("{0}")]
    Invalid(String),
    /// The run broke down (journal, engine or store error); the drill has no report.
    #[error("drill failed: {0:#}")]
    Failed(#[from] anyhow::Error),
}

impl From<EngineError> for DrillError {
    fn from(e: EngineError) -> Self {
        DrillError::Failed(anyhow::anyhow!("{e}"))
    }
}

/// Everything a finished drill produced.
pub struct DrillOutcome {
    /// The after-action report, with the score.
    pub report: AfterActionReport,
    /// The drill incident's journal events.
    pub events: Vec<EventRecord>,
    /// Final state of the drill incident; `None` if the drill never opened one.
    pub incident: Option<Incident>,
}

/// Extension points for plugins: extra scenario sources (tried in order
/// before the built-in default), score hooks, and the plugin host a drill's
/// complaints are classified and answered with.
#[derive(Default, Clone)]
pub struct Extensions {
    /// Scenario sources asked in order; the first with a scenario wins, the built-in default comes last.
    pub sources: Vec<Arc<dyn ScenarioSource>>,
    /// Score hooks whose criteria are added to the host's own.
    pub hooks: Vec<Arc<dyn ScoreHook>>,
    /// The plugins a complaint burst's complaints go through (classifier,
    /// appeasement composer); `None`: the rules classify and the plain template answers.
    pub plugins: Option<Arc<PluginHost>>,
}

/// Picks the scenario: the first source with one (else the default), then
/// the playbook's inline `[[drill.inject]]` entries over it.
pub fn scenario_for(pb: &Playbook, seed: u64, ext: &Extensions) -> Result<Scenario, DrillError> {
    let mut base = None;
    for s in &ext.sources {
        match s.plan(pb, seed) {
            Ok(Some(sc)) => {
                base = Some(sc);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                return Err(DrillError::Invalid(format!(
                    "scenario source `{}` failed for playbook {}: {e:#}",
                    s.name(),
                    pb.id
                )));
            }
        }
    }
    let base = match base {
        Some(b) => b,
        None => DefaultScenario.plan(pb, seed)?.expect("the default always plans"),
    };
    let inline = pb.drill.as_ref().map(|d| d.injects.clone()).unwrap_or_default();
    let sc = scenario::overlay(base, &inline);
    scenario::check(&sc, pb).map_err(DrillError::Invalid)?;
    Ok(sc)
}

/// A generation holding only the drilled playbook, sharing config and customers.
fn drill_generation(g: &Generation, pb: &Arc<Playbook>) -> Generation {
    Generation {
        number: g.number,
        set_hash: g.set_hash.clone(),
        loaded_at: g.loaded_at,
        playbooks: BTreeMap::from([(pb.id.clone(), pb.clone())]),
        config: g.config.clone(),
        customers: g.customers.clone(),
    }
}

/// Virtual drills stop after this much drill time whatever happens.
const VIRTUAL_HORIZON_MS: i64 = 120 * 24 * 3_600_000;
/// Once nothing is left for responders to do, timers play out this long.
const IDLE_TAIL_MS: i64 = 24 * 3_600_000;

/// Runs one drill of `playbook_id` from generation `g` to its end.
pub fn run(
    g: &Generation,
    playbook_id: &str,
    opts: DrillOptions,
    inner: Arc<dyn Executor>,
    ext: &Extensions,
) -> Result<DrillOutcome, DrillError> {
    let wall = Instant::now();
    let Some(pb) = g.playbooks.get(playbook_id).cloned() else {
        return Err(DrillError::NotFound {
            id: playbook_id.to_string(),
            nearby: crate::diag::nearby(playbook_id, g.playbooks.keys().map(String::as_str)),
        });
    };
    let scenario = scenario_for(&pb, opts.seed, ext)?;
    let store: Arc<dyn Store> = match &opts.journal {
        Journal::Memory => Arc::new(SqliteStore::in_memory()?),
        Journal::File(p) => Arc::new(open_file_store(p)?),
    };
    let t0 = start_time(opts.clock, opts.seed, opts.scheduled_for, chrono::Utc::now().timestamp_millis());
    let time = DrillTime::new(opts.clock, t0);
    let mut engine =
        Engine::with_mode(store.clone(), time.clock(), drill_generation(g, &pb), crate::playbook::types::Mode::Drill);
    if let Some(p) = &opts.incident_prefix {
        engine = engine.with_id_prefix(p.clone());
    }
    let engine = Arc::new(engine);
    if let Some(h) = &opts.engine_hook {
        (h.0)(Some(engine.clone()));
    }
    let exec = DrillExecutor::new(inner, g.config.targets.clone(), opts.run_id.clone());
    let responders = opts.responders || opts.clock == ClockMode::Virtual;
    let mut r = Runner {
        engine: &engine,
        pb: &pb,
        g,
        t0,
        injects: scenario.injects.clone(),
        done: vec![false; scenario.injects.len()],
        log: Vec::new(),
        incident: None,
        retry_at: BTreeMap::new(),
        alert: None,
        responders,
        holds: BTreeSet::new(),
        paused_since: None,
        controller_by: BTreeMap::new(),
        plugins: ext.plugins.clone(),
    };
    let status = r.drive(&time, &exec, opts.cancel.as_deref(), opts.control.as_deref());
    if let Some(h) = &opts.engine_hook {
        (h.0)(None);
    }
    if let Some(c) = &opts.control {
        c.end(status.as_deref().unwrap_or("failed"));
    }
    let status = status?;
    let log = r.log;
    let incident_id = r.incident;
    let (incident, events) = match &incident_id {
        Some(id) => (Some(engine.incident(id)?), store.events(id, 0)?),
        None => (None, Vec::new()),
    };
    let first_responses = FirstResponses::read(store.as_ref(), g.config.complaints.first_response)?;
    let score = score::score(&pb, incident.as_ref(), &events, &scenario, &first_responses, &ext.hooks);
    let mut report = report::build(report::Inputs {
        run_id: &opts.run_id,
        pb: &pb,
        clock: opts.clock,
        seed: opts.seed,
        scheduled_for: opts.scheduled_for,
        started_at: t0,
        ended_at: time.now(),
        wall_ms: wall.elapsed().as_millis() as u64,
        status,
        scenario: &scenario,
        controller: log,
        incident: incident.as_ref(),
        events: &events,
        score,
    });
    if report.status == "cancelled" {
        // A cancelled run is not judged: its score shows how far it got, the verdict says it was stopped.
        report.score.verdict = "cancelled".into();
    }
    Ok(DrillOutcome { report, events, incident })
}

/// Opens a drill's own journal file (creating its directory).
fn open_file_store(p: &std::path::Path) -> anyhow::Result<SqliteStore> {
    use anyhow::Context;
    SqliteStore::open_path(p).with_context(|| format!("cannot open the drill journal {}", p.display()))
}

struct Runner<'a> {
    engine: &'a Engine,
    pb: &'a Playbook,
    g: &'a Generation,
    t0: i64,
    injects: Vec<Inject>,
    done: Vec<bool>,
    log: Vec<ControllerEntry>,
    incident: Option<String>,
    /// Step id -> earliest time a scripted responder may retry it after an injected failure.
    retry_at: BTreeMap<String, i64>,
    /// Labels and fields of the triggering alert, for duplicates and complaints.
    alert: Option<TriggerRequest>,
    responders: bool,
    /// What holds the drill clock still (controller pause, open live incidents); empty while it runs.
    holds: BTreeSet<Hold>,
    /// Real time the current pause began.
    paused_since: Option<Instant>,
    /// Injects the controller added while the drill ran, by index, with who added them.
    controller_by: BTreeMap<usize, String>,
    /// What a complaint burst's complaints are classified and answered with.
    plugins: Option<Arc<PluginHost>>,
}

impl Runner<'_> {
    fn drive(
        &mut self,
        time: &DrillTime,
        exec: &DrillExecutor,
        cancel: Option<&AtomicBool>,
        control: Option<&Control>,
    ) -> Result<String, DrillError> {
        let mut idle_until: Option<i64> = None;
        for _ in 0..1_000_000 {
            if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                return Ok("cancelled".into());
            }
            if let Some(ctl) = control {
                if let Some(status) = self.steer(ctl, time)? {
                    return Ok(status);
                }
                if self.paused() {
                    ctl.wait(Duration::from_secs(1));
                    continue;
                }
            }
            self.housekeeping(exec)?;
            let now = time.now();
            let inc = self.current()?;
            // Perform the first action that is due; then settle the engine again.
            let mut next_action: Option<i64> = None;
            let mut performed = false;
            for i in 0..self.injects.len() {
                if self.done[i] {
                    continue;
                }
                match self.due(i, inc.as_ref()) {
                    Due::Never(why) => {
                        self.done[i] = true;
                        self.note(i, now, format!("not performed: {why}"));
                    }
                    Due::Wait => {}
                    Due::At(t) if t <= now => {
                        self.perform(i, now)?;
                        performed = true;
                        break;
                    }
                    Due::At(t) => next_action = Some(next_action.map_or(t, |n: i64| n.min(t))),
                }
            }
            if performed {
                continue;
            }
            let inc = self.current()?;
            let store = self.engine.store();
            let pending_intents = store.next_intent_due()?;
            if inc.as_ref().is_some_and(|i| i.status == Status::Closed) && pending_intents.is_none() {
                return Ok("completed".into());
            }
            let open_actions = self.done.iter().any(|d| !d);
            if !open_actions || (!self.responders && next_action.is_none()) {
                idle_until.get_or_insert(now + IDLE_TAIL_MS);
            }
            let mut next =
                [next_action, store.next_timer_due()?, pending_intents, idle_until].into_iter().flatten().min();
            if let Some(end) = idle_until
                && now >= end
            {
                return Ok(if inc.is_some() { "incomplete".into() } else { "not started".into() });
            }
            if next.is_none() && open_actions {
                // Responders wait on something no one will do (e.g. a step nobody scripted).
                idle_until = Some(now + IDLE_TAIL_MS);
                next = idle_until;
            }
            let Some(next) = next else { return Ok("incomplete".into()) };
            match time {
                DrillTime::Virtual(c) => {
                    if next - self.t0 > VIRTUAL_HORIZON_MS {
                        return Ok("incomplete".into());
                    }
                    if next > now {
                        c.set(next);
                    }
                }
                DrillTime::Scaled(c) => {
                    let ms = Duration::from_millis(c.real_ms_until(next).clamp(1, 1000));
                    match control {
                        Some(ctl) => ctl.wait(ms),
                        None => std::thread::sleep(ms),
                    }
                }
            }
        }
        Err(DrillError::Failed(anyhow::anyhow!(
            "drill {} did not settle after a million steps; this is a bug in crisis",
            self.pb.id
        )))
    }

    fn housekeeping(&self, exec: &DrillExecutor) -> Result<(), DrillError> {
        self.engine.fire_due_timers()?;
        while run_pending(self.engine, exec)? > 0 {
            self.engine.fire_due_timers()?;
        }
        Ok(())
    }

    fn current(&self) -> Result<Option<Incident>, DrillError> {
        match &self.incident {
            Some(id) => Ok(Some(self.engine.incident(id)?)),
            None => Ok(None),
        }
    }

    fn note(&mut self, i: usize, at: i64, result: String) {
        let inj = &self.injects[i];
        if let Some(by) = self.controller_by.get(&i) {
            let ev = Event::ControllerInject {
                by: by.clone(),
                inject: inj.kind.name().into(),
                text: inj.kind.describe(),
                result: result.clone(),
            };
            if self.journal(ev).is_err() {
                tracing::warn!("drill {}: cannot journal controller inject #{}", self.pb.id, i + 1);
            }
        }
        let inj = &self.injects[i];
        self.log.push(ControllerEntry {
            at,
            offset_ms: at - self.t0,
            inject: i + 1,
            kind: inj.kind.name().to_string(),
            text: inj.kind.describe(),
            result,
        });
    }

    fn perform(&mut self, i: usize, now: i64) -> Result<(), DrillError> {
        self.done[i] = true;
        let kind = self.injects[i].kind.clone();
        let id = self.incident.clone().unwrap_or_default();
        let config = self.g.config.clone();
        let res: Result<String, EngineError> = match kind {
            InjectKind::Alert { labels, fields, severity, title } => {
                let req = TriggerRequest {
                    playbook: self.pb.id.clone(),
                    title,
                    severity: severity.map(|s| s.parse()).transpose().map_err(DrillError::Invalid)?,
                    scope: None,
                    fields,
                    labels,
                    dedup_key: None,
                    source: "drill".into(),
                    by: "drill".into(),
                };
                // A scenario whose alert the playbook refuses cannot run at all.
                let out = self
                    .engine
                    .trigger(req.clone())
                    .map_err(|e| DrillError::Invalid(format!("the scenario's alert was refused: {e}")))?;
                self.incident = Some(out.incident.id.clone());
                self.alert = Some(req);
                Ok(format!("opened {}", out.incident.id))
            }
            InjectKind::DuplicateAlert => self.duplicate("duplicate alert", BTreeMap::new(), "drill").map(|d| {
                if d {
                    "deduplicated into the open incident".to_string()
                } else {
                    "NOT deduplicated: a second incident opened".to_string()
                }
            }),
            InjectKind::ComplaintBurst { count, channel } => self.complaint_burst(count, channel.as_deref()),
            InjectKind::NoAck { duration } => Ok(format!(
                "the owner stays silent until +{}",
                humantime::format_duration(self.injects[i].at + duration)
            )),
            InjectKind::StepFailure { step, reason, retry_after } => {
                let retry = now + retry_after.as_millis() as i64;
                self.retry_at.insert(step.clone(), retry);
                self.engine
                    .update(
                        &id,
                        &format!(
                            "step {step} failed: {reason} (drill inject); retrying in {}",
                            humantime::format_duration(retry_after)
                        ),
                        "drill",
                    )
                    .map(|_| {
                        format!(
                            "step {step} failed; retry not before +{}",
                            crate::incident::clock::fmt_span(retry - self.t0)
                        )
                    })
            }
            InjectKind::Ack { by } => {
                let inc = self.engine.incident(&id)?;
                // Whoever the last escalation paged answers it; otherwise the owner.
                let by = by
                    .or_else(|| self.last_escalated_to(&id))
                    .or_else(|| inc.roles.get("commander").cloned())
                    .or_else(|| holder(&self.pb.assign.commander, &inc, &config, now));
                match by {
                    Some(by) => self.engine.ack(&id, &by).map(|_| format!("acknowledged as {by}")),
                    None => Ok("nobody to acknowledge as: the commander rota resolves to no one".into()),
                }
            }
            InjectKind::Approve { step, by } => {
                let inc = self.engine.incident(&id)?;
                let who = match &step {
                    None => self.pb.activate.approval.clone(),
                    Some(s) => self.pb.step(s).and_then(|x| x.approval.clone()),
                };
                let by = by.or_else(|| who.as_ref().and_then(|w| holder(w, &inc, &config, now)));
                match by {
                    Some(by) => self.engine.approve(&id, step.as_deref(), &by).map(|_| format!("approved as {by}")),
                    None => {
                        Ok(format!("nobody in the roster can approve {}", step.as_deref().unwrap_or("the activation")))
                    }
                }
            }
            InjectKind::StepDone { step, by } => {
                let inc = self.engine.incident(&id)?;
                let owner = self.pb.step(&step).and_then(|s| s.owner.clone());
                let by = by
                    .or_else(|| owner.as_ref().and_then(|w| holder(w, &inc, &config, now)))
                    .or_else(|| inc.roles.get("commander").cloned())
                    .unwrap_or_else(|| "drill".into());
                self.engine
                    .step(&id, &step, StepAction::Done, Some("done (scripted responder)"), &by)
                    .map(|_| format!("done by {by}"))
            }
            InjectKind::Resolve { by } => {
                let inc = self.engine.incident(&id)?;
                let by = by.or_else(|| inc.roles.get("commander").cloned()).unwrap_or_else(|| "drill".into());
                self.engine.resolve(&id, &by, "drill").map(|_| format!("resolved by {by}"))
            }
            InjectKind::Outcome { cause, process, aftermath } => {
                let inc = self.engine.incident(&id)?;
                let by = inc.roles.get("commander").cloned().unwrap_or_else(|| "drill".into());
                self.engine
                    .record_outcome(&id, &cause, &process, &aftermath, &by)
                    .map(|_| format!("outcome report written by {by}"))
            }
        };
        let text = match res {
            Ok(t) => t,
            Err(EngineError::Internal(e)) => return Err(DrillError::Failed(e)),
            Err(e) => format!("FAILED: {e}"),
        };
        self.note(i, now, text);
        Ok(())
    }

    /// The first person the incident's last escalation paged, if it escalated.
    fn last_escalated_to(&self, id: &str) -> Option<String> {
        let events = self.engine.store().events(id, 0).ok()?;
        use crate::incident::events::{Event, JournalEvent};
        events.iter().rev().find_map(|e| match e.event() {
            Ok(Event::Escalated { people, .. }) => people.first().cloned(),
            _ => None,
        })
    }

    /// Sends the alert again (with extra fields); true if it was deduplicated.
    fn duplicate(&mut self, what: &str, fields: BTreeMap<String, String>, source: &str) -> Result<bool, EngineError> {
        let inc = self.engine.incident(self.incident.as_deref().unwrap_or_default())?;
        let Some(key) = inc.dedup_key.clone() else {
            return Err(EngineError::conflict(format!(
                "playbook {} renders no dedup key for this alert, so a {what} would open a second incident; skipped",
                self.pb.id
            )));
        };
        let mut req = self.alert.clone().expect("alert came first");
        req.fields.extend(fields);
        req.dedup_key = Some(key);
        req.source = source.to_string();
        // If it opened a second incident, the drill keeps following the first;
        // the controller log records the finding.
        Ok(self.engine.trigger(req)?.deduped)
    }
}
