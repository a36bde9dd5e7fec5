//! The outbox side of the PostgreSQL store: claiming intents, deferring
//! timers and listing dead letters.
//!
//! A claim is a lease: the claiming node and until when. Claims lock the
//! rows they take and skip rows another connection has locked, so several
//! nodes claiming at once never take the same intent or timer; a row whose
//! lease ran out (its node stopped renewing it) is taken over.
//! A payload that is not JSON reads as `null` (its target as `?`) instead of
//! failing the query, so one corrupt row reaches the engine, which
//! dead-letters it, while every other row still runs.

use super::nodes::Lease;
use super::{DeadItemKind, DeadLetter, DueWindow, IntentRow, OutboxLane, Result, TimerRow, json};
use ::postgres::Client;

fn timer_from_row(r: &::postgres::Row) -> Result<TimerRow> {
    Ok(TimerRow {
        id: r.try_get(0)?,
        incident_id: r.try_get(1)?,
        due_at: r.try_get(2)?,
        kind: r.try_get(3)?,
        family: r.try_get(4)?,
        data: json(r.try_get(5)?),
        reclaimed_from: None,
    })
}

pub(super) fn due_timers(c: &mut Client, now: i64) -> Result<Vec<TimerRow>> {
    let found = c.query(
        "SELECT id, incident_id, due_at, kind, family, data FROM timers \
         WHERE due_at <= $1 AND dead_letter IS NULL ORDER BY due_at, id LIMIT 500",
        &[&now],
    )?;
    found.iter().map(timer_from_row).collect()
}

/// Leases the due timers no live node holds (and this node's own) to this
/// node. A row another node's lease still covers is skipped, so two nodes
/// never fire one timer; a row whose lease ran out is taken over and says
/// from whom.
pub(super) fn claim_timers(c: &mut Client, lease: &Lease, now: i64) -> Result<Vec<TimerRow>> {
    let found = c.query(
        "WITH picked AS ( \
             SELECT id, claimed_by AS prev, lease_until AS prev_until FROM timers \
             WHERE due_at <= $1 AND dead_letter IS NULL \
               AND (claimed_by IS NULL OR claimed_by = $2 OR lease_until < $1) \
             ORDER BY due_at, id LIMIT 500 FOR UPDATE SKIP LOCKED) \
         UPDATE timers t SET claimed_by = $2, lease_until = $1 + $3 FROM picked WHERE t.id = picked.id \
         RETURNING t.id, t.incident_id, t.due_at, t.kind, t.family, t.data, picked.prev, picked.prev_until",
        &[&now, &lease.node, &lease.ms],
    )?;
    let mut rows = Vec::with_capacity(found.len());
    for r in &found {
        let mut row = timer_from_row(r)?;
        row.reclaimed_from = taken_over(r.try_get(6)?, r.try_get(7)?, lease, now);
        rows.push(row);
    }
    // RETURNING has no order: fire in due order.
    rows.sort_by_key(|t| (t.due_at, t.id));
    Ok(rows)
}

/// The node a claim was taken over from: another node whose lease had run out.
fn taken_over(prev: Option<String>, until: Option<i64>, lease: &Lease, now: i64) -> Option<String> {
    prev.filter(|p| *p != lease.node && until.is_some_and(|u| u < now))
}

