//! The HTTP API: JSON under `/v1/` behind the bearer-token gate (which
//! checks the token's role), plus `/healthz`,
//! `/readyz` and `/metrics` for loopback peers (and, with `metrics_token`,
//! for other peers that send it). Bodies and replies are
//! the types of `api_types`, which the CLI shares.

use super::AppState;
use super::api_types::{
    ActorBody, ApiError, ApproveBody, AssignBody, BreakerStatus, EventsQuery, IncidentList, IncidentSummary, ListQuery,
    OutboxStatus, OutcomeBody, PlaybookFile, PlaybookList, PlaybookSummary, ReloadAttempt, ReportFormat, ReportQuery,
    RetryReply, StatusReply, StepBody, Timeline, TimelineEvent, TriggerReply, TriggerRequest, UpdateBody, VerifyReport,
};
use super::engine_call::with_engine;
use super::tokens::Caller;
use crate::incident::clock::fmt_ms;
use crate::incident::state::Incident;
use crate::incident::{Engine, EngineError};
use crate::plugin::{PluginRef, UnquarantineError};
use crate::report;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use std::sync::Arc;

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let msg = e.to_string();
        match e {
            EngineError::NotFound { nearby, .. } => ApiError::new(StatusCode::NOT_FOUND, msg).with_nearby(nearby),
            EngineError::Invalid { ref hint, .. } => {
                let hint = hint.as_ref().map(ToString::to_string);
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg).with_hint(hint)
            }
            EngineError::Conflict { ref hint, .. } => {
                let hint = hint.as_ref().map(ToString::to_string);
                ApiError::new(StatusCode::CONFLICT, msg).with_hint(hint)
            }
            EngineError::Forbidden { .. } => ApiError::new(StatusCode::FORBIDDEN, msg),
            EngineError::Internal(err) => {
                tracing::error!("internal error: {err:#}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, format!("malformed request: {}", r.body_text()))
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The engine an incident lives in: a running drill's own engine for its
/// `DRL-<run>-N` incidents, else the live engine.
pub(super) fn engine_for(st: &AppState, id: &str) -> Arc<Engine> {
    if id.starts_with("DRL-")
        && let Some(e) = st.drills.engine_for_incident(id)
    {
        return e;
    }
    st.engine.clone()
}

/// Runs an engine call about incident `id` on the engine that holds it.
async fn with_incident<T, F>(st: &AppState, id: &str, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    super::engine_call::run_on(engine_for(st, id), f).await
}

/// Builds the router: every `/v1` route (drills included) sits behind the token layer.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/incidents", post(trigger).get(list))
        .route("/v1/incidents/{id}", get(show))
        .route("/v1/incidents/{id}/ack", post(ack))
        .route("/v1/incidents/{id}/assign", post(assign))
        .route("/v1/incidents/{id}/approve", post(approve))
        .route("/v1/incidents/{id}/steps/{step}", post(step))
        .route("/v1/incidents/{id}/updates", post(update))
        .route("/v1/incidents/{id}/outcome", post(outcome))
        .route("/v1/incidents/{id}/resolve", post(resolve))
        .route("/v1/incidents/{id}/events", get(events))
        .route("/v1/incidents/{id}/report", get(report_handler))
        .route("/v1/playbooks", get(playbooks))
        .route("/v1/status", get(status))
        .route("/v1/dead-letters", get(dead_letters))
        .route("/v1/intents/{id}/retry", post(retry))
        .route("/v1/verify", get(verify))
        .route("/v1/reload", post(reload))
        .route("/v1/plugins/{name}/unquarantine", post(unquarantine))
        .route("/v1/intake/alertmanager", post(super::intake::alertmanager))
        .route("/v1/intake/events", post(super::intake::events))
        .merge(super::complaints::routes())
        .merge(super::drills::routes())
        .merge(super::drill_control::routes())
        .merge(super::token_api::routes())
        .layer(axum::middleware::from_fn_with_state(state.tokens.clone(), super::auth::require_token));
    // Loopback peers only, unless `metrics_token` lets others in.
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            super::auth::ProbeAccess::new(state.metrics_token.as_deref()),
            super::auth::probe_gate,
        ));
    Router::new()
        .merge(v1)
        .merge(super::pagerduty::routes())
        .merge(probes)
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::intake::body_limit))
        .layer(axum::extract::DefaultBodyLimit::disable())
        // The console answers its own body limit as a page, not JSON.
        .merge(super::console::routes(state.clone()))
        .with_state(state)
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no valid playbook generation is loaded; see `crisis status`\n")
            .into_response()
    }
}

