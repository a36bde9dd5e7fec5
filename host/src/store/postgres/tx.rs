//! One open transaction of the PostgreSQL store: the [`Tx`] operations,
//! each run on the connection thread inside the transaction.
//!
//! Cross-node rule: the transaction takes the chain lock with its BEGIN and
//! holds it until its COMMIT, so every writing transaction of every node
//! reads and writes under it: the chain is totally ordered, and two nodes
//! never both change one incident (or a budget count, or drill bookkeeping)
//! from the same earlier state. To keep that serial section short, the
//! BEGIN, the lock and the chain head take one round trip, appended events
//! are hashed here and written in one statement just before the COMMIT,
//! every statement is prepared once per connection, and the COMMIT does not
//! wait for the disk (the lock is free as soon as the commit is recorded):
//! [`Store::sync`] waits for the flush before anyone is told.

use super::*;
use ::postgres::types::ToSql;
use conn::Session;

/// Statement parameters moved onto the connection thread.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

macro_rules! params {
    ($($p:expr),* $(,)?) => { vec![$(Box::new($p) as Box<dyn ToSql + Sync + Send>),*] };
}

/// Writes a transaction's events and the new chain head in one statement.
const APPEND_EVENTS: &str = "WITH e AS (INSERT INTO events (seq, incident_id, at, kind, data, prev_hash, hash) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])) \
     INSERT INTO kv (key, value) VALUES ('chain_head', $8) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// An event hashed into the chain, written just before the COMMIT.
struct Pending {
    seq: i64,
    incident_id: String,
    at: i64,
    kind: String,
    data: String,
    prev_hash: String,
    hash: String,
}

/// One open transaction on the connection thread.
pub(super) struct PgTx<'a> {
    conn: &'a Conn,
    key: Option<&'a JournalKey>,
    /// The node this transaction runs on: a timer it takes must not be leased to another.
    node: &'a str,
    /// The chain head (seq, hash) read under the chain lock at BEGIN and
    /// advanced by every append; `None` until the transaction began.
    head: Option<(i64, String)>,
    /// Events appended so far, in order.
    pending: Vec<Pending>,
    /// BEGIN was sent and neither COMMIT nor ROLLBACK since.
    open: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, so it must not report a commit.
    pub(super) failed: bool,
}

impl<'a> PgTx<'a> {
    pub(super) fn new(conn: &'a Conn, key: Option<&'a JournalKey>, node: &'a str) -> Self {
        PgTx { conn, key, node, head: None, pending: Vec::new(), open: false, failed: false }
    }

    /// BEGIN, the chain lock and the chain head, in one round trip, before the first statement.
    fn begin(&mut self) -> Result<()> {
        if self.head.is_some() {
            return Ok(());
        }
        self.open = true;
        // The simple protocol answers in text: order by the column, not by its text form.
        let sql = format!(
            "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock({CHAIN_LOCK}); \
             SELECT e.seq::text, e.hash FROM events e ORDER BY e.seq DESC LIMIT 1"
        );
        let res = self.conn.session(move |s| {
            s.ensure_open()?;
            let mut head = None;
            for m in s.client.simple_query(&sql)? {
                if let ::postgres::SimpleQueryMessage::Row(r) = m
                    && r.len() == 2
                {
                    let seq: i64 = r.get(0).unwrap_or("").parse()?;
                    head = Some((seq, r.get(1).unwrap_or("").to_string()));
                }
            }
            Ok(head.unwrap_or_else(|| (0, GENESIS.to_string())))
        });
        match res {
            Ok(head) => {
                self.head = Some(head);
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn on_session<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Session) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.begin()?;
        let res = self.conn.session(f);
        self.failed |= res.is_err();
        res
    }

    /// Runs `sql` (prepared once per connection) inside the transaction; the rows it returns.
    fn query(&mut self, sql: String, params: Params) -> Result<Vec<Row>> {
        self.on_session(move |s| {
            let st = s.prepared(&sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            Ok(s.client.query(&st, &refs)?)
        })
    }

    /// Runs `sql` (prepared once per connection) inside the transaction; how many rows it changed.
    fn execute(&mut self, sql: String, params: Params) -> Result<u64> {
        self.on_session(move |s| {
            let st = s.prepared(&sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
            Ok(s.client.execute(&st, &refs)?)
        })
    }

    /// Runs `f` with the plain client inside the transaction (statements not worth preparing).
    fn run<R: Send + 'static>(&mut self, f: impl FnOnce(&mut Client) -> Result<R> + Send + 'static) -> Result<R> {
        self.on_session(move |s| f(&mut s.client))
    }

    /// Writes the appended events and commits without waiting for the disk;
    /// false if the transaction never began (nothing to commit).
    pub(super) fn commit(mut self) -> Result<bool> {
        if !self.open {
            return Ok(false);
        }
        let events = std::mem::take(&mut self.pending);
        let res = self.conn.session(move |s| {
            if let Some(last) = events.last() {
                let head = format!("{}:{}", last.seq, last.hash);
                let mut cols = EventColumns::default();
                for e in events {
                    cols.0.push(e.seq);
                    cols.1.push(e.incident_id);
                    cols.2.push(e.at);
                    cols.3.push(e.kind);
                    cols.4.push(e.data);
                    cols.5.push(e.prev_hash);
                    cols.6.push(e.hash);
                }
                let st = s.prepared(APPEND_EVENTS)?;
                s.client.execute(&st, &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6, &head])?;
            }
            Ok(s.client.batch_execute("COMMIT")?)
        });
        // After a failed COMMIT the server has ended the transaction; a ROLLBACK is harmless either way.
        self.open = res.is_err();
        res.map(|()| true)
    }
}

/// A transaction's new events column by column (seq, incident, at, kind,
/// data, prev hash, hash), appended in one statement of arrays.
type EventColumns = (Vec<i64>, Vec<String>, Vec<i64>, Vec<String>, Vec<String>, Vec<String>, Vec<String>);

impl Drop for PgTx<'_> {
    /// Rolls back a transaction that did not reach its COMMIT (an error or a
    /// panic in the caller's closure), so the next one starts clean.
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.run(|c| Ok(c.batch_execute("ROLLBACK")?));
        }
    }
}

