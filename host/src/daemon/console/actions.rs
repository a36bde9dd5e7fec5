//! The console's buttons and forms. Each POST must carry the session's
//! CSRF token, is checked against the same role table as the `/v1` gate,
//! and then runs the same engine call through the same `acting_on` as the
//! API handler, so the journal cannot tell a button from `crisis ack`.

use super::render::error_page;
use super::session::Signed;
use super::{AppState, html};
use crate::daemon::api::{ack_as, acting_on};
use crate::daemon::tokens::Action;
use crate::incident::{Engine, EngineError, StepAction};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

/// Every field a console form may send; each form sends the ones it has.
#[derive(Deserialize, Default)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    step: String,
    #[serde(default)]
    cause: String,
    #[serde(default)]
    process: String,
    #[serde(default)]
    aftermath: String,
}

/// What the person did, for the "acting for" journal entry and the role check.
struct Doing {
    action: Action,
    label: &'static str,
}

/// Checks the form, the CSRF token and the role, runs `f` as the signed-in
/// person on incident `id`, and goes back to the incident page.
async fn act<F>(
    st: &AppState,
    signed: &Signed,
    id: String,
    form: &Result<Form<ActionForm>, FormRejection>,
    doing: Doing,
    f: F,
) -> Response
where
    F: FnOnce(&Engine, Option<String>) -> Result<crate::incident::state::Incident, EngineError> + Send + 'static,
{
    let form = match form {
        Ok(Form(f)) => f,
        Err(r) => {
            return error_page(
                st,
                Some(signed.viewer()),
                r.status(),
                &format!("the form could not be read: {}", r.body_text()),
            );
        }
    };
    if let Err(r) = signed.check_csrf(st, &form.csrf) {
        return r;
    }
    if let Err(why) = signed.caller.may(doing.action) {
        return error_page(st, Some(signed.viewer()), StatusCode::FORBIDDEN, &why);
    }
    match acting_on(st, &id, &signed.caller, None, doing.label, f).await {
        Ok(_) => Redirect::to(&format!("/console/incidents/{}", path_segment(&id))).into_response(),
        Err(e) => error_page(st, Some(signed.viewer()), e.status, &e.body.error),
    }
}

/// An incident id as one URL path segment (ids are `INC-7`, but a bad one must not break the URL).
fn path_segment(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect()
}

type ActionReply = Result<Form<ActionForm>, FormRejection>;

/// `POST /console/incidents/{id}/ack`.
pub(super) async fn ack(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    Path(id): Path<String>,
    form: ActionReply,
) -> Response {
    let iid = id.clone();
    act(&st, &signed, id, &form, Doing { action: Action::Ack, label: "acknowledge" }, move |e, by| ack_as(e, &iid, by))
        .await
}

/// `POST /console/incidents/{id}/approve`: the activation, or the step named in `step`.
pub(super) async fn approve(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    Path(id): Path<String>,
    form: ActionReply,
) -> Response {
    let iid = id.clone();
    let step = form.as_ref().ok().map(|Form(f)| f.step.trim().to_string()).filter(|s| !s.is_empty());
    act(&st, &signed, id, &form, Doing { action: Action::Approve, label: "approve" }, move |e, by| {
        let by = by.ok_or_else(|| {
            EngineError::invalid("say who approves: the bootstrap API token is no person; sign in with your own token")
        })?;
        e.approve(&iid, step.as_deref(), &by)
    })
    .await
}

/// `POST /console/incidents/{id}/steps/{step}` with `action` = `done` or `skip`.
pub(super) async fn step(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    Path((id, step)): Path<(String, String)>,
    form: ActionReply,
) -> Response {
    let (iid, fields) = (id.clone(), form.as_ref().ok().map(|Form(f)| (f.action.clone(), f.note.clone())));
    let (action, note) = fields.unwrap_or_default();
    let action = match action.as_str() {
        "done" => Some(StepAction::Done),
        "skip" => Some(StepAction::Skip),
        _ => None,
    };
    act(&st, &signed, id, &form, Doing { action: Action::Step, label: "work a step" }, move |e, by| {
        let action = action.ok_or_else(|| {
            EngineError::invalid(format!("say what to do with step `{step}`: the form's action is `done` or `skip`"))
        })?;
        let note = Some(note.trim()).filter(|n| !n.is_empty());
        e.step(&iid, &step, action, note, &actor(by))
    })
    .await
}

/// `POST /console/incidents/{id}/updates`: a progress note on the timeline.
pub(super) async fn update(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    Path(id): Path<String>,
    form: ActionReply,
) -> Response {
    let iid = id.clone();
    let note = form.as_ref().ok().map(|Form(f)| f.note.trim().to_string()).unwrap_or_default();
    act(&st, &signed, id, &form, Doing { action: Action::Update, label: "post an update" }, move |e, by| {
        if note.is_empty() {
            return Err(EngineError::invalid("the update is empty: write what changed, then post it"));
        }
        e.update(&iid, &note, &actor(by))
    })
    .await
}

/// `POST /console/incidents/{id}/outcome`: cause, process and aftermath.
pub(super) async fn outcome(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    Path(id): Path<String>,
    form: ActionReply,
) -> Response {
    let iid = id.clone();
    let fields = form
        .as_ref()
        .ok()
        .map(|Form(f)| (f.cause.trim().to_string(), f.process.trim().to_string(), f.aftermath.trim().to_string()));
    let (cause, process, aftermath) = fields.unwrap_or_default();
    act(&st, &signed, id, &form, Doing { action: Action::Outcome, label: "record the outcome" }, move |e, by| {
        if cause.is_empty() && process.is_empty() && aftermath.is_empty() {
            return Err(EngineError::invalid(
                "the outcome is empty: fill in at least the fields the playbook requires",
            ));
        }
        e.record_outcome(&iid, &cause, &process, &aftermath, &actor(by))
    })
    .await
}

/// `POST /console/incidents/{id}/resolve`.
pub(super) async fn resolve(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    Path(id): Path<String>,
    form: ActionReply,
) -> Response {
    let iid = id.clone();
    act(&st, &signed, id, &form, Doing { action: Action::Resolve, label: "resolve" }, move |e, by| {
        e.resolve(&iid, &actor(by), "console")
    })
    .await
}

/// Who the journal names when the bootstrap token, which is no person, acts.
fn actor(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "console".to_string())
}

/// The console's body limit, `[limits] max_body_kb` like the API's, answered
/// as a page saying what to do instead of as JSON.
pub(super) async fn body_limit(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let max = st.engine.generation().config.limits.max_body_kb as usize * 1024;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        let msg = format!(
            "this form is over the {} KiB request limit ([limits] max_body_kb in crisis.toml) and was not saved: shorten the note, or put long material elsewhere and link to it",
            max / 1024
        );
        let body = format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Too large</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\"><main><h1>413 Too large</h1><p id=\"error\" class=\"error\">{msg}</p><p><a href=\"/console\">Back to the board</a></p></main></html>"
        );
        return html(StatusCode::PAYLOAD_TOO_LARGE, body);
    }
    // A body without a length is cut off at the limit while it is read; the form then fails with 413.
    next.run(req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, max)))).await
}
