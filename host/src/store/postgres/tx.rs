//! One open transaction of the PostgreSQL store: the [`Tx`] operations,
//! each run on the connection thread inside the transaction.

use super::*;

/// One open transaction on the connection thread.
pub(super) struct PgTx<'a> {
    pub(super) conn: &'a Conn,
    pub(super) key: Option<&'a JournalKey>,
    /// The node this transaction runs on: a timer it takes must not be leased to another.
    pub(super) node: &'a str,
    /// The chain lock is taken before the first statement and held until the
    /// transaction ends: every writing transaction of every node reads and
    /// writes incidents under it, so two nodes never both change one incident
    /// from the same earlier state (the second would undo the first).
    pub(super) chain_locked: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, so it must not report a commit.
    pub(super) failed: bool,
}

impl PgTx<'_> {
    fn run<R: Send + 'static>(&mut self, f: impl FnOnce(&mut Client) -> Result<R> + Send + 'static) -> Result<R> {
        let lock = !self.chain_locked;
        self.chain_locked = true;
        let res = self.conn.run(move |c| {
            if lock {
                c.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])?;
            }
            f(c)
        });
        self.failed |= res.is_err();
        res
    }
}

impl Tx for PgTx<'_> {
    fn append(&mut self, incident_id: &str, at: i64, kind: &str, data: &serde_json::Value) -> Result<EventRecord> {
        let text = serde_json::to_string(data)?;
        let (key, incident, kind_s) = (self.key.cloned(), incident_id.to_string(), kind.to_string());
        let (seq, prev, hash) = self.run(move |c| {
            let last = c.query_opt("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", &[])?;
            let (last_seq, prev): (i64, String) = match last {
                Some(r) => (r.try_get(0)?, r.try_get(1)?),
                None => (0, GENESIS.to_string()),
            };
            let seq = last_seq + 1;
            let fields = EventFields { seq, incident_id: &incident, at, kind: &kind_s, data: &text };
            let hash = fields.next_hash(key.as_ref(), &prev);
            c.execute(
                "INSERT INTO events (seq, incident_id, at, kind, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&seq, &incident, &at, &kind_s, &text, &prev, &hash],
            )?;
            kv_set(c, "chain_head", &format!("{seq}:{hash}"))?;
            Ok((seq, prev, hash))
        })?;
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
        let prefix = prefix.to_string();
        self.run(move |c| {
            let row = c.query_one(
                "INSERT INTO counters (name, value) VALUES ($1, 1) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                &[&prefix],
            )?;
            Ok(row.try_get(0)?)
        })
    }

    fn put_incident(&mut self, row: &IncidentRow) -> Result<()> {
        let (r, state) = (row.clone(), serde_json::to_string(&row.state)?);
        self.run(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO incidents ({INCIDENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (id) DO UPDATE SET playbook_id = excluded.playbook_id, \
                     playbook_hash = excluded.playbook_hash, mode = excluded.mode, dedup_key = excluded.dedup_key, \
                     status = excluded.status, phase = excluded.phase, severity = excluded.severity, \
                     title = excluded.title, opened_at = excluded.opened_at, updated_at = excluded.updated_at, \
                     state = excluded.state"
                ),
                &[
                    &r.id,
                    &r.playbook_id,
                    &r.playbook_hash,
                    &r.mode,
                    &r.dedup_key,
                    &r.status,
                    &r.phase,
                    &r.severity,
                    &r.title,
                    &r.opened_at,
                    &r.updated_at,
                    &state,
                ],
            )?;
            Ok(())
        })
    }

    fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>> {
        let id = id.to_string();
        self.run(move |c| {
            let sql = format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = $1");
            c.query_opt(&sql, &[&id])?.as_ref().map(incident_from_row).transpose()
        })
    }

    fn incident_ids(&mut self) -> Result<Vec<String>> {
        self.run(incident_ids)
    }

    fn open_by_dedup(&mut self, playbook_id: &str, key: &str) -> Result<Option<String>> {
        let (p, k) = (playbook_id.to_string(), key.to_string());
        self.run(move |c| {
            let row = c.query_opt(
                "SELECT id FROM incidents WHERE playbook_id = $1 AND dedup_key = $2 AND status = 'open'",
                &[&p, &k],
            )?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    fn add_timer(
        &mut self,
        incident_id: &str,
        due_at: i64,
        key: &str,
        family: &str,
        data: &serde_json::Value,
    ) -> Result<i64> {
        let (i, k, f, d) = (incident_id.to_string(), key.to_string(), family.to_string(), serde_json::to_string(data)?);
        self.run(move |c| {
            let row = c.query_one(
                "INSERT INTO timers (incident_id, due_at, kind, family, data) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&i, &due_at, &k, &f, &d],
            )?;
            Ok(row.try_get(0)?)
        })
    }

    fn cancel_timer(&mut self, incident_id: &str, key: &str) -> Result<usize> {
        let (i, k) = (incident_id.to_string(), key.to_string());
        self.run(move |c| Ok(c.execute("DELETE FROM timers WHERE incident_id = $1 AND kind = $2", &[&i, &k])? as usize))
    }

    fn cancel_timers_in(&mut self, incident_id: &str, family: &str) -> Result<usize> {
        let (i, f) = (incident_id.to_string(), family.to_string());
        self.run(move |c| {
            Ok(c.execute("DELETE FROM timers WHERE incident_id = $1 AND family = $2", &[&i, &f])? as usize)
        })
    }

    fn delete_timer(&mut self, id: i64) -> Result<()> {
        self.run(move |c| {
            c.execute("DELETE FROM timers WHERE id = $1", &[&id])?;
            Ok(())
        })
    }

    fn take_timer(&mut self, id: i64) -> Result<bool> {
        let node = self.node.to_string();
        self.run(move |c| {
            let n = c.execute(
                "DELETE FROM timers WHERE id = $1 AND (claimed_by IS NULL OR claimed_by = $2)",
                &[&id, &node],
            )?;
            Ok(n > 0)
        })
    }

    fn add_intent(&mut self, i: &IntentRow) -> Result<()> {
        let (i, payload, target) = (i.clone(), serde_json::to_string(&i.payload)?, i.target().to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO intents (invocation_id, incident_id, created_at, not_before, payload, target) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&i.invocation_id, &i.incident_id, &i.created_at, &i.not_before, &payload, &target],
            )?;
            Ok(())
        })
    }

    fn intent(&mut self, invocation_id: &str) -> Result<Option<IntentRow>> {
        let id = invocation_id.to_string();
        self.run(move |c| intent_by_id(c, &id))
    }

    fn complete_intent(&mut self, invocation_id: &str, at: i64, result: &serde_json::Value) -> Result<()> {
        let (id, result) = (invocation_id.to_string(), serde_json::to_string(result)?);
        self.run(move |c| {
            c.execute(
                "UPDATE intents SET result = $2, completed_at = $3 WHERE invocation_id = $1",
                &[&id, &result, &at],
            )?;
            Ok(())
        })
    }

    fn dead_letter_intent(&mut self, invocation_id: &str, at: i64, reason: &str) -> Result<()> {
        let (id, reason) = (invocation_id.to_string(), reason.to_string());
        self.run(move |c| {
            c.execute(
                "UPDATE intents SET dead_letter = $2, dead_at = $3, claimed = FALSE, claimed_by = NULL, \
                 lease_until = NULL \
                 WHERE invocation_id = $1 AND result IS NULL",
                &[&id, &reason, &at],
            )?;
            Ok(())
        })
    }

    fn dead_letter_timer(&mut self, id: i64, at: i64, reason: &str) -> Result<()> {
        let reason = reason.to_string();
        self.run(move |c| {
            c.execute("UPDATE timers SET dead_letter = $2, dead_at = $3 WHERE id = $1", &[&id, &reason, &at])?;
            Ok(())
        })
    }

    fn redrive_intent(&mut self, invocation_id: &str, now: i64) -> Result<bool> {
        let id = invocation_id.to_string();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE intents SET dead_letter = NULL, dead_at = NULL, attempts = 0, claimed = FALSE, claimed_by = NULL, \
                 lease_until = NULL, not_before = $2 \
                 WHERE invocation_id = $1 AND dead_letter IS NOT NULL AND result IS NULL",
                &[&id, &now],
            )?;
            Ok(n > 0)
        })
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
        let hash = hash.to_string();
        self.run(move |c| playbook_version(c, &hash))
    }

    fn kv_set(&mut self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (key.to_string(), value.to_string());
        self.run(move |c| kv_set(c, &k, &v))
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.run(move |c| kv_get(c, &key))
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

/// Rolls back a transaction that did not reach its COMMIT (an error or a
/// panic in the caller's closure), so the next one starts clean.
pub(super) struct Open<'a> {
    pub(super) conn: &'a Conn,
    pub(super) done: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.run(|c| Ok(c.batch_execute("ROLLBACK")?));
        }
    }
}
