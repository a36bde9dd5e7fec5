//! Steering running daemon drills: `POST /v1/drills/runs/{id}/cancel`,
//! `/pause`, `/resume` and `/injects` (the exercise controller, an admin
//! role like starting drills), and drills yielding to serious live incidents.

use super::AppState;
use super::api_types::{ApiError, DrillCancelRequest, DrillControlReply, DrillInjectRequest};
use super::drills::{DrillService, find_run, internal};
use super::tokens::Caller;
use crate::config::Config;
use crate::drill::control::{self, Command, ControlError};
use crate::incident::Engine;
use crate::incident::events::Event;
use crate::playbook::types::Severity;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

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

async fn resume(State(st): State<Arc<AppState>>, Extension(caller): Extension<Caller>, Path(id): Path<String>) -> Reply {
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
            format!("playbook {} of drill run {id} is no longer loaded; its injects cannot be checked", row.playbook_id),
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
            .incidents(true, Some("live"))?
            .into_iter()
            .filter(|r| r.status == "open" && r.severity.parse::<Severity>().is_ok_and(|s| sevs.contains(&s)))
            .map(|r| r.id)
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
            match control.request(Command::HoldFor { live: inc.clone() }, ANSWER_WITHIN) {
                Ok(reply) => {
                    mine.insert(inc.clone());
                    tracing::warn!("drill {run} paused while live incident {inc} is open");
                    live.record_steering(inc, Event::DrillHeld { run_id: run.clone(), drill_incident: reply.drill_incident })?;
                }
                Err(e) => tracing::warn!("drill {run} could not be paused for live incident {inc}: {e}"),
            }
        }
        for inc in mine.difference(&open).cloned().collect::<Vec<_>>() {
            match control.request(Command::Release { live: inc.clone() }, ANSWER_WITHIN) {
                Ok(reply) => {
                    mine.remove(&inc);
                    tracing::info!("drill {run} no longer held by live incident {inc}: {}", reply.result);
                    live.record_steering(&inc, Event::DrillReleased { run_id: run.clone(), drill_incident: reply.drill_incident })?;
                }
                Err(e) => tracing::warn!("drill {run} could not be let go by live incident {inc}: {e}"),
            }
        }
    }
    Ok(())
}
