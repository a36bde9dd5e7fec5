//! `POST /v2/enqueue`: PagerDuty Events API v2, so anything that can page
//! PagerDuty triggers, acknowledges and resolves crisis incidents unchanged.
//!
//! The `routing_key` is a crisis token secret (an intake token, or a
//! person's): it is authenticated like a bearer token and then forgotten. It
//! is never logged or journaled, and any copy of it inside the event is
//! withheld. `[intake.pagerduty]` maps the token's name to a playbook.
//!
//! - `trigger` takes the path of every intake trigger: a repeat with the same
//!   `dedup_key` attaches to the open incident. Without a `dedup_key`, the
//!   playbook's dedup template decides, else a generated key; the key used
//!   is returned.
//! - `acknowledge` acknowledges the open incident with the key. An intake
//!   token is no person: it takes no incident role, and the journal says
//!   `acknowledged by pagerduty intake token NAME`. A person's token
//!   acknowledges as that person, who becomes commander as with `crisis ack`.
//! - `resolve` resolves it exactly as an intake `resolve` event does; the
//!   outcome phase that follows is still the people's to complete.
//!
//! 202 means the event is in the journal. 400 names every problem of the
//! event; 401 is the same for an unknown, revoked or expired key; 429 comes
//! from the shared intake rate limit.

use super::AppState;
use super::api_types::ApiError;
use super::engine_call::with_engine;
use super::tokens::{Action, Grant, secret_id};
use crate::config::pagerduty::PdSeverity;
use crate::incident::{
    Engine, EngineError, FallbackKey, IntakeAck, IntakeDone, IntakeOp, MAX_DEDUP_KEY, TriggerRequest,
};
use crate::playbook::Playbook;
use crate::playbook::types::ReportField;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The metrics' `source` for this intake.
const SOURCE: &str = "pagerduty";

/// PagerDuty's limit on `payload.summary`, in characters.
const MAX_SUMMARY: usize = 1024;

use super::contact_mask::CONTACT_WITHHELD;
#[cfg(test)]
use super::contact_mask::is_contact;

/// What stands in the journal for a value that was a secret.
const SECRET_WITHHELD: &str = "[secret withheld]";

/// The route, served outside the `/v1` bearer gate: the key is in the body.
pub(super) fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/v2/enqueue", post(enqueue))
}

/// `event_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PdAction {
    Trigger,
    Acknowledge,
    Resolve,
}

/// `links[]` and `images[]` entries, as kept.
#[derive(Debug, Clone, PartialEq)]
struct Link {
    href: String,
    text: Option<String>,
}

/// The `payload` of a trigger, checked.
#[derive(Debug, Clone, PartialEq)]
struct PdPayload {
    summary: String,
    source: String,
    severity: PdSeverity,
    timestamp: Option<String>,
    component: Option<String>,
    group: Option<String>,
    class: Option<String>,
    custom_details: BTreeMap<String, String>,
}

/// A valid event. Every text in it has had contact details and the routing
/// key withheld; `routing_key` is the only copy of the secret.
#[derive(Debug, Clone, PartialEq)]
struct PdEvent {
    routing_key: String,
    action: PdAction,
    dedup_key: Option<String>,
    /// Only for triggers.
    payload: Option<PdPayload>,
    client: Option<String>,
    client_url: Option<String>,
    links: Vec<Link>,
    images: Vec<Link>,
}

