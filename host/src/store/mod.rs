//! The durable journal: append-only, hash-chained events, the
//! incident projections derived from them, persisted timers and the outbox
//! of side-effect intents.
//!
//! The engine talks to a [`Store`] through transactions so a PostgreSQL
//! backend can follow without touching it; SQLite (WAL) is the embedded default.

mod chain;
pub mod sqlite;

use serde::{Deserialize, Serialize};

pub use chain::{event_hash, GENESIS};
pub use sqlite::SqliteStore;

/// Store errors carry their cause; the engine turns them into "failed" (exit 1).
pub type Result<T> = anyhow::Result<T>;

/// One journal row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    pub seq: i64,
    pub incident_id: String,
    /// Unix milliseconds.
    pub at: i64,
    pub kind: String,
    pub data: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The queryable projection of an incident, kept in step with its events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentRow {
    pub id: String,
    pub playbook_id: String,
    pub playbook_hash: String,
    pub mode: String,
    pub dedup_key: Option<String>,
    /// `open`, `resolved` or `closed`.
    pub status: String,
    pub phase: String,
    pub severity: String,
    pub title: String,
    pub opened_at: i64,
    pub updated_at: i64,
    /// The full derived state as JSON.
    pub state: serde_json::Value,
}

/// A persisted timer: fires once, late if the daemon was down.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimerRow {
    pub id: i64,
    pub incident_id: String,
    pub due_at: i64,
    /// The timer's exact key, unique per incident and purpose (`deadline:step:bridge`).
    pub kind: String,
    /// The fixed group it is cancelled with (`escalate`, `step-deadline`, ...).
    pub family: String,
    pub data: serde_json::Value,
}

/// A side effect recorded before it runs; `result` is set once it ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntentRow {
    pub invocation_id: String,
    pub incident_id: String,
    pub created_at: i64,
    /// Not to be executed before this instant (rate limits).
    pub not_before: i64,
    pub payload: serde_json::Value,
    pub attempts: i64,
    pub result: Option<serde_json::Value>,
}

/// Operations available inside one atomic transaction.
pub trait Tx {
    /// Appends an event, chaining its hash to the previous one; returns it.
    fn append(&mut self, incident_id: &str, at: i64, kind: &str, data: &serde_json::Value) -> Result<EventRecord>;
    fn next_incident_number(&mut self, prefix: &str) -> Result<i64>;
    fn put_incident(&mut self, row: &IncidentRow) -> Result<()>;
    fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>>;
    /// Every incident id, for "did you mean" suggestions inside a transaction.
    fn incident_ids(&mut self) -> Result<Vec<String>>;
    /// The open (not resolved, not closed) incident of a playbook with this dedup key.
    fn open_by_dedup(&mut self, playbook_id: &str, key: &str) -> Result<Option<String>>;
    /// Schedules a timer under its exact `key`, grouped in `family` for cancellation.
    fn add_timer(&mut self, incident_id: &str, due_at: i64, key: &str, family: &str, data: &serde_json::Value) -> Result<i64>;
    /// Removes the pending timers of an incident with exactly this key; returns how many.
    fn cancel_timer(&mut self, incident_id: &str, key: &str) -> Result<usize>;
    /// Removes the pending timers of an incident in exactly this family; returns how many.
    fn cancel_timers_in(&mut self, incident_id: &str, family: &str) -> Result<usize>;
    fn delete_timer(&mut self, id: i64) -> Result<()>;
    fn add_intent(&mut self, intent: &IntentRow) -> Result<()>;
    fn intent(&mut self, invocation_id: &str) -> Result<Option<IntentRow>>;
    fn complete_intent(&mut self, invocation_id: &str, at: i64, result: &serde_json::Value) -> Result<()>;
    /// Sets a pending intent aside with its reason: it is never claimed again until re-driven.
    fn dead_letter_intent(&mut self, invocation_id: &str, at: i64, reason: &str) -> Result<()>;
    /// Sets a timer aside with its reason: it never fires.
    fn dead_letter_timer(&mut self, id: i64, at: i64, reason: &str) -> Result<()>;
    /// Puts a dead-lettered intent back in the outbox, due `now`, with a fresh
    /// attempt budget; false if it is not dead-lettered.
    fn redrive_intent(&mut self, invocation_id: &str, now: i64) -> Result<bool>;
    fn put_playbook_version(&mut self, hash: &str, playbook_id: &str, spec: &serde_json::Value) -> Result<()>;
    fn playbook_version(&mut self, hash: &str) -> Result<Option<serde_json::Value>>;
    fn kv_set(&mut self, key: &str, value: &str) -> Result<()>;
}

