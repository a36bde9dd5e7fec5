//! The outbox side of the SQLite store: claiming intents, deferring timers
//! and listing dead letters.
//!
//! Rows are read tolerantly: a column that cannot be decoded reads as empty
//! (or JSON `null`) instead of failing the whole query, so one corrupt row
//! reaches the engine, which dead-letters it, while every other row still runs.

use super::{DeadItemKind, DeadLetter, DueWindow, IntentRow, OutboxLane, Result, TimerRow, json};
use rusqlite::{Connection, OptionalExtension, params};

/// A text column, or empty if it is missing or not text.
fn text(r: &rusqlite::Row<'_>, i: usize) -> String {
    r.get::<_, String>(i).unwrap_or_default()
}

/// A JSON text column, or `null` if it is not valid JSON.
fn json_col(r: &rusqlite::Row<'_>, i: usize) -> serde_json::Value {
    r.get::<_, String>(i).map(json).unwrap_or(serde_json::Value::Null)
}

pub(super) fn due_timers(conn: &Connection, now: i64) -> Result<Vec<TimerRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, incident_id, due_at, kind, family, data FROM timers WHERE due_at <= ?1 AND dead_letter IS NULL ORDER BY due_at, id LIMIT 500",
    )?;
    let rows = stmt.query_map(params![now], |r| {
        Ok(TimerRow {
            id: r.get(0)?,
            incident_id: text(r, 1),
            due_at: r.get(2).unwrap_or(now),
            kind: text(r, 3),
            family: text(r, 4),
            data: json_col(r, 5),
            reclaimed_from: None,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn tolerant_intent(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<IntentRow> {
    Ok(IntentRow {
        invocation_id: r.get(0)?,
        incident_id: text(r, 1),
        created_at: r.get(2).unwrap_or(now),
        not_before: r.get(3).unwrap_or(now),
        payload: json_col(r, 4),
        attempts: r.get(5).unwrap_or(0),
        result: None,
        reclaimed_from: None,
    })
}

/// One target's due intents within a window, in claim order, as keys.
pub(super) const DUE_KEYS_SQL: &str = "SELECT not_before, created_at, invocation_id FROM intents INDEXED BY intents_claimable \
     WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0 \
       AND target = ?1 AND not_before <= ?2 AND not_before >= ?3 AND not_before < ?4 \
     ORDER BY not_before, created_at, invocation_id LIMIT ?5";

/// The targets with pending intents, one index seek each: the claim reads
/// each target's own range of the claim index instead of walking past the
/// rows of the targets it passes over.
fn pending_targets(conn: &Connection) -> Result<Vec<String>> {
    // The first seek has no lower bound, so even an empty target is found;
    // each next one starts past the last (an `OR` in one statement would
    // make SQLite walk the index instead of seeking).
    let first = conn.prepare_cached(FIRST_TARGET_SQL)?.query_row([], |r| r.get(0));
    let mut targets: Vec<String> = first.optional()?.into_iter().collect();
    let mut next = conn.prepare_cached(NEXT_TARGET_SQL)?;
    while let Some(t) = next.query_row(params![targets.last()], |r| r.get::<_, String>(0)).optional()? {
        targets.push(t);
    }
    Ok(targets)
}

/// The first target with claimable intents, in index order.
const FIRST_TARGET_SQL: &str = "SELECT target FROM intents INDEXED BY intents_claimable \
     WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0 ORDER BY target LIMIT 1";
/// The next target with claimable intents after `?1`.
pub(super) const NEXT_TARGET_SQL: &str = "SELECT target FROM intents INDEXED BY intents_claimable \
     WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0 AND target > ?1 ORDER BY target LIMIT 1";

pub(super) fn claim_intents(
    conn: &mut Connection,
    now: i64,
    limit: usize,
    skip: &[String],
    window: DueWindow,
) -> Result<Vec<IntentRow>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<IntentRow> = {
        // Each target's due rows in its range of the claim index (target
        // first, then due time), read from the index alone, so neither a
        // skipped target's backlog nor the rows outside the window are read;
        // the first `limit` of them all, in due order, are then loaded.
        let (lo, hi) = window.bounds();
        let mut due = tx.prepare_cached(DUE_KEYS_SQL)?;
        let mut keys: Vec<(i64, i64, String)> = Vec::new();
        for target in pending_targets(&tx)? {
            if skip.contains(&target) {
                continue;
            }
            let found = due.query_map(params![target, now, lo, hi, limit as i64], |r| {
                Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(now), r.get::<_, Option<i64>>(1)?.unwrap_or(now), r.get(2)?))
            })?;
            for key in found {
                keys.push(key?);
            }
        }
        keys.sort();
        keys.truncate(limit);
        let mut load = tx.prepare_cached(
            "SELECT invocation_id, incident_id, created_at, not_before, payload, attempts FROM intents WHERE invocation_id = ?1",
        )?;
        let mut rows = Vec::with_capacity(keys.len());
        for (_, _, id) in keys {
            rows.push(load.query_row(params![id], |r| tolerant_intent(r, now))?);
        }
        rows
    };
    {
        let mut claim = tx.prepare_cached("UPDATE intents SET claimed = 1 WHERE invocation_id = ?1")?;
        for r in &rows {
            claim.execute(params![r.invocation_id])?;
        }
    }
    tx.commit()?;
    Ok(rows)
}

pub(super) fn next_intent_due(conn: &Connection) -> Result<Option<i64>> {
    let mut first = conn.prepare_cached(
        "SELECT not_before FROM intents INDEXED BY intents_claimable \
         WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0 AND target = ?1 ORDER BY not_before LIMIT 1",
    )?;
    let mut due: Option<i64> = None;
    for target in pending_targets(conn)? {
        if let Some(t) = first.query_row(params![target], |r| r.get::<_, i64>(0)).optional()? {
            due = Some(due.map_or(t, |d| d.min(t)));
        }
    }
    Ok(due)
}

pub(super) fn release_intent(conn: &Connection, invocation_id: &str, not_before: Option<i64>) -> Result<()> {
    match not_before {
        Some(t) => conn
            .prepare_cached("UPDATE intents SET claimed = 0, not_before = ?2 WHERE invocation_id = ?1")?
            .execute(params![invocation_id, t])?,
        None => conn
            .prepare_cached("UPDATE intents SET claimed = 0 WHERE invocation_id = ?1")?
            .execute(params![invocation_id])?,
    };
    Ok(())
}

pub(super) fn expedite_target(conn: &Connection, target: &str, now: i64) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE intents SET not_before = ?2, held = 0 \
         WHERE result IS NULL AND dead_letter IS NULL AND claimed = 0 AND not_before > ?2 \
           AND target = ?1",
        params![target, now],
    )?)
}

