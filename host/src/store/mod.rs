//! The durable journal: append-only, hash-chained events, the
//! incident projections derived from them, persisted timers and the outbox
//! of side-effect intents.
//!
//! The engine talks to a [`Store`] through transactions so a PostgreSQL
//! backend can follow without touching it; SQLite (WAL) is the embedded default.

mod chain;
#[cfg(test)]
mod conformance;
pub mod postgres;
pub mod sqlite;

use serde::{Deserialize, Serialize};

pub use chain::{Anchor, EventFields, GENESIS, HashAlg, JournalKey, KEYED_PREFIX, event_hash};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Store errors carry their cause; the engine turns them into "failed" (exit 1).
pub type Result<T> = anyhow::Result<T>;

/// One journal row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    /// Position in the whole journal, increasing across all incidents.
    pub seq: i64,
    /// The incident this event belongs to.
    pub incident_id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// Event type name, e.g. `opened`, `step_done`.
    pub kind: String,
    /// The event's fields as JSON.
    pub data: serde_json::Value,
    /// Hash of the previous journal row (the genesis value for the first).
    pub prev_hash: String,
    /// Hash of this row chained to `prev_hash`; any tampering breaks the chain.
    pub hash: String,
}

/// An open incident's labels without its state: what the open-incident
/// gauge and the once-a-second checks need, read without decoding the
/// projection of every open incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    /// The incident id, e.g. `INC-42`.
    pub id: String,
    /// Id of the playbook it runs.
    pub playbook_id: String,
    /// Current severity name.
    pub severity: String,
    /// Current phase name.
    pub phase: String,
}

/// The queryable projection of an incident, kept in step with its events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentRow {
    /// The incident id, e.g. `INC-42`.
    pub id: String,
    /// Id of the playbook it runs.
    pub playbook_id: String,
    /// Hash of the playbook version it opened with.
    pub playbook_hash: String,
    /// `live` or `drill`.
    pub mode: String,
    /// Dedup key while the incident may still attach triggers; `None` if none was given.
    pub dedup_key: Option<String>,
    /// `open`, `resolved` or `closed`.
    pub status: String,
    /// Current phase name.
    pub phase: String,
    /// Current severity name.
    pub severity: String,
    /// Incident title.
    pub title: String,
    /// Unix milliseconds when it opened.
    pub opened_at: i64,
    /// Unix milliseconds of the latest change.
    pub updated_at: i64,
    /// The full derived state as JSON.
    pub state: serde_json::Value,
}

/// Which page of the incident list to read. Why: a journal a year old holds
/// too many incidents to send at once, so the list is read a page at a time,
/// newest first, continuing after the last incident of the previous page
/// (keyset paging: incidents opened meanwhile never shift a later page).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentQuery {
    /// Only incidents that are not yet resolved.
    pub open_only: bool,
    /// Only incidents of this mode (`live`/`drill`).
    pub mode: Option<String>,
    /// Only incidents after this one in list order (opened earlier, or at
    /// the same instant with a smaller id): the previous page's `next`.
    pub after: Option<String>,
    /// At most this many rows.
    pub limit: usize,
}

/// One page of the incident list.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentPage {
    /// The rows, newest first.
    pub rows: Vec<IncidentRow>,
    /// The id to continue after for the next page; `None` on the last page.
    pub next: Option<String>,
}

impl IncidentPage {
    /// A page from up to `limit + 1` rows read in list order: the extra row
    /// only tells that another page follows.
    pub(crate) fn from_overfetch(mut rows: Vec<IncidentRow>, limit: usize) -> IncidentPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(|r| r.id.clone()) } else { None };
        IncidentPage { rows, next }
    }
}

/// The queryable projection of a customer complaint, kept in step with its
/// events (its journal stream is its id, `CMP-<n>`). Why a table of its own:
/// complaints are listed, counted per customer and reported by time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ComplaintRow {
    /// The complaint id, e.g. `CMP-7`.
    pub id: String,
    /// The customer's id in the customer source (never contact details).
    pub customer: String,
    /// The category name, e.g. `price`.
    pub category: String,
    /// The channel name, e.g. `sms`.
    pub channel: String,
    /// The state name, e.g. `first-response-sent`.
    pub state: String,
    /// Unix milliseconds when it was received.
    pub received_at: i64,
    /// Unix milliseconds of the latest change.
    pub updated_at: i64,
    /// The digest of the sender's idempotency key, unique when present: a
    /// retried intake finds the complaint its first attempt recorded.
    pub intake_key: Option<String>,
    /// The full derived state as JSON.
    pub data: serde_json::Value,
}

