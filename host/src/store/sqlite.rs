//! The embedded SQLite store: WAL mode, an fsync of the WAL before any commit
//! is acknowledged (group commit), versioned migrations.

use super::chain::JournalKey;
use super::*;
use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

use migrations::MIGRATIONS;

/// A read-only connection on the journal at `path`; each statement reads the
/// latest committed state.
fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open journal {} for reading", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Exit status of a process whose journal could not be flushed (`EX_SOFTWARE`).
pub const EXIT_FSYNC_FAILED: i32 = 70;

/// SQLite-backed [`Store`].
///
/// Durability: commits run with `synchronous = NORMAL` in WAL mode (no fsync
/// inside the commit), and [`Store::sync`] fsyncs the WAL file. Writers that
/// commit while a flush is running share the next one, so many concurrent
/// commits cost one fsync instead of one each, and nothing is acknowledged
/// before it is on disk.
///
/// A failed fsync is fatal: the kernel may already have dropped the dirty
/// pages, so a later fsync that "succeeds" proves nothing. The process logs
/// the error and exits with [`EXIT_FSYNC_FAILED`] before anyone is told the
/// unflushed commits happened; the next start re-reads the journal from disk.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The WAL file to fsync; `None` for in-memory stores.
    wal: Option<std::path::PathBuf>,
    /// The journal file, which `verify` reads through a connection of its
    /// own; `None` for in-memory stores.
    path: Option<std::path::PathBuf>,
    flush: Mutex<FlushState>,
    flushed: std::sync::Condvar,
    /// Test hook: the fsync with this number (1-based) fails.
    fail_fsync_at: Option<u64>,
    /// Exit the process on an fsync failure (always, outside unit tests).
    exit_on_fsync_failure: bool,
    /// Authenticates new events and pinned playbooks; `None`: plain SHA-256 (drills, tests).
    key: Option<JournalKey>,
    /// Checkpoints the WAL off the commit path; `None` for in-memory stores.
    _checkpointer: Option<checkpoint::Checkpointer>,
    /// A read-only connection for counts over the whole outbox, opened on
    /// first use: WAL gives it the committed journal without the store lock,
    /// so a status read or a scrape never makes a trigger wait.
    reader: Mutex<Option<Connection>>,
}

#[derive(Default)]
struct FlushState {
    committed: u64,
    synced: u64,
    flushing: bool,
    /// fsyncs done, for tests and metrics.
    flushes: u64,
    /// fsyncs attempted, successful or not (numbers the failpoint).
    attempts: u64,
    /// Set once an fsync failed: nothing committed after that is ever reported durable.
    failed: bool,
    /// An open handle on the WAL file.
    file: Option<std::fs::File>,
}

/// Reads the test hook `CRISIS_FAILPOINT=fsync-error-after:N`: the Nth fsync
/// of a file-backed journal fails as if the disk had reported an I/O error.
fn fsync_failpoint() -> Option<u64> {
    parse_fsync_failpoint(&std::env::var("CRISIS_FAILPOINT").ok()?)
}

fn parse_fsync_failpoint(v: &str) -> Option<u64> {
    v.strip_prefix("fsync-error-after:")?.parse().ok().filter(|n| *n > 0)
}

impl SqliteStore {
    /// Opens (creating and migrating) `state_dir/journal.db`.
    pub fn open(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
        Self::open_path(&state_dir.join("journal.db"))
    }

