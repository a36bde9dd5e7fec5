//! The daemon's drill API (`/v1/drills…`), the drill scheduler task, and
//! drills yielding to serious live incidents.
//!
//! Each run gets its own journal (`state_dir/drills/<run-id>.db`); the main
//! journal keeps the run index (see `drill::index`). Scheduled occurrences
//! are claimed in the index before they start, so restarts never run one twice.

use super::AppState;
use super::api_types::ApiError;
use super::executor::PluginExecutor;
use crate::config::Config;
use crate::drill::control::{Command, Control};
use crate::drill::index::{DrillIndex, RunRow};
use crate::drill::schedule::{self, Decision, Schedule};
use crate::drill::simulator::Simulator;
use crate::drill::{self, ClockMode, DrillOptions, Extensions, Journal};
use crate::incident::effects::{Executor, LogExecutor};
use crate::incident::events::Event;
use crate::incident::{Engine, Generation};
use crate::playbook::spec::Playbook;
use crate::playbook::types::Severity;
use crate::plugin::PluginHost;
use crate::store::{Lease, Store};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Drill state shared by the API and the scheduler of one daemon.
pub struct DrillService {
    /// Durable record of drill runs, schedules and suspensions.
    pub index: DrillIndex,
    state_dir: PathBuf,
    /// Runs in progress, by run id: their playbook and the queue their controller commands go through.
    running: Mutex<BTreeMap<String, (String, Arc<Control>)>>,
    /// Live incidents each running drill is held for, by run id (kept by [`yield_to_live`]).
    pub(super) held: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// When drills began yielding to live incidents (Unix ms), and the last such span that ended.
    pub yielding: Mutex<Yielding>,
    /// What drill-safe notices go through (the Wasm plugin executor can replace the log target here).
    pub inner: Mutex<Arc<dyn Executor>>,
    /// Scenario sources and score hooks from plugins.
    pub extensions: Mutex<Extensions>,
    /// Engines of drills in progress, by incident id prefix (`DRL-<run id>`).
    pub engines: Mutex<BTreeMap<String, Arc<Engine>>>,
    /// On a shared store: the store occurrences are claimed in, this node's
    /// name and its hold on the scheduler lock. Unset: this node alone schedules.
    shared: std::sync::OnceLock<(Arc<dyn Store>, String, Arc<Lease>)>,
    /// When this node's scheduler last decided the schedule (Unix ms).
    checked_at: Mutex<Option<i64>>,
}

impl DrillService {
    /// The drill service of a daemon, created once at start and kept in
    /// [`AppState`]: drill-safe notices go through the Wasm plugins (in drill
    /// mode HTTP is captured unless drill-allowed) and the simulator plugin
    /// plans and scores.
    pub(crate) fn for_daemon(
        state_dir: &std::path::Path,
        plugins: Arc<PluginHost>,
        engine: &Arc<Engine>,
    ) -> anyhow::Result<Self> {
        let s = DrillService::open(state_dir)?;
        *s.inner.lock().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(PluginExecutor::new(plugins.clone(), engine, None));
        {
            let sim = Arc::new(Simulator::new(plugins.clone()));
            let mut ext = s.extensions.lock().unwrap_or_else(|p| p.into_inner());
            ext.sources.push(sim.clone());
            ext.hooks.push(sim);
            ext.plugins = Some(plugins);
        }
        s.share(engine.store().clone(), engine.generation().config.listen.to_string())?;
        Ok(s)
    }

    /// The engine of the running drill an incident id belongs to (`DRL-<run id>-N`).
    pub fn engine_for_incident(&self, id: &str) -> Option<Arc<Engine>> {
        let prefix = id.rsplit_once('-').map(|(p, _)| p)?;
        self.engines.lock().unwrap_or_else(|p| p.into_inner()).get(prefix).cloned()
    }

    /// Opens the drill index in `state_dir` (drill journals go to `state_dir/drills/`).
    pub fn open(state_dir: &std::path::Path) -> anyhow::Result<Self> {
        Ok(DrillService {
            index: DrillIndex::open(state_dir)?,
            state_dir: state_dir.to_path_buf(),
            running: Mutex::new(BTreeMap::new()),
            held: Mutex::new(BTreeMap::new()),
            yielding: Mutex::new(Yielding::default()),
            inner: Mutex::new(Arc::new(LogExecutor)),
            extensions: Mutex::new(Extensions::default()),
            engines: Mutex::new(BTreeMap::new()),
            shared: std::sync::OnceLock::new(),
            checked_at: Mutex::new(None),
        })
    }

