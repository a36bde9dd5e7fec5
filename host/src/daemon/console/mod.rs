//! The web console under `/console`: server-rendered pages over the same
//! engine calls, role table and journal as the `/v1` API, for people who
//! work incidents from a browser (a phone included).
//!
//! A person signs in with their API token and gets a session cookie holding
//! only a random session id; sessions live in this process's memory and end
//! on sign-out, after [`session::SESSION_TTL_MS`], on a daemon restart, or on
//! the first request after their token is revoked or expires. Every form
//! carries the session's CSRF token. Pages follow the journal live over
//! Server-Sent Events (`/console/events`), fed by the engine's observer.
//!
//! Everything the pages load (CSS, JavaScript) is embedded in the binary, so
//! the console works offline; a Content Security Policy allows nothing else.
#![allow(
    clippy::result_large_err,
    reason = "handlers stop early with the finished response as the error; it is built once per request and never stored"
)]

mod actions;
mod events;
mod pages;
mod render;
mod session;
mod views;

pub use render::assets_size;

use super::AppState;
use crate::incident::events::Event;
use crate::incident::state::Incident;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many journal changes a slow page may fall behind before it is told to
/// reload everything instead.
const CHANGE_BUFFER: usize = 1024;

/// One journaled event, as the console's live pages learn of it: which
/// incident changed and how, never what was written (no notes, no contacts).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Change {
    /// The incident the event belongs to.
    pub incident: String,
    /// The event's kind (`opened`, `acknowledged`, ...).
    pub kind: &'static str,
    /// The incident's journal position after the event.
    pub seq: i64,
}

/// The console's state: sessions, templates and the change feed. Why: one
/// per daemon, shared by every console request and the engine's observer.
pub(crate) struct Console {
    sessions: session::Sessions,
    changes: broadcast::Sender<Change>,
    templates: render::Templates,
    /// Whether the daemon serves TLS, so the session cookie is `Secure`.
    secure: bool,
    /// Raised on shutdown: every live stream ends.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Console {
    /// The console of a daemon that serves TLS when `secure`.
    pub(crate) fn new(secure: bool) -> Console {
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        let (closing, _) = tokio::sync::watch::channel(false);
        Console {
            sessions: session::Sessions::default(),
            changes,
            templates: render::Templates::new(),
            secure,
            closing,
        }
    }

    /// Called by the engine after each committed event: live pages hear of it.
    pub(crate) fn observe(&self, ev: &Event, inc: &Incident) {
        // No receiver means no page is open; that is not an error.
        let _ = self.changes.send(Change { incident: inc.id.clone(), kind: ev.kind(), seq: inc.last_seq });
    }
}

/// Ends every console stream once `stop` is raised, so the server's graceful
/// shutdown is not held up by open pages.
pub(crate) async fn close_on_stop(console: Arc<Console>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
    console.closing.send_replace(true);
}

/// The console's routes; the API router merges them outside its JSON body limit.
pub(crate) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(pages::board))
        .route("/console/", get(pages::board))
        .route("/console/login", get(session::login_page).post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/events", get(events::stream))
        .route("/console/incidents/{id}", get(pages::incident))
        .route("/console/incidents/{id}/ack", post(actions::ack))
        .route("/console/incidents/{id}/approve", post(actions::approve))
        .route("/console/incidents/{id}/steps/{step}", post(actions::step))
        .route("/console/incidents/{id}/updates", post(actions::update))
        .route("/console/incidents/{id}/outcome", post(actions::outcome))
        .route("/console/incidents/{id}/resolve", post(actions::resolve))
        .route("/console/playbooks", get(pages::playbooks))
        .route("/console/drills", get(pages::drills))
        .route("/console/drills/{id}/report", get(pages::drill_report))
        .route("/console/assets/{name}", get(render::asset))
        .layer(axum::middleware::from_fn_with_state(state, actions::body_limit))
}

/// The console's own pages and scripts only: no inline script, no other origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML reply with the console's security headers.
pub(super) fn html(status: StatusCode, body: String) -> Response {
    with_headers((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(), CSP)
}

/// Adds the security headers every console reply carries, with `csp`.
fn with_headers(mut r: Response, csp: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