/// Which complaint rows to read. Why: listing, the per-customer repeat count
/// and the report all filter on these columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComplaintQuery {
    /// Only this complaint.
    pub id: Option<String>,
    /// Only this customer's complaints.
    pub customer: Option<String>,
    /// Only complaints received at or after this instant (Unix ms).
    pub since: Option<i64>,
    /// Only complaints of this category name (a surge's window reads one category).
    pub category: Option<String>,
    /// Only the complaint recorded under this idempotency key digest.
    pub intake_key: Option<String>,
}

/// A persisted timer: fires once, late if the daemon was down.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimerRow {
    /// Store-assigned id, used to delete the timer once handled.
    pub id: i64,
    /// The incident the timer acts on.
    pub incident_id: String,
    /// Unix milliseconds when it should fire.
    pub due_at: i64,
    /// The timer's exact key, unique per incident and purpose (`deadline:step:bridge`).
    pub kind: String,
    /// The fixed group it is cancelled with (`escalate`, `step-deadline`, ...).
    pub family: String,
    /// What the timer needs when it fires, as JSON.
    pub data: serde_json::Value,
    /// The node whose lease on this timer had expired when this node claimed
    /// it (it died while holding it); `None` for a fresh claim or a plain read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaimed_from: Option<String>,
}

/// Which due intents a claim may take, by the instant they fell due: a
/// daemon drains the backlog it inherited (due before it started) apart
/// from new work, and each claim reads only its own range of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueWindow {
    /// Every due intent.
    Any,
    /// Intents due at or after this instant (Unix ms).
    Since(i64),
    /// Intents due before this instant (Unix ms).
    Before(i64),
}

impl DueWindow {
    /// The window as `lo <= not_before < hi`.
    pub(crate) fn bounds(self) -> (i64, i64) {
        match self {
            DueWindow::Any => (i64::MIN, i64::MAX),
            DueWindow::Since(t) => (t, i64::MAX),
            DueWindow::Before(t) => (i64::MIN, t),
        }
    }
}

/// A side effect recorded before it runs; `result` is set once it ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntentRow {
    /// Unique id of the effect, also its idempotency key for the executor.
    pub invocation_id: String,
    /// The incident that caused the effect.
    pub incident_id: String,
    /// Unix milliseconds when the intent was recorded.
    pub created_at: i64,
    /// Not to be executed before this instant (rate limits).
    pub not_before: i64,
    /// The effect's description (an `IntentPayload`) as JSON.
    pub payload: serde_json::Value,
    /// How many times execution was attempted.
    pub attempts: i64,
    /// The outcome once executed; `None` while pending.
    pub result: Option<serde_json::Value>,
    /// The node whose lease on this intent had expired when this node claimed
    /// it (it died mid-call, so the call may have run): `None` for a fresh claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaimed_from: Option<String>,
}

impl IntentRow {
    /// The delivery target named in the payload, or `?` when it names none;
    /// stored in its own column so per-target queries need not parse payloads.
    pub fn target(&self) -> &str {
        self.payload.get("target").and_then(|t| t.as_str()).unwrap_or("?")
    }
}

