//! The write transaction of the SQLite store: every statement the engine
//! runs inside `Store::transaction` goes through the prepared-statement cache.

use super::*;
use crate::store::chain::{EventFields, GENESIS, JournalKey, playbook_seal};
use rusqlite::{OptionalExtension, Transaction, params};

/// One write transaction. The chain head is read once per transaction and
/// stored once, when it commits ([`SqlTx::commit`]), instead of on every event.
pub(super) struct SqlTx<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) key: Option<&'a JournalKey>,
    /// The newest event as of this transaction (seq, hash), once read.
    head: Option<(i64, String)>,
    /// Whether this transaction appended, so the stored head must move.
    appended: bool,
}

impl<'a> SqlTx<'a> {
    pub(super) fn new(tx: Transaction<'a>, key: Option<&'a JournalKey>) -> Self {
        SqlTx { tx, key, head: None, appended: false }
    }

    /// Runs a statement through the connection's prepared-statement cache:
    /// a trigger runs the same twenty-odd statements every time.
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(p)
    }

    /// One row of a cached statement.
    fn row<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(p, f)
    }

    /// Stores the chain head this transaction reached, then commits.
    pub(super) fn commit(self) -> Result<()> {
        if self.appended
            && let Some((seq, hash)) = &self.head
        {
            self.tx
                .prepare_cached(
                    "INSERT INTO kv (key, value) VALUES ('chain_head', ?1) \
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![format!("{seq}:{hash}")])?;
        }
        self.tx.commit()?;
        Ok(())
    }
}