/// PagerDuty's reply shape, for success and failure alike.
#[derive(Debug, Serialize)]
struct PdReply {
    status: &'static str,
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_key: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

/// A refusal in PagerDuty's shape.
struct PdError {
    code: StatusCode,
    errors: Vec<String>,
}

impl PdError {
    fn new(code: StatusCode, error: impl Into<String>) -> Self {
        PdError { code, errors: vec![error.into()] }
    }
}

impl IntoResponse for PdError {
    fn into_response(self) -> Response {
        let (status, message) = match self.code.as_u16() {
            400 | 422 => ("invalid event", "Event object is invalid"),
            401 => ("unauthorized", "Routing key not accepted"),
            403 => ("forbidden", "Routing key may not send this event"),
            413 => ("invalid event", "Event object is too large"),
            429 => ("throttle event", "Requests are arriving too quickly; retry later"),
            _ => ("error", "Event not processed; retry later"),
        };
        let code = if self.code == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { self.code };
        let mut r = (code, Json(PdReply { status, message, dedup_key: None, errors: self.errors })).into_response();
        if code == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<ApiError> for PdError {
    fn from(e: ApiError) -> Self {
        PdError::new(e.status, e.body.error)
    }
}

/// Keys whose values are contact details or credentials, whatever they look like.
fn private_key(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| k.contains(w));
    if any(&["email", "e-mail", "phone", "mobile", "contact", "sms"]) {
        Some(CONTACT_WITHHELD)
    } else if any(&[
        "token",
        "password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "credential",
        "authorization",
        "routing_key",
    ]) {
        Some(SECRET_WITHHELD)
    } else {
        None
    }
}

/// A text as it may be journaled: the routing key and contact details withheld.
fn clean(text: &str, routing_key: &str) -> String {
    let text = if routing_key.is_empty() { text.to_string() } else { text.replace(routing_key, SECRET_WITHHELD) };
    super::contact_mask::mask(&text, false)
}

/// Reads and checks an event, naming every problem. `raw` is already JSON.
fn parse(raw: &Value) -> Result<PdEvent, Vec<String>> {
    let mut errors = Vec::new();
    let Some(obj) = raw.as_object() else {
        return Err(vec!["the event must be a JSON object".into()]);
    };
    let routing_key = match obj.get("routing_key") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            errors.push("'routing_key' is missing: send the secret of a crisis intake token (crisis token create --intake NAME)".into());
            String::new()
        }
        Some(_) => {
            errors.push("'routing_key' must be a string".into());
            String::new()
        }
    };
    let text = |v: &Value| v.as_str().map(|s| clean(s, &routing_key));
    let optional = |key: &str, within: &Map<String, Value>, errors: &mut Vec<String>, name: &str| match within.get(key)
    {
        None | Some(Value::Null) => None,
        Some(v) => text(v).or_else(|| {
            errors.push(format!("'{name}' must be a string"));
            None
        }),
    };
    let action = match obj.get("event_action").and_then(Value::as_str) {
        Some("trigger") => Some(PdAction::Trigger),
        Some("acknowledge") => Some(PdAction::Acknowledge),
        Some("resolve") => Some(PdAction::Resolve),
        Some(other) => {
            errors.push(format!(
                "'event_action' is `{}`: expected trigger, acknowledge or resolve",
                clean(other, &routing_key)
            ));
            None
        }
        None => {
            errors.push("'event_action' is missing: expected trigger, acknowledge or resolve".into());
            None
        }
    };
    let dedup_key = optional("dedup_key", obj, &mut errors, "dedup_key").filter(|k| !k.is_empty());
    if let Some(k) = &dedup_key
        && k.len() > MAX_DEDUP_KEY
    {
        errors.push(format!("'dedup_key' is {} bytes: the limit is {MAX_DEDUP_KEY}", k.len()));
    }
    if matches!(action, Some(PdAction::Acknowledge | PdAction::Resolve)) && dedup_key.is_none() {
        errors.push("'dedup_key' is required to acknowledge or resolve: send the key the trigger returned".into());
    }
    let payload = match (action, obj.get("payload")) {
        (Some(PdAction::Trigger), None | Some(Value::Null)) => {
            errors.push(
                "'payload' is missing: a trigger needs payload.summary, payload.source and payload.severity".into(),
            );
            None
        }
        (Some(PdAction::Trigger), Some(Value::Object(p))) => payload(p, &routing_key, &mut errors),
        (Some(PdAction::Trigger), Some(_)) => {
            errors.push("'payload' must be an object".into());
            None
        }
        _ => None,
    };
    let client = optional("client", obj, &mut errors, "client");
    let client_url = optional("client_url", obj, &mut errors, "client_url");
    let links = link_list(obj, "links", "href", "text", &routing_key, &mut errors);
    let images = link_list(obj, "images", "src", "alt", &routing_key, &mut errors);
    match action {
        Some(action) if errors.is_empty() => {
            Ok(PdEvent { routing_key, action, dedup_key, payload, client, client_url, links, images })
        }
        _ => Err(errors),
    }
}

