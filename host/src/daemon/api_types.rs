//! The API's request and reply bodies, shared by the axum handlers and the
//! CLI client so both ends serialize the same types. Field names here are the
//! wire format: renaming one breaks clients and `--json` output.

pub(crate) use super::paging::PageLimit;
use crate::drill::ClockMode;
use crate::drill::index::RunRow;
use crate::incident::state::{Incident, Status};
use crate::playbook::types::{Category, Phase, Severity};
use crate::plugin::PluginStatus;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub(crate) use crate::daemon::reload::Attempt as ReloadAttempt;
pub(crate) use crate::incident::{StepAction, TriggerRequest};
pub(crate) use crate::store::VerifyReport;
use crate::store::{TokenKind, TokenRole};

// ------------------------------------------------------------------ errors

/// What kind of failure an error reply reports. Why: clients branch on a
/// stable code rather than on the English message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ErrorCode {
    Malformed,
    Invalid,
    NotFound,
    Conflict,
    Unauthorized,
    Forbidden,
    RateLimited,
    Internal,
}

impl ErrorCode {
    fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::BAD_REQUEST => ErrorCode::Malformed,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::CONFLICT => ErrorCode::Conflict,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
            s if s.is_client_error() => ErrorCode::Invalid,
            _ => ErrorCode::Internal,
        }
    }
}

/// The JSON body of every error reply. Why: one shape for the CLI to decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// Known names close to the one that was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nearby: Option<Vec<String>>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// An error reply: status plus [`ErrorBody`]. Why: every handler, intake and
/// the CLI speak this one type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with a message; the code follows from the status.
    pub(crate) fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody { error: msg.into(), code: Some(ErrorCode::for_status(status)), nearby: None, hint: None },
        }
    }

    /// 500 for a failure that is not the caller's; the cause goes to the log.
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {e:#}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))
    }

    /// Adds the names close to a missing one.
    pub(crate) fn with_nearby(mut self, nearby: Vec<String>) -> Self {
        self.body.nearby = Some(nearby);
        self
    }

    /// Adds the next step a person can take, as its own field.
    pub(crate) fn with_hint(mut self, hint: Option<String>) -> Self {
        self.body.hint = hint;
        self
    }

    /// The CLI's exit code for this reply: 2 invalid input, 3 not found, 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self.status.as_u16() {
            400 | 422 => 2,
            404 => 3,
            _ => 1,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `error` is the whole sentence a person reads, the next step included;
        // `hint` repeats that step alone for front ends that show it apart.
        f.write_str(&self.body.error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

// ---------------------------------------------------------------- requests

/// `POST /v1/incidents/{id}/ack` and `/resolve`: who acts (`as`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ActorBody {
    #[serde(rename = "as")]
    pub by: Option<String>,
}

/// `POST /v1/incidents/{id}/assign`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AssignBody {
    pub role: String,
    pub to: String,
    #[serde(rename = "as")]
    pub by: Option<String>,
}

/// `POST /v1/incidents/{id}/approve`: activation, or one approval step.
/// `as` may be left out with a person's token: that person approves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApproveBody {
    pub step: Option<String>,
    #[serde(rename = "as", default)]
    pub by: Option<String>,
}

/// `POST /v1/tokens`: a person's token (with a role) or an intake token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum CreateTokenBody {
    Person { person: String, role: TokenRole, expires_in_secs: Option<u64> },
    Intake { name: String, expires_in_secs: Option<u64> },
}

/// One token of `GET /v1/tokens` (never its secret or the secret's hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TokenInfo {
    pub id: String,
    pub kind: TokenKind,
    /// The person id, or the intake source's name.
    pub subject: String,
    pub role: Option<TokenRole>,
    pub state: TokenState,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

/// Whether a token is usable now, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenState {
    Active,
    Expired,
    Revoked,
}

/// Reply to `POST /v1/tokens`: the secret, this once only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CreatedToken {
    pub token: TokenInfo,
    pub secret: String,
}

/// `POST /v1/incidents/{id}/steps/{step}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepBody {
    pub action: StepAction,
    pub note: Option<String>,
    #[serde(rename = "as")]
    pub by: Option<String>,
}

/// `POST /v1/incidents/{id}/updates`: a progress note.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UpdateBody {
    pub note: String,
    #[serde(rename = "as")]
    pub by: Option<String>,
}