    /// Schedules only while holding the cluster's scheduler lock, and claims
    /// every occurrence in `store` before deciding it, so one node schedules
    /// and the lock's move to another node neither repeats nor loses one.
    pub(crate) fn share(&self, store: Arc<dyn Store>, node: String) -> anyhow::Result<()> {
        let Some(c) = store.cluster() else { return Ok(()) };
        let lease = c.scheduler_lease()?;
        let _ = self.shared.set((store, node, lease));
        Ok(())
    }

    /// Whether this node runs the drill scheduler now.
    pub(crate) fn is_scheduler(&self) -> bool {
        self.shared.get().is_none_or(|(_, _, lease)| lease.held())
    }

    /// When this node's scheduler last decided the schedule (Unix ms).
    pub(crate) fn checked_at(&self) -> Option<i64> {
        *self.checked_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims occurrence `run_id` for the whole cluster; always true on a store only this node uses.
    fn claim_slot(&self, run_id: &str, now: i64) -> anyhow::Result<bool> {
        match self.shared.get().and_then(|(store, node, _)| store.cluster().map(|c| (c, node))) {
            Some((c, node)) => c.claim_drill_slot(run_id, node, now),
            None => Ok(true),
        }
    }

    /// Ids of the runs in progress in this process.
    pub fn running_ids(&self) -> Vec<String> {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// The command queue of run `id`, if it runs in this process.
    pub fn control(&self, id: &str) -> Option<Arc<Control>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).get(id).map(|(_, c)| c.clone())
    }

    /// Every run in progress in this process with its command queue.
    pub(super) fn controls(&self) -> Vec<(String, Arc<Control>)> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, (_, c))| (k.clone(), c.clone()))
            .collect()
    }
}

/// Whether drills yield to live incidents now, and the last span they did.
/// Why: a scheduled occurrence due while drills yielded starts after the
/// span instead of being recorded as missed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Yielding {
    /// Unix ms drills began yielding; `None` while no live incident holds them.
    pub since: Option<i64>,
    /// The last span (Unix ms, start and end) drills yielded.
    pub last: Option<(i64, i64)>,
}

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("drill API: {e}");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))
}

/// The drill routes, merged into the API router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/drills", get(list))
        .route("/v1/drills/runs", post(start))
        .route("/v1/drills/runs/{id}", get(show))
        .route("/v1/drills/runs/{id}/report", get(report))
        .route("/v1/drills/schedules/{playbook}/{action}", post(switch))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn when(pb: &Playbook, at: Option<DateTime<Utc>>) -> Value {
    let Some(at) = at else { return Value::Null };
    let tz: Option<chrono_tz::Tz> = pb.drill.as_ref().and_then(|d| d.timezone.as_ref()).and_then(|t| t.parse().ok());
    let local = match tz {
        Some(tz) => at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        None => at.format("%Y-%m-%d %H:%M UTC").to_string(),
    };
    json!({"utc": at.to_rfc3339(), "local": local})
}

fn schedule_of(pb: &Playbook) -> Option<Schedule> {
    let d = pb.drill.as_ref()?;
    Schedule::parse(d.schedule.as_ref()?, d.timezone.as_deref()).ok()
}

async fn list(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let svc = st.drills.clone();
    let g = st.engine.generation();
    let out = tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
        let now = Utc::now();
        let runs = svc.index.list(200)?;
        let mut pbs = Vec::new();
        for pb in g.playbooks.values() {
            let last = svc.index.last_run(&pb.id)?;
            let suspended = svc.index.suspended(&pb.id)?;
            pbs.push(json!({
                "id": pb.id,
                "path": pb.path,
                "hash": pb.hash,
                "schedule": pb.drill.as_ref().and_then(|d| d.schedule.clone()),
                "timezone": pb.drill.as_ref().and_then(|d| d.timezone.clone()),
                "clock": pb.drill.as_ref().map(|d| ClockMode::from(d.clock).to_string()),
                "suspended": suspended,
                "next": when(pb, schedule_of(pb).and_then(|s| s.next_after(now))),
                "last_run": last.as_ref().map(|r| json!({"id": r.id, "score": r.score, "verdict": r.verdict, "hash": r.playbook_hash, "finished_at": r.finished_at})),
                "never_drilled": last.is_none(),
                "changed_since_last_drill": last.as_ref().is_some_and(|r| r.playbook_hash != pb.hash),
                "recent_scores": svc.index.trend(&pb.id, None, 5)?,
            }));
        }
        Ok(json!({"runs": runs, "playbooks": pbs}))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(Json(out))
}