/// A durable store. Writers are serialised by the store.
pub trait Store: Send + Sync {
    /// Runs `f` in one transaction; commits if it returns Ok, and returns once
    /// the commit is durable.
    fn transaction(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.transaction_unsynced(f)?;
        self.sync()
    }
    /// Runs `f` in one transaction and commits, without waiting for the commit
    /// to reach the disk. The caller must call [`Store::sync`] before it tells
    /// anyone the change happened; doing so after releasing its own locks lets
    /// concurrent commits share one flush (group commit).
    fn transaction_unsynced(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;
    /// Returns once every transaction committed so far is durable.
    fn sync(&self) -> Result<()>;
    fn incident(&self, id: &str) -> Result<Option<IncidentRow>>;
    fn incidents(&self, open_only: bool, mode: Option<&str>) -> Result<Vec<IncidentRow>>;
    fn incident_ids(&self) -> Result<Vec<String>>;
    fn events(&self, incident_id: &str, after_seq: i64) -> Result<Vec<EventRecord>>;
    fn due_timers(&self, now: i64) -> Result<Vec<TimerRow>>;
    fn next_timer_due(&self) -> Result<Option<i64>>;
    fn pending_intents(&self, now: i64, limit: usize) -> Result<Vec<IntentRow>>;
    fn next_intent_due(&self) -> Result<Option<i64>>;
    fn intents_for(&self, incident_id: &str) -> Result<Vec<IntentRow>>;
    /// One intent by its invocation id (a plain read, no write transaction).
    fn intent(&self, invocation_id: &str) -> Result<Option<IntentRow>>;
    /// Records an execution attempt before running it (for "retried once" accounting).
    fn mark_attempt(&self, invocation_id: &str) -> Result<()>;
    /// Postpones a pending intent after a transient failure.
    fn defer_intent(&self, invocation_id: &str, not_before: i64) -> Result<()>;
    /// Takes up to `limit` due intents for execution: a claimed intent is not
    /// returned again until released (or the daemon restarts).
    fn claim_intents(&self, now: i64, limit: usize) -> Result<Vec<IntentRow>>;
    /// Gives a claimed intent back, due at `not_before` if given.
    fn release_intent(&self, invocation_id: &str, not_before: Option<i64>) -> Result<()>;
    /// Releases every claim; called at startup, when no call can be running.
    fn release_claims(&self) -> Result<usize>;
    /// Postpones a timer whose firing failed by `base_ms` doubled for each
    /// earlier failure (at most 256 times); returns how many times it failed.
    fn defer_timer(&self, id: i64, now: i64, base_ms: i64) -> Result<i64>;
    /// Every dead-lettered timer and intent, oldest first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>>;
    /// Pending (not dead-lettered) intents per delivery target.
    fn outbox_depth(&self) -> Result<Vec<(String, i64)>>;
    fn playbook_version(&self, hash: &str) -> Result<Option<serde_json::Value>>;
    fn kv_get(&self, key: &str) -> Result<Option<String>>;
    fn kv_put(&self, key: &str, value: &str) -> Result<()>;
    /// Re-walks the whole chain; returns the problems found (empty = intact).
    fn verify(&self) -> Result<VerifyReport>;
}

/// Which table a dead letter sits in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeadItemKind {
    /// A persisted timer (its id is the row id).
    Timer,
    /// A side-effect intent (its id is the invocation id).
    Intent,
}

/// An item set aside after failing persistently or being unreadable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub kind: DeadItemKind,
    /// The invocation id of an intent, the row id of a timer.
    pub id: String,
    /// Empty when the row's incident id itself could not be read.
    pub incident_id: String,
    pub reason: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// What `crisis verify` found.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct VerifyReport {
    pub events: i64,
    pub head: String,
    pub problems: Vec<String>,
}