    /// Opens (creating and migrating) a journal file at an exact path, e.g. a drill's own journal.
    pub fn open_path(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("cannot open journal {}", path.display()))?;
        let mut s = Self::with_connection(conn)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        s.wal = Some(wal.into());
        s.path = Some(path.to_path_buf());
        s.fail_fsync_at = fsync_failpoint();
        // Commits leave checkpoints to a thread of their own; without one
        // (it could not start) SQLite checkpoints inside commits as usual.
        match checkpoint::Checkpointer::start(path) {
            Ok(c) => {
                s.lock().pragma_update(None, "wal_autocheckpoint", checkpoint::FALLBACK_PAGES)?;
                s._checkpointer = Some(c);
            }
            Err(e) => tracing::warn!("journal checkpoints stay inside commits: cannot start their thread: {e}"),
        }
        Ok(s)
    }

    /// An in-memory store for standalone runs and tests.
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(mut conn: Connection) -> anyhow::Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL: commits do not fsync; `sync` fsyncs the WAL for groups of commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Room for every statement of the write path and the outbox (the default keeps 16).
        conn.set_prepared_statement_cache_capacity(64);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            anyhow::bail!(
                "the journal was written by a newer crisis (schema {version}, this build knows {}); upgrade crisis",
                MIGRATIONS.len()
            );
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(m).with_context(|| format!("schema migration {} failed", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            wal: None,
            path: None,
            flush: Mutex::new(FlushState::default()),
            flushed: std::sync::Condvar::new(),
            fail_fsync_at: None,
            exit_on_fsync_failure: true,
            key: None,
            _checkpointer: None,
            reader: Mutex::new(None),
        })
    }

    /// Authenticates every event appended from now on with `key` (HMAC-SHA256).
    ///
    /// A journal that never had a key records, sealed with the key, the event
    /// where keyed hashing begins, and seals its pinned playbook versions;
    /// from then on `verify` refuses an unkeyed hash at or after that event.
    /// That record is only made when `adopt_unkeyed` (the key was just
    /// created, or the journal is empty): otherwise a journal with unkeyed
    /// events and no record was rewritten by someone without the key, and
    /// `verify` says so.
    pub fn with_key(mut self, key: JournalKey, adopt_unkeyed: bool) -> anyhow::Result<Self> {
        verify::adopt_key(&mut self.lock(), &key, adopt_unkeyed)?;
        self.key = Some(key);
        Ok(self)
    }

    /// How many WAL flushes have been done (group commit makes this far below the commit count).
    pub fn flush_count(&self) -> u64 {
        self.flush_lock().flushes
    }

    fn flush_lock(&self) -> std::sync::MutexGuard<'_, FlushState> {
        self.flush.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// fsyncs the WAL file (opening it if needed); `attempt` numbers this fsync for the failpoint.
    fn fsync_wal(&self, file: &mut Option<std::fs::File>, attempt: u64) -> anyhow::Result<()> {
        let Some(wal) = &self.wal else { return Ok(()) };
        let f = match file {
            Some(f) => f,
            None => file.insert(
                std::fs::OpenOptions::new()
                    .read(true)
                    .open(wal)
                    .with_context(|| format!("cannot open {}", wal.display()))?,
            ),
        };
        let res = if self.fail_fsync_at == Some(attempt) {
            Err(std::io::Error::other(format!("failpoint fsync-error-after:{attempt}")))
        } else {
            f.sync_data()
        };
        res.with_context(|| format!("cannot flush {}", wal.display()))
    }

    /// An fsync failed: log it and end the process, unless a unit test keeps
    /// it alive to look at the store afterwards.
    fn fsync_failed(&self, e: &anyhow::Error) {
        tracing::error!(
            "{e:#}: the journal cannot be made durable, so crisis stops now (exit {EXIT_FSYNC_FAILED}) instead of acknowledging writes that may be lost; \
             check the disk, then start the daemon again: it re-reads the journal from disk"
        );
        if self.exit_on_fsync_failure {
            std::process::exit(EXIT_FSYNC_FAILED);
        }
    }

    /// Runs `read` on the reader connection of a file-backed journal, or on
    /// the store's own connection for an in-memory one or when the reader
    /// cannot be opened.
    fn read<T>(&self, read: impl Fn(&Connection) -> Result<T>) -> Result<T> {
        let Some(path) = &self.path else { return read(&self.lock()) };
        let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if reader.is_none() {
            match open_reader(path) {
                Ok(c) => *reader = Some(c),
                Err(e) => {
                    tracing::warn!("outbox counts are read through the writer's connection: {e:#}");
                    drop(reader);
                    return read(&self.lock());
                }
            }
        }
        read(reader.as_ref().expect("opened above"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written
        // transaction (SQLite rolls it back), so the connection is still good.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

use rows::{INCIDENT_COLS, incident_from_row};

/// Every incident or the open ones, newest first. The open filter is
/// written out, not bound, so the planner reads the open incidents' partial
/// index instead of every incident.
fn incidents_sql(open_only: bool) -> String {
    let open = if open_only { "status = 'open'" } else { "1" };
    format!(
        "SELECT {INCIDENT_COLS} FROM incidents WHERE {open} AND (?1 IS NULL OR mode = ?1) ORDER BY opened_at DESC, id DESC"
    )
}

/// The open incidents' labels, from the covering `incidents_open_labels`
/// index alone, in its order.
const OPEN_INCIDENTS_SQL: &str = "SELECT id, playbook_id, severity, phase FROM incidents \
     WHERE status = 'open' AND (?1 IS NULL OR mode = ?1) ORDER BY id";
pub(super) use rows::{INTENT_COLS, intent_from_row, json};

impl Store for SqliteStore {
    fn transaction_unsynced(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut t = tx::SqlTx::new(tx, self.key.as_ref());
        f(&mut t)?;
        t.commit()?;
        // Counted while the connection is still held, so the order matches the WAL.
        self.flush_lock().committed += 1;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let mut st = self.flush_lock();
        let target = st.committed;
        loop {
            if st.failed {
                anyhow::bail!("an earlier fsync of the journal failed; nothing committed since is durable");
            }
            if st.synced >= target {
                return Ok(());
            }
            if st.flushing {
                st = self.flushed.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Become the flusher for everything committed up to now.
            st.flushing = true;
            let upto = st.committed;
            st.attempts += 1;
            let attempt = st.attempts;
            let mut file = st.file.take();
            drop(st);
            let res = self.fsync_wal(&mut file, attempt);
            if let Err(e) = &res {
                // Never retried: the kernel may have dropped the pages this fsync was for.
                self.fsync_failed(e);
            }
            st = self.flush_lock();
            st.file = file;
            st.flushing = false;
            match res {
                Ok(()) => {
                    st.synced = st.synced.max(upto);
                    st.flushes += 1;
                }
                Err(_) => st.failed = true,
            }
            self.flushed.notify_all();
            res?;
        }
    }

    fn incident(&self, id: &str) -> Result<Option<IncidentRow>> {
        let conn = self.lock();
        Ok(conn
            .query_row(&format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = ?1"), params![id], incident_from_row)
            .optional()?)
    }

    fn incidents(&self, open_only: bool, mode: Option<&str>) -> Result<Vec<IncidentRow>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&incidents_sql(open_only))?;
        let rows = stmt.query_map(params![mode], incident_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn incidents_page(&self, q: &IncidentQuery) -> Result<Option<IncidentPage>> {
        rows::incidents_page(&self.lock(), q)
    }

    fn open_incidents(&self, mode: Option<&str>) -> Result<Vec<OpenIncident>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(OPEN_INCIDENTS_SQL)?;
        let rows = stmt.query_map(params![mode], |r| {
            Ok(OpenIncident { id: r.get(0)?, playbook_id: r.get(1)?, severity: r.get(2)?, phase: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn incident_ids(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT id FROM incidents ORDER BY opened_at DESC LIMIT 1000")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn events(&self, incident_id: &str, after_seq: i64) -> Result<Vec<EventRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT seq, incident_id, at, kind, data, prev_hash, hash FROM events WHERE incident_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![incident_id, after_seq], |r| {
            Ok(EventRecord {
                seq: r.get(0)?,
                incident_id: r.get(1)?,
                at: r.get(2)?,
                kind: r.get(3)?,
                data: json(r.get(4)?),
                prev_hash: r.get(5)?,
                hash: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn due_timers(&self, now: i64) -> Result<Vec<TimerRow>> {
        outbox::due_timers(&self.lock(), now)
    }

    fn next_timer_due(&self) -> Result<Option<i64>> {
        let conn = self.lock();
        Ok(conn.query_row("SELECT MIN(due_at) FROM timers WHERE dead_letter IS NULL", [], |r| r.get(0))?)
    }

    fn pending_intents(&self, now: i64, limit: usize) -> Result<Vec<IntentRow>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {INTENT_COLS} FROM intents WHERE result IS NULL AND dead_letter IS NULL AND not_before <= ?1 ORDER BY not_before, created_at, invocation_id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now, limit as i64], intent_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn next_intent_due(&self) -> Result<Option<i64>> {
        outbox::next_intent_due(&self.lock())
    }

    fn intents_for(&self, incident_id: &str) -> Result<Vec<IntentRow>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {INTENT_COLS} FROM intents WHERE incident_id = ?1 ORDER BY created_at, invocation_id"
        ))?;
        let rows = stmt.query_map(params![incident_id], intent_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn intent(&self, invocation_id: &str) -> Result<Option<IntentRow>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {INTENT_COLS} FROM intents WHERE invocation_id = ?1"),
                params![invocation_id],
                intent_from_row,
            )
            .optional()?)
    }

    fn mark_attempt(&self, invocation_id: &str) -> Result<()> {
        let conn = self.lock();
        conn.prepare_cached("UPDATE intents SET attempts = attempts + 1 WHERE invocation_id = ?1")?
            .execute(params![invocation_id])?;
        Ok(())
    }

    fn defer_intent(&self, invocation_id: &str, not_before: i64) -> Result<()> {
        let conn = self.lock();
        conn.execute(
            "UPDATE intents SET not_before = ?2 WHERE invocation_id = ?1 AND result IS NULL",
            params![invocation_id, not_before],
        )?;
        Ok(())
    }

    fn claim_intents_except(
        &self,
        now: i64,
        limit: usize,
        skip_targets: &[String],
        window: DueWindow,
    ) -> Result<Vec<IntentRow>> {
        outbox::claim_intents(&mut self.lock(), now, limit, skip_targets, window)
    }

    fn release_intent(&self, invocation_id: &str, not_before: Option<i64>) -> Result<()> {
        outbox::release_intent(&self.lock(), invocation_id, not_before)
    }

    fn release_claims(&self, now: i64) -> Result<usize> {
        let conn = self.lock();
        conn.execute(
            "UPDATE intents SET held = 0, not_before = MIN(not_before, ?1) WHERE held != 0 AND result IS NULL",
            params![now],
        )?;
        // Executed intents keep their claim mark, which nothing reads, so
        // only pending ones are reset (through their partial index).
        Ok(conn.execute("UPDATE intents SET claimed = 0 WHERE claimed != 0 AND result IS NULL", [])?)
    }

    fn hold_intent(&self, invocation_id: &str, until: i64) -> Result<()> {
        self.lock().execute(
            "UPDATE intents SET claimed = 0, held = 1, not_before = ?2 WHERE invocation_id = ?1",
            params![invocation_id, until],
        )?;
        Ok(())
    }

    fn expedite_target(&self, target: &str, now: i64) -> Result<usize> {
        outbox::expedite_target(&self.lock(), target, now)
    }

    fn defer_timer(&self, id: i64, now: i64, base_ms: i64) -> Result<i64> {
        outbox::defer_timer(&self.lock(), id, now, base_ms)
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.read(outbox::dead_letters)
    }

    fn outbox_lanes(&self) -> Result<Vec<OutboxLane>> {
        self.read(outbox::outbox_lanes)
    }

    fn playbook_version(&self, hash: &str) -> Result<Option<serde_json::Value>> {
        let conn = self.lock();
        Ok(conn
            .query_row("SELECT spec FROM playbook_versions WHERE hash = ?1", params![hash], |r| r.get::<_, String>(0))
            .optional()?
            .map(json))
    }

    fn put_token(&self, row: &TokenRow) -> Result<()> {
        tokens::insert(&self.lock(), row)?;
        self.sync()
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        tokens::all(&self.lock())
    }

    fn revoke_token(&self, id: &str, at: i64, by: &str) -> Result<bool> {
        let revoked = tokens::revoke(&self.lock(), id, at, by)?;
        self.sync()?;
        Ok(revoked)
    }

    fn kv_get(&self, key: &str) -> Result<Option<String>> {
        let conn = self.lock();
        Ok(conn.query_row("SELECT value FROM kv WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
    }

    fn complaints(&self, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>> {
        complaints::query(&self.lock(), q)
    }

    fn kv_put(&self, key: &str, value: &str) -> Result<()> {
        self.transaction(&mut |tx| tx.kv_set(key, value))
    }

    fn kv_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let conn = self.lock();
        // `key >= prefix AND key < prefix || U+10FFFF` keeps the read on the primary key.
        let mut stmt =
            conn.prepare("SELECT key, value FROM kv WHERE key >= ?1 AND key < ?1 || char(1114111) ORDER BY key")?;
        let rows = stmt.query_map(params![prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A file-backed journal is walked through a read-only connection of its
    /// own, in one read transaction: WAL gives it one snapshot of the journal
    /// while writers go on committing, so a long walk never holds the store
    /// lock that every trigger needs.
    fn verify(&self, expect_head: Option<&Anchor>) -> Result<VerifyReport> {
        let Some(path) = &self.path else {
            return verify::verify(&self.lock(), self.key.as_ref(), expect_head);
        };
        let mut conn = open_reader(path).context("cannot verify the journal")?;
        let snapshot = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
        verify::hold_for_a_writer(&snapshot, path)?;
        verify::verify(&snapshot, self.key.as_ref(), expect_head)
    }

    fn timers(&self) -> Result<Vec<TimerRow>> {
        verify::timers(&self.lock())
    }
}

mod checkpoint;
mod complaints;
mod migrations;
mod outbox;
mod rows;
#[cfg(test)]
mod tests;
mod tokens;
mod tx;
mod verify;