/// A trigger's `payload`: summary, source and severity required.
fn payload(p: &Map<String, Value>, routing_key: &str, errors: &mut Vec<String>) -> Option<PdPayload> {
    let required = |key: &str, errors: &mut Vec<String>| match p.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            errors.push(format!("'payload.{key}' is missing"));
            None
        }
        Some(_) => {
            errors.push(format!("'payload.{key}' must be a string"));
            None
        }
    };
    let optional = |key: &str, errors: &mut Vec<String>| match p.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(clean(s, routing_key)),
        Some(_) => {
            errors.push(format!("'payload.{key}' must be a string"));
            None
        }
    };
    let summary = required("summary", errors);
    if let Some(s) = &summary
        && s.chars().count() > MAX_SUMMARY
    {
        errors.push(format!("'payload.summary' is {} characters: the limit is {MAX_SUMMARY}", s.chars().count()));
    }
    let source = required("source", errors);
    let severity = required("severity", errors).and_then(|s| {
        s.parse::<PdSeverity>().map_err(|e| errors.push(format!("'payload.severity': {}", clean(&e, routing_key)))).ok()
    });
    let timestamp = optional("timestamp", errors);
    if let Some(t) = &timestamp
        && chrono::DateTime::parse_from_rfc3339(t).is_err()
        && chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z").is_err()
    {
        errors.push(format!("'payload.timestamp' is `{t}`: write ISO 8601 like 2015-07-17T08:42:58.315+0000"));
    }
    let (component, group, class) =
        (optional("component", errors), optional("group", errors), optional("class", errors));
    let custom_details = match p.get("custom_details") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| detail(k, v, routing_key)).collect(),
        Some(Value::String(s)) => BTreeMap::from([("details".to_string(), clean(s, routing_key))]),
        Some(other) => BTreeMap::from([("details".to_string(), clean(&other.to_string(), routing_key))]),
    };
    Some(PdPayload {
        summary: clean(&summary?, routing_key),
        source: clean(&source?, routing_key),
        severity: severity?,
        timestamp,
        component,
        group,
        class,
        custom_details,
    })
}

/// One `custom_details` entry as a label: text as is, anything else as compact JSON.
fn detail(key: &str, v: &Value, routing_key: &str) -> (String, String) {
    let key = clean(key, routing_key);
    let value = match (private_key(&key), v) {
        (Some(withheld), _) => withheld.to_string(),
        (None, Value::String(s)) => clean(s, routing_key),
        (None, other) => clean(&other.to_string(), routing_key),
    };
    (key, value)
}

/// `links` (href, text) or `images` (src, alt): arrays of objects.
fn link_list(
    obj: &Map<String, Value>,
    key: &str,
    href: &str,
    text: &str,
    routing_key: &str,
    errors: &mut Vec<String>,
) -> Vec<Link> {
    match obj.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item.get(href).and_then(Value::as_str) {
                Some(h) => Some(Link {
                    href: clean(h, routing_key),
                    text: item.get(text).and_then(Value::as_str).map(|t| clean(t, routing_key)),
                }),
                None => {
                    errors.push(format!("'{key}[{i}].{href}' is missing"));
                    None
                }
            })
            .collect(),
        Some(_) => {
            errors.push(format!("'{key}' must be an array of objects with '{href}'"));
            Vec::new()
        }
    }
}

/// Labels of a trigger: the payload's source, component, group and class,
/// the sender's client, links and images, and `custom.KEY` for each detail.
fn labels(ev: &PdEvent, p: &PdPayload) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("source".to_string(), p.source.clone());
    l.insert("pagerduty_severity".to_string(), p.severity.to_string());
    for (k, v) in [("component", &p.component), ("group", &p.group), ("class", &p.class), ("client", &ev.client)] {
        if let Some(v) = v {
            l.insert(k.to_string(), v.clone());
        }
    }
    if let Some(u) = &ev.client_url {
        l.insert("client_url".into(), u.clone());
    }
    if let Some(t) = &p.timestamp {
        l.insert("alert_timestamp".into(), t.clone());
    }
    for (kind, list) in [("link", &ev.links), ("image", &ev.images)] {
        for (i, link) in list.iter().enumerate() {
            let v = match &link.text {
                Some(t) if !t.is_empty() => format!("{t} <{}>", link.href),
                _ => link.href.clone(),
            };
            l.insert(format!("{kind}.{}", i + 1), v);
        }
    }
    for (k, v) in &p.custom_details {
        l.insert(format!("custom.{k}"), v.clone());
    }
    l
}