#[derive(Deserialize)]
struct StartBody {
    playbook: String,
    clock: Option<String>,
    seed: Option<u64>,
}

async fn start(
    State(st): State<Arc<AppState>>,
    body: Result<Json<StartBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) =
        body.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed request: {}", r.body_text())))?;
    let svc = st.drills.clone();
    let g = st.engine.generation();
    let Some(pb) = g.playbooks.get(&b.playbook).cloned() else {
        let near = crate::diag::nearby(&b.playbook, g.playbooks.keys().map(String::as_str));
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no playbook `{}`; did you mean {}?", b.playbook, near.join(", ")),
        ));
    };
    let clock = match &b.clock {
        Some(c) => c.parse::<ClockMode>().map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?,
        None => pb.drill.as_ref().map(|d| d.clock.into()).unwrap_or(ClockMode::Virtual),
    };
    let now = Utc::now().timestamp_millis();
    let seed = b.seed.unwrap_or(1);
    let row = new_row(&pb, format!("{}.m{now}", pb.id), "manual", None, clock, seed, now);
    let res = tokio::task::spawn_blocking(move || launch(svc, g, row, clock == ClockMode::Virtual))
        .await
        .map_err(internal)?;
    match res {
        Err(Launch::Overlap(other)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a drill of {} is still running ({other}); wait for it to end, then run again", pb.id),
        )),
        Err(Launch::Failed(e)) => Err(internal(e)),
        Ok(row) if row.status == "running" => Ok((StatusCode::ACCEPTED, Json(row_json(&row))).into_response()),
        Ok(row) => Ok((StatusCode::CREATED, Json(row_json(&row))).into_response()),
    }
}

fn row_json(r: &RunRow) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

fn new_row(
    pb: &Playbook,
    id: String,
    origin: &str,
    scheduled_for: Option<i64>,
    clock: ClockMode,
    seed: u64,
    now: i64,
) -> RunRow {
    RunRow {
        id,
        playbook_id: pb.id.clone(),
        playbook_path: pb.path.display().to_string(),
        playbook_hash: pb.hash.clone(),
        origin: origin.into(),
        scheduled_for,
        status: "running".into(),
        reason: None,
        clock: clock.to_string(),
        seed,
        created_at: now,
        started_at: Some(now),
        finished_at: None,
        score: None,
        verdict: None,
        report: None,
    }
}

enum Launch {
    Overlap(String),
    Failed(anyhow::Error),
}