/// `POST /v1/incidents/{id}/outcome`: the outcome report's prose.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct OutcomeBody {
    #[serde(default)]
    pub cause: String,
    #[serde(default)]
    pub process: String,
    #[serde(default)]
    pub aftermath: String,
    #[serde(rename = "as")]
    pub by: Option<String>,
}

/// A body for POSTs that carry nothing (`{}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EmptyBody {}

/// `GET /v1/incidents?open=&mode=&limit=&after=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub open: bool,
    pub mode: Option<String>,
    /// Page size; [`PageLimit::DEFAULT`] when absent.
    pub limit: Option<PageLimit>,
    /// Continue after this incident: the previous page's `next`.
    pub after: Option<String>,
}

/// `GET /v1/incidents/{id}/events?after=`: events after a sequence number.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    pub after: i64,
}

/// How a report is rendered (`?format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    Markdown,
    Json,
}

impl ReportFormat {
    /// The `format` query value that asks for this rendering.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "md",
            ReportFormat::Json => "json",
        }
    }

    /// Parses `?format=` (absent means JSON); the error is the 400 reply.
    pub(crate) fn from_query(q: Option<&str>) -> Result<ReportFormat, ApiError> {
        match q {
            None | Some("json") => Ok(ReportFormat::Json),
            Some("md") | Some("markdown") => Ok(ReportFormat::Markdown),
            Some(other) => {
                Err(ApiError::new(StatusCode::BAD_REQUEST, format!("unknown report format `{other}`: use md or json")))
            }
        }
    }
}

/// `?format=` of the report endpoints, parsed with [`ReportFormat::from_query`].
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ReportQuery {
    pub format: Option<String>,
}

/// `POST /v1/drills/runs`: start a drill now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DrillStartRequest {
    pub playbook: String,
    pub clock: Option<ClockMode>,
    pub seed: Option<u64>,
}

/// `POST /v1/intake/events`: `trigger` (default) or `resolve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EventAction {
    #[default]
    Trigger,
    Resolve,
}

/// `POST /v1/intake/events`: name a playbook or give labels to match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenericEvent {
    pub playbook: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub severity: Option<String>,
    pub summary: Option<String>,
    pub title: Option<String>,
    pub scope: Option<String>,
    pub dedup_key: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub action: EventAction,
    /// Who sent it, for the journal.
    pub source: Option<String>,
}

// ----------------------------------------------------------------- replies

/// Reply to `POST /v1/incidents`: 201 opened, 200 attached to an open one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TriggerReply {
    pub deduped: bool,
    pub incident: Incident,
}

/// Reply to `GET /v1/incidents`: one page of the list, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IncidentList {
    pub incidents: Vec<IncidentSummary>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// One row of `GET /v1/incidents`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IncidentSummary {
    pub id: String,
    pub playbook: String,
    pub mode: String,
    pub status: String,
    pub phase: String,
    pub severity: String,
    pub title: String,
    pub opened_at: i64,
    pub dedup_key: Option<String>,
}

/// One journal event as `crisis timeline` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TimelineEvent {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    /// One readable line.
    pub text: String,
    pub data: serde_json::Value,
}

/// Reply to `GET /v1/incidents/{id}/events`: the state tells `--follow` when to stop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Timeline {
    pub status: Status,
    pub phase: Phase,
    pub events: Vec<TimelineEvent>,
}

/// One playbook of `GET /v1/playbooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlaybookSummary {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub category: Category,
    pub hash: String,
    pub path: PathBuf,
}

/// Reply to `GET /v1/playbooks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlaybookList {
    pub generation: u64,
    pub playbooks: Vec<PlaybookSummary>,
}

/// A playbook file of the applied generation, in `crisis status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlaybookFile {
    pub id: String,
    pub path: PathBuf,
    pub hash: String,
}

/// A hashed input file of the applied generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileHash {
    pub path: PathBuf,
    pub sha256: String,
}

/// The generation serving requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppliedGeneration {
    pub generation: u64,
    pub set_hash: String,
    pub loaded_at: String,
    pub files: Vec<FileHash>,
}

/// The files on disk now, compared with the applied generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OnDisk {
    pub set_hash: Option<String>,
    pub error: Option<String>,
    pub differs: bool,
}

