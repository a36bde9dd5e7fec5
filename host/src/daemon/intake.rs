//! Intake: Alertmanager webhooks (version 4, as sent) and generic events.
//! Both answer 202 only once what they carried is journaled.

use super::api::{bad_json, with_engine, ApiError};
use super::metrics::IntakeLabels;
use super::AppState;
use crate::incident::{Engine, EngineError, TriggerRequest};
use crate::playbook::Playbook;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A per-source token bucket: `per_minute` requests, refilled continuously.
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter { per_minute: per_minute.max(1) as f64, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `source`; false means "too many requests".
    pub fn allow(&self, source: IpAddr) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = b.entry(source).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_minute / 60.0).min(self.per_minute);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One alert of an Alertmanager webhook payload (fields we use; others are ignored).
#[derive(Debug, Deserialize)]
struct AmAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    fingerprint: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AmPayload {
    version: Option<String>,
    alerts: Vec<AmAlert>,
}

fn count(st: &AppState, source: &str, result: &str) {
    st.metrics.intake.get_or_create(&IntakeLabels { source: source.into(), result: result.into() }).inc();
}

fn limited(st: &AppState, source: &str, addr: SocketAddr) -> Option<Response> {
    if st.intake_limiter.allow(addr.ip()) {
        return None;
    }
    count(st, source, "rate_limited");
    Some((StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], Json(json!({"error": "too many intake requests from this source; slow down or raise [limits] intake_per_minute"})))
        .into_response())
}

