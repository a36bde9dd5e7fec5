//! Reading incident and intent rows back into their store types.

use super::{IncidentRow, IntentRow};

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
