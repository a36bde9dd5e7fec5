//! A trigger between being checked and being journaled: the request, its
//! checked form, what its transaction wrote, and the queue of checked
//! triggers waiting for the writer. Kept apart from the engine so the
//! engine can own the queue without importing the commands that fill it.

use super::dedup::DedupKey;
use super::error::EngineError;
use super::events::Event;
use super::generation::Generation;
use super::state::Incident;
use crate::playbook::spec::Playbook;
use crate::playbook::types::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

/// A request to start (or attach to) an incident.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TriggerRequest {
    /// Id of the playbook to run.
    pub playbook: String,
    /// Incident title; `None` uses the playbook's title.
    pub title: Option<String>,
    /// Overrides the playbook's severity.
    pub severity: Option<Severity>,
    /// What is affected (a service, region or customer group); stored as the `scope` field.
    pub scope: Option<String>,
    /// Values for the playbook's fields, by field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Free-form labels for filtering and grouping, e.g. from alert labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Triggers with the same key attach to the open incident instead of opening another; `None` never deduplicates.
    pub dedup_key: Option<String>,
    /// `cli`, `alertmanager`, `events`, `drill`.
    #[serde(default)]
    pub source: String,
    /// Who triggered it: a roster id or the name of the sending system.
    #[serde(default)]
    pub by: String,
}

/// A trigger checked and settled, ready to be journaled.
pub(super) struct PreparedTrigger {
    pub(super) pb: Arc<Playbook>,
    pub(super) req: TriggerRequest,
    pub(super) severity: Severity,
    pub(super) fields: BTreeMap<String, String>,
    pub(super) dedup: DedupKey,
    pub(super) source: String,
    pub(super) by: String,
}

/// What a trigger did inside its transaction, for after the commit.
pub(super) struct TriggerDone {
    pub(super) incident: Incident,
    pub(super) emitted: Vec<Event>,
    pub(super) deduped: bool,
    /// The playbook version was written in this transaction.
    pub(super) stored_version: bool,
}

/// Checked triggers waiting for the writer lock.
#[derive(Default)]
pub(crate) struct TriggerQueue(Mutex<Vec<Queued>>);

/// The answer to one queued trigger: its checked form back, and what it wrote.
pub(super) type Answer = (Box<PreparedTrigger>, Result<TriggerDone, EngineError>);

/// One queued trigger and where to send its answer.
pub(super) struct Queued {
    pub(super) prepared: Box<PreparedTrigger>,
    pub(super) generation_: Arc<Generation>,
    pub(super) answer: SyncSender<Answer>,
}

impl TriggerQueue {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
