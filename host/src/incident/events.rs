//! The journal's vocabulary: every change to an incident is one of these.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::playbook::types::Phase;

/// An incident event as stored in the journal (`kind` + JSON data).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The incident opened; the playbook version is pinned here and the mode fixed for good.
    Opened {
        playbook_id: String,
        playbook_hash: String,
        mode: String,
        title: String,
        severity: String,
        category: String,
        dedup_key: Option<String>,
        fields: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        source: String,
        by: String,
    },
    /// A trigger with the dedup key of this open incident was attached to it.
    Attached { fields: BTreeMap<String, String>, labels: BTreeMap<String, String>, source: String },
    PhaseEntered { phase: Phase },
    PhaseCompleted { phase: Phase },
    /// Someone approved the activation (`what = "activation"`) or a step.
    Approved { what: String, by: String },
    Activated { by: String, channels: Vec<String> },
    RoleAssigned { role: String, person: String, by: String },
    Acknowledged { by: String },
    Escalated { level: usize, to: String, people: Vec<String>, round: u32 },
    DeadlineMissed { what: String, due_at: i64 },
    StepReady { step: String },
    StepWaiting { step: String, reason: String },
    StepDone { step: String, by: String, note: Option<String> },
    StepSkipped { step: String, reason: String, by: Option<String> },
    StepFailed { step: String, reason: String },
    Note { by: String, note: String },
    UpdateDue {},
    Stale { idle_ms: i64 },
    OutcomeRecorded { cause: String, process: String, aftermath: String, by: String },
    Resolved { by: String, source: String },
    Closed {},
    /// A side effect was recorded before it runs; the invocation id is its idempotency key.
    IntentRecorded {
        invocation_id: String,
        purpose: String,
        target: String,
        channel: Option<String>,
        customer: Option<String>,
    },
    /// The side effect ran (or finally failed).
    EffectResult {
        invocation_id: String,
        purpose: String,
        target: String,
        channel: Option<String>,
        customer: Option<String>,
        ok: bool,
        detail: String,
    },
}

impl Event {
    /// The `kind` column value.
    pub fn kind(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_default()
    }

    /// Whether this event shows people working the incident (resets "stale").
    pub fn is_activity(&self) -> bool {
        matches!(
            self,
            Event::Opened { .. }
                | Event::Approved { .. }
                | Event::RoleAssigned { .. }
                | Event::Acknowledged { .. }
                | Event::StepDone { .. }
                | Event::StepSkipped { by: Some(_), .. }
                | Event::Note { .. }
                | Event::OutcomeRecorded { .. }
                | Event::Resolved { .. }
        )
    }
}
