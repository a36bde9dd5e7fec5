//! Steering running daemon drills: `POST /v1/drills/runs/{id}/cancel`,
//! `/pause`, `/resume` and `/injects` (the exercise controller, an admin
//! role like starting drills).

use super::AppState;
use super::api_types::ApiError;
use super::drills::{find_run, internal};
use super::tokens::Caller;
use crate::drill::control::{self, Command, ControlError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// `POST /v1/drills/runs/{id}/cancel`: stop a running drill; it ends `cancelled`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DrillCancelRequest {
    /// Why, for the drill's journal and report.
    pub reason: Option<String>,
}

/// `POST /v1/drills/runs/{id}/injects`: the exercise controller adds an inject now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DrillInjectRequest {
    /// Inject kind as in `[[drill.inject]]` (`no-ack`, `step-failure`, ...).
    pub kind: String,
    /// The kind's step, channel or person (see `crisis drill inject --help`).
    pub target: Option<String>,
    /// The inject's other keys, as a JSON object.
    pub payload: Option<serde_json::Value>,
}

/// Reply to the drill control routes (`cancel`, `pause`, `resume`, `injects`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DrillControlReply {
    /// The run steered.
    pub run_id: String,
    /// `cancel`, `pause`, `resume` or `inject`.
    pub action: String,
    /// Who did it (the token's person, or `bootstrap-admin`).
    pub by: String,
    /// The drill's incident, once its alert opened one.
    pub drill_incident: Option<String>,
    /// Drill time the command took effect, RFC 3339 UTC.
    pub drill_time: String,
    /// Whether the drill clock stands still now.
    pub paused: bool,
    /// What holds it still: the controller and/or open live incidents.
    pub held_by: Vec<crate::drill::control::Hold>,
    /// What came of it.
    pub result: String,
}

/// How long a caller waits for a running drill to apply a command.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The drill control routes, merged into the drill routes.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/drills/runs/{id}/cancel", post(cancel))
        .route("/v1/drills/runs/{id}/pause", post(pause))
        .route("/v1/drills/runs/{id}/resume", post(resume))
        .route("/v1/drills/runs/{id}/injects", post(inject))
}

type Reply = Result<Json<DrillControlReply>, ApiError>;

async fn cancel(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<DrillCancelRequest>, JsonRejection>,
) -> Reply {
    let Json(b) = body?;
    let by = caller.label();
    steer(&st, &id, "cancel", Command::Cancel { by, reason: b.reason.filter(|r| !r.trim().is_empty()) }).await
}

async fn pause(State(st): State<Arc<AppState>>, Extension(caller): Extension<Caller>, Path(id): Path<String>) -> Reply {
    steer(&st, &id, "pause", Command::Pause { by: caller.label() }).await
}

async fn resume(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Reply {
    steer(&st, &id, "resume", Command::Resume { by: caller.label() }).await
}

async fn inject(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<DrillInjectRequest>, JsonRejection>,
) -> Reply {
    let Json(b) = body?;
    let row = find_run(&st.drills, &id)?;
    let g = st.engine.generation();
    let Some(pb) = g.playbooks.get(&row.playbook_id) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "playbook {} of drill run {id} is no longer loaded; its injects cannot be checked",
                row.playbook_id
            ),
        ));
    };
    let inj = control::controller_inject(pb, &g.config.ref_context(), &b.kind, b.target.as_deref(), b.payload.as_ref())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("bad inject for drill run {id}: {e}")))?;
    steer(&st, &id, "inject", Command::Inject { inject: inj, by: caller.label() }).await
}

/// Hands `cmd` to running drill `id` and answers with what came of it.
async fn steer(st: &AppState, id: &str, action: &str, cmd: Command) -> Reply {
    let svc = st.drills.clone();
    let row = find_run(&svc, id)?;
    let by = match &cmd {
        Command::Cancel { by, .. } | Command::Pause { by } | Command::Resume { by } | Command::Inject { by, .. } => {
            by.clone()
        }
        Command::HoldFor { .. } | Command::Release { .. } => "crisis".into(),
    };
    let ended = || {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "drill run {id} is not running (it ended `{}`); only a running drill can be steered; see crisis drill list",
                row.status
            ),
        )
    };
    let Some(control) = svc.control(id) else { return Err(ended()) };
    let res = tokio::task::spawn_blocking(move || control.request(cmd, ANSWER_WITHIN)).await.map_err(internal)?;
    let reply = match res {
        Ok(r) => r,
        Err(ControlError::Conflict(why)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, format!("cannot {action} drill run {id}: {why}")));
        }
        Err(ControlError::Timeout(why)) => {
            return Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, format!("drill run {id}: {why}")));
        }
    };
    tracing::info!("drill {id}: {action} by {by}: {}", reply.result);
    Ok(Json(DrillControlReply {
        run_id: id.to_string(),
        action: action.to_string(),
        by,
        drill_incident: reply.drill_incident,
        drill_time: chrono::DateTime::from_timestamp_millis(reply.drill_time)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        paused: reply.paused,
        held_by: reply.held_by,
        result: reply.result,
    }))
}
