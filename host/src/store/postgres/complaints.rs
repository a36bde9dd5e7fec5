//! The complaints table in PostgreSQL: one projection row per complaint,
//! written in the transaction that journals the complaint's change.

use super::{ComplaintQuery, ComplaintRow, Result};
use ::postgres::Client;

pub(super) fn put(c: &mut Client, r: &ComplaintRow) -> Result<()> {
    let data = serde_json::to_string(&r.data)?;
    c.execute(
        "INSERT INTO complaints (id, customer, category, channel, state, received_at, updated_at, data, intake_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET customer = EXCLUDED.customer, category = EXCLUDED.category,
             channel = EXCLUDED.channel, state = EXCLUDED.state, received_at = EXCLUDED.received_at,
             updated_at = EXCLUDED.updated_at, data = EXCLUDED.data, intake_key = EXCLUDED.intake_key",
        &[&r.id, &r.customer, &r.category, &r.channel, &r.state, &r.received_at, &r.updated_at, &data, &r.intake_key],
    )?;
    Ok(())
}

/// Rows matching every filter given, oldest first (ties by id).
pub(super) fn query(c: &mut Client, q: &ComplaintQuery) -> Result<Vec<ComplaintRow>> {
    let found = c.query(
        "SELECT id, customer, category, channel, state, received_at, updated_at, data, intake_key FROM complaints
         WHERE ($1::TEXT IS NULL OR id = $1) AND ($2::TEXT IS NULL OR customer = $2)
           AND ($3::BIGINT IS NULL OR received_at >= $3) AND ($4::TEXT IS NULL OR category = $4)
           AND ($5::TEXT IS NULL OR intake_key = $5)
         ORDER BY received_at, id",
        &[&q.id, &q.customer, &q.since, &q.category, &q.intake_key],
    )?;
    let mut out = Vec::with_capacity(found.len());
    for r in found {
        let data: String = r.try_get(7)?;
        out.push(ComplaintRow {
            id: r.try_get(0)?,
            customer: r.try_get(1)?,
            category: r.try_get(2)?,
            channel: r.try_get(3)?,
            state: r.try_get(4)?,
            received_at: r.try_get(5)?,
            updated_at: r.try_get(6)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            intake_key: r.try_get(8)?,
        });
    }
    Ok(out)
}