/// Operations available inside one atomic transaction.
pub trait Tx {
    /// Appends an event, chaining its hash to the previous one; returns it.
    fn append(&mut self, incident_id: &str, at: i64, kind: &str, data: &serde_json::Value) -> Result<EventRecord>;
    /// Returns the next free number for incident ids with this prefix (e.g. `INC`).
    fn next_incident_number(&mut self, prefix: &str) -> Result<i64>;
    /// Inserts or replaces an incident's projection row.
    fn put_incident(&mut self, row: &IncidentRow) -> Result<()>;
    /// An incident's projection row as of this transaction; `None` if no such id.
    fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>>;
    /// Every incident id, for "did you mean" suggestions inside a transaction.
    fn incident_ids(&mut self) -> Result<Vec<String>>;
    /// The open (not resolved, not closed) incident of a playbook with this dedup key.
    fn open_by_dedup(&mut self, playbook_id: &str, key: &str) -> Result<Option<String>>;
    /// Schedules a timer under its exact `key`, grouped in `family` for cancellation.
    fn add_timer(
        &mut self,
        incident_id: &str,
        due_at: i64,
        key: &str,
        family: &str,
        data: &serde_json::Value,
    ) -> Result<i64>;
    /// Removes the pending timers of an incident with exactly this key; returns how many.
    fn cancel_timer(&mut self, incident_id: &str, key: &str) -> Result<usize>;
    /// Removes the pending timers of an incident in exactly this family; returns how many.
    fn cancel_timers_in(&mut self, incident_id: &str, family: &str) -> Result<usize>;
    /// Removes a timer after it fired and was handled.
    fn delete_timer(&mut self, id: i64) -> Result<()>;
    /// Removes a timer this node is about to fire, in the transaction that
    /// journals its effect; false if it is gone (cancelled, or fired already)
    /// or another node has claimed it since, and then it must not fire here.
    fn take_timer(&mut self, id: i64) -> Result<bool>;
    /// Records a side effect to run once the transaction commits.
    fn add_intent(&mut self, intent: &IntentRow) -> Result<()>;
    /// An intent by invocation id as of this transaction; `None` if unknown.
    fn intent(&mut self, invocation_id: &str) -> Result<Option<IntentRow>>;
    /// Stores an intent's result at `at` (Unix ms), so it is not run again.
    fn complete_intent(&mut self, invocation_id: &str, at: i64, result: &serde_json::Value) -> Result<()>;
    /// Sets a pending intent aside with its reason: it is never claimed again until re-driven.
    fn dead_letter_intent(&mut self, invocation_id: &str, at: i64, reason: &str) -> Result<()>;
    /// Sets a timer aside with its reason: it never fires.
    fn dead_letter_timer(&mut self, id: i64, at: i64, reason: &str) -> Result<()>;
    /// Puts a dead-lettered intent back in the outbox, due `now`, with a fresh
    /// attempt budget; false if it is not dead-lettered.
    fn redrive_intent(&mut self, invocation_id: &str, now: i64) -> Result<bool>;
    /// Stores a playbook version by its hash, once, so incidents can replay with it.
    fn put_playbook_version(&mut self, hash: &str, playbook_id: &str, spec: &serde_json::Value) -> Result<()>;
    /// A stored playbook version by hash; `None` if never stored.
    fn playbook_version(&mut self, hash: &str) -> Result<Option<serde_json::Value>>;
    /// Sets a small piece of daemon state by key (e.g. drill bookkeeping).
    fn kv_set(&mut self, key: &str, value: &str) -> Result<()>;
    /// A piece of daemon state by key as of this transaction; `None` if never set.
    fn kv_get(&mut self, key: &str) -> Result<Option<String>>;
    /// Deletes every key that starts with `prefix`, in this transaction;
    /// returns how many. Why: records kept only until an effect is journaled
    /// (a digest's members) go with its result instead of piling up.
    fn kv_delete_prefix(&mut self, prefix: &str) -> Result<u64>;
    /// Inserts or replaces a complaint's projection row, in the transaction that journals its change.
    fn put_complaint(&mut self, row: &ComplaintRow) -> Result<()>;
    /// The complaint rows matching `q` as of this transaction, oldest first.
    fn complaints(&mut self, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>>;
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
    /// An incident's projection row; `None` if no such id.
    fn incident(&self, id: &str) -> Result<Option<IncidentRow>>;
    /// Incident rows, only unresolved ones if `open_only`, optionally only of one mode (`live`/`drill`).
    fn incidents(&self, open_only: bool, mode: Option<&str>) -> Result<Vec<IncidentRow>>;
    /// One page of incident rows, newest first; `None` if `q.after` names no
    /// incident. Reads an index on the list order, so a page costs the same
    /// however many incidents the journal holds.
    fn incidents_page(&self, q: &IncidentQuery) -> Result<Option<IncidentPage>>;
    /// Every open incident (of one mode if given) by id, without its state,
    /// so a check that runs every second, and the start, stay cheap however
    /// many are open.
    fn open_incidents(&self, mode: Option<&str>) -> Result<Vec<OpenIncident>>;
    /// Every incident id, for "did you mean" suggestions.
    fn incident_ids(&self) -> Result<Vec<String>>;
    /// An incident's events with `seq` greater than `after_seq`, in order.
    fn events(&self, incident_id: &str, after_seq: i64) -> Result<Vec<EventRecord>>;
    /// Timers due at or before `now` (Unix ms).
    fn due_timers(&self, now: i64) -> Result<Vec<TimerRow>>;
    /// Takes the timers due at `now` for this node to fire: on a shared
    /// database each is leased to one node (unclaimed ones, and ones whose
    /// lease expired), so exactly one node fires it. A single-node store
    /// needs no claim.
    fn claim_timers(&self, now: i64) -> Result<Vec<TimerRow>> {
        self.due_timers(now)
    }
    /// Records that this node is alive at `now` and serves its API on
    /// `address`, and renews the leases of everything it holds; a store only
    /// one daemon uses has no membership to keep.
    fn heartbeat(&self, address: &str, started_at: i64, now: i64) -> Result<()> {
        let _ = (address, started_at, now);
        Ok(())
    }
    /// Every node that has used this database, with what it holds at `now`;
    /// empty for a store only one daemon uses.
    fn nodes(&self, now: i64) -> Result<Vec<NodeRow>> {
        let _ = now;
        Ok(Vec::new())
    }
    /// When the earliest pending timer is due; `None` if there are none.
    fn next_timer_due(&self) -> Result<Option<i64>>;
    /// Up to `limit` unexecuted intents whose `not_before` has passed at `now`.
    fn pending_intents(&self, now: i64, limit: usize) -> Result<Vec<IntentRow>>;
    /// When the earliest unexecuted intent may run; `None` if there are none.
    fn next_intent_due(&self) -> Result<Option<i64>>;
    /// Every intent of an incident, executed or not.
    fn intents_for(&self, incident_id: &str) -> Result<Vec<IntentRow>>;
    /// One intent by its invocation id (a plain read, no write transaction).
    fn intent(&self, invocation_id: &str) -> Result<Option<IntentRow>>;
    /// Records an execution attempt before running it (for "retried once" accounting).
    fn mark_attempt(&self, invocation_id: &str) -> Result<()>;
    /// Postpones a pending intent after a transient failure.
    fn defer_intent(&self, invocation_id: &str, not_before: i64) -> Result<()>;
    /// Takes up to `limit` due intents for execution: a claimed intent is not
    /// returned again until released, or (on a shared database) until the
    /// lease of the node that claimed it expires because that node stopped
    /// renewing it; then it runs again with the same invocation id.
    fn claim_intents(&self, now: i64, limit: usize) -> Result<Vec<IntentRow>> {
        self.claim_intents_except(now, limit, &[], DueWindow::Any)
    }
    /// [`Store::claim_intents`], passing over the intents of `skip_targets`
    /// (targets with enough work already waiting in this process), so a
    /// target that cannot keep up never holds back the others' claims; and
    /// only intents that fell due within `window`.
    fn claim_intents_except(
        &self,
        now: i64,
        limit: usize,
        skip_targets: &[String],
        window: DueWindow,
    ) -> Result<Vec<IntentRow>>;
    /// Gives a claimed intent back, due at `not_before` if given.
    fn release_intent(&self, invocation_id: &str, not_before: Option<i64>) -> Result<()>;
    /// Releases every claim of this node (never another live node's), and
    /// makes every intent held back by an open circuit due at `now`; called
    /// at startup, when no call of this node can be running and every circuit
    /// starts closed. Returns how many claims were released.
    fn release_claims(&self, now: i64) -> Result<usize>;
    /// Gives a claimed intent back without counting an attempt, held until
    /// `until` because its target's circuit is open.
    fn hold_intent(&self, invocation_id: &str, until: i64) -> Result<()>;
    /// Makes every waiting (unclaimed, backed-off) intent for `target` due at
    /// `now`: called when the target recovers, so its backlog goes out at once
    /// instead of after each item's own backoff. Returns how many.
    fn expedite_target(&self, target: &str, now: i64) -> Result<usize>;
    /// Postpones a timer whose firing failed by `base_ms` doubled for each
    /// earlier failure (at most 256 times); returns how many times it failed.
    fn defer_timer(&self, id: i64, now: i64, base_ms: i64) -> Result<i64>;
    /// Every dead-lettered timer and intent, oldest first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>>;
    /// Pending (not dead-lettered) intents per delivery target, with the oldest.
    fn outbox_lanes(&self) -> Result<Vec<OutboxLane>>;
    /// A stored playbook version by hash; `None` if never stored.
    fn playbook_version(&self, hash: &str) -> Result<Option<serde_json::Value>>;
    /// A piece of daemon state by key; `None` if never set.
    fn kv_get(&self, key: &str) -> Result<Option<String>>;
    /// Sets a piece of daemon state by key, in its own transaction.
    fn kv_put(&self, key: &str, value: &str) -> Result<()>;
    /// The complaint rows matching `q`, oldest first (a plain read).
    fn complaints(&self, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>>;
    /// Adds `delta` to the whole number stored at `key` (absent counts as 0)
    /// in its own transaction and returns the sum, durable on return. Atomic
    /// across threads and across daemons sharing the database, because every
    /// backend serialises its writing transactions (SQLite `BEGIN IMMEDIATE`,
    /// PostgreSQL the chain lock taken before a transaction's first statement):
    /// counts kept this way are never overwritten by another writer's stale copy.
    fn kv_add(&self, key: &str, delta: i64) -> Result<i64> {
        let mut sum = 0;
        self.transaction(&mut |tx| {
            let stored = match tx.kv_get(key)? {
                None => 0,
                Some(v) => v.parse::<i64>().map_err(|e| anyhow::anyhow!("kv `{key}` holds `{v}`, not a count: {e}"))?,
            };
            sum = stored + delta;
            tx.kv_set(key, &sum.to_string())
        })?;
        Ok(sum)
    }
    /// Every piece of daemon state whose key starts with `prefix`, in key order
    /// (a range read on the key index, e.g. the members of one digest).
    fn kv_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>>;
    /// Re-walks the whole chain (and the seals of pinned playbook versions);
    /// returns the problems found (empty = intact). With `expect_head`, also
    /// checks that the anchored event still has the anchored hash.
    fn verify(&self, expect_head: Option<&Anchor>) -> Result<VerifyReport>;
    /// Every pending (not dead-lettered) timer, for verification against the events.
    fn timers(&self) -> Result<Vec<TimerRow>>;
    /// Stores a new API token (its secret's hash, never the secret); durable on return.
    fn put_token(&self, row: &TokenRow) -> Result<()>;
    /// Every API token, revoked and expired ones included, oldest first.
    fn tokens(&self) -> Result<Vec<TokenRow>>;
    /// Marks a token revoked at `at` by `by`; false if no such token or it was already revoked.
    fn revoke_token(&self, id: &str, at: i64, by: &str) -> Result<bool>;
    /// What nodes sharing this database coordinate through; `None` for a
    /// store only one daemon uses (SQLite), which is always the scheduler and
    /// applies only its own files.
    fn cluster(&self) -> Option<&dyn Cluster> {
        None
    }
}

/// One playbook file of a published generation. Why: every node serves the
/// same text, placed under its own playbook directory at `path`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedFile {
    /// Where the file sits under the playbook directory (`/`-separated).
    pub path: String,
    /// The file's full text, exactly as the publishing node read it.
    pub text: String,
    /// SHA-256 of `text`, hex.
    pub sha256: String,
}

/// A playbook set one node validated and applied, published so every node
/// of the cluster serves exactly it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedGeneration {
    /// Cluster-wide generation number, increasing with each publication.
    pub number: u64,
    /// The files, sorted by path.
    pub files: Vec<PublishedFile>,
    /// The node that applied and published it (its listen address).
    pub published_by: String,
    /// Unix milliseconds.
    pub published_at: i64,
}

