//! The HTTP API: JSON under `/v1/`, bearer-token auth, plus
//! unauthenticated `/healthz` and `/readyz`.

use super::auth::token_matches;
use super::AppState;
use crate::incident::{Engine, EngineError, StepAction, TriggerRequest};
use crate::report;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// An API error: status plus a JSON body `{error, nearby?}`.
pub struct ApiError(StatusCode, Value);

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError(status, json!({"error": msg.into()}))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(self.1)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let msg = e.to_string();
        match e {
            EngineError::NotFound { nearby, .. } => ApiError(StatusCode::NOT_FOUND, json!({"error": msg, "nearby": nearby})),
            EngineError::Invalid { .. } => ApiError(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": msg})),
            EngineError::Conflict { .. } => ApiError(StatusCode::CONFLICT, json!({"error": msg})),
            EngineError::Internal(err) => {
                tracing::error!("internal error: {err:#}");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": msg}))
            }
        }
    }
}

pub(super) fn bad_json(r: JsonRejection) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, json!({"error": format!("malformed request: {}", r.body_text())}))
}

type ApiResult = Result<Json<Value>, ApiError>;

/// Runs an engine call on the blocking pool.
pub(super) async fn with_engine<T, F>(st: &AppState, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    run_on(st.engine.clone(), f).await
}

/// The engine an incident lives in: a running drill's own engine for its
/// `DRL-<run>-N` incidents, else the live engine.
fn engine_for(st: &AppState, id: &str) -> Arc<Engine> {
    if id.starts_with("DRL-") {
        if let Some(e) = super::drills::service(st).ok().and_then(|svc| svc.engine_for_incident(id)) {
            return e;
        }
    }
    st.engine.clone()
}

/// Runs an engine call about incident `id` on the engine that holds it.
async fn with_incident<T, F>(st: &AppState, id: &str, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    run_on(engine_for(st, id), f).await
}

async fn run_on<T, F>(engine: Arc<Engine>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": format!("task failed: {e}")})))?
        .map_err(ApiError::from)
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.engine.generation().config.limits.max_body_kb as usize * 1024;
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
        .route("/v1/verify", get(verify))
        .route("/v1/reload", post(reload))
        .route("/v1/intake/alertmanager", post(super::intake::alertmanager))
        .route("/v1/intake/events", post(super::intake::events))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(v1)
        .merge(super::drills::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn require_token(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if token_matches(&st.token, t) => next.run(req).await,
        Some(_) => ApiError(StatusCode::UNAUTHORIZED, json!({"error": "wrong API token: use the token in state_dir/api.token"})).into_response(),
        None => ApiError(StatusCode::UNAUTHORIZED, json!({"error": "missing API token: send Authorization: Bearer <state_dir/api.token>"})).into_response(),
    }
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no valid playbook generation is loaded; see `crisis status`\n").into_response()
    }
}

async fn trigger(State(st): State<Arc<AppState>>, body: Result<Json<TriggerRequest>, JsonRejection>) -> Result<Response, ApiError> {
    let Json(mut req) = body.map_err(bad_json)?;
    if req.source.is_empty() {
        req.source = "api".into();
    }
    let out = with_engine(&st, move |e| e.trigger(req)).await?;
    let code = if out.deduped { StatusCode::OK } else { StatusCode::CREATED };
    Ok((code, Json(json!({"deduped": out.deduped, "incident": out.incident}))).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    open: bool,
    mode: Option<String>,
}

async fn list(State(st): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> ApiResult {
    let rows = with_engine(&st, move |e| Ok(e.store().incidents(q.open, q.mode.as_deref())?)).await?;
    let out: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "playbook": r.playbook_id, "mode": r.mode, "status": r.status, "phase": r.phase,
                "severity": r.severity, "title": r.title, "opened_at": r.opened_at, "dedup_key": r.dedup_key,
            })
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

async fn show(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    let inc = with_incident(&st, &id.clone(), move |e| e.incident(&id)).await?;
    Ok(Json(to_json(&inc)))
}

#[derive(Deserialize, Default)]
struct ActorBody {
    #[serde(rename = "as")]
    by: Option<String>,
}

fn actor(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "cli".to_string())
}

async fn ack(State(st): State<Arc<AppState>>, Path(id): Path<String>, body: Result<Json<ActorBody>, JsonRejection>) -> ApiResult {
    let Json(b) = body.map_err(bad_json)?;
    let inc = with_incident(&st, &id.clone(), move |e| {
        let by = match b.by.filter(|s| !s.is_empty()) {
            Some(by) => by,
            None => e.incident(&id)?.roles.get("commander").cloned().unwrap_or_else(|| "cli".into()),
        };
        e.ack(&id, &by)
    })
    .await?;
    Ok(Json(to_json(&inc)))
}

#[derive(Deserialize)]
struct AssignBody {
    role: String,
    to: String,
    #[serde(rename = "as")]
    by: Option<String>,
}

async fn assign(State(st): State<Arc<AppState>>, Path(id): Path<String>, body: Result<Json<AssignBody>, JsonRejection>) -> ApiResult {
    let Json(b) = body.map_err(bad_json)?;
    let inc = with_incident(&st, &id.clone(), move |e| e.assign(&id, &b.role, &b.to, &actor(b.by))).await?;
    Ok(Json(to_json(&inc)))
}