async fn trigger(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<TriggerRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut req) = body?;
    // A person's token triggers as that person; only admins name someone else.
    if let Some(person) = caller.acting(Some(req.by.clone()))?.person {
        req.by = person;
    }
    if req.source.is_empty() {
        req.source = "api".into();
    }
    let out = with_engine(&st, move |e| e.trigger(req)).await?;
    let code = if out.deduped { StatusCode::OK } else { StatusCode::CREATED };
    Ok((code, Json(TriggerReply { deduped: out.deduped, incident: out.incident })).into_response())
}

/// One page of the list, newest first; `next` continues it. An unknown
/// `after` is a 404 (it may have been mistyped), a bad `limit` a 400.
async fn list(State(st): State<Arc<AppState>>, q: Result<Query<ListQuery>, QueryRejection>) -> ApiResult<IncidentList> {
    let Query(q) =
        q.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, format!("bad list query: {}", r.body_text())))?;
    let after = q.after.clone();
    let query = crate::store::IncidentQuery {
        open_only: q.open,
        mode: q.mode,
        after: q.after,
        limit: q.limit.unwrap_or_default().get(),
    };
    let page = with_engine(&st, move |e| Ok(e.store().incidents_page(&query)?)).await?;
    let Some(page) = page else {
        let msg = format!(
            "no incident `{}` to list after: pass the `next` id of the previous page, or leave `after` out for the first page",
            after.unwrap_or_default()
        );
        return Err(ApiError::new(StatusCode::NOT_FOUND, msg));
    };
    let incidents = page
        .rows
        .into_iter()
        .map(|r| IncidentSummary {
            id: r.id,
            playbook: r.playbook_id,
            mode: r.mode,
            status: r.status,
            phase: r.phase,
            severity: r.severity,
            title: r.title,
            opened_at: r.opened_at,
            dedup_key: r.dedup_key,
        })
        .collect();
    Ok(Json(IncidentList { incidents, next: page.next }))
}

async fn show(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult<Incident> {
    let inc = with_incident(&st, &id.clone(), move |e| e.incident(&id)).await?;
    Ok(Json(inc))
}

fn actor(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "cli".to_string())
}

/// Runs `f` on incident `id` with the acting person (`None` only for the
/// bootstrap token without `as`). An admin acting for someone else is
/// journaled on the incident first, as doing `action`. The console's
/// buttons go through here too.
pub(super) async fn acting_on<T, F>(
    st: &AppState,
    id: &str,
    caller: &Caller,
    requested: Option<String>,
    action: &'static str,
    f: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Engine, Option<String>) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    let acting = caller.acting(requested)?;
    let iid = id.to_string();
    with_incident(st, id, move |e| {
        if let Some(d) = acting.delegation() {
            e.record_acting_for(&iid, d.by, d.token, d.person, action)?;
        }
        f(e, acting.person)
    })
    .await
}

/// Acknowledges incident `id` as the acting person. The bootstrap token,
/// which is no person, acks as the incident's commander, else as `cli`; the
/// API and the console's button both ack through here.
pub(super) fn ack_as(e: &Engine, id: &str, by: Option<String>) -> Result<Incident, EngineError> {
    let by = match by {
        Some(by) => by,
        None => e.incident(id)?.roles.get("commander").cloned().unwrap_or_else(|| "cli".into()),
    };
    e.ack(id, &by)
}

async fn ack(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ActorBody>, JsonRejection>,
) -> ApiResult<Incident> {
    let Json(b) = body?;
    let inc = acting_on(&st, &id.clone(), &caller, b.by, "acknowledge", move |e, by| ack_as(e, &id, by)).await?;
    Ok(Json(inc))
}

async fn assign(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<AssignBody>, JsonRejection>,
) -> ApiResult<Incident> {
    let Json(b) = body?;
    let inc = acting_on(&st, &id.clone(), &caller, b.by, "assign a role", move |e, by| {
        e.assign(&id, &b.role, &b.to, &actor(by))
    })
    .await?;
    Ok(Json(inc))
}

async fn approve(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ApproveBody>, JsonRejection>,
) -> ApiResult<Incident> {
    let Json(b) = body?;
    let inc = acting_on(&st, &id.clone(), &caller, b.by, "approve", move |e, by| {
        let by = by.ok_or_else(|| {
            EngineError::invalid("say who approves: the bootstrap API token is no person; pass --as PERSON")
        })?;
        e.approve(&id, b.step.as_deref(), &by)
    })
    .await?;
    Ok(Json(inc))
}

