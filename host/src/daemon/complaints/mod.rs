//! Customer complaints over the API: intake (`POST /v1/intake/complaints`,
//! 202 once journaled), and listing, showing, assigning, escalating,
//! resolving and reporting under `/v1/complaints`.
//!
//! Intake checks the complaint (a known customer id, channel and category,
//! a text neither empty nor too long) and answers 400 naming what is wrong;
//! masks phone numbers and e-mail addresses in the text and labels before
//! anything is journaled or logged; classifies it; has the appeasement plugin
//! compose the first response (the plain template when it fails); and
//! journals it all in one transaction with the first response's intent and
//! its deadline timer.
//!
//! A sender that may retry (its answer was lost to a timeout or a restart)
//! sends an `Idempotency-Key` header: the retry gets the complaint the first
//! attempt recorded (200 with `Idempotent-Replayed: true`) and the customer
//! one first response. Keys are scoped to the caller and kept as a digest.

pub(crate) mod metrics;
mod report;

pub(crate) use report::ComplaintReport;

use super::AppState;
use super::api_types::ApiError;
use super::engine_call::with_engine;
use super::tokens::{Caller, Grant};
use crate::config::customers::Customer;
use crate::incident::complaint::Complaint;
use crate::incident::{Engine, EngineError, Recorded};
use crate::playbook::types::{Category, Channel, parse_duration};
use crate::plugin::PluginHost;
use crate::store::{ComplaintQuery, EventRecord};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// At most this many labels per complaint.
const MAX_LABELS: usize = 20;
/// Label keys and values are at most this many characters.
const MAX_LABEL: usize = 200;
/// The request header naming one intake attempt, the same on every retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Idempotency keys are at most this many characters.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// The response header a replayed intake carries.
const REPLAYED: &str = "idempotent-replayed";

/// `POST /v1/intake/complaints` (and `crisis complaint add`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ComplaintIntake {
    /// The customer's id in the customer source.
    pub customer: String,
    /// `phone`, `sms`, `email` or `social`.
    pub channel: String,
    /// What the customer said.
    pub text: String,
    /// The category, when the sender knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Free labels (`product = "router"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `POST /v1/complaints/{id}/assign|escalate|resolve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ComplaintAction {
    /// The person to assign (assign only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The resolution note (resolve only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Act for this person (admins only).
    #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `GET /v1/complaints` and `/v1/complaint-report`: `since=7d`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SinceQuery {
    /// How far back, like `7d` or `12h`; absent: everything.
    pub since: Option<String>,
}

/// `GET /v1/complaints/{id}`: the complaint and its journal events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ComplaintDetail {
    /// The complaint as its events left it.
    pub complaint: Complaint,
    /// Its events, oldest first.
    pub events: Vec<EventRecord>,
}

/// The complaint routes; every one sits behind the `/v1` token gate.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/intake/complaints", post(intake))
        .route("/v1/complaints", get(list))
        .route("/v1/complaints/{id}", get(show))
        .route("/v1/complaints/{id}/assign", post(assign))
        .route("/v1/complaints/{id}/escalate", post(escalate))
        .route("/v1/complaints/{id}/resolve", post(resolve))
        .route("/v1/complaint-report", get(report_handler))
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

/// A complaint that passed every check, its text and labels masked.
struct Checked {
    customer: Customer,
    channel: Channel,
    category: Option<Category>,
    text: String,
    labels: BTreeMap<String, String>,
}

/// Masks contact details: any the text shows, and the customer's own as written in the source.
fn masked(text: &str, customer: &Customer) -> String {
    let mut t = text.to_string();
    for own in [&customer.contact.phone, &customer.contact.email] {
        if own.trim().len() >= 5 {
            t = t.replace(own.trim(), super::contact_mask::CONTACT_WITHHELD);
        }
    }
    super::contact_mask::mask(&t, true)
}

