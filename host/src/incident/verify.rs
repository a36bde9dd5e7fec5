//! Full verification: the chain (checked by the store), then everything the
//! engine derives from it. Each incident's events are folded again exactly
//! as the engine folds them and compared with its stored projection; every
//! incident's pinned playbook version must exist and be that version; every
//! pending timer must belong to an incident that can still use it.

use super::complaint::is_complaint_id;
use super::events::{Event, JournalEvent};
use super::state::{Incident, Status};
use super::timers::{DeadlineKind, Timer};
use crate::playbook::spec::Playbook;
use crate::playbook::types::Phase;
use crate::store::{Anchor, EventRecord, IncidentQuery, IncidentRow, Store, TimerRow, VerifyReport};
use std::collections::{HashMap, HashSet};

/// Incident rows read per page while verifying.
const VERIFY_PAGE: usize = 500;

/// Verifies the journal and the projections, pinned playbooks and timers
/// derived from it; every problem is named by incident and field.
pub fn verify(store: &dyn Store, expect_head: Option<&Anchor>) -> anyhow::Result<VerifyReport> {
    let mut report = store.verify(expect_head)?;
    super::complaint_verify::verify(store, &mut report)?;
    // A page of rows and one incident's events at a time: memory stays that of
    // a page, the pending timers and the largest incident, not of the whole
    // journal. Each incident's timers are judged when it is folded.
    let mut timers_of: HashMap<String, Vec<TimerRow>> = HashMap::new();
    for t in store.timers()? {
        // A complaint timer is dropped when it fires for a complaint that is gone.
        if !is_complaint_id(&t.incident_id) {
            timers_of.entry(t.incident_id.clone()).or_default().push(t);
        }
    }
    let mut suspect: Vec<TimerRow> = Vec::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let q = IncidentQuery { open_only: false, mode: None, after: after.take(), limit: VERIFY_PAGE };
        let Some(page) = store.incidents_page(&q)? else { break };
        for listed_row in page.rows {
            listed.insert(listed_row.id.clone());
            let Some((row, events)) = snapshot(store, &listed_row.id.clone(), Some(listed_row))? else { continue };
            let timers = timers_of.remove(&row.id).unwrap_or_default();
            match fold(&row.id, &events) {
                Ok(inc) => {
                    compare(&row, &inc, &mut report.problems);
                    suspect.extend(timers.into_iter().filter(|t| check_timer(t, Some(&inc)).is_some()));
                }
                Err(e) => {
                    report.problems.push(format!("incident {}: {e}", row.id));
                    suspect.extend(timers);
                }
            }
            check_pinned(store, &row, &mut report.problems)?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    for id in report.incidents.iter().filter(|id| !is_complaint_id(id)) {
        // Listed after the chain walk: an incident opened since has a row.
        if !listed.contains(id.as_str()) && store.incident(id)?.is_none() {
            report.problems.push(format!("incident {id} has events but no projection row: the row was deleted"));
        }
    }
    // Timers of incidents the walk did not list, and those it found wrong.
    suspect.extend(timers_of.into_values().flatten());
    if suspect.is_empty() {
        return Ok(report);
    }
    // The daemon keeps working while this runs: judge again on fresh rows.
    let current: HashSet<i64> = store.timers()?.into_iter().map(|t| t.id).collect();
    for t in suspect.into_iter().filter(|t| current.contains(&t.id)) {
        let fresh = match snapshot(store, &t.incident_id, None)? {
            Some((row, events)) => fold(&row.id, &events).ok(),
            None => None,
        };
        if let Some(p) = check_timer(&t, fresh.as_ref()) {
            report.problems.push(p);
        }
    }
    Ok(report)
}

/// An incident's projection row and its events as of one moment: a write
/// commits both together, so the row is re-read until no event of the
/// incident is newer than the row (a few tries while the daemon writes).
/// `known` is a row already read (a page of the walk): it is tried first
/// instead of being read again.
fn snapshot(
    store: &dyn Store,
    id: &str,
    mut known: Option<IncidentRow>,
) -> anyhow::Result<Option<(IncidentRow, Vec<EventRecord>)>> {
    let mut tries = 0;
    loop {
        let row = match known.take() {
            Some(row) => row,
            None => match store.incident(id)? {
                Some(row) => row,
                None => return Ok(None),
            },
        };
        let events = store.events(id, 0)?;
        let row_seq = row.state.get("last_seq").and_then(|v| v.as_i64());
        let last = events.last().map(|e| e.seq);
        tries += 1;
        if row_seq == last || tries == 5 {
            return Ok(Some((row, events)));
        }
    }
}

/// The incident state its events produce, folded as the engine does when it writes them.
pub(crate) fn fold(id: &str, events: &[EventRecord]) -> Result<Incident, String> {
    let (first, rest) = events.split_first().ok_or("it has no events in the journal")?;
    let opened = first.event().map_err(|e| e.to_string())?;
    let mut inc = Incident::open(id, &opened, first.at)
        .ok_or_else(|| format!("its first event {} is `{}`, not `opened`", first.seq, first.kind))?;
    inc.last_seq = first.seq;
    for rec in rest {
        let ev: Event = rec.event().map_err(|e| e.to_string())?;
        inc.apply(&ev, rec.at, rec.seq);
    }
    Ok(inc)
}

/// Compares a stored projection row with the folded state, field by field.
/// Values are not printed: titles and state may carry customer details.
fn compare(row: &IncidentRow, inc: &Incident, problems: &mut Vec<String>) {
    let phase = if inc.status == Status::Closed { "closed".to_string() } else { inc.phase.to_string() };
    let columns: [(&str, bool); 8] = [
        ("status", row.status == inc.status.as_str()),
        ("phase", row.phase == phase),
        ("severity", row.severity == inc.severity.to_string()),
        ("title", row.title == inc.title),
        ("dedup_key", row.dedup_key == inc.dedup_key),
        ("playbook_id", row.playbook_id == inc.playbook_id),
        ("playbook_hash", row.playbook_hash == inc.playbook_hash),
        ("mode", row.mode == inc.mode.to_string()),
    ];
    for (name, same) in columns {
        if !same {
            problems.push(format!("incident {}: stored {name} differs from what its events say", row.id));
        }
    }
    if row.opened_at != inc.opened_at {
        problems.push(format!("incident {}: stored opened_at differs from what its events say", row.id));
    }
    let want = match serde_json::to_value(inc) {
        Ok(v) => v,
        Err(e) => return problems.push(format!("incident {}: its folded state cannot be written: {e}", row.id)),
    };
    let fields = |v: &serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let (stored, want) = (fields(&row.state), fields(&want));
    let mut keys: Vec<&String> = stored.keys().chain(want.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        if stored.get(k) != want.get(k) {
            problems.push(format!("incident {}: stored state.{k} differs from what its events say", row.id));
        }
    }
}

/// The incident's pinned playbook version must be stored and be that version.
fn check_pinned(store: &dyn Store, row: &IncidentRow, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let (id, hash) = (&row.id, &row.playbook_hash);
    let Some(spec) = store.playbook_version(hash)? else {
        problems.push(format!("incident {id}: its pinned playbook version {hash} is missing"));
        return Ok(());
    };
    match serde_json::from_value::<Playbook>(spec) {
        Err(e) => problems.push(format!("incident {id}: its pinned playbook version {hash} is unreadable: {e}")),
        Ok(pb) if pb.hash != *hash || pb.id != row.playbook_id => problems.push(format!(
            "incident {id}: the playbook version stored under {hash} is another version ({} {})",
            pb.id, pb.hash
        )),
        Ok(_) => {}
    }
    Ok(())
}

/// A pending timer must be readable and belong to an incident that is not
/// closed and that still waits for what the timer is about (the rule the
/// engine applies when it fires: a finished deadline or an acknowledged
/// escalation is cancelled when it finishes, so it cannot still be pending).
fn check_timer(t: &TimerRow, inc: Option<&Incident>) -> Option<String> {
    let what = format!("timer {} ({}) of incident {}", t.id, t.kind, t.incident_id);
    let Some(inc) = inc else {
        return Some(format!("{what}: no such incident"));
    };
    let Some(timer) = Timer::from_row(t) else {
        return Some(format!("{what}: the engine has no such timer"));
    };
    if inc.status == Status::Closed {
        return Some(format!("{what}: the incident is closed"));
    }
    let done = match &timer {
        Timer::Deadline(DeadlineKind::Report) => inc.completed(Phase::Report),
        Timer::Deadline(DeadlineKind::Activate) => inc.completed(Phase::Activate),
        Timer::Deadline(DeadlineKind::Ack) | Timer::Escalate { .. } => inc.acked_at.is_some(),
        Timer::Deadline(DeadlineKind::Outcome) => inc.completed(Phase::Outcome),
        Timer::Deadline(DeadlineKind::Step(s)) => inc.step_status(s).finished(),
        Timer::TrackUpdate | Timer::TrackStale => false,
    };
    done.then(|| format!("{what}: still pending although the incident's events say it is done"))
}