async fn step(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((id, step)): Path<(String, String)>,
    body: Result<Json<StepBody>, JsonRejection>,
) -> ApiResult<Incident> {
    let Json(b) = body?;
    let inc = acting_on(&st, &id.clone(), &caller, b.by, "work a step", move |e, by| {
        e.step(&id, &step, b.action, b.note.as_deref(), &actor(by))
    })
    .await?;
    Ok(Json(inc))
}

async fn update(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> ApiResult<Incident> {
    let Json(b) = body?;
    let inc =
        acting_on(&st, &id.clone(), &caller, b.by, "post an update", move |e, by| e.update(&id, &b.note, &actor(by)))
            .await?;
    Ok(Json(inc))
}

async fn outcome(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<OutcomeBody>, JsonRejection>,
) -> ApiResult<Incident> {
    let Json(b) = body?;
    let inc = acting_on(&st, &id.clone(), &caller, b.by, "record the outcome", move |e, by| {
        e.record_outcome(&id, &b.cause, &b.process, &b.aftermath, &actor(by))
    })
    .await?;
    Ok(Json(inc))
}

async fn resolve(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ActorBody>, JsonRejection>,
) -> ApiResult<Incident> {
    let Json(b) = body?;
    let inc =
        acting_on(&st, &id.clone(), &caller, b.by, "resolve", move |e, by| e.resolve(&id, &actor(by), "cli")).await?;
    Ok(Json(inc))
}

async fn events(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Timeline> {
    let (inc, evs) = with_incident(&st, &id.clone(), move |e| {
        let inc = e.incident(&id)?;
        Ok((inc, e.store().events(&id, q.after)?))
    })
    .await?;
    let events = evs
        .into_iter()
        .map(|ev| TimelineEvent { text: report::describe(&ev), seq: ev.seq, at: ev.at, kind: ev.kind, data: ev.data })
        .collect();
    Ok(Json(Timeline { status: inc.status, phase: inc.phase, events }))
}

async fn report_handler(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let format = ReportFormat::from_query(q.format.as_deref());
    let rep = with_incident(&st, &id.clone(), move |e| {
        let inc = e.incident(&id)?;
        let evs = e.store().events(&id, 0)?;
        let summary = e.pinned_playbook(&inc.playbook_hash).map(|p| p.summary.clone()).unwrap_or_default();
        let complaints = e.attached_complaints(&inc)?;
        Ok(report::outcome_report(&inc, &evs, &summary, &complaints))
    })
    .await?;
    Ok(match format? {
        ReportFormat::Json => Json(rep).into_response(),
        ReportFormat::Markdown => {
            ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], rep.markdown()).into_response()
        }
    })
}

async fn playbooks(State(st): State<Arc<AppState>>) -> ApiResult<PlaybookList> {
    let g = st.engine.generation();
    let playbooks = g
        .playbooks
        .values()
        .map(|p| PlaybookSummary {
            id: p.id.clone(),
            name: p.name.clone(),
            severity: p.severity,
            category: p.category,
            hash: p.hash.clone(),
            path: p.path.clone(),
        })
        .collect();
    Ok(Json(PlaybookList { generation: g.number, playbooks }))
}