/// A lock held on a dedicated connection for as long as it lives. Why: the
/// database releases it when the holder's connection dies, so a killed
/// node's role moves to another node.
#[derive(Debug, Default)]
pub struct Lease {
    held: std::sync::atomic::AtomicBool,
}

impl Lease {
    /// True while this node holds the lock.
    pub fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records whether the lock is held (by the thread that keeps its connection).
    pub fn set_held(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Coordination between daemons that share one database.
pub trait Cluster: Send + Sync {
    /// Publishes `files` as the next cluster generation and notifies every
    /// listening node; returns its number.
    fn publish_generation(&self, files: &[PublishedFile], by: &str, at: i64) -> Result<u64>;
    /// The newest published generation, if any node published one.
    fn latest_generation(&self) -> Result<Option<PublishedGeneration>>;
    /// Calls `wake` with the number of every generation published from now
    /// on (and with 0 after a lost connection, when some may have been
    /// missed), on a thread of its own, until `wake` returns false.
    fn watch_generations(&self, wake: Box<dyn FnMut(u64) -> bool + Send>) -> Result<()>;
    /// Starts contending for the drill scheduler lock, retrying about every
    /// second, until the returned lease is dropped.
    fn scheduler_lease(&self) -> Result<std::sync::Arc<Lease>>;
    /// Claims a scheduled drill occurrence (run or skip) for the whole
    /// cluster; false if some node already claimed it.
    fn claim_drill_slot(&self, run_id: &str, by: &str, at: i64) -> Result<bool>;
    /// On a clean stop: gives back this node's intent and timer claims and
    /// marks it as left, so other nodes take its work over at once instead
    /// of after the lease; returns how many intents were given back.
    fn leave(&self, now: i64) -> Result<usize>;
}

/// Whom an API token speaks for. Why: a person's token acts as that person;
/// an intake token only delivers alerts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A roster person's token; `subject` is the person id.
    Person,
    /// An alert source's token; `subject` is the source's name.
    Intake,
}

/// What a person's token may do. Why: approving and administering are
/// separate powers from working an incident.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Reads, triggers and works incidents (ack, assign, steps, updates, outcome, resolve).
    Responder,
    /// A responder who may also approve activations and approval steps.
    Approver,
    /// Everything: reload, tokens, unquarantine, retry, drills, and acting for others.
    Admin,
}

