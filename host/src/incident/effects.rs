//! Side effects: what the engine asks the outside world to do.
//!
//! Every notification or customer message is first written as an intent
//! (with an invocation id that doubles as the idempotency key), then run by
//! an [`Executor`], then its result is journaled. After a crash, intents
//! without a result run again with the same id.

use crate::playbook::types::{Category, Mode, Phase, Purpose, Severity};
use serde::{Deserialize, Serialize};

/// Which kind of side effect an intent is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EffectKind {
    /// A message to a notification target (people, channels, webhooks).
    Notify,
    /// A message composed for one customer by an appeasement plugin.
    Appease,
}

/// What plugins may know of an incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentSummary {
    /// The incident id, e.g. `INC-42`.
    pub id: String,
    /// The incident title as people see it.
    pub title: String,
    /// Id of the playbook the incident runs.
    pub playbook_id: String,
    /// Current severity of the incident.
    pub severity: Severity,
    /// The playbook's incident category.
    pub category: Category,
    /// The phase the incident is in when the effect was recorded.
    pub phase: Phase,
    /// A short rendered summary of the incident for the message.
    pub summary: String,
}

/// A customer as an appeasement plugin sees them: no contact details.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomerRef {
    /// The customer's id in the customer source.
    pub id: String,
    /// The customer's segment, e.g. `affected`, `enterprise`.
    pub segment: String,
    /// The customer's tier, e.g. `vip`, `standard`.
    pub tier: String,
    /// BCP 47 locale to write the message in, e.g. `zh-CN`.
    pub locale: String,
    /// The channel the message will be sent on, e.g. `email`, `sms`.
    pub channel: String,
}

/// The stored description of one side effect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntentPayload {
    /// Whether this is a notification or a customer message.
    pub kind: EffectKind,
    /// Why it was recorded; its effects are counted under this purpose.
    pub purpose: Purpose,
    /// The notification target that delivers it.
    pub target: String,
    /// `log` or the notifier plugin of the target.
    pub notifier: String,
    /// For appease intents: the appeasement plugin that composes the message.
    pub composer: Option<String>,
    /// Fixed by the host; drill effects never reach real people.
    pub mode: Mode,
    /// What the delivering and composing plugins may know of the incident.
    pub incident: IncidentSummary,
    /// The message's subject line (used by channels that have one).
    pub subject: String,
    /// The rendered message text.
    pub body: String,
    /// People (roster ids) a page is for.
    pub recipients: Vec<String>,
    /// For appease intents: the customer written to; `None` for notifications.
    pub customer: Option<CustomerRef>,
    /// For status page targets: what is published; `None` for every other target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<super::status_post::StatusPost>,
}

/// How one execution attempt ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EffectOutcome {
    /// True if the effect was delivered.
    pub ok: bool,
    /// May succeed if tried again later (timeouts, 5xx).
    pub transient: bool,
    /// What happened, for the journal. Never contact details or secrets.
    pub detail: String,
}

impl EffectOutcome {
    /// An outcome for a delivered effect, with what happened for the journal.
    pub fn sent(detail: impl Into<String>) -> Self {
        EffectOutcome { ok: true, transient: false, detail: detail.into() }
    }
    /// An outcome for a failed effect; `transient` says whether retrying later may help.
    pub fn failed(detail: impl Into<String>, transient: bool) -> Self {
        EffectOutcome { ok: false, transient, detail: detail.into() }
    }
}

/// Runs side effects. Implementations must treat `invocation_id` as an
/// idempotency key: the same id may be executed again after a crash.
pub trait Executor: Send + Sync {
    /// Runs one side effect and reports how it ended; must be idempotent per `invocation_id`.
    fn execute(&self, invocation_id: &str, payload: &IntentPayload) -> EffectOutcome;
}

/// The `log` target: writes the rendered message to the log (and, through
/// the result, to the journal). Nothing leaves the machine; useful for dry
/// runs and as the default until an operator configures real targets.
#[derive(Debug, Default)]
pub struct LogExecutor;

impl Executor for LogExecutor {
    fn execute(&self, invocation_id: &str, p: &IntentPayload) -> EffectOutcome {
        match p.kind {
            EffectKind::Notify => {
                tracing::info!(
                    invocation_id,
                    incident = %p.incident.id,
                    target = %p.target,
                    purpose = %p.purpose,
                    mode = %p.mode,
                    "notification (log target): {} — {}",
                    p.subject,
                    p.body
                );
                EffectOutcome::sent(format!("logged: {} — {}", p.subject, p.body))
            }
            EffectKind::Appease => {
                let c = p.customer.as_ref();
                tracing::info!(
                    invocation_id,
                    incident = %p.incident.id,
                    customer = c.map(|c| c.id.as_str()).unwrap_or("-"),
                    channel = c.map(|c| c.channel.as_str()).unwrap_or("-"),
                    mode = %p.mode,
                    "customer message (log target): {}",
                    p.body
                );
                EffectOutcome::sent(format!(
                    "logged for customer {}: {}",
                    c.map(|c| c.id.as_str()).unwrap_or("-"),
                    p.body
                ))
            }
        }
    }
}
