//! Verifying complaints: each complaint stream in the journal is folded
//! again and compared with its stored projection row, the incident a surge
//! attached it to must be in the journal, and every pending complaint timer
//! must belong to a stored complaint.

use super::complaint::{fold, is_complaint_id};
use crate::store::{ComplaintQuery, Store, VerifyReport};
use std::collections::HashSet;

/// Adds the problems of complaint streams, rows and timers to `report`.
/// Values are not printed: complaint rows carry customer text.
pub(crate) fn verify(store: &dyn Store, report: &mut VerifyReport) -> anyhow::Result<()> {
    // A set: each lookup below is then constant, not a walk of every stream id.
    let streams: HashSet<&str> = report.incidents.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    for id in report.incidents.iter().filter(|id| is_complaint_id(id)) {
        let q = ComplaintQuery { id: Some(id.clone()), ..Default::default() };
        // The daemon keeps writing: re-read until the row and the events agree (a few tries).
        let mut problem = None;
        for _ in 0..5 {
            let Some(row) = store.complaints(&q)?.pop() else {
                problem = Some(format!("complaint {id} has events but no projection row: the row was deleted"));
                continue;
            };
            let events = store.events(id, 0)?;
            problem = match fold(id, &events) {
                Err(e) => Some(format!("complaint {id}: {e}")),
                Ok(c) => match c.row() {
                    Ok(want) if want == row => match &c.incident {
                        Some(inc) if !streams.contains(inc.as_str()) => Some(format!(
                            "complaint {id} is attached to incident {inc}, which has no events in the journal"
                        )),
                        _ => None,
                    },
                    Ok(_) => Some(format!("complaint {id}: its stored row differs from what its events say")),
                    Err(e) => Some(format!("complaint {id}: its folded state cannot be written: {e}")),
                },
            };
            if problem.is_none() {
                break;
            }
        }
        problems.extend(problem);
    }
    for row in store.complaints(&ComplaintQuery::default())? {
        if !streams.contains(row.id.as_str()) && store.events(&row.id, 0)?.is_empty() {
            problems.push(format!("complaint {} has a projection row but no events in the journal", row.id));
        }
    }
    report.problems.extend(problems);
    Ok(())
}