impl Tx for PgTx<'_> {
    fn append(&mut self, incident_id: &str, at: i64, kind: &str, data: &serde_json::Value) -> Result<EventRecord> {
        self.begin()?;
        let text = serde_json::to_string(data)?;
        let (last_seq, prev) = self.head.clone().unwrap_or((0, GENESIS.to_string()));
        let seq = last_seq + 1;
        let fields = EventFields { seq, incident_id, at, kind, data: &text };
        let hash = fields.next_hash(self.key, &prev);
        self.pending.push(Pending {
            seq,
            incident_id: incident_id.to_string(),
            at,
            kind: kind.to_string(),
            data: text,
            prev_hash: prev.clone(),
            hash: hash.clone(),
        });
        self.head = Some((seq, hash.clone()));
        Ok(EventRecord {
            seq,
            incident_id: incident_id.to_string(),
            at,
            kind: kind.to_string(),
            data: data.clone(),
            prev_hash: prev,
            hash,
        })
    }

    fn next_incident_number(&mut self, prefix: &str) -> Result<i64> {
        let sql = "INSERT INTO counters (name, value) VALUES ($1, 1) \
                   ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value";
        let found = self.query(sql.into(), params![prefix.to_string()])?;
        let row = found.first().ok_or_else(|| anyhow::anyhow!("the incident counter returned no value"))?;
        Ok(row.try_get(0)?)
    }

    fn put_incident(&mut self, row: &IncidentRow) -> Result<()> {
        let (r, state) = (row.clone(), serde_json::to_string(&row.state)?);
        let sql = format!(
            "INSERT INTO incidents ({INCIDENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO UPDATE SET playbook_id = excluded.playbook_id, \
             playbook_hash = excluded.playbook_hash, mode = excluded.mode, dedup_key = excluded.dedup_key, \
             status = excluded.status, phase = excluded.phase, severity = excluded.severity, \
             title = excluded.title, opened_at = excluded.opened_at, updated_at = excluded.updated_at, \
             state = excluded.state"
        );
        self.execute(
            sql,
            params![
                r.id,
                r.playbook_id,
                r.playbook_hash,
                r.mode,
                r.dedup_key,
                r.status,
                r.phase,
                r.severity,
                r.title,
                r.opened_at,
                r.updated_at,
                state,
            ],
        )?;
        Ok(())
    }

    fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>> {
        let sql = format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = $1");
        self.query(sql, params![id.to_string()])?.first().map(incident_from_row).transpose()
    }

    fn incident_ids(&mut self) -> Result<Vec<String>> {
        self.run(incident_ids)
    }

    fn open_by_dedup(&mut self, playbook_id: &str, key: &str) -> Result<Option<String>> {
        let sql = "SELECT id FROM incidents WHERE playbook_id = $1 AND dedup_key = $2 AND status = 'open'";
        let found = self.query(sql.into(), params![playbook_id.to_string(), key.to_string()])?;
        Ok(found.first().map(|r| r.try_get(0)).transpose()?)
    }

    fn add_timer(
        &mut self,
        incident_id: &str,
        due_at: i64,
        key: &str,
        family: &str,
        data: &serde_json::Value,
    ) -> Result<i64> {
        let sql =
            "INSERT INTO timers (incident_id, due_at, kind, family, data) VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let p =
            params![incident_id.to_string(), due_at, key.to_string(), family.to_string(), serde_json::to_string(data)?];
        let found = self.query(sql.into(), p)?;
        let row = found.first().ok_or_else(|| anyhow::anyhow!("adding a timer returned no id"))?;
        Ok(row.try_get(0)?)
    }

    fn cancel_timer(&mut self, incident_id: &str, key: &str) -> Result<usize> {
        let sql = "DELETE FROM timers WHERE incident_id = $1 AND kind = $2";
        Ok(self.execute(sql.into(), params![incident_id.to_string(), key.to_string()])? as usize)
    }

    fn cancel_timers_in(&mut self, incident_id: &str, family: &str) -> Result<usize> {
        let sql = "DELETE FROM timers WHERE incident_id = $1 AND family = $2";
        Ok(self.execute(sql.into(), params![incident_id.to_string(), family.to_string()])? as usize)
    }

    fn delete_timer(&mut self, id: i64) -> Result<()> {
        self.execute("DELETE FROM timers WHERE id = $1".into(), params![id])?;
        Ok(())
    }

    fn take_timer(&mut self, id: i64) -> Result<bool> {
        let sql = "DELETE FROM timers WHERE id = $1 AND (claimed_by IS NULL OR claimed_by = $2)";
        Ok(self.execute(sql.into(), params![id, self.node.to_string()])? > 0)
    }

    fn add_intent(&mut self, i: &IntentRow) -> Result<()> {
        let sql = "INSERT INTO intents (invocation_id, incident_id, created_at, not_before, payload, target) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let p = params![
            i.invocation_id.clone(),
            i.incident_id.clone(),
            i.created_at,
            i.not_before,
            serde_json::to_string(&i.payload)?,
            i.target().to_string(),
        ];
        self.execute(sql.into(), p)?;
        Ok(())
    }

    fn intent(&mut self, invocation_id: &str) -> Result<Option<IntentRow>> {
        let sql = format!("SELECT {INTENT_COLS} FROM intents WHERE invocation_id = $1");
        self.query(sql, params![invocation_id.to_string()])?.first().map(intent_from_row).transpose()
    }

    fn complete_intent(&mut self, invocation_id: &str, at: i64, result: &serde_json::Value) -> Result<()> {
        let sql = "UPDATE intents SET result = $2, completed_at = $3 WHERE invocation_id = $1";
        self.execute(sql.into(), params![invocation_id.to_string(), serde_json::to_string(result)?, at])?;
        Ok(())
    }

    fn dead_letter_intent(&mut self, invocation_id: &str, at: i64, reason: &str) -> Result<()> {
        let sql = "UPDATE intents SET dead_letter = $2, dead_at = $3, claimed = FALSE, claimed_by = NULL, \
                   lease_until = NULL WHERE invocation_id = $1 AND result IS NULL";
        self.execute(sql.into(), params![invocation_id.to_string(), reason.to_string(), at])?;
        Ok(())
    }

    fn dead_letter_timer(&mut self, id: i64, at: i64, reason: &str) -> Result<()> {
        let sql = "UPDATE timers SET dead_letter = $2, dead_at = $3 WHERE id = $1";
        self.execute(sql.into(), params![id, reason.to_string(), at])?;
        Ok(())
    }

    fn redrive_intent(&mut self, invocation_id: &str, now: i64) -> Result<bool> {
        let sql = "UPDATE intents SET dead_letter = NULL, dead_at = NULL, attempts = 0, claimed = FALSE, \
                   claimed_by = NULL, lease_until = NULL, not_before = $2 \
                   WHERE invocation_id = $1 AND dead_letter IS NOT NULL AND result IS NULL";
        Ok(self.execute(sql.into(), params![invocation_id.to_string(), now])? > 0)
    }

    fn put_playbook_version(&mut self, hash: &str, playbook_id: &str, spec: &serde_json::Value) -> Result<()> {
        let (h, p, text) = (hash.to_string(), playbook_id.to_string(), serde_json::to_string(spec)?);
        let seal = self.key.map(|k| playbook_seal(k, hash, playbook_id, &text));
        self.run(move |c| {
            let added = c.execute(
                "INSERT INTO playbook_versions (hash, playbook_id, spec) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&h, &p, &text],
            )?;
            if added > 0
                && let Some(seal) = seal
            {
                verify::put_playbook_seal(c, &h, &seal)?;
            }
            Ok(())
        })
    }

    fn playbook_version(&mut self, hash: &str) -> Result<Option<serde_json::Value>> {
        let found =
            self.query("SELECT spec FROM playbook_versions WHERE hash = $1".into(), params![hash.to_string()])?;
        Ok(found.first().map(|r| r.try_get::<_, String>(0)).transpose()?.map(json))
    }

    fn kv_set(&mut self, key: &str, value: &str) -> Result<()> {
        let sql = "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        self.execute(sql.into(), params![key.to_string(), value.to_string()])?;
        Ok(())
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<String>> {
        let found = self.query("SELECT value FROM kv WHERE key = $1".into(), params![key.to_string()])?;
        Ok(found.first().map(|r| r.try_get(0)).transpose()?)
    }

    fn kv_delete_prefix(&mut self, prefix: &str) -> Result<u64> {
        // The same range as `kv_prefix`, so the delete stays on the primary key ("C" order).
        let sql = "DELETE FROM kv WHERE key >= $1 AND key < $1 || chr(1114111)";
        self.execute(sql.into(), params![prefix.to_string()])
    }

    fn put_complaint(&mut self, row: &ComplaintRow) -> Result<()> {
        let row = row.clone();
        self.run(move |c| complaints::put(c, &row))
    }

    fn complaints(&mut self, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>> {
        let q = q.clone();
        self.run(move |c| complaints::query(c, &q))
    }
}