/// Checks a complaint against the serving configuration; errors say what is wrong and what to do.
fn check(engine: &Engine, b: ComplaintIntake) -> Result<Checked, ApiError> {
    let g = engine.generation();
    let Some(customer) = g.customers.iter().find(|c| c.id == b.customer.trim()).cloned() else {
        let nearby = crate::diag::nearby(b.customer.trim(), g.customers.iter().map(|c| c.id.as_str()));
        let source = g
            .config
            .customers
            .as_ref()
            .map_or("no customers file is configured".to_string(), |p| p.display().to_string());
        return Err(bad(format!(
            "unknown customer id `{}` in the customer source ({source}): send the id of a customer listed there",
            b.customer.trim()
        ))
        .with_nearby(nearby));
    };
    let channel: Channel = b.channel.trim().parse().map_err(|e| bad(format!("channel: {e}")))?;
    let category = match b.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<Category>().map_err(|e| bad(format!("category: {e}")))?),
    };
    let max = g.config.complaints.max_text;
    if b.text.trim().is_empty() {
        return Err(bad("text is empty: send what the customer said"));
    }
    let len = b.text.chars().count();
    if len > max {
        return Err(bad(format!("text is {len} characters: the limit is {max} ([complaints] max_text)")));
    }
    if b.labels.len() > MAX_LABELS {
        return Err(bad(format!("{} labels: at most {MAX_LABELS} are kept per complaint", b.labels.len())));
    }
    if let Some((k, _)) = b
        .labels
        .iter()
        .find(|(k, v)| k.trim().is_empty() || k.chars().count() > MAX_LABEL || v.chars().count() > MAX_LABEL)
    {
        return Err(bad(format!(
            "label `{}`: keys must be non-empty and keys and values at most {MAX_LABEL} characters",
            k.chars().take(40).collect::<String>()
        )));
    }
    let text = masked(b.text.trim(), &customer);
    let labels = b.labels.iter().map(|(k, v)| (k.trim().to_string(), masked(v, &customer))).collect();
    Ok(Checked { customer, channel, category, text, labels })
}

/// The digest an `Idempotency-Key` is kept as, scoped to the caller so one
/// sender's key never finds another sender's complaint; `None` without the
/// header, 400 when it is empty, too long or not visible ASCII.
fn intake_key(headers: &HeaderMap, caller: &Caller) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| b.is_ascii_graphic()));
    let Some(key) = key else {
        return Err(bad(format!(
            "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters: \
             send one value per complaint, e.g. your ticket id or a UUID, and the same one when you retry"
        )));
    };
    let digest = Sha256::new().chain_update(caller.label().as_bytes()).chain_update([0u8]).chain_update(key.as_bytes());
    Ok(Some(hex::encode(digest.finalize())))
}

/// Classifies, composes and journals a checked complaint through the path drills share.
fn accept(
    engine: &Engine,
    host: &PluginHost,
    c: Checked,
    source: String,
    intake_key: Option<String>,
) -> Result<Recorded, EngineError> {
    let incoming = crate::complaints::Incoming {
        customer: &c.customer,
        channel: c.channel,
        category: c.category,
        text: c.text,
        labels: c.labels,
        source,
        intake_key,
    };
    crate::complaints::record(engine, Some(host), incoming, |s| super::contact_mask::mask(s, true))
}

async fn intake(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<ComplaintIntake>, JsonRejection>,
) -> Result<Response, ApiError> {
    super::intake::limit(&st, "complaints", addr)?;
    let checked = intake_key(&headers, &caller)
        .and_then(|k| body.map_err(ApiError::from).and_then(|Json(b)| check(&st.engine, b)).map(|c| (c, k)));
    let (checked, key) = match checked {
        Ok(c) => c,
        Err(e) => {
            super::intake::count_result(&st, "complaints", "rejected");
            return Err(e);
        }
    };
    let source = match &caller.grant {
        Grant::Intake { name } => name.clone(),
        _ => caller.label(),
    };
    let host = st.plugins.clone();
    let r = with_engine(&st, move |e| accept(e, &host, checked, source, key)).await?;
    let c = r.complaint;
    if r.replayed {
        super::intake::count_result(&st, "complaints", "replayed");
        tracing::info!(complaint = %c.id, "complaint intake retried under its idempotency key; nothing new recorded");
        return Ok((StatusCode::OK, [(REPLAYED, "true")], Json(c)).into_response());
    }
    super::intake::count_result(&st, "complaints", "accepted");
    tracing::info!(complaint = %c.id, category = %c.category, channel = %c.channel, customer = %c.customer, "complaint received");
    Ok((StatusCode::ACCEPTED, Json(c)).into_response())
}

