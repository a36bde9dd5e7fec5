//! Intake: Alertmanager webhooks (version 4, as sent) and generic events.
//! Both answer 202 only once what they carried is journaled.

use super::engine_call::with_engine;
use super::api_types::{ApiError, EventAction, GenericEvent, IntakeOutcome, IntakeReply, IntakeResult};
use super::metrics::IntakeLabels;
use super::AppState;
use crate::incident::{Engine, EngineError, TriggerRequest};
use crate::playbook::Playbook;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often idle sources are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Per-source intake limit: `per_minute` requests with bursts up to as many,
/// refilled continuously. Sources idle long enough to be back at a full
/// allowance are dropped on a periodic sweep, so the map stays bounded by the
/// senders of the last minute.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    last_sweep: Mutex<Instant>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests (at least 1) per source address.
    pub fn new(per_minute: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        RateLimiter { limiter: DefaultKeyedRateLimiter::hashmap(quota), last_sweep: Mutex::new(Instant::now()) }
    }

    /// Takes one request's allowance for `source`; false means "too many requests".
    pub fn allow(&self, source: IpAddr) -> bool {
        self.sweep_if_due();
        self.limiter.check_key(&source).is_ok()
    }

    fn sweep_if_due(&self) {
        let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= SWEEP_EVERY {
            *last = Instant::now();
            self.sweep();
        }
    }

    /// Forgets sources whose allowance is full again.
    fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
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

/// 429 (with `retry-after: 1`) once a source exceeds `[limits] intake_per_minute`.
fn limit(st: &AppState, source: &str, addr: SocketAddr) -> Result<(), ApiError> {
    if st.intake_limiter.allow(addr.ip()) {
        return Ok(());
    }
    count(st, source, "rate_limited");
    Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many intake requests from this source; slow down or raise [limits] intake_per_minute"))
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

/// `POST /v1/intake/alertmanager`: opens or resolves incidents of the playbooks each alert matches.
pub(crate) async fn alertmanager(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    limit(&st, "alertmanager", addr)?;
    let Json(raw) = body.map_err(|e| {
        count(&st, "alertmanager", "rejected");
        ApiError::from(e)
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
                out.push(IntakeResult::Unmatched { alert: a.labels.get("alertname").cloned(), result: IntakeOutcome::Unmatched });
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
                    out.push(resolved(&pb, res.map(|i| i.id)));
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
                    out.push(triggered(&pb, &t));
                }
            }
        }
        Ok(out)
    })
    .await
    .inspect_err(|_| count(&st2, "alertmanager", "rejected"))?;
    for r in &results {
        count(&st, "alertmanager", r.outcome().as_str());
    }
    Ok((StatusCode::ACCEPTED, Json(IntakeReply { accepted: results })).into_response())
}

fn resolved(pb: &Playbook, incident: Option<String>) -> IntakeResult {
    let result = if incident.is_some() { IntakeOutcome::Resolved } else { IntakeOutcome::NoOpenIncident };
    IntakeResult::Playbook { playbook: pb.id.clone(), result, incident }
}

fn triggered(pb: &Playbook, t: &crate::incident::TriggerOutcome) -> IntakeResult {
    let result = if t.deduped { IntakeOutcome::Deduped } else { IntakeOutcome::Opened };
    IntakeResult::Playbook { playbook: pb.id.clone(), result, incident: Some(t.incident.id.clone()) }
}

fn render_key(e: &Engine, pb: &Playbook, labels: &BTreeMap<String, String>) -> Result<Option<String>, EngineError> {
    e.dedup_key_for(pb, labels, &BTreeMap::new())
}

/// `POST /v1/intake/events`: triggers or resolves by playbook id or by labels.
pub(crate) async fn events(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    limit(&st, "events", addr)?;
    let Json(raw) = body.map_err(|e| {
        count(&st, "events", "rejected");
        ApiError::from(e)
    })?;
    let ev: GenericEvent = serde_json::from_value(raw).map_err(|e| {
        count(&st, "events", "rejected");
        ApiError::new(StatusCode::BAD_REQUEST, format!("malformed event: {e}"))
    })?;
    let action = ev.action;
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
            if action == EventAction::Resolve {
                let key = match &ev.dedup_key {
                    Some(k) => Some(k.clone()),
                    None => e.dedup_key_for(&pb, &ev.labels, &ev.fields)?,
                };
                let Some(key) = key else {
                    return Err(EngineError::invalid(format!("cannot resolve by event: playbook {} has no dedup key for these labels; send dedup_key", pb.id)));
                };
                let r = e.resolve_by_key(&pb.id, &key, &source)?;
                out.push(resolved(&pb, r.map(|i| i.id)));
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
                out.push(triggered(&pb, &t));
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
        count(&st, "events", r.outcome().as_str());
    }
    Ok((StatusCode::ACCEPTED, Json(IntakeReply { accepted: results })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_source_to_its_rate() {
        let l = RateLimiter::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(l.allow(a));
        assert!(l.allow(a));
        assert!(!l.allow(a), "a third request within the minute is refused");
        assert!(l.allow(b), "another source has its own allowance");
    }

    #[test]
    fn sweep_forgets_sources_back_at_a_full_allowance() {
        // 60 000 a minute: one request's allowance returns after 1 ms.
        let l = RateLimiter::new(60_000);
        for i in 0..50u8 {
            assert!(l.allow(IpAddr::from([10, 0, 0, i])));
        }
        assert_eq!(l.limiter.len(), 50);
        std::thread::sleep(Duration::from_millis(20));
        l.sweep();
        assert_eq!(l.limiter.len(), 0);
    }
}