/// The report fields a playbook requires, from the payload: PagerDuty carries
/// no prose beyond its summary, so the rest says where it came from.
fn report_fields(pb: &Playbook, p: &PdPayload) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for f in &pb.report.require {
        let v = match f {
            ReportField::Nature => p.summary.clone(),
            ReportField::Scope => {
                let parts: Vec<String> =
                    [("source", Some(&p.source)), ("component", p.component.as_ref()), ("group", p.group.as_ref())]
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
                        .collect();
                parts.join(", ")
            }
            ReportField::Consequences => format!("not stated by the PagerDuty event (severity {})", p.severity),
            ReportField::Time => match &p.timestamp {
                Some(t) => t.clone(),
                None => continue,
            },
        };
        fields.insert(f.as_str().to_string(), v);
    }
    fields
}

/// A fresh dedup key for a trigger without one, like PagerDuty's: 32 hex characters.
fn generated_key() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Who sent the event, as the journal and the log say it: never the secret.
#[derive(Debug, Clone)]
struct Sender {
    /// The token's name: the intake name, or the person's roster id.
    name: String,
    /// The token's public id.
    token: Option<String>,
    /// `Some` for a person's token: acknowledgements are that person's.
    person: Option<String>,
}

impl Sender {
    fn journal_name(&self) -> String {
        match &self.person {
            Some(p) => format!("{p} (via pagerduty intake)"),
            None => format!("pagerduty intake token {}", self.name),
        }
    }
}

/// Authenticates the routing key like a bearer token. The reply to a bad key
/// is the same whether it is unknown, revoked or expired.
fn authenticate(st: &AppState, routing_key: &str) -> Result<Sender, PdError> {
    let caller = st.tokens.authenticate(routing_key).map_err(|why| {
        // The public id only, and only when the key is shaped like a token.
        let id = secret_id(routing_key).unwrap_or_else(|| "(not a crisis token)".into());
        tracing::warn!("pagerduty intake refused routing key {id}: {}", why.message());
        PdError::new(
            StatusCode::UNAUTHORIZED,
            "'routing_key' is not an active crisis token: use the secret of an intake token (crisis token create --intake NAME)",
        )
    })?;
    caller.may(Action::Intake).map_err(|why| PdError::new(StatusCode::FORBIDDEN, why))?;
    match caller.grant {
        Grant::Bootstrap => Err(PdError::new(
            StatusCode::FORBIDDEN,
            "the bootstrap admin token is no routing key: give the sender its own intake token (crisis token create --intake NAME)",
        )),
        Grant::Intake { name } => Ok(Sender { name, token: caller.token, person: None }),
        Grant::Person { person, .. } => Ok(Sender { name: person.clone(), token: caller.token, person: Some(person) }),
    }
}

/// `POST /v2/enqueue`.
async fn enqueue(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(&st, addr, body).await {
        Ok((dedup_key, result)) => {
            super::intake::count_result(&st, SOURCE, result);
            let reply = PdReply {
                status: "success",
                message: "Event processed",
                dedup_key: Some(dedup_key),
                errors: Vec::new(),
            };
            (StatusCode::ACCEPTED, Json(reply)).into_response()
        }
        Err(e) => {
            if e.code != StatusCode::TOO_MANY_REQUESTS {
                super::intake::count_result(&st, SOURCE, "rejected");
            }
            e.into_response()
        }
    }
}