/// Playbooks whose `trigger.match` labels are all present in `labels`.
fn matching<'a>(playbooks: impl Iterator<Item = &'a Arc<Playbook>>, labels: &BTreeMap<String, String>) -> Vec<Arc<Playbook>> {
    playbooks
        .filter(|p| {
            p.trigger.as_ref().is_some_and(|t| !t.matches.is_empty() && t.matches.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .cloned()
        .collect()
}

/// Fills required report fields from the alert so a real alert is never dropped for want of prose.
fn report_fields(pb: &Playbook, labels: &BTreeMap<String, String>, ann: &BTreeMap<String, String>, extra: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut fields = extra;
    let alertname = labels.get("alertname").cloned().unwrap_or_else(|| "alert".into());
    let first = |keys: &[&str]| keys.iter().find_map(|k| ann.get(*k).filter(|v| !v.is_empty()).cloned());
    for f in &pb.report.require {
        let key = f.as_str().to_string();
        if fields.contains_key(&key) {
            continue;
        }
        let v = match key.as_str() {
            "nature" => first(&["nature", "summary", "description"]).unwrap_or_else(|| format!("{alertname} firing")),
            "scope" => first(&["scope", "impact"]).unwrap_or_else(|| {
                let l: Vec<String> = labels.iter().filter(|(k, _)| *k != "alertname").map(|(k, v)| format!("{k}={v}")).collect();
                format!("labels {}", l.join(", "))
            }),
            "consequences" => first(&["consequences", "impact", "description"]).unwrap_or_else(|| format!("not stated by alert {alertname}")),
            _ => continue,
        };
        fields.insert(key, v);
    }
    fields
}

/// Dedup key for an alert: the playbook's template, else Alertmanager's fingerprint.
fn alert_key(pb: &Playbook, a: &AmAlert) -> Option<String> {
    let has_template = pb.trigger.as_ref().and_then(|t| t.dedup_key.as_ref()).is_some();
    if has_template { None } else { a.fingerprint.clone().map(|f| format!("am:{f}")) }
}

pub async fn alertmanager(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    if let Some(r) = limited(&st, "alertmanager", addr) {
        return Ok(r);
    }
    let Json(raw) = body.map_err(|e| {
        count(&st, "alertmanager", "rejected");
        bad_json(e)
    })?;
    let payload: AmPayload = serde_json::from_value(raw).map_err(|e| {
        count(&st, "alertmanager", "rejected");
        ApiError::new(StatusCode::BAD_REQUEST, format!("not an Alertmanager webhook payload: {e}"))
    })?;
    if let Some(v) = &payload.version {
        if v != "4" {
            count(&st, "alertmanager", "rejected");
            return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("unsupported Alertmanager payload version {v}: crisis accepts version 4")));
        }
    }
    let st2 = st.clone();
    let results = with_engine(&st, move |e: &Engine| {
        let g = e.generation();
        let mut out = Vec::new();
        for a in &payload.alerts {
            let pbs = matching(g.playbooks.values(), &a.labels);
            if pbs.is_empty() {
                out.push(json!({"alert": a.labels.get("alertname"), "result": "unmatched"}));
                continue;
            }
            for pb in pbs {
                let mut extra = BTreeMap::new();
                if let Some(s) = &a.starts_at {
                    extra.insert("alert_starts_at".to_string(), s.clone());
                }
                let key = alert_key(&pb, a);
                if a.status == "resolved" {
                    let key = match key {
                        Some(k) => Some(k),
                        None => render_key(e, &pb, &a.labels)?,
                    };
                    let res = match key {
                        Some(k) => e.resolve_by_key(&pb.id, &k, &format!("alertmanager (alert ended {})", a.ends_at.clone().unwrap_or_default()))?,
                        None => None,
                    };
                    out.push(json!({"playbook": pb.id, "result": if res.is_some() { "resolved" } else { "no-open-incident" }, "incident": res.map(|i| i.id)}));
                } else {
                    let fields = report_fields(&pb, &a.labels, &a.annotations, extra);
                    let t = e.trigger(TriggerRequest {
                        playbook: pb.id.clone(),
                        title: a.annotations.get("summary").cloned(),
                        severity: a.labels.get("severity").and_then(|s| s.parse::<crate::playbook::types::Severity>().ok()),
                        fields,
                        labels: a.labels.clone(),
                        dedup_key: key,
                        source: "alertmanager".into(),
                        by: "alertmanager".into(),
                        ..Default::default()
                    })?;
                    out.push(json!({"playbook": pb.id, "result": if t.deduped { "deduped" } else { "opened" }, "incident": t.incident.id}));
                }
            }
        }
        Ok(out)
    })
    .await
    .inspect_err(|_| count(&st2, "alertmanager", "rejected"))?;
    for r in &results {
        count(&st, "alertmanager", r["result"].as_str().unwrap_or("accepted"));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": results}))).into_response())
}

fn render_key(e: &Engine, pb: &Playbook, labels: &BTreeMap<String, String>) -> Result<Option<String>, EngineError> {
    e.dedup_key_for(pb, labels, &BTreeMap::new())
}

/// A generic event: name a playbook or give labels to match.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericEvent {
    playbook: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    severity: Option<String>,
    summary: Option<String>,
    title: Option<String>,
    scope: Option<String>,
    dedup_key: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    /// `trigger` (default) or `resolve`.
    action: Option<String>,
    /// Who sent it, for the journal.
    source: Option<String>,
}

pub async fn events(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    if let Some(r) = limited(&st, "events", addr) {
        return Ok(r);
    }
    let Json(raw) = body.map_err(|e| {
        count(&st, "events", "rejected");
        bad_json(e)
    })?;
    let ev: GenericEvent = serde_json::from_value(raw).map_err(|e| {
        count(&st, "events", "rejected");
        ApiError::new(StatusCode::BAD_REQUEST, format!("malformed event: {e}"))
    })?;
    let action = ev.action.clone().unwrap_or_else(|| "trigger".into());
    if action != "trigger" && action != "resolve" {
        count(&st, "events", "rejected");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("unknown action `{action}`: use trigger or resolve")));
    }
    if ev.playbook.is_none() && ev.labels.is_empty() {
        count(&st, "events", "rejected");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "an event names a `playbook` or carries `labels` to match playbooks"));
    }
    let st2 = st.clone();
    let results = with_engine(&st, move |e: &Engine| {
        let g = e.generation();
        let pbs: Vec<Arc<Playbook>> = match &ev.playbook {
            Some(id) => match g.playbooks.get(id) {
                Some(p) => vec![p.clone()],
                None => {
                    let nearby = crate::diag::nearby(id, g.playbooks.keys().map(String::as_str));
                    return Err(EngineError::NotFound { what: "playbook", id: id.clone(), nearby });
                }
            },
            None => matching(g.playbooks.values(), &ev.labels),
        };
        let source = ev.source.clone().unwrap_or_else(|| "events".into());
        let mut out = Vec::new();
        for pb in pbs {
            if action == "resolve" {
                let key = match &ev.dedup_key {
                    Some(k) => Some(k.clone()),
                    None => e.dedup_key_for(&pb, &ev.labels, &ev.fields)?,
                };
                let Some(key) = key else {
                    return Err(EngineError::invalid(format!("cannot resolve by event: playbook {} has no dedup key for these labels; send dedup_key", pb.id)));
                };
                let r = e.resolve_by_key(&pb.id, &key, &source)?;
                out.push(json!({"playbook": pb.id, "result": if r.is_some() { "resolved" } else { "no-open-incident" }, "incident": r.map(|i| i.id)}));
            } else {
                let mut fields = ev.fields.clone();
                if let Some(s) = &ev.summary {
                    fields.entry("nature".into()).or_insert_with(|| s.clone());
                }
                let t = e.trigger(TriggerRequest {
                    playbook: pb.id.clone(),
                    title: ev.title.clone().or(ev.summary.clone()),
                    severity: ev.severity.as_deref().map(str::parse).transpose().map_err(EngineError::invalid)?,
                    scope: ev.scope.clone(),
                    fields,
                    labels: ev.labels.clone(),
                    dedup_key: ev.dedup_key.clone(),
                    source: source.clone(),
                    by: source.clone(),
                })?;
                out.push(json!({"playbook": pb.id, "result": if t.deduped { "deduped" } else { "opened" }, "incident": t.incident.id}));
            }
        }
        Ok(out)
    })
    .await
    .inspect_err(|_| count(&st2, "events", "rejected"))?;
    if results.is_empty() {
        count(&st, "events", "unmatched");
    }
    for r in &results {
        count(&st, "events", r["result"].as_str().unwrap_or("accepted"));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"accepted": results}))).into_response())
}