impl Tx for SqlTx<'_> {
    fn append(&mut self, incident_id: &str, at: i64, kind: &str, data: &serde_json::Value) -> Result<EventRecord> {
        let (last_seq, prev) = match self.head.take() {
            Some(h) => h,
            None => self
                .tx
                .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or((0, GENESIS.to_string())),
        };
        let seq = last_seq + 1;
        let text = serde_json::to_string(data)?;
        let hash = EventFields { seq, incident_id, at, kind, data: &text }.next_hash(self.key, &prev);
        self.tx
            .prepare_cached(
                "INSERT INTO events (seq, incident_id, at, kind, data, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![seq, incident_id, at, kind, text, prev, hash])?;
        self.head = Some((seq, hash.clone()));
        self.appended = true;
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
        self.exec(
            "INSERT INTO counters (name, value) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
            params![prefix],
        )?;
        Ok(self.row("SELECT value FROM counters WHERE name = ?1", params![prefix], |r| r.get(0))?)
    }

    fn put_incident(&mut self, row: &IncidentRow) -> Result<()> {
        self.exec(
            &format!("INSERT OR REPLACE INTO incidents ({INCIDENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
            params![
                row.id,
                row.playbook_id,
                row.playbook_hash,
                row.mode,
                row.dedup_key,
                row.status,
                row.phase,
                row.severity,
                row.title,
                row.opened_at,
                row.updated_at,
                serde_json::to_string(&row.state)?
            ],
        )?;
        Ok(())
    }

    fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>> {
        Ok(self
            .row(&format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = ?1"), params![id], incident_from_row)
            .optional()?)
    }

    fn incident_ids(&mut self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare("SELECT id FROM incidents ORDER BY opened_at DESC LIMIT 1000")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn open_by_dedup(&mut self, playbook_id: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .row(
                "SELECT id FROM incidents WHERE playbook_id = ?1 AND dedup_key = ?2 AND status = 'open'",
                params![playbook_id, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn add_timer(
        &mut self,
        incident_id: &str,
        due_at: i64,
        key: &str,
        family: &str,
        data: &serde_json::Value,
    ) -> Result<i64> {
        self.exec(
            "INSERT INTO timers (incident_id, due_at, kind, family, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![incident_id, due_at, key, family, serde_json::to_string(data)?],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn cancel_timer(&mut self, incident_id: &str, key: &str) -> Result<usize> {
        Ok(self.exec("DELETE FROM timers WHERE incident_id = ?1 AND kind = ?2", params![incident_id, key])?)
    }

    fn cancel_timers_in(&mut self, incident_id: &str, family: &str) -> Result<usize> {
        Ok(self.exec("DELETE FROM timers WHERE incident_id = ?1 AND family = ?2", params![incident_id, family])?)
    }

    fn delete_timer(&mut self, id: i64) -> Result<()> {
        self.exec("DELETE FROM timers WHERE id = ?1", params![id])?;
        Ok(())
    }

    fn take_timer(&mut self, id: i64) -> Result<bool> {
        // One daemon per journal: no other node can hold the timer.
        Ok(self.exec("DELETE FROM timers WHERE id = ?1", params![id])? > 0)
    }

    fn add_intent(&mut self, i: &IntentRow) -> Result<()> {
        self.exec(
            "INSERT INTO intents (invocation_id, incident_id, created_at, not_before, payload, target) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                i.invocation_id,
                i.incident_id,
                i.created_at,
                i.not_before,
                serde_json::to_string(&i.payload)?,
                i.target()
            ],
        )?;
        Ok(())
    }

    fn intent(&mut self, invocation_id: &str) -> Result<Option<IntentRow>> {
        Ok(self
            .row(
                &format!("SELECT {INTENT_COLS} FROM intents WHERE invocation_id = ?1"),
                params![invocation_id],
                intent_from_row,
            )
            .optional()?)
    }

    fn complete_intent(&mut self, invocation_id: &str, at: i64, result: &serde_json::Value) -> Result<()> {
        self.exec(
            "UPDATE intents SET result = ?2, completed_at = ?3 WHERE invocation_id = ?1",
            params![invocation_id, serde_json::to_string(result)?, at],
        )?;
        Ok(())
    }

    fn put_playbook_version(&mut self, hash: &str, playbook_id: &str, spec: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string(spec)?;
        let added = self.exec(
            "INSERT OR IGNORE INTO playbook_versions (hash, playbook_id, spec) VALUES (?1, ?2, ?3)",
            params![hash, playbook_id, text],
        )?;
        if added > 0
            && let Some(key) = self.key
        {
            verify::put_playbook_seal(&self.tx, hash, &playbook_seal(key, hash, playbook_id, &text))?;
        }
        Ok(())
    }

    fn playbook_version(&mut self, hash: &str) -> Result<Option<serde_json::Value>> {
        Ok(self
            .row("SELECT spec FROM playbook_versions WHERE hash = ?1", params![hash], |r| r.get::<_, String>(0))
            .optional()?
            .map(json))
    }

    fn dead_letter_intent(&mut self, invocation_id: &str, at: i64, reason: &str) -> Result<()> {
        self.exec(
            "UPDATE intents SET dead_letter = ?2, dead_at = ?3, claimed = 0 WHERE invocation_id = ?1 AND result IS NULL",
            params![invocation_id, reason, at],
        )?;
        Ok(())
    }

    fn dead_letter_timer(&mut self, id: i64, at: i64, reason: &str) -> Result<()> {
        self.exec("UPDATE timers SET dead_letter = ?2, dead_at = ?3 WHERE id = ?1", params![id, reason, at])?;
        Ok(())
    }

    fn redrive_intent(&mut self, invocation_id: &str, now: i64) -> Result<bool> {
        let n = self.exec(
            "UPDATE intents SET dead_letter = NULL, dead_at = NULL, attempts = 0, claimed = 0, not_before = ?2 \
             WHERE invocation_id = ?1 AND dead_letter IS NOT NULL AND result IS NULL",
            params![invocation_id, now],
        )?;
        Ok(n > 0)
    }

    fn kv_set(&mut self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self.row("SELECT value FROM kv WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
    }

    fn kv_delete_prefix(&mut self, prefix: &str) -> Result<u64> {
        // The same range as `kv_prefix`, so the delete stays on the primary key.
        let n = self.exec("DELETE FROM kv WHERE key >= ?1 AND key < ?1 || char(1114111)", params![prefix])?;
        Ok(n as u64)
    }

    fn put_complaint(&mut self, row: &ComplaintRow) -> Result<()> {
        super::complaints::put(&self.tx, row)
    }

    fn complaints(&mut self, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>> {
        super::complaints::query(&self.tx, q)
    }
}
