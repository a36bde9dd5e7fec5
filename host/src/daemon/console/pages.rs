//! The console's pages: the incident board, an incident, the playbooks and
//! the drills. Each reads the journal on the blocking pool, like the API.

use super::render::{error_page, page, reply};
use super::session::Signed;
use super::views::{self, BoardFilter};
use super::{AppState, html, with_headers};
use crate::daemon::api_types::{ApiError, ReloadStatus};
use crate::drill;
use crate::incident::clock::fmt_ms;
use crate::playbook::types::Severity;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How many past scores the drills page and the report's trend show.
const TREND: usize = 10;

/// An engine or task failure as the error page.
fn failed(st: &AppState, signed: &Signed, e: ApiError) -> Response {
    error_page(st, Some(signed.viewer()), e.status, &e.body.error)
}

/// The board's query string: `?playbook=ID&severity=sevN`; empty means all.
#[derive(Deserialize)]
pub(super) struct BoardQuery {
    #[serde(default)]
    playbook: String,
    #[serde(default)]
    severity: String,
}

/// `GET /console`: open incidents, live.
pub(super) async fn board(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    q: Result<Query<BoardQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(r) => return error_page(&st, Some(signed.viewer()), StatusCode::BAD_REQUEST, &r.body_text()),
    };
    let severity = match q.severity.trim() {
        "" => None,
        s => match s.parse::<Severity>() {
            Ok(s) => Some(s),
            Err(why) => {
                return error_page(
                    &st,
                    Some(signed.viewer()),
                    StatusCode::BAD_REQUEST,
                    &format!("severity filter: {why}"),
                );
            }
        },
    };
    let playbook = Some(q.playbook.trim().to_string()).filter(|p| !p.is_empty());
    let filter = BoardFilter { playbook, severity };
    let started = std::time::Instant::now();
    let b = match crate::daemon::engine_call::with_engine(&st, move |e| views::board(e, filter)).await {
        Ok(b) => b,
        Err(e) => return failed(&st, &signed, e),
    };
    let n = b.rows.len();
    let out = reply(page(&st, Some(signed.viewer()), "board.html", "Incidents", minijinja::context! { b => b }));
    tracing::debug!("console board: {n} incidents rendered in {:?}", started.elapsed());
    out
}

/// `GET /console/incidents/{id}`: phases, roles, steps, timeline and what the person may do.
pub(super) async fn incident(State(st): State<Arc<AppState>>, signed: Signed, Path(id): Path<String>) -> Response {
    let caller = signed.caller.clone();
    let engine = crate::daemon::api::engine_for(&st, &id);
    let iid = id.clone();
    let v = crate::daemon::engine_call::run_on(engine, move |e| views::incident(e, &iid, &caller)).await;
    match v {
        Ok(v) => {
            let title = format!("{} {}", v.inc.id, v.inc.title);
            reply(page(
                &st,
                Some(signed.viewer()),
                "incident.html",
                &title,
                minijinja::context! { v => v, csrf => signed.csrf },
            ))
        }
        Err(e) => failed(&st, &signed, e),
    }
}

/// One loaded playbook on the playbooks page.
#[derive(Serialize)]
struct PlaybookView {
    id: String,
    name: String,
    path: String,
    hash: String,
    text: String,
}

/// `GET /console/playbooks`: the applied generation, the last reload's errors, each playbook phase by phase.
pub(super) async fn playbooks(State(st): State<Arc<AppState>>, signed: Signed) -> Response {
    let s = st.clone();
    let status = tokio::task::spawn_blocking(move || s.reload.status()).await;
    let reload: Option<ReloadStatus> = status.ok().and_then(|v| serde_json::from_value(v).ok());
    let g = st.engine.generation();
    let pbs: Vec<PlaybookView> = g
        .playbooks
        .values()
        .map(|p| PlaybookView {
            id: p.id.clone(),
            name: p.name.clone(),
            path: p.path.display().to_string(),
            hash: p.hash.clone(),
            text: crate::playbook::describe::describe(p),
        })
        .collect();
    let ctx = minijinja::context! {
        generation => g.number,
        set_hash => g.set_hash.clone(),
        loaded_at => fmt_ms(g.loaded_at),
        reload => reload,
        playbooks => pbs,
    };
    reply(page(&st, Some(signed.viewer()), "playbooks.html", "Playbooks", ctx))
}

/// One playbook's drill trend on the drills page.
#[derive(Serialize)]
struct TrendView {
    playbook: String,
    scores: Vec<drill::trend::TrendPoint>,
    line: String,
}

/// One drill run on the drills page.
#[derive(Serialize)]
struct RunView {
    id: String,
    playbook: String,
    origin: String,
    status: String,
    score: Option<u32>,
    verdict: Option<String>,
    started_at: Option<String>,
    has_report: bool,
}

/// `GET /console/drills`: runs with scores, the trend per playbook, links to the reports.
pub(super) async fn drills(State(st): State<Arc<AppState>>, signed: Signed) -> Response {
    let svc = st.drills.clone();
    let g = st.engine.generation();
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<RunView>, Vec<TrendView>)> {
        let runs = svc
            .index
            .list(200)?
            .into_iter()
            .map(|r| RunView {
                // Listings leave the report out; a scored run has one.
                has_report: r.score.is_some(),
                started_at: r.started_at.map(fmt_ms),
                score: r.score,
                verdict: r.verdict,
                status: r.status,
                origin: r.origin,
                playbook: r.playbook_id,
                id: r.id,
            })
            .collect();
        let mut trends = Vec::new();
        for pb in g.playbooks.values() {
            let scores = svc.index.trend(&pb.id, None, TREND)?;
            let line = drill::trend::scores_line(&scores);
            trends.push(TrendView { playbook: pb.id.clone(), scores, line });
        }
        Ok((runs, trends))
    })
    .await;
    match read {
        Ok(Ok((runs, trends))) => reply(page(
            &st,
            Some(signed.viewer()),
            "drills.html",
            "Drills",
            minijinja::context! { runs => runs, trends => trends },
        )),
        Ok(Err(e)) => failed(&st, &signed, ApiError::internal(e)),
        Err(e) => failed(&st, &signed, ApiError::internal(e)),
    }
}

/// The after-action report's own policy: it has inline CSS and nothing else.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// `GET /console/drills/{id}/report`: the after-action report as `crisis drill report --format html` writes it.
pub(super) async fn drill_report(State(st): State<Arc<AppState>>, signed: Signed, Path(id): Path<String>) -> Response {
    let svc = st.drills.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let row = crate::daemon::drills::find_run(&svc, &id)?;
        let Some(rep) = row.report.clone() else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("drill run {id} has no after-action report yet (it is `{}`)", row.status),
            ));
        };
        let r: drill::AfterActionReport = serde_json::from_value(rep).map_err(ApiError::internal)?;
        let trend = svc.index.trend(&row.playbook_id, Some(&row.id), TREND).map_err(ApiError::internal)?;
        drill::report_html::render(&r, &trend).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)
    .and_then(|r| r);
    match made {
        Ok(body) => with_headers(html(StatusCode::OK, body), REPORT_CSP),
        Err(e) => failed(&st, &signed, e),
    }
}