/// How changes on disk are noticed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WatcherStatus {
    pub mode: String,
    pub healthy: bool,
}

/// The reload part of `crisis status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReloadStatus {
    pub ready: bool,
    pub applied: AppliedGeneration,
    pub on_disk: OnDisk,
    pub last_attempt: Option<ReloadAttempt>,
    pub errors: Vec<String>,
    pub watcher: WatcherStatus,
    /// The cluster generation and this node's drift from it; absent on a single-node store.
    #[serde(default)]
    pub cluster: Option<super::cluster_gen::ClusterStatus>,
}

/// Reply to `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusReply {
    pub ready: bool,
    pub version: String,
    pub started_at: String,
    /// The configuration file, or `<embedded defaults>`.
    pub config: String,
    pub state_dir: PathBuf,
    pub listen: String,
    pub playbooks: Vec<PlaybookFile>,
    pub reload: ReloadStatus,
    pub plugins: Vec<PluginStatus>,
    pub open_incidents: usize,
    /// Delivery health: breakers, pending effects per target, dead letters.
    #[serde(default)]
    pub outbox: OutboxStatus,
    /// The daemons sharing the journal: heartbeat, alive, what each holds.
    #[serde(default)]
    pub nodes: Vec<super::node_status::NodeStatus>,
    /// Whether this node runs the drill scheduler (always, on a single-node store).
    #[serde(default)]
    pub scheduler: bool,
    /// When this node's scheduler last decided the schedule, if it runs it.
    #[serde(default)]
    pub scheduler_checked_at: Option<String>,
}

/// The outbox as `crisis status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct OutboxStatus {
    /// Every delivery lane used since the daemon started, with its breaker.
    pub breakers: Vec<BreakerStatus>,
    /// Targets whose breaker holds calls back now.
    pub open_breakers: Vec<String>,
    /// Pending side effects per target.
    pub depth: std::collections::BTreeMap<String, i64>,
    /// Per target, how long its oldest pending side effect has waited (seconds).
    #[serde(default)]
    pub oldest_age_seconds: std::collections::BTreeMap<String, f64>,
    /// Side effects executed per target in the last minute.
    #[serde(default)]
    pub executed_last_minute: std::collections::BTreeMap<String, u64>,
    /// How many timers and intents are dead-lettered.
    pub dead_letter_count: usize,
    pub dead_letters: Vec<crate::store::DeadLetter>,
    /// Storm-control counters per target that has had a digest window.
    #[serde(default)]
    pub digests: Vec<crate::incident::digest::DigestCounters>,
}

/// One delivery lane's circuit breaker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BreakerStatus {
    /// The target, or `target/channel` for customer messages.
    pub lane: String,
    pub target: String,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// Consecutive failures while closed.
    #[serde(default)]
    pub failures: u32,
    /// When an open breaker lets one probe call through.
    pub until: Option<String>,
}

/// Reply to `POST /v1/intents/{id}/retry`: the incident after the re-drive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RetryReply {
    pub invocation_id: String,
    pub incident: String,
}

/// What intake did with one alert or event for one playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum IntakeOutcome {
    Opened,
    Deduped,
    Resolved,
    NoOpenIncident,
    Unmatched,
}

impl IntakeOutcome {
    /// The wire name, also the `result` label of the intake metric.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IntakeOutcome::Opened => "opened",
            IntakeOutcome::Deduped => "deduped",
            IntakeOutcome::Resolved => "resolved",
            IntakeOutcome::NoOpenIncident => "no-open-incident",
            IntakeOutcome::Unmatched => "unmatched",
        }
    }
}

/// One entry of an intake reply: per matched playbook, or an unmatched alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum IntakeResult {
    Playbook { playbook: String, result: IntakeOutcome, incident: Option<String> },
    Unmatched { alert: Option<String>, result: IntakeOutcome },
}

impl IntakeResult {
    /// What happened, for metrics.
    pub(crate) fn outcome(&self) -> IntakeOutcome {
        match self {
            IntakeResult::Playbook { result, .. } | IntakeResult::Unmatched { result, .. } => *result,
        }
    }
}

/// Reply to the intake endpoints (202).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IntakeReply {
    pub accepted: Vec<IntakeResult>,
    /// Alerts the engine refused for their content; the rest were journaled.
    #[serde(default)]
    pub rejected: Vec<IntakeRejection>,
}