/// Leases up to `limit` due intents to this node: unclaimed ones, and ones
/// whose holder's lease ran out (it stopped renewing: it died mid-call).
/// Each kind is picked on its own partial index (`intents_unclaimed`,
/// `intents_leased`), so live claims, however many, are never read.
pub(super) fn claim_intents(
    c: &mut Client,
    lease: &Lease,
    now: i64,
    limit: usize,
    skip: &[String],
    window: DueWindow,
) -> Result<Vec<IntentRow>> {
    let (lo, hi) = window.bounds();
    let found = c.query(
        "WITH free AS ( \
             SELECT invocation_id, claimed_by AS prev, lease_until AS prev_until, not_before, created_at \
             FROM intents WHERE result IS NULL AND dead_letter IS NULL AND claimed_by IS NULL AND not_before <= $1 \
               AND not_before >= $6 AND not_before < $7 AND NOT (target = ANY($5)) \
             ORDER BY not_before, created_at, invocation_id LIMIT $2 FOR UPDATE SKIP LOCKED), \
         expired AS ( \
             SELECT invocation_id, claimed_by AS prev, lease_until AS prev_until, not_before, created_at \
             FROM intents WHERE result IS NULL AND dead_letter IS NULL AND claimed_by IS NOT NULL \
               AND lease_until < $1 AND not_before <= $1 AND not_before >= $6 AND not_before < $7 \
               AND NOT (target = ANY($5)) \
             ORDER BY not_before, created_at, invocation_id LIMIT $2 FOR UPDATE SKIP LOCKED), \
         picked AS ( \
             SELECT * FROM free UNION ALL SELECT * FROM expired \
             ORDER BY not_before, created_at, invocation_id LIMIT $2) \
         UPDATE intents i SET claimed = TRUE, claimed_by = $3, lease_until = $1 + $4 \
         FROM picked WHERE i.invocation_id = picked.invocation_id \
         RETURNING i.invocation_id, i.incident_id, i.created_at, i.not_before, i.payload, i.attempts, \
                   picked.prev, picked.prev_until",
        &[&now, &(limit as i64), &lease.node, &lease.ms, &skip, &lo, &hi],
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
                reclaimed_from: taken_over(r.try_get(6)?, r.try_get(7)?, lease, now),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // RETURNING has no order; ids sort bytewise here as in the "C" collation.
    rows.sort_by(|a, b| {
        (a.not_before, a.created_at, &a.invocation_id).cmp(&(b.not_before, b.created_at, &b.invocation_id))
    });
    Ok(rows)
}

/// Columns that give a claim back: no owner, no lease.
pub(super) const UNCLAIMED: &str = "claimed = FALSE, claimed_by = NULL, lease_until = NULL";

pub(super) fn release_intent(c: &mut Client, invocation_id: &str, not_before: Option<i64>) -> Result<()> {
    c.execute(
        &format!("UPDATE intents SET {UNCLAIMED}, not_before = COALESCE($2, not_before) WHERE invocation_id = $1"),
        &[&invocation_id, &not_before],
    )?;
    Ok(())
}

/// Releases this node's claims only: another node's may belong to a call it is running now.
pub(super) fn release_claims(c: &mut Client, lease: &Lease, now: i64) -> Result<usize> {
    let mut tx = c.transaction()?;
    tx.execute(
        "UPDATE intents SET held = FALSE, not_before = LEAST(not_before, $1) WHERE held AND result IS NULL",
        &[&now],
    )?;
    let n = tx.execute(&format!("UPDATE intents SET {UNCLAIMED} WHERE claimed_by = $1"), &[&lease.node])?;
    tx.execute("UPDATE timers SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = $1", &[&lease.node])?;
    tx.commit()?;
    Ok(n as usize)
}

/// A clean stop: gives back every intent and timer this node has claimed
/// and marks its membership row as left, in one statement, so other nodes
/// take the work over at once instead of after the lease. Returns how many
/// intents were given back.
pub(super) fn leave(c: &mut Client, lease: &Lease, now: i64) -> Result<usize> {
    let row = c.query_one(
        &format!(
            "WITH i AS (UPDATE intents SET {UNCLAIMED} WHERE claimed_by = $1 RETURNING 1), \
                  t AS (UPDATE timers SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = $1 RETURNING 1), \
                  n AS (UPDATE nodes SET left_at = $2, holds = '{{}}' WHERE id = $1 RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM i), (SELECT COUNT(*) FROM t), (SELECT COUNT(*) FROM n)"
        ),
        &[&lease.node, &now],
    )?;
    Ok(row.try_get::<_, i64>(0)? as usize)
}

/// When this node should next look for intents: the earliest unclaimed one,
/// or the earliest lease of another node that may run out (read on the
/// partial indexes, so live claims are not scanned).
pub(super) fn next_intent_due(c: &mut Client, lease: &Lease) -> Result<Option<i64>> {
    let row = c.query_one(
        "SELECT LEAST( \
             (SELECT not_before FROM intents \
              WHERE result IS NULL AND dead_letter IS NULL AND claimed_by IS NULL \
              ORDER BY not_before, created_at, invocation_id LIMIT 1), \
             (SELECT lease_until + 1 FROM intents \
              WHERE result IS NULL AND dead_letter IS NULL AND claimed_by IS NOT NULL AND claimed_by <> $1 \
              ORDER BY lease_until LIMIT 1))",
        &[&lease.node],
    )?;
    Ok(row.try_get(0)?)
}

/// When this node should next look for timers; another node's claimed timer
/// counts from when its lease may run out.
pub(super) fn next_timer_due(c: &mut Client, lease: &Lease) -> Result<Option<i64>> {
    let row = c.query_one(
        "SELECT MIN(CASE WHEN claimed_by IS NULL OR claimed_by = $1 THEN due_at \
                         ELSE GREATEST(due_at, lease_until + 1) END) \
         FROM timers WHERE dead_letter IS NULL",
        &[&lease.node],
    )?;
    Ok(row.try_get(0)?)
}

pub(super) fn expedite_target(c: &mut Client, target: &str, now: i64) -> Result<usize> {
    Ok(c.execute(
        "UPDATE intents SET not_before = $2, held = FALSE \
         WHERE result IS NULL AND dead_letter IS NULL AND claimed_by IS NULL AND not_before > $2 \
           AND target = $1",
        &[&target, &now],
    )? as usize)
}

pub(super) fn defer_timer(c: &mut Client, id: i64, now: i64, base_ms: i64) -> Result<i64> {
    let row = c.query_opt(
        "UPDATE timers SET due_at = $2 + $3 * (1::bigint << LEAST(attempts, 8)::int), attempts = attempts + 1, \
         claimed_by = NULL, lease_until = NULL WHERE id = $1 RETURNING attempts",
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
