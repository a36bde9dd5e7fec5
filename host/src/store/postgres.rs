//! The PostgreSQL store: the same journal, hash chain, outbox and tokens as
//! the SQLite store, in a database several daemons can later share.
//!
//! The blocking `postgres` client runs its own small runtime and panics when
//! used from inside a tokio runtime thread, and the [`Store`] trait is called
//! from async handlers, blocking tasks and plain threads alike. So the client
//! lives on one plain thread of its own: every call is sent to it as a job
//! and the caller waits for the answer. No caller ever touches the client.
//!
//! Cross-node rules: every writing transaction takes a transaction-scoped
//! advisory lock, so the chain is totally ordered across connections and no
//! node changes an incident from a state another node has since changed
//! (see `tx`); intents and timers are claimed with leases (see `outbox` and
//! `nodes`), so each runs on one node at a time and a dead node's claims are taken over.
//!
//! Connections: transactions run on the node's one transaction connection
//! (the engine writes one transaction at a time per node anyway); reads,
//! claims and the durability flush run on a few side connections, so a
//! claim or a flush never queues behind a transaction.

use super::chain::{EventFields, GENESIS, JournalKey, playbook_seal};
use super::*;
use ::postgres::{Client, GenericClient, Row};
use anyhow::Context;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use conn::{Conn, connect, describe};
use nodes::Lease;
use tx::PgTx;

use migrations::MIGRATIONS;

pub use copy::{CopyProgress, ProgressFn};

/// Advisory lock held by a transaction that appends: one writer of the chain at a time.
const CHAIN_LOCK: i64 = 0x6372_6973_6973_0001;
/// Side connections per node, opened at first use: reads, claims and flushes
/// run there, in parallel with the node's transaction.
const SIDE_CONNECTIONS: usize = 3;
/// Advisory lock held while the schema is migrated, so two nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6372_6973_6973_0002;