impl TokenRole {
    /// The name stored and shown (`responder`, `approver`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Responder => "responder",
            TokenRole::Approver => "approver",
            TokenRole::Admin => "admin",
        }
    }

    /// The role a stored name stands for.
    pub fn parse(s: &str) -> Option<TokenRole> {
        [TokenRole::Responder, TokenRole::Approver, TokenRole::Admin].into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for TokenRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored API token. Why: the daemon's token map is loaded from these.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRow {
    /// The public id, e.g. `tok_ab12cd34`.
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// Person or intake.
    pub kind: TokenKind,
    /// The roster person id, or the intake source's name.
    pub subject: String,
    /// The person's role; `None` for intake tokens.
    pub role: Option<TokenRole>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Who created it (a person id, or `bootstrap-admin`).
    pub created_by: String,
    /// Unix milliseconds after which the token is refused; `None` never expires.
    pub expires_at: Option<i64>,
    /// Unix milliseconds when it was revoked.
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// One daemon sharing the journal database. Why: operators see which nodes
/// are alive and what each holds, and a dead one's leases run out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeRow {
    /// The node id (`state_dir/node.id`).
    pub id: String,
    /// Where it serves its API.
    pub address: String,
    /// Unix milliseconds when it started.
    pub started_at: i64,
    /// Unix milliseconds of its latest heartbeat.
    pub heartbeat_at: i64,
    /// Pending intents it holds a live lease on.
    pub intents: i64,
    /// Timers it holds a live lease on.
    pub timers: i64,
    /// Other duties it holds, by name (e.g. `scheduler`), as the node recorded them.
    pub holds: serde_json::Value,
    /// Unix milliseconds when it stopped cleanly (its claims given back); `None` while it runs or if it died.
    #[serde(default)]
    pub left_at: Option<i64>,
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

/// The pending side effects of one delivery target: how many wait, and the
/// one that has waited longest (what "is delivery keeping up" is judged by).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxLane {
    /// The target named in the intents' payload (`?` if unreadable).
    pub target: String,
    /// Pending, not dead-lettered intents.
    pub depth: i64,
    /// When the oldest of them was recorded (Unix ms).
    pub oldest_at: i64,
    /// The oldest intent's invocation id.
    pub oldest_id: String,
    /// The incident the oldest intent belongs to.
    pub oldest_incident: String,
}

/// An item set aside after failing persistently or being unreadable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    /// Whether a timer or an intent was set aside.
    pub kind: DeadItemKind,
    /// The invocation id of an intent, the row id of a timer.
    pub id: String,
    /// Empty when the row's incident id itself could not be read.
    pub incident_id: String,
    /// Why it was set aside, for the operator.
    pub reason: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// What `crisis verify` found.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct VerifyReport {
    /// How many journal events were checked.
    pub events: i64,
    /// Hash of the last event: the chain head to compare with an earlier copy.
    pub head: String,
    /// Sequence number of the last event (0 for an empty journal); with
    /// `head` it is the anchor `SEQ:HASH` operators record elsewhere.
    #[serde(default)]
    pub head_seq: i64,
    /// Each break found (bad hash, gap, broken link); empty means the journal is intact.
    pub problems: Vec<String>,
    /// Every incident id that has events, for the layer that checks the
    /// projections (an incident whose row was deleted has events but no row).
    #[serde(skip)]
    pub incidents: Vec<String>,
}