pub(super) fn defer_timer(conn: &Connection, id: i64, now: i64, base_ms: i64) -> Result<i64> {
    conn.execute(
        "UPDATE timers SET due_at = ?2 + ?3 * (1 << MIN(attempts, 8)), attempts = attempts + 1 WHERE id = ?1",
        params![id, now, base_ms],
    )?;
    Ok(conn.query_row("SELECT attempts FROM timers WHERE id = ?1", params![id], |r| r.get(0))?)
}

pub(super) fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>> {
    let mut out = Vec::new();
    let mut stmt =
        conn.prepare("SELECT id, incident_id, dead_letter, dead_at FROM timers WHERE dead_letter IS NOT NULL")?;
    let rows = stmt.query_map([], |r| {
        Ok(DeadLetter {
            kind: DeadItemKind::Timer,
            id: r.get::<_, i64>(0)?.to_string(),
            incident_id: text(r, 1),
            reason: text(r, 2),
            at: r.get(3).unwrap_or(0),
        })
    })?;
    out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    let mut stmt = conn.prepare("SELECT invocation_id, incident_id, dead_letter, dead_at FROM intents WHERE dead_letter IS NOT NULL AND result IS NULL")?;
    let rows = stmt.query_map([], |r| {
        Ok(DeadLetter {
            kind: DeadItemKind::Intent,
            id: r.get(0)?,
            incident_id: text(r, 1),
            reason: text(r, 2),
            at: r.get(3).unwrap_or(0),
        })
    })?;
    out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    out.sort_by_key(|d| d.at);
    Ok(out)
}

/// Depth and oldest pending intent per target, read from the partial
/// `intents_target_pending` index rather than from the payloads.
pub(super) const LANES_SQL: &str = "SELECT target, COUNT(*), MIN(created_at), invocation_id, incident_id \
     FROM intents WHERE result IS NULL AND dead_letter IS NULL GROUP BY target ORDER BY target";

pub(super) fn outbox_lanes(conn: &Connection) -> Result<Vec<OutboxLane>> {
    // With MIN(), SQLite takes the bare columns from the row holding the minimum.
    let mut stmt = conn.prepare_cached(LANES_SQL)?;
    let rows = stmt.query_map([], |r| {
        Ok(OutboxLane {
            target: text(r, 0),
            depth: r.get(1)?,
            oldest_at: r.get(2).unwrap_or(0),
            oldest_id: text(r, 3),
            oldest_incident: text(r, 4),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