/// Claims and runs a drill: inline (`wait`, virtual clock) or on its own thread.
fn launch(svc: Arc<DrillService>, g: Arc<Generation>, row: RunRow, wait: bool) -> Result<RunRow, Launch> {
    let control = Control::new();
    {
        let mut running = svc.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = running.iter().find(|(_, (pb, _))| pb == &row.playbook_id).map(|(k, _)| k.clone()) {
            return Err(Launch::Overlap(other));
        }
        if !svc.index.claim(&row).map_err(Launch::Failed)? {
            return Err(Launch::Failed(anyhow::anyhow!("drill run {} was already claimed", row.id)));
        }
        running.insert(row.id.clone(), (row.playbook_id.clone(), control.clone()));
    }
    let clock: ClockMode = row.clock.parse().unwrap_or(ClockMode::Virtual);
    let opts = DrillOptions {
        run_id: row.id.clone(),
        clock,
        seed: row.seed,
        scheduled_for: row.scheduled_for,
        journal: Journal::File(crate::config::state_dir::StateDir::new(&svc.state_dir).drill_journal(&row.id)),
        responders: false,
        cancel: None,
        control: Some(control),
        // Incidents of daemon drills are `DRL-<run id>-N`, so people can act on
        // them through the normal CLI (`crisis ack DRL-...`) while the drill runs.
        incident_prefix: Some(format!("DRL-{}", row.id)),
        engine_hook: Some({
            let svc = svc.clone();
            let prefix = format!("DRL-{}", row.id);
            crate::drill::run::EngineHook(Arc::new(move |engine| {
                let mut engines = svc.engines.lock().unwrap_or_else(|p| p.into_inner());
                match engine {
                    Some(e) => {
                        engines.insert(prefix.clone(), e);
                    }
                    None => {
                        engines.remove(&prefix);
                    }
                }
            }))
        }),
    };
    let svc2 = svc.clone();
    let id = row.id.clone();
    let pb = row.playbook_id.clone();
    let work = move || {
        let inner = svc2.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let ext = svc2.extensions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let res = drill::run(&g, &pb, opts, inner, &ext);
        let now = Utc::now().timestamp_millis();
        let rec = match &res {
            Ok(out) => svc2.index.finish(&id, &out.report.status, None, now, Some(&out.report)),
            Err(e) => {
                tracing::error!("drill {id} of {pb} failed: {e}");
                svc2.index.finish(&id, "failed", Some(&e.to_string()), now, None)
            }
        };
        if let Err(e) = rec {
            tracing::error!("cannot record the end of drill {id}: {e:#}");
        }
        svc2.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        if let Ok(out) = &res {
            tracing::info!(
                "drill {id} of {pb} ended {}: score {} ({})",
                out.report.status,
                out.report.score.total,
                out.report.score.verdict
            );
        }
    };
    if wait {
        work();
    } else {
        std::thread::Builder::new()
            .name(format!("drill-{}", row.id))
            .spawn(work)
            .map_err(|e| Launch::Failed(e.into()))?;
    }
    svc.index
        .get(&row.id)
        .map_err(Launch::Failed)?
        .ok_or_else(|| Launch::Failed(anyhow::anyhow!("drill run {} vanished from the index", row.id)))
}

pub(super) fn find_run(svc: &DrillService, id: &str) -> Result<RunRow, ApiError> {
    match svc.index.get(id).map_err(internal)? {
        Some(r) => Ok(r),
        None => {
            let ids = svc.index.ids().unwrap_or_default();
            let near = crate::diag::nearby(id, ids.iter().map(String::as_str));
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no drill run `{id}`{}",
                    if near.is_empty() {
                        "; see crisis drill list".to_string()
                    } else {
                        format!("; did you mean {}?", near.join(", "))
                    }
                ),
            ))
        }
    }
}

async fn show(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let svc = st.drills.clone();
    Ok(Json(row_json(&find_run(&svc, &id)?)))
}

#[derive(Deserialize)]
struct ReportQuery {
    format: Option<String>,
}

async fn report(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let svc = st.drills.clone();
    let row = find_run(&svc, &id)?;
    let Some(rep) = row.report.clone() else {
        let why = match row.status.as_str() {
            "running" => "it is still running".to_string(),
            s => format!("it ended `{s}`{}", row.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()),
        };
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("drill run {id} has no after-action report: {why}")));
    };
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(rep).into_response()),
        Some("md") | Some("markdown") => {
            let r: drill::AfterActionReport = serde_json::from_value(rep).map_err(internal)?;
            Ok(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], r.markdown()).into_response())
        }
        Some("html") => {
            let r: drill::AfterActionReport = serde_json::from_value(rep).map_err(internal)?;
            let trend = svc.index.trend(&row.playbook_id, Some(&row.id), TREND).map_err(internal)?;
            let html = drill::report_html::render(&r, &trend).map_err(internal)?;
            Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
        }
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown report format `{other}`: use md, json or html"),
        )),
    }
}

/// How many past scores the HTML report's trend shows.
const TREND: usize = 10;

async fn switch(
    State(st): State<Arc<AppState>>,
    Path((playbook, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let svc = st.drills.clone();
    let g = st.engine.generation();
    let Some(pb) = g.playbooks.get(&playbook).cloned() else {
        let near = crate::diag::nearby(&playbook, g.playbooks.keys().map(String::as_str));
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no playbook `{playbook}`; did you mean {}?", near.join(", ")),
        ));
    };
    let suspend = match action.as_str() {
        "suspend" => true,
        "resume" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown schedule action `{other}`: use suspend or resume"),
            ));
        }
    };
    svc.index.set_suspended(&playbook, suspend).map_err(internal)?;
    if !suspend {
        // Occurrences while suspended stay skipped; resuming starts from now.
        svc.index.set_last_checked(&playbook, Utc::now().timestamp_millis()).map_err(internal)?;
    }
    let next = schedule_of(&pb).and_then(|s| s.next_after(Utc::now()));
    Ok(Json(json!({"playbook": playbook, "suspended": suspend, "next": when(&pb, next)})))
}