/// The start of a `since` window, or an error naming the bad duration.
fn since(engine: &Engine, q: &SinceQuery) -> Result<Option<i64>, ApiError> {
    q.since
        .as_deref()
        .map(|s| parse_duration(s).map(|d| engine.now() - d.as_millis() as i64).map_err(|e| bad(format!("since: {e}"))))
        .transpose()
}

async fn list(State(st): State<Arc<AppState>>, Query(q): Query<SinceQuery>) -> Result<Json<Vec<Complaint>>, ApiError> {
    let since = since(&st.engine, &q)?;
    let all = with_engine(&st, move |e| e.complaints(&ComplaintQuery { since, ..Default::default() })).await?;
    Ok(Json(all))
}

async fn show(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<ComplaintDetail>, ApiError> {
    let detail = with_engine(&st, move |e| {
        let complaint = e.complaint(&id)?;
        let events = e.store().events(&id, 0)?;
        Ok(ComplaintDetail { complaint, events })
    })
    .await?;
    Ok(Json(detail))
}

/// Runs `f` on complaint `id` as the acting person: the caller's person, or
/// the person an admin acts for (journaled on the complaint first).
async fn acting_on(
    st: &AppState,
    id: String,
    caller: &Caller,
    requested: Option<String>,
    action: &'static str,
    f: impl FnOnce(&Engine, &str, String) -> Result<Complaint, EngineError> + Send + 'static,
) -> Result<Json<Complaint>, ApiError> {
    let acting = caller.acting(requested)?;
    let by = acting.person.clone().unwrap_or_else(|| caller.label());
    Ok(Json(
        with_engine(st, move |e| {
            if let Some(d) = acting.delegation() {
                e.record_complaint_acting_for(&id, d.by, d.token, d.person, action)?;
            }
            f(e, &id, by)
        })
        .await?,
    ))
}

async fn assign(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ComplaintAction>, JsonRejection>,
) -> Result<Json<Complaint>, ApiError> {
    let Json(b) = body?;
    let person = b.person.clone().ok_or_else(|| bad("assign needs `person`: a roster person id"))?;
    acting_on(&st, id, &caller, b.by, "assign a complaint", move |e, id, by| e.assign_complaint(id, &person, &by)).await
}

async fn escalate(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ComplaintAction>, JsonRejection>,
) -> Result<Json<Complaint>, ApiError> {
    let Json(b) = body?;
    acting_on(&st, id, &caller, b.by, "escalate a complaint", |e, id, by| e.escalate_complaint(id, &by)).await
}

async fn resolve(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ComplaintAction>, JsonRejection>,
) -> Result<Json<Complaint>, ApiError> {
    let Json(b) = body?;
    let note = b.note.clone().unwrap_or_default();
    acting_on(&st, id, &caller, b.by, "resolve a complaint", move |e, id, by| e.resolve_complaint(id, &note, &by)).await
}

async fn report_handler(
    State(st): State<Arc<AppState>>,
    Query(q): Query<SinceQuery>,
) -> Result<Json<ComplaintReport>, ApiError> {
    let from = since(&st.engine, &q)?;
    let all = with_engine(&st, move |e| e.complaints(&ComplaintQuery { since: from, ..Default::default() })).await?;
    Ok(Json(report::report(from.unwrap_or(0), &all)))
}