/// The event's dedup key and the metrics result once it is journaled.
async fn handle(
    st: &Arc<AppState>,
    addr: SocketAddr,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, &'static str), PdError> {
    super::intake::check_rate(st, SOURCE, addr)?;
    let bytes = body.map_err(|r| PdError::new(r.status(), format!("the body could not be read: {}", r.body_text())))?;
    let raw: Value = serde_json::from_slice(&bytes)
        .map_err(|e| PdError::new(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))?;
    let ev = parse(&raw).map_err(|errors| PdError { code: StatusCode::BAD_REQUEST, errors })?;
    let sender = authenticate(st, &ev.routing_key)?;
    let g = st.engine.generation();
    let Some(playbook) = g.config.pagerduty.playbook_for(&sender.name).map(str::to_string) else {
        return Err(PdError::new(
            StatusCode::FORBIDDEN,
            format!(
                "no [intake.pagerduty] route for token `{}` and no default playbook: add routes = [{{ token = \"{}\", playbook = \"ID\" }}] or playbook = \"ID\" to crisis.toml",
                sender.name, sender.name
            ),
        ));
    };
    let Some(pb) = g.playbooks.get(&playbook).cloned() else {
        return Err(PdError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("playbook `{playbook}` is not loaded; see crisis status"),
        ));
    };
    let severity = ev.payload.as_ref().map(|p| g.config.pagerduty.severity(p.severity));
    drop(g);
    let who = sender.journal_name();
    let token = sender.token.clone().unwrap_or_default();
    let out = match ev.action {
        PdAction::Trigger => {
            let p = ev.payload.clone().ok_or_else(|| PdError::new(StatusCode::BAD_REQUEST, "'payload' is missing"))?;
            // Without a key: the playbook's template if it has one, else a fresh key.
            let has_template = pb.trigger.as_ref().and_then(|t| t.dedup_key.as_ref()).is_some();
            let fresh = generated_key();
            let (dedup_key, fallback) = match (&ev.dedup_key, has_template) {
                (Some(k), _) => (Some(k.clone()), None),
                (None, true) => (
                    None,
                    Some(FallbackKey {
                        key: fresh,
                        what: "a key generated for a PagerDuty event without dedup_key".into(),
                    }),
                ),
                (None, false) => (Some(fresh), None),
            };
            let req = TriggerRequest {
                playbook: playbook.clone(),
                title: Some(p.summary.clone()),
                severity,
                scope: None,
                fields: report_fields(&pb, &p),
                labels: labels(&ev, &p),
                dedup_key,
                source: SOURCE.into(),
                by: who.clone(),
            };
            let t = with_engine(st, move |e: &Engine| {
                match e.intake_batch(vec![IntakeOp::Trigger { req, fallback }])?.pop() {
                    Some(Ok(IntakeDone::Triggered(t))) => Ok(t),
                    Some(Err(err)) => Err(err),
                    _ => Err(EngineError::Internal(anyhow::anyhow!("an intake trigger returned no incident"))),
                }
            })
            .await?;
            let key = t.incident.dedup_key.clone().unwrap_or_default();
            let result = if t.deduped { "deduped" } else { "opened" };
            tracing::info!("pagerduty trigger from {who} ({token}): incident {} {result}", t.incident.id);
            (key, result)
        }
        PdAction::Acknowledge => {
            let key = ev.dedup_key.clone().unwrap_or_default();
            let (k, pbid, by, person) = (key.clone(), playbook.clone(), who.clone(), sender.person.clone());
            let done = with_engine(st, move |e: &Engine| match person {
                None => e.ack_by_key(&pbid, &k, &by),
                Some(person) => ack_as_person(e, &pbid, &k, &person),
            })
            .await?;
            let (result, what) = match &done {
                IntakeAck::Acknowledged(i) => ("acknowledged", format!("incident {} acknowledged", i.id)),
                IntakeAck::AlreadyAcknowledged(i) => {
                    ("already_acknowledged", format!("incident {} was already acknowledged", i.id))
                }
                IntakeAck::NoOpenIncident => {
                    ("no_open_incident", format!("no open incident of playbook {playbook} with that dedup key"))
                }
            };
            tracing::info!("pagerduty acknowledge from {who} ({token}): {what}");
            (key, result)
        }
        PdAction::Resolve => {
            let key = ev.dedup_key.clone().unwrap_or_default();
            let op = IntakeOp::Resolve { playbook: playbook.clone(), key: key.clone(), source: who.clone() };
            let done = with_engine(st, move |e: &Engine| match e.intake_batch(vec![op])?.pop() {
                Some(Ok(IntakeDone::Resolved(inc))) => Ok(inc),
                Some(Err(err)) => Err(err),
                _ => Err(EngineError::Internal(anyhow::anyhow!("an intake resolve returned nothing"))),
            })
            .await?;
            let (result, what) = match &done {
                Some(i) => ("resolved", format!("incident {} resolved", i.id)),
                None => ("no_open_incident", format!("no open incident of playbook {playbook} with that dedup key")),
            };
            tracing::info!("pagerduty resolve from {who} ({token}): {what}");
            (key, result)
        }
    };
    Ok(out)
}

/// A person's acknowledgement through PagerDuty: `crisis ack` as that person.
fn ack_as_person(e: &Engine, playbook: &str, key: &str, person: &str) -> Result<IntakeAck, EngineError> {
    let open = e.store().incidents(true, None)?;
    let Some(row) = open.iter().find(|r| r.playbook_id == playbook && r.dedup_key.as_deref() == Some(key)) else {
        return Ok(IntakeAck::NoOpenIncident);
    };
    let inc = e.incident(&row.id)?;
    if inc.acked_at.is_some() {
        return Ok(IntakeAck::AlreadyAcknowledged(inc));
    }
    e.ack(&row.id, person).map(IntakeAck::Acknowledged)
}

#[cfg(test)]
mod tests;