/// PostgreSQL-backed [`Store`].
///
/// Durability: a transaction commits without waiting for the disk, so the
/// chain lock is free as soon as its commit is recorded, and [`Store::sync`]
/// then waits until it is durable (concurrent waits share one flush). Every
/// other statement runs with `synchronous_commit = on`, and a later durable
/// commit makes every earlier one durable too (the WAL is flushed in order),
/// so a claim another node takes on a row is never based on a commit the
/// server could still lose.
pub struct PgStore {
    conn: Mutex<Conn>,
    /// Connections for everything outside a transaction, each opened at first use.
    side: Vec<Mutex<Option<Conn>>>,
    /// Where the next side call starts looking for a free connection.
    next_side: AtomicUsize,
    /// Transactions committed so far by this store, durable or not.
    committed: AtomicU64,
    /// How many of them are known durable.
    durable: AtomicU64,
    /// How to open the dedicated connections cluster coordination needs (see `generation`).
    config: ::postgres::Config,
    /// Authenticates new events and pinned playbooks; `None`: plain SHA-256.
    key: Option<JournalKey>,
    /// This node's id and lease time, for every claim it takes.
    lease: Lease,
    /// The drill scheduler lease this node contends with, once it does: its heartbeat records whether it holds it.
    scheduler: Mutex<std::sync::Weak<super::Lease>>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST/DB`)
    /// and migrates its schema. Errors name the host and database, never the URL.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        let config: ::postgres::Config = url.parse().map_err(|_| {
            anyhow::anyhow!(
                "the [store] url is not a PostgreSQL connection URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE in the secret"
            )
        })?;
        let conn = Conn::open(config.clone(), "crisis-postgres")?;
        conn.call(migrate)?;
        Ok(PgStore {
            conn: Mutex::new(conn),
            side: (0..SIDE_CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next_side: AtomicUsize::new(0),
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            config,
            key: None,
            lease: Lease::default(),
            scheduler: Mutex::new(std::sync::Weak::new()),
        })
    }

    /// Authenticates every event appended from now on with `key`; the same
    /// rules as [`super::SqliteStore::with_key`].
    pub fn with_key(mut self, key: JournalKey, adopt_unkeyed: bool) -> anyhow::Result<Self> {
        let k = key.clone();
        self.lock().call(move |c| verify::adopt_key(c, &k, adopt_unkeyed))?;
        self.key = Some(key);
        Ok(self)
    }

    /// Claims from now on as node `node`, each lease lasting `lease_ms`
    /// unless renewed by [`Store::heartbeat`]: several daemons may share the database.
    pub fn with_node(mut self, node: &str, lease_ms: i64) -> Self {
        self.lease = Lease { node: node.to_string(), ms: lease_ms };
        self
    }

    /// The connection config and the "host/db" target, for a connection of its own.
    fn dedicated(&self) -> (::postgres::Config, String) {
        (self.config.clone(), self.lock().target.clone())
    }

    /// Runs `f` on its own (autocommit) on a free side connection, or waits for one.
    fn side<R: Send + 'static>(&self, f: impl FnOnce(&mut Client) -> Result<R> + Send + 'static) -> Result<R> {
        let n = self.side.len();
        let start = self.next_side.fetch_add(1, Ordering::Relaxed);
        let mut slot = (0..n)
            .find_map(|i| self.side[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| self.side[start % n].lock().unwrap_or_else(|p| p.into_inner()));
        match slot.as_ref() {
            Some(conn) => conn.call(f),
            None => {
                let conn = Conn::open(self.config.clone(), "crisis-pg-side")?;
                let res = conn.call(f);
                *slot = Some(conn);
                res
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conn> {
        // An interrupted transaction is rolled back by its guard, so the connection is still good.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Applies the migrations this database has not had yet, all in one transaction.
fn migrate(c: &mut Client) -> Result<()> {
    // Ids and keys are compared and range-read as UTF-8 text (up to U+10FFFF), as in SQLite.
    let encoding: String = c.query_one("SHOW server_encoding", &[])?.try_get(0)?;
    if encoding != "UTF8" {
        anyhow::bail!(
            "the database uses encoding {encoding}, but the journal needs UTF8; create it with CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0"
        );
    }
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let version: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?.try_get(0)?;
    if version as usize > MIGRATIONS.len() {
        anyhow::bail!(
            "the journal was written by a newer crisis (schema {version}, this build knows {}); upgrade crisis",
            MIGRATIONS.len()
        );
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(m).with_context(|| format!("schema migration {} failed", i + 1))?;
    }
    if (version as usize) < MIGRATIONS.len() {
        tx.execute("DELETE FROM schema_version", &[])?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(MIGRATIONS.len() as i64)])?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn json(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)
}

const INCIDENT_COLS: &str =
    "id, playbook_id, playbook_hash, mode, dedup_key, status, phase, severity, title, opened_at, updated_at, state";

fn incident_from_row(r: &Row) -> Result<IncidentRow> {
    Ok(IncidentRow {
        id: r.try_get(0)?,
        playbook_id: r.try_get(1)?,
        playbook_hash: r.try_get(2)?,
        mode: r.try_get(3)?,
        dedup_key: r.try_get(4)?,
        status: r.try_get(5)?,
        phase: r.try_get(6)?,
        severity: r.try_get(7)?,
        title: r.try_get(8)?,
        opened_at: r.try_get(9)?,
        updated_at: r.try_get(10)?,
        state: json(r.try_get(11)?),
    })
}

pub(super) const INTENT_COLS: &str = "invocation_id, incident_id, created_at, not_before, payload, attempts, result";

pub(super) fn intent_from_row(r: &Row) -> Result<IntentRow> {
    Ok(IntentRow {
        invocation_id: r.try_get(0)?,
        incident_id: r.try_get(1)?,
        created_at: r.try_get(2)?,
        not_before: r.try_get(3)?,
        payload: json(r.try_get(4)?),
        attempts: r.try_get(5)?,
        result: r.try_get::<_, Option<String>>(6)?.map(json),
        reclaimed_from: None,
    })
}

/// See [`Store::incidents_page`]: the conditions are spelled out per case
/// (not `$1 IS NULL OR ...`) so the planner walks the list index from the
/// cursor instead of filtering every row.
fn incidents_page(c: &mut Client, q: &IncidentQuery) -> Result<Option<IncidentPage>> {
    let cursor: Option<(i64, String)> = match &q.after {
        None => None,
        Some(id) => match c.query_opt("SELECT opened_at FROM incidents WHERE id = $1", &[id])? {
            None => return Ok(None),
            Some(r) => Some((r.try_get(0)?, id.clone())),
        },
    };
    let n = i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut params: Vec<&(dyn ::postgres::types::ToSql + Sync)> = vec![&n];
    let mut conds = Vec::new();
    if q.open_only {
        conds.push("status = 'open'".to_string());
    }
    if let Some(m) = &q.mode {
        params.push(m);
        conds.push(format!("mode = ${}", params.len()));
    }
    if let Some((at, id)) = &cursor {
        params.push(at);
        params.push(id);
        conds.push(format!("(opened_at, id) < (${}, ${})", params.len() - 1, params.len()));
    }
    let filter = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let sql = format!("SELECT {INCIDENT_COLS} FROM incidents {filter} ORDER BY opened_at DESC, id DESC LIMIT $1");
    let found = rows(c.query(&sql, &params)?, incident_from_row)?;
    Ok(Some(IncidentPage::from_overfetch(found, q.limit)))
}

fn rows<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

fn incident_ids(c: &mut Client) -> Result<Vec<String>> {
    let found = c.query("SELECT id FROM incidents ORDER BY opened_at DESC LIMIT 1000", &[])?;
    rows(found, |r| Ok(r.try_get(0)?))
}

fn intent_by_id(c: &mut Client, id: &str) -> Result<Option<IntentRow>> {
    let sql = format!("SELECT {INTENT_COLS} FROM intents WHERE invocation_id = $1");
    c.query_opt(&sql, &[&id])?.as_ref().map(intent_from_row).transpose()
}

fn playbook_version(c: &mut Client, hash: &str) -> Result<Option<serde_json::Value>> {
    let row = c.query_opt("SELECT spec FROM playbook_versions WHERE hash = $1", &[&hash])?;
    Ok(row.map(|r| r.try_get::<_, String>(0)).transpose()?.map(json))
}

fn kv_get(c: &mut impl GenericClient, key: &str) -> Result<Option<String>> {
    Ok(c.query_opt("SELECT value FROM kv WHERE key = $1", &[&key])?.map(|r| r.try_get(0)).transpose()?)
}

pub(super) fn kv_set(c: &mut impl GenericClient, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )?;
    Ok(())
}

impl Store for PgStore {
    fn cluster(&self) -> Option<&dyn Cluster> {
        Some(self)
    }

    fn transaction_unsynced(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let conn = self.lock();
        let mut t = PgTx::new(&conn, self.key.as_ref(), &self.lease.node);
        f(&mut t)?;
        if t.failed {
            anyhow::bail!("a statement of the transaction failed, so it was rolled back although the caller went on");
        }
        if t.commit()? {
            self.committed.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let target = self.committed.load(Ordering::Acquire);
        if self.durable.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        // A statement that takes a transaction id commits durably (synchronous_commit = on on
        // this session), and flushing its commit flushes every commit recorded before it.
        self.side(|c| Ok(c.batch_execute("SELECT txid_current()")?))?;
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    fn incident(&self, id: &str) -> Result<Option<IncidentRow>> {
        let id = id.to_string();
        self.side(move |c| {
            let sql = format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = $1");
            c.query_opt(&sql, &[&id])?.as_ref().map(incident_from_row).transpose()
        })
    }

    fn incidents(&self, open_only: bool, mode: Option<&str>) -> Result<Vec<IncidentRow>> {
        let mode = mode.map(str::to_string);
        self.side(move |c| {
            // The open filter is written out, not bound, so a prepared plan
            // can use the open incidents' partial index.
            let open = if open_only { "status = 'open'" } else { "TRUE" };
            let sql = format!(
                "SELECT {INCIDENT_COLS} FROM incidents WHERE {open} \
                 AND ($1::text IS NULL OR mode = $1) ORDER BY opened_at DESC, id DESC"
            );
            rows(c.query(&sql, &[&mode])?, incident_from_row)
        })
    }

    fn incidents_page(&self, q: &IncidentQuery) -> Result<Option<IncidentPage>> {
        let q = q.clone();
        self.side(move |c| incidents_page(c, &q))
    }

    fn open_incidents(&self, mode: Option<&str>) -> Result<Vec<OpenIncident>> {
        let mode = mode.map(str::to_string);
        self.side(move |c| {
            let sql = "SELECT id, playbook_id, severity, phase FROM incidents \
                       WHERE status = 'open' AND ($1::text IS NULL OR mode = $1) ORDER BY id COLLATE \"C\"";
            rows(c.query(sql, &[&mode])?, |r| {
                Ok(OpenIncident {
                    id: r.try_get(0)?,
                    playbook_id: r.try_get(1)?,
                    severity: r.try_get(2)?,
                    phase: r.try_get(3)?,
                })
            })
        })
    }

    fn incident_ids(&self) -> Result<Vec<String>> {
        self.side(incident_ids)
    }

    fn events(&self, incident_id: &str, after_seq: i64) -> Result<Vec<EventRecord>> {
        let id = incident_id.to_string();
        self.side(move |c| {
            let found = c.query(
                "SELECT seq, incident_id, at, kind, data, prev_hash, hash FROM events \
                 WHERE incident_id = $1 AND seq > $2 ORDER BY seq",
                &[&id, &after_seq],
            )?;
            rows(found, |r| {
                Ok(EventRecord {
                    seq: r.try_get(0)?,
                    incident_id: r.try_get(1)?,
                    at: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    data: json(r.try_get(4)?),
                    prev_hash: r.try_get(5)?,
                    hash: r.try_get(6)?,
                })
            })
        })
    }

    fn due_timers(&self, now: i64) -> Result<Vec<TimerRow>> {
        self.side(move |c| outbox::due_timers(c, now))
    }

    fn claim_timers(&self, now: i64) -> Result<Vec<TimerRow>> {
        let lease = self.lease.clone();
        self.side(move |c| outbox::claim_timers(c, &lease, now))
    }

    fn heartbeat(&self, address: &str, started_at: i64, now: i64) -> Result<()> {
        let (lease, address) = (self.lease.clone(), address.to_string());
        let scheduler = self.scheduler.lock().unwrap_or_else(|p| p.into_inner()).upgrade().is_some_and(|l| l.held());
        self.side(move |c| nodes::heartbeat(c, &lease, (&address, started_at, now), scheduler))
    }

    fn nodes(&self, now: i64) -> Result<Vec<NodeRow>> {
        self.side(move |c| nodes::nodes(c, now))
    }

    fn next_timer_due(&self) -> Result<Option<i64>> {
        let lease = self.lease.clone();
        self.side(move |c| outbox::next_timer_due(c, &lease))
    }

    fn pending_intents(&self, now: i64, limit: usize) -> Result<Vec<IntentRow>> {
        self.side(move |c| {
            let sql = format!(
                "SELECT {INTENT_COLS} FROM intents WHERE result IS NULL AND dead_letter IS NULL AND not_before <= $1 \
                 ORDER BY not_before, created_at, invocation_id LIMIT $2"
            );
            rows(c.query(&sql, &[&now, &(limit as i64)])?, intent_from_row)
        })
    }

    fn next_intent_due(&self) -> Result<Option<i64>> {
        let lease = self.lease.clone();
        self.side(move |c| outbox::next_intent_due(c, &lease))
    }

    fn intents_for(&self, incident_id: &str) -> Result<Vec<IntentRow>> {
        let id = incident_id.to_string();
        self.side(move |c| {
            let sql =
                format!("SELECT {INTENT_COLS} FROM intents WHERE incident_id = $1 ORDER BY created_at, invocation_id");
            rows(c.query(&sql, &[&id])?, intent_from_row)
        })
    }

    fn intent(&self, invocation_id: &str) -> Result<Option<IntentRow>> {
        let id = invocation_id.to_string();
        self.side(move |c| intent_by_id(c, &id))
    }

    fn mark_attempt(&self, invocation_id: &str) -> Result<()> {
        let id = invocation_id.to_string();
        self.side(move |c| {
            c.execute("UPDATE intents SET attempts = attempts + 1 WHERE invocation_id = $1", &[&id])?;
            Ok(())
        })
    }

    fn defer_intent(&self, invocation_id: &str, not_before: i64) -> Result<()> {
        let id = invocation_id.to_string();
        self.side(move |c| {
            c.execute(
                "UPDATE intents SET not_before = $2 WHERE invocation_id = $1 AND result IS NULL",
                &[&id, &not_before],
            )?;
            Ok(())
        })
    }

    fn claim_intents_except(
        &self,
        now: i64,
        limit: usize,
        skip_targets: &[String],
        window: DueWindow,
    ) -> Result<Vec<IntentRow>> {
        let lease = self.lease.clone();
        let skip = skip_targets.to_vec();
        self.side(move |c| outbox::claim_intents(c, &lease, now, limit, &skip, window))
    }

    fn release_intent(&self, invocation_id: &str, not_before: Option<i64>) -> Result<()> {
        let id = invocation_id.to_string();
        self.side(move |c| outbox::release_intent(c, &id, not_before))
    }

    fn release_claims(&self, now: i64) -> Result<usize> {
        let lease = self.lease.clone();
        self.side(move |c| outbox::release_claims(c, &lease, now))
    }

    fn hold_intent(&self, invocation_id: &str, until: i64) -> Result<()> {
        let id = invocation_id.to_string();
        self.side(move |c| {
            c.execute(
                &format!(
                    "UPDATE intents SET {}, held = TRUE, not_before = $2 WHERE invocation_id = $1",
                    outbox::UNCLAIMED
                ),
                &[&id, &until],
            )?;
            Ok(())
        })
    }

    fn expedite_target(&self, target: &str, now: i64) -> Result<usize> {
        let target = target.to_string();
        self.side(move |c| outbox::expedite_target(c, &target, now))
    }

    fn defer_timer(&self, id: i64, now: i64, base_ms: i64) -> Result<i64> {
        self.side(move |c| outbox::defer_timer(c, id, now, base_ms))
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.side(outbox::dead_letters)
    }

    fn outbox_lanes(&self) -> Result<Vec<OutboxLane>> {
        self.side(outbox::outbox_lanes)
    }

    fn playbook_version(&self, hash: &str) -> Result<Option<serde_json::Value>> {
        let hash = hash.to_string();
        self.side(move |c| playbook_version(c, &hash))
    }

    fn kv_get(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.side(move |c| kv_get(c, &key))
    }

    fn complaints(&self, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>> {
        let q = q.clone();
        self.lock().call(move |c| complaints::query(c, &q))
    }

    fn kv_put(&self, key: &str, value: &str) -> Result<()> {
        self.transaction(&mut |tx| tx.kv_set(key, value))
    }

    fn kv_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let prefix = prefix.to_string();
        self.side(move |c| {
            // `key >= prefix AND key < prefix || U+10FFFF` keeps the read on the primary key ("C" order).
            let found = c.query(
                "SELECT key, value FROM kv WHERE key >= $1 AND key < $1 || chr(1114111) ORDER BY key",
                &[&prefix],
            )?;
            rows(found, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
        })
    }

    fn verify(&self, expect_head: Option<&Anchor>) -> Result<VerifyReport> {
        let (key, expect) = (self.key.clone(), expect_head.cloned());
        self.side(move |c| verify::verify(c, key.as_ref(), expect.as_ref()))
    }

    fn timers(&self) -> Result<Vec<TimerRow>> {
        self.side(verify::timers)
    }

    fn put_token(&self, row: &TokenRow) -> Result<()> {
        let row = row.clone();
        self.side(move |c| tokens::insert(c, &row))
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        self.side(tokens::all)
    }

    fn revoke_token(&self, id: &str, at: i64, by: &str) -> Result<bool> {
        let (id, by) = (id.to_string(), by.to_string());
        self.side(move |c| tokens::revoke(c, &id, at, &by))
    }
}

mod complaints;
mod conn;
mod copy;
mod generation;
mod migrations;
mod nodes;
mod outbox;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;
mod tokens;
mod tx;
mod verify;
