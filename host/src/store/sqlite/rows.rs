//! Reading incident and intent rows back into their store types.

use super::{IncidentPage, IncidentQuery, IncidentRow, IntentRow};

pub(crate) fn json(s: String) -> serde_json::Value {
    serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)
}

pub(crate) fn incident_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRow> {
    Ok(IncidentRow {
        id: r.get(0)?,
        playbook_id: r.get(1)?,
        playbook_hash: r.get(2)?,
        mode: r.get(3)?,
        dedup_key: r.get(4)?,
        status: r.get(5)?,
        phase: r.get(6)?,
        severity: r.get(7)?,
        title: r.get(8)?,
        opened_at: r.get(9)?,
        updated_at: r.get(10)?,
        state: json(r.get(11)?),
    })
}

pub(crate) const INCIDENT_COLS: &str =
    "id, playbook_id, playbook_hash, mode, dedup_key, status, phase, severity, title, opened_at, updated_at, state";

pub(crate) fn intent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IntentRow> {
    Ok(IntentRow {
        invocation_id: r.get(0)?,
        incident_id: r.get(1)?,
        created_at: r.get(2)?,
        not_before: r.get(3)?,
        payload: json(r.get(4)?),
        attempts: r.get(5)?,
        result: r.get::<_, Option<String>>(6)?.map(json),
        reclaimed_from: None,
    })
}

pub(crate) const INTENT_COLS: &str = "invocation_id, incident_id, created_at, not_before, payload, attempts, result";

/// See [`super::Store::incidents_page`]: the conditions are spelled out per
/// case (not `?1 IS NULL OR ...`) so SQLite walks the list index from the
/// cursor instead of filtering every row.
pub(crate) fn incidents_page(conn: &rusqlite::Connection, q: &IncidentQuery) -> anyhow::Result<Option<IncidentPage>> {
    use rusqlite::OptionalExtension;
    let cursor: Option<(i64, String)> = match &q.after {
        None => None,
        Some(id) => {
            let at = conn
                .prepare_cached("SELECT opened_at FROM incidents WHERE id = ?1")?
                .query_row([id], |r| r.get::<_, i64>(0))
                .optional()?;
            match at {
                None => return Ok(None),
                Some(at) => Some((at, id.clone())),
            }
        }
    };
    let mut conds = Vec::new();
    if q.open_only {
        conds.push("status = 'open'");
    }
    if q.mode.is_some() {
        conds.push("mode = :mode");
    }
    if cursor.is_some() {
        conds.push("(opened_at, id) < (:at, :id)");
    }
    let filter = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let sql = format!("SELECT {INCIDENT_COLS} FROM incidents {filter} ORDER BY opened_at DESC, id DESC LIMIT :n");
    let mut stmt = conn.prepare_cached(&sql)?;
    let n = i64::try_from(q.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":n", &n)];
    if let Some(m) = &q.mode {
        params.push((":mode", m));
    }
    if let Some((at, id)) = &cursor {
        params.push((":at", at));
        params.push((":id", id));
    }
    let rows = stmt.query_map(params.as_slice(), incident_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(IncidentPage::from_overfetch(rows, q.limit)))
}