/// One scheduler pass at `now`: decides every playbook's occurrences since its
/// last check, records skips, starts runs, and halts running drills in a blackout.
pub fn tick(svc: &Arc<DrillService>, g: &Arc<Generation>, now: DateTime<Utc>) -> anyhow::Result<Vec<RunRow>> {
    let cfg = &g.config;
    let mut started = Vec::new();
    if schedule::in_blackout(now, &cfg.drills.blackout).is_some() {
        for (id, control) in svc.controls() {
            tracing::warn!("halting drill {id}: a blackout window began");
            control.post(Command::Cancel { by: "crisis".into(), reason: Some("a blackout window began".into()) });
        }
    }
    let yielding = *svc.yielding.lock().unwrap_or_else(|p| p.into_inner());
    if yielding.since.is_some() {
        // Occurrences due now are decided once no live incident holds drills, and start then.
        return Ok(started);
    }
    for pb in g.playbooks.values() {
        let Some(sched) = schedule_of(pb) else { continue };
        let mut grace = cfg.drills.grace;
        // The first check looks back one grace period for a run missed just
        // before the daemon first started, without recording older history.
        let checked = svc.index.last_checked(&pb.id)?;
        let last = match checked {
            Some(t) => DateTime::from_timestamp_millis(t).unwrap_or(now),
            None => now - chrono::Duration::from_std(grace).unwrap_or_default(),
        };
        // Occurrences that fell due while drills yielded to a live incident are late, not missed.
        if let Some((from, to)) = yielding.last
            && to > ms(last)
        {
            grace += std::time::Duration::from_millis((to - from.max(ms(last))).max(0) as u64);
        }
        let running = svc.index.running(&pb.id)?;
        let suspended = svc.index.suspended(&pb.id)?;
        let clock: ClockMode = pb.drill.as_ref().map(|d| d.clock.into()).unwrap_or(ClockMode::Virtual);
        let mut decisions = schedule::due_runs(&sched, last, now, grace, &cfg.drills.blackout, suspended, running);
        if checked.is_none() {
            decisions = decisions.pop().into_iter().collect();
        }
        for d in decisions {
            let at = d.at();
            let id = format!("{}.{}", pb.id, at.format("%Y%m%dT%H%MZ"));
            // The occurrence's time seeds its scenario: every week a different, reproducible drill.
            let seed = (ms(at) / 60_000) as u64;
            let mut row = new_row(pb, id, "schedule", Some(ms(at)), clock, seed, ms(now));
            match d {
                Decision::Skip { skip, .. } => {
                    row.status = skip.status().into();
                    row.reason = Some(skip.describe());
                    row.started_at = None;
                    row.finished_at = Some(ms(now));
                    if svc.index.get(&row.id)?.is_none() && !svc.claim_slot(&row.id, ms(now))? {
                        continue; // another node decided this occurrence
                    }
                    if svc.index.claim(&row)? {
                        tracing::info!("scheduled drill {} {}", row.id, skip.describe());
                    }
                }
                Decision::Run { late_ms, .. } => {
                    if late_ms > 60_000 {
                        tracing::info!(
                            "scheduled drill {} starts {} late",
                            row.id,
                            crate::incident::clock::fmt_span(late_ms)
                        );
                    }
                    if svc.index.get(&row.id)?.is_some() || !svc.claim_slot(&row.id, ms(now))? {
                        continue; // claimed before a restart, or by another node: never twice
                    }
                    match launch(svc.clone(), g.clone(), row.clone(), false) {
                        Ok(r) => started.push(r),
                        Err(Launch::Overlap(other)) => {
                            row.status = "refused-overlap".into();
                            row.reason = Some(format!("refused: drill {other} of this playbook is still running"));
                            row.started_at = None;
                            row.finished_at = Some(ms(now));
                            svc.index.claim(&row)?;
                        }
                        Err(Launch::Failed(e)) => {
                            tracing::error!("cannot start scheduled drill {}: {e:#}", row.id)
                        }
                    }
                }
            }
        }
        svc.index.set_last_checked(&pb.id, ms(now))?;
    }
    *svc.checked_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(ms(now));
    Ok(started)
}