#[derive(Deserialize)]
struct ApproveBody {
    step: Option<String>,
    #[serde(rename = "as")]
    by: String,
}

async fn approve(State(st): State<Arc<AppState>>, Path(id): Path<String>, body: Result<Json<ApproveBody>, JsonRejection>) -> ApiResult {
    let Json(b) = body.map_err(bad_json)?;
    let inc = with_incident(&st, &id.clone(), move |e| e.approve(&id, b.step.as_deref(), &b.by)).await?;
    Ok(Json(to_json(&inc)))
}

#[derive(Deserialize)]
struct StepBody {
    action: StepAction,
    note: Option<String>,
    #[serde(rename = "as")]
    by: Option<String>,
}

async fn step(State(st): State<Arc<AppState>>, Path((id, step)): Path<(String, String)>, body: Result<Json<StepBody>, JsonRejection>) -> ApiResult {
    let Json(b) = body.map_err(bad_json)?;
    let inc = with_incident(&st, &id.clone(), move |e| e.step(&id, &step, b.action, b.note.as_deref(), &actor(b.by))).await?;
    Ok(Json(to_json(&inc)))
}

#[derive(Deserialize)]
struct UpdateBody {
    note: String,
    #[serde(rename = "as")]
    by: Option<String>,
}

async fn update(State(st): State<Arc<AppState>>, Path(id): Path<String>, body: Result<Json<UpdateBody>, JsonRejection>) -> ApiResult {
    let Json(b) = body.map_err(bad_json)?;
    let inc = with_incident(&st, &id.clone(), move |e| e.update(&id, &b.note, &actor(b.by))).await?;
    Ok(Json(to_json(&inc)))
}

#[derive(Deserialize)]
struct OutcomeBody {
    #[serde(default)]
    cause: String,
    #[serde(default)]
    process: String,
    #[serde(default)]
    aftermath: String,
    #[serde(rename = "as")]
    by: Option<String>,
}

async fn outcome(State(st): State<Arc<AppState>>, Path(id): Path<String>, body: Result<Json<OutcomeBody>, JsonRejection>) -> ApiResult {
    let Json(b) = body.map_err(bad_json)?;
    let inc = with_incident(&st, &id.clone(), move |e| e.record_outcome(&id, &b.cause, &b.process, &b.aftermath, &actor(b.by))).await?;
    Ok(Json(to_json(&inc)))
}

async fn resolve(State(st): State<Arc<AppState>>, Path(id): Path<String>, body: Result<Json<ActorBody>, JsonRejection>) -> ApiResult {
    let Json(b) = body.map_err(bad_json)?;
    let inc = with_incident(&st, &id.clone(), move |e| e.resolve(&id, &actor(b.by), "cli")).await?;
    Ok(Json(to_json(&inc)))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
}

async fn events(State(st): State<Arc<AppState>>, Path(id): Path<String>, Query(q): Query<EventsQuery>) -> ApiResult {
    let (inc, evs) = with_incident(&st, &id.clone(), move |e| {
        let inc = e.incident(&id)?;
        Ok((inc, e.store().events(&id, q.after)?))
    })
    .await?;
    let items: Vec<Value> = evs
        .iter()
        .map(|ev| json!({"seq": ev.seq, "at": ev.at, "kind": ev.kind, "text": report::describe(ev), "data": ev.data}))
        .collect();
    Ok(Json(json!({"status": inc.status, "phase": inc.phase, "events": items})))
}

#[derive(Deserialize)]
struct ReportQuery {
    format: Option<String>,
}

async fn report_handler(State(st): State<Arc<AppState>>, Path(id): Path<String>, Query(q): Query<ReportQuery>) -> Result<Response, ApiError> {
    let rep = with_incident(&st, &id.clone(), move |e| {
        let inc = e.incident(&id)?;
        let evs = e.store().events(&id, 0)?;
        let summary = e.pinned_playbook(&inc.playbook_hash).map(|p| p.summary.clone()).unwrap_or_default();
        Ok(report::outcome_report(&inc, &evs, &summary))
    })
    .await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(to_json(&rep)).into_response()),
        Some("md") | Some("markdown") => Ok(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], rep.markdown()).into_response()),
        Some(other) => Err(ApiError(StatusCode::BAD_REQUEST, json!({"error": format!("unknown report format `{other}`: use md or json")}))),
    }
}

async fn playbooks(State(st): State<Arc<AppState>>) -> ApiResult {
    let g = st.engine.generation();
    let list: Vec<Value> = g
        .playbooks
        .values()
        .map(|p| json!({"id": p.id, "name": p.name, "severity": p.severity, "category": p.category, "hash": p.hash, "path": p.path}))
        .collect();
    Ok(Json(json!({"generation": g.number, "playbooks": list})))
}

async fn status(State(st): State<Arc<AppState>>) -> ApiResult {
    let s = st.clone();
    let v = tokio::task::spawn_blocking(move || s.status_json())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(v))
}

async fn reload(State(st): State<Arc<AppState>>) -> ApiResult {
    let attempt = st.reload.request("cli").await;
    Ok(Json(to_json(&attempt)))
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let s = st.clone();
    let text = tokio::task::spawn_blocking(move || s.metrics.render(&**s.engine.store())).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

async fn verify(State(st): State<Arc<AppState>>) -> ApiResult {
    let r = with_engine(&st, |e| Ok(e.store().verify()?)).await?;
    Ok(Json(to_json(&r)))
}
