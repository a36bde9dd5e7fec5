//! Intake: Alertmanager webhooks (version 4, as sent) and generic events.
//!
//! The alerts of one webhook are journaled in one transaction: 202 means
//! every alert the engine accepted is durable. An alert the engine refuses
//! for its content (dedup key too long, missing report field, unknown
//! playbook) is named under `rejected` and logged as a warning while the
//! rest of the group is journaled, and the answer is still 202: Alertmanager
//! does not retry a 4xx, and retrying a content error could never succeed.
//! Only a failure of the daemon itself (5xx) asks the sender to retry, and
//! then nothing of the group was written.

use super::AppState;
use super::api_types::{
    ApiError, EventAction, GenericEvent, IntakeOutcome, IntakeRejection, IntakeReply, IntakeResult,
};
use super::engine_call::with_engine;
use super::metrics::IntakeLabels;
use crate::incident::{Engine, EngineError, FallbackKey, IntakeDone, IntakeOp, TriggerRequest};
use crate::playbook::Playbook;
use arc_swap::ArcSwap;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often idle sources are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Per-source intake limit: `per_minute` requests with bursts up to as many,
/// refilled continuously. Sources idle long enough to be back at a full
/// allowance are dropped on a periodic sweep, so the map stays bounded by the
/// senders of the last minute. The rate follows `[limits] intake_per_minute`
/// of the serving configuration, so a reload changes it.
pub struct RateLimiter {
    limiter: ArcSwap<DefaultKeyedRateLimiter<IpAddr>>,
    per_minute: AtomicU32,
    last_sweep: Mutex<Instant>,
}

fn keyed(per_minute: u32) -> DefaultKeyedRateLimiter<IpAddr> {
    DefaultKeyedRateLimiter::hashmap(Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN)))
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests (at least 1) per source address.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            limiter: ArcSwap::from_pointee(keyed(per_minute)),
            per_minute: AtomicU32::new(per_minute),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Switches to a new rate when it differs from the current one. Every
    /// source starts over with a full allowance of the new rate.
    pub fn set_rate(&self, per_minute: u32) {
        if self.per_minute.swap(per_minute, Ordering::AcqRel) != per_minute {
            self.limiter.store(Arc::new(keyed(per_minute)));
            tracing::info!("intake rate limit is now {per_minute} requests a minute per source");
        }
    }

    /// Takes one request's allowance for `source`; false means "too many requests".
    pub fn allow(&self, source: IpAddr) -> bool {
        self.sweep_if_due();
        self.limiter.load().check_key(&source).is_ok()
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
        let l = self.limiter.load();
        l.retain_recent();
        l.shrink_to_fit();
    }
}

/// Caps request bodies at `[limits] max_body_kb` of the serving
/// configuration, read on every request so a reload changes it (413 past it).
pub(crate) async fn body_limit(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let max = st.engine.generation().config.limits.max_body_kb as usize * 1024;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {} KiB; raise [limits] max_body_kb", max / 1024),
        )
        .into_response();
    }
    // A body without a length is cut off at the limit while it is read.
    next.run(req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, max)))).await
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
pub(super) fn limit(st: &AppState, source: &str, addr: SocketAddr) -> Result<(), ApiError> {
    st.intake_limiter.set_rate(st.engine.generation().config.limits.intake_per_minute);
    if st.intake_limiter.allow(addr.ip()) {
        return Ok(());
    }
    count(st, source, "rate_limited");
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many intake requests from this source; slow down or raise [limits] intake_per_minute",
    ))
}