/// The scheduler task: checks every 20 seconds until shutdown, and at once
/// when this node takes over the scheduler lock of a cluster.
pub async fn scheduler(state: Arc<AppState>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let svc = state.drills.clone();
    match svc.index.interrupt_running(Utc::now().timestamp_millis()) {
        Ok(n) if n > 0 => tracing::warn!("{n} drill run(s) were interrupted by the last shutdown"),
        Ok(_) => {}
        Err(e) => tracing::error!("drill index: {e:#}"),
    }
    let mut pass: u64 = 0;
    let mut held = false;
    loop {
        let (s, g) = (svc.clone(), state.engine.generation());
        let live = state.engine.clone();
        if state.ready() {
            let now_held = svc.is_scheduler();
            if now_held && !held {
                pass = 0;
            }
            held = now_held;
            // Every second: drills yield to serious live incidents; every 20 seconds: the schedule.
            let due = held && pass.is_multiple_of(20);
            match tokio::task::spawn_blocking(move || {
                yield_to_live(&s, &live, &g.config, Utc::now().timestamp_millis())?;
                if due { tick(&s, &g, Utc::now()).map(|_| ()) } else { Ok(()) }
            })
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("drill scheduler pass failed: {e:#}"),
                Err(e) => tracing::error!("drill scheduler pass panicked: {e}"),
            }
            pass += 1;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
        }
    }
}

/// How long the yield pass waits for a running drill to take or let go of a hold.
const ANSWER_LIVE: std::time::Duration = std::time::Duration::from_secs(10);

/// One pass of "drills yield to live incidents": every running drill is held
/// for each open live incident whose severity is in `[drills] pause_during`
/// and let go once it is resolved; each change is journaled on the live
/// incident (naming the drill) and, by the runner, on the drill (naming the
/// live incident). Also records when drills yield, so the scheduler waits.
pub(super) fn yield_to_live(svc: &DrillService, live: &Engine, cfg: &Config, now: i64) -> anyhow::Result<()> {
    let sevs = &cfg.drills.pause_during;
    let open: BTreeSet<String> = if sevs.is_empty() {
        BTreeSet::new()
    } else {
        live.store()
            .open_incidents(Some("live"))?
            .into_iter()
            .filter(|o| o.severity.parse::<Severity>().is_ok_and(|s| sevs.contains(&s)))
            .map(|o| o.id)
            .collect()
    };
    {
        let mut y = svc.yielding.lock().unwrap_or_else(|p| p.into_inner());
        match (y.since, open.is_empty()) {
            (None, false) => y.since = Some(now),
            (Some(since), true) => {
                y.since = None;
                y.last = Some((since, now));
            }
            _ => {}
        }
    }
    let running = svc.controls();
    let mut held = svc.held.lock().unwrap_or_else(|p| p.into_inner());
    held.retain(|run, _| running.iter().any(|(r, _)| r == run));
    for (run, control) in running {
        let mine = held.entry(run.clone()).or_default();
        for inc in open.difference(&mine.clone()) {
            match control.request(Command::HoldFor { live: inc.clone() }, ANSWER_LIVE) {
                Ok(reply) => {
                    mine.insert(inc.clone());
                    tracing::warn!("drill {run} paused while live incident {inc} is open");
                    live.record_steering(
                        inc,
                        Event::DrillHeld { run_id: run.clone(), drill_incident: reply.drill_incident },
                    )?;
                }
                Err(e) => tracing::warn!("drill {run} could not be paused for live incident {inc}: {e}"),
            }
        }
        for inc in mine.difference(&open).cloned().collect::<Vec<_>>() {
            match control.request(Command::Release { live: inc.clone() }, ANSWER_LIVE) {
                Ok(reply) => {
                    mine.remove(&inc);
                    tracing::info!("drill {run} no longer held by live incident {inc}: {}", reply.result);
                    live.record_steering(
                        &inc,
                        Event::DrillReleased { run_id: run.clone(), drill_incident: reply.drill_incident },
                    )?;
                }
                Err(e) => tracing::warn!("drill {run} could not be let go by live incident {inc}: {e}"),
            }
        }
    }
    Ok(())
}
