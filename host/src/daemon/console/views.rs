//! What the console's pages show, computed from the journal: board rows,
//! an incident's phases, steps (with their `after` graph laid out for SVG)
//! and deadlines. Pure data; the templates only lay it out.

use crate::daemon::tokens::{Action, Caller};
use crate::incident::clock::fmt_ms;
use crate::incident::state::{Incident, Status, StepStatus};
use crate::incident::{Engine, EngineError};
use crate::playbook::Playbook;
use crate::playbook::types::{Mode, Phase, Severity};
use crate::store::TimerRow;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What a deadline timer is for, read from its key (`deadline:ack`, `deadline:step:bridge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DeadlineOf {
    /// A phase must be complete (report, activate, outcome).
    Phase(Phase),
    /// The commander must acknowledge.
    Ack,
    /// A step must be finished.
    Step(String),
}

impl DeadlineOf {
    /// The deadline a timer stands for; `None` for escalation and tracking timers.
    pub(super) fn of_timer(t: &TimerRow) -> Option<DeadlineOf> {
        let what = t.kind.strip_prefix("deadline:")?;
        if what == "ack" {
            return Some(DeadlineOf::Ack);
        }
        if let Some(step) = what.strip_prefix("step:") {
            return (!step.is_empty()).then(|| DeadlineOf::Step(step.to_string()));
        }
        what.parse().ok().map(DeadlineOf::Phase)
    }

    /// How the journal names it in `deadline_missed` (`ack`, `step:bridge`, `report`).
    fn journal_name(&self) -> String {
        match self {
            DeadlineOf::Phase(p) => p.as_str().to_string(),
            DeadlineOf::Ack => "ack".into(),
            DeadlineOf::Step(s) => format!("step:{s}"),
        }
    }
}

/// A pending deadline as shown: what, when (text and ms for the countdown).
#[derive(Debug, Clone, Serialize)]
pub(super) struct Due {
    pub what: String,
    pub at: String,
    pub at_ms: i64,
}

/// The pending deadlines of every incident, soonest first.
fn deadlines(timers: &[TimerRow]) -> HashMap<String, Vec<(DeadlineOf, i64)>> {
    let mut out: HashMap<String, Vec<(DeadlineOf, i64)>> = HashMap::new();
    for t in timers {
        if let Some(d) = DeadlineOf::of_timer(t) {
            out.entry(t.incident_id.clone()).or_default().push((d, t.due_at));
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|(_, at)| *at);
    }
    out
}

fn due(d: &DeadlineOf, at: i64) -> Due {
    Due { what: d.journal_name(), at: fmt_ms(at), at_ms: at }
}

/// One open incident on the board.
#[derive(Debug, Serialize)]
pub(super) struct BoardRow {
    pub id: String,
    pub title: String,
    pub playbook: String,
    pub severity: Severity,
    pub phase: Phase,
    pub opened_at: String,
    pub opened_ms: i64,
    pub commander: Option<String>,
    pub acked: bool,
    pub next_due: Option<Due>,
    /// Deadlines already missed, as the journal names them.
    pub missed: Vec<String>,
}

/// The board's filters, from the query string.
#[derive(Debug, Default, Clone, Serialize)]
pub(super) struct BoardFilter {
    pub playbook: Option<String>,
    pub severity: Option<Severity>,
}

/// The incident board: open live incidents, worst severity first, then by phase and age.
#[derive(Debug, Serialize)]
pub(super) struct Board {
    pub rows: Vec<BoardRow>,
    /// Open incidents per severity, before filtering.
    pub counts: Vec<(Severity, usize)>,
    pub playbooks: Vec<String>,
    pub severities: &'static [&'static str],
    pub filter: BoardFilter,
    pub now_ms: i64,
}

/// Reads the board from the journal.
pub(super) fn board(e: &Engine, filter: BoardFilter) -> Result<Board, EngineError> {
    let store = e.store();
    let rows = store.incidents(true, Some(Mode::Live.as_str()))?;
    let mut due_by = deadlines(&store.timers()?);
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for row in rows {
        let inc: Incident = serde_json::from_value(row.state).map_err(|err| EngineError::Internal(err.into()))?;
        *counts.entry(inc.severity).or_default() += 1;
        if filter.playbook.as_ref().is_some_and(|p| *p != inc.playbook_id)
            || filter.severity.is_some_and(|s| s != inc.severity)
        {
            continue;
        }
        let next_due = due_by.remove(&inc.id).and_then(|v| v.first().map(|(d, at)| due(d, *at)));
        out.push(BoardRow {
            commander: inc.roles.get("commander").cloned(),
            acked: inc.acked_at.is_some(),
            missed: inc.missed.iter().map(|m| m.what.clone()).collect(),
            next_due,
            opened_at: fmt_ms(inc.opened_at),
            opened_ms: inc.opened_at,
            severity: inc.severity,
            phase: inc.phase,
            playbook: inc.playbook_id,
            title: inc.title,
            id: inc.id,
        });
    }
    out.sort_by(|a, b| (a.severity, a.phase, a.opened_ms, &a.id).cmp(&(b.severity, b.phase, b.opened_ms, &b.id)));
    let g = e.generation();
    Ok(Board {
        rows: out,
        counts: counts.into_iter().collect(),
        playbooks: g.playbooks.keys().cloned().collect(),
        severities: Severity::ALL,
        filter,
        now_ms: e.now(),
    })
}

/// One of the six phases on an incident's progress bar.
#[derive(Debug, Serialize)]
pub(super) struct PhaseView {
    pub phase: Phase,
    /// `done`, `current`, `skipped` or `pending`.
    pub state: &'static str,
    pub entered: Option<String>,
    pub completed: Option<String>,
    pub due: Option<Due>,
    pub missed: bool,
}

/// One step of the `act` phase, placed on the step graph.
#[derive(Debug, Serialize)]
pub(super) struct StepView {
    pub id: String,
    /// The id as it fits in a graph node.
    pub label: String,
    pub kind: String,
    pub status: StepStatus,
    pub after: Vec<String>,
    pub tasks: Vec<String>,
    pub due: Option<Due>,
    pub finished_at: Option<String>,
    pub by: Option<String>,
    /// Waiting for an approval the signed-in person may give.
    pub can_approve: bool,
    pub x: f64,
    pub y: f64,
}

/// An edge of the step graph, from a step to one that comes after it.
#[derive(Debug, Serialize)]
pub(super) struct Edge {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

/// One journal event on the live timeline.
#[derive(Debug, Serialize)]
pub(super) struct TimelineRow {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub text: String,
}

/// What the signed-in person may do on this incident now.
#[derive(Debug, Serialize, Default)]
pub(super) struct Can {
    pub ack: bool,
    pub approve_activation: bool,
    pub step: bool,
    pub update: bool,
    pub outcome: bool,
    pub resolve: bool,
}

/// Everything the incident page shows.
#[derive(Debug, Serialize)]
pub(super) struct IncidentView {
    pub inc: Incident,
    pub opened_at: String,
    pub acked_at: Option<String>,
    pub phases: Vec<PhaseView>,
    pub steps: Vec<StepView>,
    pub edges: Vec<Edge>,
    pub graph_width: f64,
    pub graph_height: f64,
    pub timeline: Vec<TimelineRow>,
    pub can: Can,
    pub outcome_required: Vec<String>,
}

/// Step graph geometry, in SVG units.
const NODE_W: f64 = 150.0;
const NODE_H: f64 = 34.0;
const COL: f64 = 190.0;
const ROW: f64 = 48.0;
const PAD: f64 = 8.0;

/// Each step's column: one past the furthest step it comes `after`.
fn depths(pb: &Playbook) -> HashMap<String, usize> {
    let mut depth: HashMap<String, usize> = HashMap::new();
    // The playbook's graph is acyclic (validation refuses cycles): as many passes as steps settle it.
    for _ in 0..=pb.act.len() {
        for s in &pb.act {
            let d = s.after.iter().filter_map(|a| depth.get(a)).map(|d| d + 1).max().unwrap_or(0);
            depth.insert(s.id.clone(), d);
        }
    }
    depth
}

/// A step id cut to what fits in a graph node.
fn node_label(id: &str) -> String {
    const MAX: usize = 20;
    if id.chars().count() <= MAX {
        id.to_string()
    } else {
        format!("{}…", id.chars().take(MAX - 1).collect::<String>())
    }
}

/// Reads one incident's page from the journal, for `caller`.
pub(super) fn incident(e: &Engine, id: &str, caller: &Caller) -> Result<IncidentView, EngineError> {
    let inc = e.incident(id)?;
    let pb = e.pinned_playbook(&inc.playbook_hash)?;
    let pending = deadlines(&e.store().timers()?).remove(&inc.id).unwrap_or_default();
    let due_of = |want: &DeadlineOf| pending.iter().find(|(d, _)| d == want).map(|(d, at)| due(d, *at));
    let missed = |want: &DeadlineOf| inc.missed.iter().any(|m| m.what == want.journal_name());
    let may = |a: Action| caller.may(a).is_ok();
    let open = inc.status == Status::Open;

    let phases = Phase::ORDER
        .iter()
        .map(|&p| {
            let times = inc.phases.get(&p);
            let state = if inc.skipped_phase(p) {
                "skipped"
            } else if inc.completed(p) {
                "done"
            } else if inc.entered(p) {
                "current"
            } else {
                "pending"
            };
            let deadline = if p == Phase::Assign { DeadlineOf::Ack } else { DeadlineOf::Phase(p) };
            PhaseView {
                phase: p,
                state,
                entered: times.and_then(|t| t.entered).map(fmt_ms),
                completed: times.and_then(|t| t.completed).map(fmt_ms),
                due: due_of(&deadline),
                missed: missed(&deadline),
            }
        })
        .collect();

    let depth = depths(&pb);
    let mut per_col: HashMap<usize, usize> = HashMap::new();
    let mut at: HashMap<String, (f64, f64)> = HashMap::new();
    let mut steps = Vec::new();
    for s in &pb.act {
        let col = depth.get(&s.id).copied().unwrap_or(0);
        let row = per_col.entry(col).or_default();
        let (x, y) = (PAD + col as f64 * COL, PAD + *row as f64 * ROW);
        *row += 1;
        at.insert(s.id.clone(), (x, y));
        let st = inc.steps.get(&s.id);
        let status = inc.step_status(&s.id);
        steps.push(StepView {
            label: node_label(&s.id),
            id: s.id.clone(),
            kind: s.kind.to_string(),
            status,
            after: s.after.clone(),
            tasks: s.tasks.clone(),
            due: due_of(&DeadlineOf::Step(s.id.clone())),
            finished_at: st.and_then(|t| t.finished_at).map(fmt_ms),
            by: st.and_then(|t| t.by.clone()),
            can_approve: open
                && s.approval.is_some()
                && status == StepStatus::Waiting
                && !inc.approvals.contains(&s.id)
                && may(Action::Approve),
            x,
            y,
        });
    }
    let edges = pb
        .act
        .iter()
        .flat_map(|s| s.after.iter().map(move |a| (a, &s.id)))
        .filter_map(|(from, to)| {
            let ((x1, y1), (x2, y2)) = (at.get(from)?, at.get(to)?);
            Some(Edge { x1: x1 + NODE_W, y1: y1 + NODE_H / 2.0, x2: *x2, y2: y2 + NODE_H / 2.0 })
        })
        .collect();
    let cols = depth.values().max().map_or(0, |m| m + 1);
    let rows = per_col.values().max().copied().unwrap_or(0);

    let timeline = e
        .store()
        .events(id, 0)?
        .into_iter()
        .map(|ev| TimelineRow { text: crate::report::describe(&ev), seq: ev.seq, at: fmt_ms(ev.at), kind: ev.kind })
        .collect();
    let can = Can {
        ack: open && inc.acked_at.is_none() && may(Action::Ack),
        approve_activation: open
            && pb.activate.approval.is_some()
            && !inc.completed(Phase::Activate)
            && may(Action::Approve),
        step: open && may(Action::Step),
        update: open && may(Action::Update),
        outcome: inc.status != Status::Closed && may(Action::Outcome),
        resolve: open && may(Action::Resolve),
    };
    Ok(IncidentView {
        opened_at: fmt_ms(inc.opened_at),
        acked_at: inc.acked_at.map(fmt_ms),
        phases,
        steps,
        edges,
        graph_width: PAD * 2.0 + (cols.max(1) - 1) as f64 * COL + NODE_W,
        graph_height: PAD * 2.0 + rows.max(1) as f64 * ROW,
        timeline,
        can,
        outcome_required: pb.outcome.require.iter().map(|f| f.as_str().to_string()).collect(),
        inc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(kind: &str) -> TimerRow {
        TimerRow {
            id: 1,
            incident_id: "INC-1".into(),
            due_at: 5,
            kind: kind.into(),
            family: String::new(),
            data: serde_json::Value::Null,
            reclaimed_from: None,
        }
    }

    #[test]
    fn deadline_timers_are_read_by_key() {
        assert_eq!(DeadlineOf::of_timer(&timer("deadline:ack")), Some(DeadlineOf::Ack));
        assert_eq!(DeadlineOf::of_timer(&timer("deadline:report")), Some(DeadlineOf::Phase(Phase::Report)));
        assert_eq!(DeadlineOf::of_timer(&timer("deadline:step:bridge")), Some(DeadlineOf::Step("bridge".into())));
        assert_eq!(DeadlineOf::of_timer(&timer("deadline:step:")), None);
        assert_eq!(DeadlineOf::of_timer(&timer("escalate:0")), None);
        assert_eq!(DeadlineOf::of_timer(&timer("track:update")), None);
        assert_eq!(DeadlineOf::Step("bridge".into()).journal_name(), "step:bridge");
    }
}