/// Playbooks whose `trigger.match` labels are all present in `labels`.
fn matching<'a>(
    playbooks: impl Iterator<Item = &'a Arc<Playbook>>,
    labels: &BTreeMap<String, String>,
) -> Vec<Arc<Playbook>> {
    playbooks
        .filter(|p| {
            p.trigger
                .as_ref()
                .is_some_and(|t| !t.matches.is_empty() && t.matches.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .cloned()
        .collect()
}

/// Fills required report fields from the alert so a real alert is never dropped for want of prose.
fn report_fields(
    pb: &Playbook,
    labels: &BTreeMap<String, String>,
    ann: &BTreeMap<String, String>,
    extra: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
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
                let l: Vec<String> =
                    labels.iter().filter(|(k, _)| *k != "alertname").map(|(k, v)| format!("{k}={v}")).collect();
                format!("labels {}", l.join(", "))
            }),
            "consequences" => first(&["consequences", "impact", "description"])
                .unwrap_or_else(|| format!("not stated by alert {alertname}")),
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
    if let Some(v) = &payload.version
        && v != "4"
    {
        count(&st, "alertmanager", "rejected");
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unsupported Alertmanager payload version {v}: crisis accepts version 4"),
        ));
    }
    let st2 = st.clone();
    let reply = with_engine(&st, move |e: &Engine| {
        let g = e.generation();
        let mut plan = Plan::default();
        for (index, a) in payload.alerts.iter().enumerate() {
            let pbs = matching(g.playbooks.values(), &a.labels);
            if pbs.is_empty() {
                plan.done(IntakeResult::Unmatched {
                    alert: a.labels.get("alertname").cloned(),
                    result: IntakeOutcome::Unmatched,
                });
                continue;
            }
            let fallback = a.fingerprint.as_deref().map(FallbackKey::alertmanager);
            for pb in pbs {
                let whose = Whose { index, fingerprint: a.fingerprint.clone(), playbook: pb.clone() };
                if a.status == "resolved" {
                    let key = match alert_key(&pb, a) {
                        Some(k) => Ok(Some(k)),
                        None => e.dedup_key_or(&pb, &a.labels, &BTreeMap::new(), fallback.as_ref()),
                    };
                    let source = format!("alertmanager (alert ended {})", a.ends_at.clone().unwrap_or_default());
                    match key {
                        Ok(Some(key)) => plan.op(whose, IntakeOp::Resolve { playbook: pb.id.clone(), key, source }),
                        Ok(None) => plan.done(resolved(&pb, None)),
                        Err(err) => plan.refuse(whose, err),
                    }
                } else {
                    let mut extra = BTreeMap::new();
                    if let Some(s) = &a.starts_at {
                        extra.insert("alert_starts_at".to_string(), s.clone());
                    }
                    let req = TriggerRequest {
                        playbook: pb.id.clone(),
                        title: a.annotations.get("summary").cloned(),
                        severity: a
                            .labels
                            .get("severity")
                            .and_then(|s| s.parse::<crate::playbook::types::Severity>().ok()),
                        fields: report_fields(&pb, &a.labels, &a.annotations, extra),
                        labels: a.labels.clone(),
                        dedup_key: alert_key(&pb, a),
                        source: "alertmanager".into(),
                        by: "alertmanager".into(),
                        ..Default::default()
                    };
                    plan.op(whose, IntakeOp::Trigger { req, fallback: fallback.clone() });
                }
            }
        }
        plan.run(e).map(|(reply, _)| reply)
    })
    .await
    .inspect_err(|_| count(&st2, "alertmanager", "rejected"))?;
    Ok(reply_with(&st, "alertmanager", reply))
}

/// Whose operation this is: the alert (by position) and the playbook it matched.
struct Whose {
    index: usize,
    fingerprint: Option<String>,
    playbook: Arc<Playbook>,
}

/// What intake will do with one request: results known without the engine,
/// operations for the batch, and refusals found while building them.
#[derive(Default)]
struct Plan {
    accepted: Vec<IntakeResult>,
    rejected: Vec<IntakeRejection>,
    ops: Vec<(Whose, IntakeOp)>,
    /// The first refusal, for a request whose only content was refused.
    first_refusal: Option<EngineError>,
}

impl Plan {
    fn done(&mut self, r: IntakeResult) {
        self.accepted.push(r);
    }

    fn op(&mut self, whose: Whose, op: IntakeOp) {
        self.ops.push((whose, op));
    }

    fn refuse(&mut self, whose: Whose, err: EngineError) {
        tracing::warn!(alert = whose.index, fingerprint = whose.fingerprint.as_deref().unwrap_or(""), playbook = %whose.playbook.id, "intake refused one alert (the rest of its group is journaled): {err}");
        self.rejected.push(IntakeRejection {
            index: whose.index,
            fingerprint: whose.fingerprint,
            playbook: Some(whose.playbook.id.clone()),
            reason: err.to_string(),
        });
        self.first_refusal.get_or_insert(err);
    }