/// What `crisis status` shows (reads the disk to compare hashes: call off the async runtime).
fn status_reply(st: &AppState) -> Result<StatusReply, ApiError> {
    let open = st.engine.store().open_incidents(None).map(|r| r.len()).unwrap_or(0);
    let g = st.engine.generation();
    let reload = serde_json::from_value(st.reload.status()).map_err(ApiError::internal)?;
    Ok(StatusReply {
        ready: st.ready(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: fmt_ms(st.started_at),
        config: st
            .config_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<embedded defaults>".into()),
        state_dir: g.config.state_dir.clone(),
        listen: g.config.listen.to_string(),
        playbooks: g
            .playbooks
            .values()
            .map(|p| PlaybookFile { id: p.id.clone(), path: p.path.clone(), hash: p.hash.clone() })
            .collect(),
        reload,
        plugins: st.plugins.list(),
        open_incidents: open,
        outbox: outbox_status(st)?,
        nodes: st.node.membership(&st.engine, st.engine.now()).map_err(ApiError::internal)?,
        scheduler: st.drills.is_scheduler(),
        scheduler_checked_at: st.drills.checked_at().map(fmt_ms),
    })
}

/// Breakers, depth, oldest wait and throughput per target, and dead letters.
fn outbox_status(st: &AppState) -> Result<OutboxStatus, ApiError> {
    use super::breaker::BreakerState;
    let store = st.engine.store();
    let dead_letters = store.dead_letters().map_err(ApiError::internal)?;
    let lanes = store.outbox_lanes().map_err(ApiError::internal)?;
    let now = st.engine.now();
    let breakers: Vec<BreakerStatus> = st
        .dispatch
        .lanes()
        .into_iter()
        .map(|l| {
            let (state, failures, until) = match l.breaker {
                BreakerState::Closed { failures } => ("closed", failures, None),
                BreakerState::Open { until } => ("open", 0, Some(fmt_ms(until))),
                BreakerState::HalfOpen => ("half-open", 0, None),
            };
            BreakerStatus { lane: l.lane, target: l.target, state: state.into(), failures, until }
        })
        .collect();
    let open_breakers = st.dispatch.open_by_target().into_iter().filter(|(_, open)| *open).map(|(t, _)| t).collect();
    Ok(OutboxStatus {
        breakers,
        open_breakers,
        depth: lanes.iter().map(|l| (l.target.clone(), l.depth)).collect(),
        oldest_age_seconds: lanes.iter().map(|l| (l.target.clone(), super::lag::oldest_age_secs(l, now))).collect(),
        executed_last_minute: st.dispatch.throughput.last_minute(now),
        dead_letter_count: dead_letters.len(),
        dead_letters,
        digests: st.engine.digest_counters().map_err(ApiError::internal)?,
    })
}

async fn dead_letters(State(st): State<Arc<AppState>>) -> ApiResult<Vec<crate::store::DeadLetter>> {
    let v = with_engine(&st, |e| Ok(e.store().dead_letters()?)).await?;
    Ok(Json(v))
}

/// `crisis retry INTENT-ID`: puts a dead-lettered intent back in the outbox.
async fn retry(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ActorBody>, JsonRejection>,
) -> ApiResult<RetryReply> {
    let Json(b) = body?;
    let acting = caller.acting(b.by)?;
    let inc = with_engine(&st, move |e| {
        // Journaled on the intent's incident, before the re-drive.
        if let Some(d) = acting.delegation()
            && let Some(intent) = e.store().intent(&id)?
        {
            e.record_acting_for(&intent.incident_id, d.by, d.token, d.person, "re-drive a message")?;
        }
        e.retry_intent(&id, &actor(acting.person)).map(|inc| (id, inc))
    })
    .await?;
    Ok(Json(RetryReply { invocation_id: inc.0, incident: inc.1.id }))
}

async fn status(State(st): State<Arc<AppState>>) -> ApiResult<StatusReply> {
    let s = st.clone();
    let v = tokio::task::spawn_blocking(move || status_reply(&s)).await.map_err(ApiError::internal)??;
    Ok(Json(v))
}

async fn reload(State(st): State<Arc<AppState>>) -> ApiResult<ReloadAttempt> {
    Ok(Json(st.reload.request("cli").await))
}

/// Lifts a plugin version's quarantine. Plugins are not incidents, so this
/// is logged, not journaled.
async fn unquarantine(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> ApiResult<PluginRef> {
    let s = st.clone();
    let r = tokio::task::spawn_blocking(move || s.plugins.unquarantine(&name)).await.map_err(ApiError::internal)?;
    match r {
        Ok(v) => Ok(Json(v)),
        Err(e @ UnquarantineError::NotFound { .. }) => {
            let msg = e.to_string();
            let UnquarantineError::NotFound { nearby, .. } = e else { unreachable!("matched above") };
            Err(ApiError::new(StatusCode::NOT_FOUND, msg).with_nearby(nearby))
        }
        Err(e @ UnquarantineError::NotQuarantined { .. }) => Err(ApiError::new(StatusCode::CONFLICT, e.to_string())),
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let s = st.clone();
    let text = tokio::task::spawn_blocking(move || {
        let now = s.engine.now();
        s.metrics.refresh_outbox(
            &s.dispatch.open_by_target(),
            &s.dispatch.throughput.last_minute(now),
            &**s.engine.store(),
            now,
        );
        s.metrics.refresh_plugins(&s.plugins.list());
        s.metrics.render()
    })
    .await
    .unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// `GET /v1/verify?expect_head=SEQ:HASH`: the anchor is optional.
#[derive(serde::Deserialize)]
struct VerifyQuery {
    expect_head: Option<String>,
}

async fn verify(State(st): State<Arc<AppState>>, Query(q): Query<VerifyQuery>) -> ApiResult<VerifyReport> {
    let expect = q
        .expect_head
        .map(|a| a.parse::<crate::store::Anchor>())
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("expect_head: {e}")))?;
    let r = with_engine(&st, move |e| Ok(crate::incident::verify::verify(&**e.store(), expect.as_ref())?)).await?;
    Ok(Json(r))
}
