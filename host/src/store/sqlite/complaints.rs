//! The complaints table: one projection row per complaint, written in the
//! transaction that journals the complaint's change.

use super::{ComplaintQuery, ComplaintRow, Result, json};
use rusqlite::{Connection, params};

pub(super) fn put(conn: &Connection, r: &ComplaintRow) -> Result<()> {
    conn.execute(
        // An upsert on the id, not `INSERT OR REPLACE`: a replace would delete
        // whichever row already holds the intake key instead of refusing.
        "INSERT INTO complaints (id, customer, category, channel, state, received_at, updated_at, data, intake_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET customer = excluded.customer, category = excluded.category,
             channel = excluded.channel, state = excluded.state, received_at = excluded.received_at,
             updated_at = excluded.updated_at, data = excluded.data, intake_key = excluded.intake_key",
        params![
            r.id,
            r.customer,
            r.category,
            r.channel,
            r.state,
            r.received_at,
            r.updated_at,
            serde_json::to_string(&r.data)?,
            r.intake_key
        ],
    )?;
    Ok(())
}

/// Rows matching every filter given, oldest first (ties by id).
pub(super) fn query(conn: &Connection, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, customer, category, channel, state, received_at, updated_at, data, intake_key FROM complaints
         WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR customer = ?2) AND (?3 IS NULL OR received_at >= ?3)
           AND (?4 IS NULL OR category = ?4) AND (?5 IS NULL OR intake_key = ?5)
         ORDER BY received_at, id",
    )?;
    let rows = stmt.query_map(params![q.id, q.customer, q.since, q.category, q.intake_key], |r| {
        Ok(ComplaintRow {
            id: r.get(0)?,
            customer: r.get(1)?,
            category: r.get(2)?,
            channel: r.get(3)?,
            state: r.get(4)?,
            received_at: r.get(5)?,
            updated_at: r.get(6)?,
            data: json(r.get(7)?),
            intake_key: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