    /// Runs the operations as one batch. Refusals of single alerts land in
    /// `rejected`; a store failure fails the whole request (nothing written).
    fn run(mut self, e: &Engine) -> Result<(IntakeReply, Option<EngineError>), EngineError> {
        let (whose, ops): (Vec<Whose>, Vec<IntakeOp>) = std::mem::take(&mut self.ops).into_iter().unzip();
        let results = if ops.is_empty() { Vec::new() } else { e.intake_batch(ops)? };
        for (w, r) in whose.into_iter().zip(results) {
            match r {
                Ok(IntakeDone::Triggered(t)) => self.done(triggered(&w.playbook, &t)),
                Ok(IntakeDone::Resolved(inc)) => self.done(resolved(&w.playbook, inc.map(|i| i.id))),
                Err(err) => self.refuse(w, err),
            }
        }
        Ok((IntakeReply { accepted: self.accepted, rejected: self.rejected }, self.first_refusal))
    }
}

/// Counts the reply in the metrics and answers 202.
fn reply_with(st: &AppState, source: &str, reply: IntakeReply) -> Response {
    for r in &reply.accepted {
        count(st, source, r.outcome().as_str());
    }
    for _ in &reply.rejected {
        count(st, source, "rejected");
    }
    (StatusCode::ACCEPTED, Json(reply)).into_response()
}

fn resolved(pb: &Playbook, incident: Option<String>) -> IntakeResult {
    let result = if incident.is_some() { IntakeOutcome::Resolved } else { IntakeOutcome::NoOpenIncident };
    IntakeResult::Playbook { playbook: pb.id.clone(), result, incident }
}

fn triggered(pb: &Playbook, t: &crate::incident::TriggerOutcome) -> IntakeResult {
    let result = if t.deduped { IntakeOutcome::Deduped } else { IntakeOutcome::Opened };
    IntakeResult::Playbook { playbook: pb.id.clone(), result, incident: Some(t.incident.id.clone()) }
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
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "an event names a `playbook` or carries `labels` to match playbooks",
        ));
    }
    let st2 = st.clone();
    let reply = with_engine(&st, move |e: &Engine| {
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
        let severity = ev.severity.as_deref().map(str::parse).transpose().map_err(EngineError::invalid)?;
        let mut plan = Plan::default();
        for pb in pbs {
            let whose = Whose { index: 0, fingerprint: None, playbook: pb.clone() };
            if action == EventAction::Resolve {
                let key = match &ev.dedup_key {
                    Some(k) => Ok(Some(k.clone())),
                    None => e.dedup_key_for(&pb, &ev.labels, &ev.fields),
                };
                match key {
                    Ok(Some(key)) => {
                        plan.op(whose, IntakeOp::Resolve { playbook: pb.id.clone(), key, source: source.clone() })
                    }
                    Ok(None) => plan.refuse(
                        whose,
                        EngineError::invalid(format!(
                            "cannot resolve by event: playbook {} has no dedup key for these labels; send dedup_key",
                            pb.id
                        )),
                    ),
                    Err(err) => plan.refuse(whose, err),
                }
            } else {
                let mut fields = ev.fields.clone();
                if let Some(s) = &ev.summary {
                    fields.entry("nature".into()).or_insert_with(|| s.clone());
                }
                let req = TriggerRequest {
                    playbook: pb.id.clone(),
                    title: ev.title.clone().or(ev.summary.clone()),
                    severity,
                    scope: ev.scope.clone(),
                    fields,
                    labels: ev.labels.clone(),
                    dedup_key: ev.dedup_key.clone(),
                    source: source.clone(),
                    by: source.clone(),
                };
                plan.op(whose, IntakeOp::Trigger { req, fallback: None });
            }
        }
        // One event refused for every playbook it named is the sender's error, as before.
        let (reply, first) = plan.run(e)?;
        match first {
            Some(err) if reply.accepted.is_empty() => Err(err),
            _ => Ok(reply),
        }
    })
    .await
    .inspect_err(|_| count(&st2, "events", "rejected"))?;
    if reply.accepted.is_empty() && reply.rejected.is_empty() {
        count(&st, "events", "unmatched");
    }
    Ok(reply_with(&st, "events", reply))
}

/// The shared per-source intake limit, for intake routes outside this module
/// (PagerDuty's `/v2/enqueue`): one allowance per source across every format.
pub(super) fn check_rate(st: &AppState, source: &str, addr: SocketAddr) -> Result<(), ApiError> {
    limit(st, source, addr)
}

/// Counts one intake request's result in `crisis_intake_total`, for intake routes outside this module.
pub(super) fn count_result(st: &AppState, source: &str, result: &str) {
    count(st, source, result);
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
        assert_eq!(l.limiter.load().len(), 50);
        std::thread::sleep(Duration::from_millis(20));
        l.sweep();
        assert_eq!(l.limiter.load().len(), 0);
    }
}
