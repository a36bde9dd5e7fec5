//! The outbox side of the PostgreSQL store: claiming intents, deferring
//! timers and listing dead letters.
//!
//! Claims lock the rows they take and skip rows another connection has
//! locked, so several nodes claiming at once never take the same intent.
//! A payload that is not JSON reads as `null` (its target as `?`) instead of
//! failing the query, so one corrupt row reaches the engine, which
//! dead-letters it, while every other row still runs.

use super::{DeadItemKind, DeadLetter, IntentRow, OutboxLane, Result, TimerRow, json};
use ::postgres::Client;

pub(super) fn due_timers(c: &mut Client, now: i64) -> Result<Vec<TimerRow>> {
    let found = c.query(
        "SELECT id, incident_id, due_at, kind, family, data FROM timers \
         WHERE due_at <= $1 AND dead_letter IS NULL ORDER BY due_at, id LIMIT 500",
        &[&now],
    )?;
    found
        .iter()
        .map(|r| {
            Ok(TimerRow {
                id: r.try_get(0)?,
                incident_id: r.try_get(1)?,
                due_at: r.try_get(2)?,
                kind: r.try_get(3)?,
                family: r.try_get(4)?,
                data: json(r.try_get(5)?),
            })
        })
        .collect()
}

pub(super) fn claim_intents(c: &mut Client, now: i64, limit: usize) -> Result<Vec<IntentRow>> {
    let found = c.query(
        "UPDATE intents SET claimed = TRUE WHERE invocation_id IN ( \
             SELECT invocation_id FROM intents \
             WHERE result IS NULL AND dead_letter IS NULL AND NOT claimed AND not_before <= $1 \
             ORDER BY not_before, created_at, invocation_id LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING invocation_id, incident_id, created_at, not_before, payload, attempts",
        &[&now, &(limit as i64)],
    )?;
    let mut rows = found
        .iter()
        .map(|r| {
            Ok(IntentRow {
                invocation_id: r.try_get(0)?,
                incident_id: r.try_get(1)?,
                created_at: r.try_get(2)?,
                not_before: r.try_get(3)?,
                payload: json(r.try_get(4)?),
                attempts: r.try_get(5)?,
                result: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // RETURNING has no order; ids sort bytewise here as in the "C" collation.
    rows.sort_by(|a, b| {
        (a.not_before, a.created_at, &a.invocation_id).cmp(&(b.not_before, b.created_at, &b.invocation_id))
    });
    Ok(rows)
}

pub(super) fn release_intent(c: &mut Client, invocation_id: &str, not_before: Option<i64>) -> Result<()> {
    c.execute(
        "UPDATE intents SET claimed = FALSE, not_before = COALESCE($2, not_before) WHERE invocation_id = $1",
        &[&invocation_id, &not_before],
    )?;
    Ok(())
}

pub(super) fn release_claims(c: &mut Client, now: i64) -> Result<usize> {
    let mut tx = c.transaction()?;
    tx.execute(
        "UPDATE intents SET held = FALSE, not_before = LEAST(not_before, $1) WHERE held AND result IS NULL",
        &[&now],
    )?;
    let n = tx.execute("UPDATE intents SET claimed = FALSE WHERE claimed", &[])?;
    tx.commit()?;
    Ok(n as usize)
}

pub(super) fn expedite_target(c: &mut Client, target: &str, now: i64) -> Result<usize> {
    Ok(c.execute(
        "UPDATE intents SET not_before = $2, held = FALSE \
         WHERE result IS NULL AND dead_letter IS NULL AND NOT claimed AND not_before > $2 \
           AND target = $1",
        &[&target, &now],
    )? as usize)
}

pub(super) fn defer_timer(c: &mut Client, id: i64, now: i64, base_ms: i64) -> Result<i64> {
    let row = c.query_opt(
        "UPDATE timers SET due_at = $2 + $3 * (1::bigint << LEAST(attempts, 8)::int), attempts = attempts + 1 \
         WHERE id = $1 RETURNING attempts",
        &[&id, &now, &base_ms],
    )?;
    let row = row.ok_or_else(|| anyhow::anyhow!("no timer {id} to defer"))?;
    Ok(row.try_get(0)?)
}

pub(super) fn dead_letters(c: &mut Client) -> Result<Vec<DeadLetter>> {
    let mut out = Vec::new();
    for r in c.query("SELECT id, incident_id, dead_letter, dead_at FROM timers WHERE dead_letter IS NOT NULL", &[])? {
        out.push(DeadLetter {
            kind: DeadItemKind::Timer,
            id: r.try_get::<_, i64>(0)?.to_string(),
            incident_id: r.try_get(1)?,
            reason: r.try_get(2)?,
            at: r.try_get::<_, Option<i64>>(3)?.unwrap_or(0),
        });
    }
    let sql = "SELECT invocation_id, incident_id, dead_letter, dead_at FROM intents \
               WHERE dead_letter IS NOT NULL AND result IS NULL";
    for r in c.query(sql, &[])? {
        out.push(DeadLetter {
            kind: DeadItemKind::Intent,
            id: r.try_get(0)?,
            incident_id: r.try_get(1)?,
            reason: r.try_get(2)?,
            at: r.try_get::<_, Option<i64>>(3)?.unwrap_or(0),
        });
    }
    out.sort_by_key(|d| d.at);
    Ok(out)
}

pub(super) fn outbox_lanes(c: &mut Client) -> Result<Vec<OutboxLane>> {
    let found = c.query(
        "SELECT DISTINCT ON (t) t, COUNT(*) OVER (PARTITION BY t), created_at, invocation_id, incident_id \
         FROM (SELECT target AS t, created_at, invocation_id, \
                      incident_id FROM intents WHERE result IS NULL AND dead_letter IS NULL) p \
         ORDER BY t, created_at, invocation_id",
        &[],
    )?;
    found
        .iter()
        .map(|r| {
            Ok(OutboxLane {
                target: r.try_get(0)?,
                depth: r.try_get(1)?,
                oldest_at: r.try_get(2)?,
                oldest_id: r.try_get(3)?,
                oldest_incident: r.try_get(4)?,
            })
        })
        .collect()
}