/// One alert of a group the engine refused (dedup key too long, missing
/// report field, unknown playbook): named in the reply instead of failing
/// the group, because Alertmanager does not retry a 4xx.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct IntakeRejection {
    /// Position of the alert in the payload's `alerts`.
    pub index: usize,
    pub fingerprint: Option<String>,
    /// The playbook the alert was refused for.
    pub playbook: Option<String>,
    pub reason: String,
}

/// When a scheduled drill runs next, in UTC and in the playbook's zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NextRun {
    pub utc: String,
    pub local: String,
}

/// The last drill run of a playbook, in `crisis drill list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LastRun {
    pub id: String,
    pub score: Option<u32>,
    pub verdict: Option<String>,
    pub hash: String,
    pub finished_at: Option<i64>,
}

/// One playbook's drill schedule and history, in `crisis drill list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DrillPlaybook {
    pub id: String,
    pub path: PathBuf,
    pub hash: String,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub clock: Option<String>,
    pub suspended: bool,
    pub next: Option<NextRun>,
    pub last_run: Option<LastRun>,
    pub never_drilled: bool,
    pub changed_since_last_drill: bool,
    /// The last five scored runs, oldest first.
    #[serde(default)]
    pub recent_scores: Vec<crate::drill::trend::TrendPoint>,
}

/// Reply to `GET /v1/drills`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DrillList {
    pub runs: Vec<RunRow>,
    pub playbooks: Vec<DrillPlaybook>,
}

/// Reply to `POST /v1/drills/schedules/{playbook}/{suspend|resume}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScheduleSwitch {
    pub playbook: String,
    pub suspended: bool,
    pub next: Option<NextRun>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_body_omits_what_it_lacks_and_keeps_nearby() {
        let e = ApiError::new(StatusCode::NOT_FOUND, "no playbook `x`").with_nearby(vec![]);
        assert_eq!(
            serde_json::to_value(&e.body).unwrap(),
            json!({"error": "no playbook `x`", "code": "not-found", "nearby": []})
        );
        assert_eq!(e.exit_code(), 3);
        assert_eq!(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad").exit_code(), 2);
        assert_eq!(ApiError::new(StatusCode::BAD_REQUEST, "bad").exit_code(), 2);
        assert_eq!(ApiError::new(StatusCode::CONFLICT, "busy").exit_code(), 1);
        let back: ErrorBody = serde_json::from_value(json!({"error": "old daemon"})).unwrap();
        assert_eq!(back.error, "old daemon");
        assert!(back.code.is_none() && back.nearby.is_none() && back.hint.is_none());
    }

    #[test]
    fn intake_results_keep_their_wire_shapes() {
        let opened = IntakeResult::Playbook {
            playbook: "p".into(),
            result: IntakeOutcome::Opened,
            incident: Some("INC-1".into()),
        };
        let none =
            IntakeResult::Playbook { playbook: "p".into(), result: IntakeOutcome::NoOpenIncident, incident: None };
        let unmatched = IntakeResult::Unmatched { alert: Some("Disk".into()), result: IntakeOutcome::Unmatched };
        assert_eq!(
            serde_json::to_value(&opened).unwrap(),
            json!({"playbook": "p", "result": "opened", "incident": "INC-1"})
        );
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            json!({"playbook": "p", "result": "no-open-incident", "incident": null})
        );
        assert_eq!(serde_json::to_value(&unmatched).unwrap(), json!({"alert": "Disk", "result": "unmatched"}));
        for r in [opened, none, unmatched] {
            let back: IntakeResult = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn request_bodies_use_as_for_the_actor() {
        let b = StepBody { action: StepAction::Skip, note: None, by: Some("ana".into()) };
        assert_eq!(serde_json::to_value(&b).unwrap(), json!({"action": "skip", "note": null, "as": "ana"}));
        assert_eq!(serde_json::to_value(EmptyBody {}).unwrap(), json!({}));
    }

    #[test]
    fn report_format_parses_the_query() {
        assert_eq!(ReportFormat::from_query(None).unwrap(), ReportFormat::Json);
        assert_eq!(ReportFormat::from_query(Some("markdown")).unwrap(), ReportFormat::Markdown);
        assert_eq!(ReportFormat::from_query(Some("pdf")).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
