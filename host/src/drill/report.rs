//! The after-action report: header, scenario, timeline of
//! injects against responses, scores with evidence, what went well, what
//! went wrong, captured communications, and improvement items linked to the
//! playbook path and the content hash that was drilled. Customers appear by
//! id and count only.

use super::clock::ClockMode;
use super::contain::CAPTURED;
use super::scenario::Scenario;
use super::score::{Rating, Score};
use crate::incident::clock::{fmt_ms, fmt_span};
use crate::incident::events::{Event, JournalEvent};
use crate::incident::state::Incident;
use crate::playbook::spec::Playbook;
use crate::store::EventRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One thing the drill controller did (an inject or a scripted responder action).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ControllerEntry {
    /// Drill time it happened, Unix ms.
    pub at: i64,
    /// Milliseconds of drill time since the drill start.
    pub offset_ms: i64,
    /// 1-based position in the scenario.
    pub inject: usize,
    /// Inject kind as written in playbooks (`alert`, `ack`, `step-done`, ...).
    pub kind: String,
    /// What the inject does, in one line.
    pub text: String,
    /// What came of it; starts with `FAILED` when the engine refused the action.
    pub result: String,
}

/// One journal event of the drill incident, as shown in the report's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineRow {
    /// Journal sequence number, to look the event up as evidence.
    pub seq: i64,
    /// Drill time of the event, RFC 3339 UTC.
    pub at: String,
    /// Drill time since the start.
    pub offset: String,
    /// Journal event kind (`opened`, `acknowledged`, ...).
    pub kind: String,
    /// The event described for people.
    pub text: String,
}

/// What the drill would have sent, and what it really sent, as counts only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Communications {
    /// Customer messages captured (never sent), by channel.
    pub customer_messages_captured: BTreeMap<String, u32>,
    /// Distinct customers who would have been contacted (count only).
    pub customers_reached_in_drill: u32,
    /// Notices captured because their target is not drill_safe, by target.
    pub notices_captured: BTreeMap<String, u32>,
    /// Notices delivered to drill_safe targets (participants), by target.
    pub notices_delivered: BTreeMap<String, u32>,
    /// Notices whose delivery failed.
    pub failed: u32,
}

/// One improvement-plan item: a criterion not rated `performed`, tied to the drilled playbook version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Improvement {
    /// Item id, `<run id>-<n>`, numbered from 1.
    pub id: String,
    /// Id of the criterion that fell short (`acknowledge`, `step:ID`, ...).
    pub criterion: String,
    /// What fell short and what to change.
    pub description: String,
    /// File of the drilled playbook, where the fix goes.
    pub playbook_path: String,
    /// sha256 (hex) of the playbook version drilled, so later edits can be compared.
    pub playbook_hash: String,
    /// Playbook section the fix concerns, e.g. `[assign] ack_within`.
    pub section: String,
    /// Tracking status of the item; always `open` when the report is written.
    pub status: String,
}

/// The after-action report of one drill run, written as Markdown or JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AfterActionReport {
    /// Id of the drill run.
    pub run_id: String,
    /// Always `drill`, so a report can never be mistaken for a live incident's.
    pub mode: String,
    /// How the run ended: `completed`, `incomplete` or `cancelled`.
    pub status: String,
    /// Id of the drilled playbook.
    pub playbook_id: String,
    /// Human title of the drilled playbook.
    pub playbook_name: String,
    /// File the drilled playbook was loaded from.
    pub playbook_path: String,
    /// sha256 (hex) of the drilled playbook version.
    pub playbook_hash: String,
    /// Id of the drill incident (e.g. `DRL-1`); `None` if the drill never opened one.
    pub incident_id: Option<String>,
    /// How drill time passed.
    pub clock: ClockMode,
    /// Scenario seed; rerunning with it replays the same drill.
    pub seed: u64,
    /// Schedule occurrence this run was for, RFC 3339 UTC; `None` for manual runs.
    pub scheduled_for: Option<String>,
    /// Drill time the exercise started, RFC 3339 UTC.
    pub started_at: String,
    /// Drill time the exercise ended, RFC 3339 UTC.
    pub ended_at: String,
    /// Drill time the exercise covered.
    pub drill_duration: String,
    /// Real time the run took (not part of the drill's record; varies run to run).
    pub wall_ms: u64,
    /// The scenario that was played.
    pub scenario: Scenario,
    /// What the drill controller did, in order: injects and scripted responder actions with their results.
    pub controller: Vec<ControllerEntry>,
    /// Every journal event of the drill incident, in order.
    pub timeline: Vec<TimelineRow>,
    /// Rated criteria, total and verdict.
    pub score: Score,
    /// Findings of criteria rated `performed`.
    pub went_well: Vec<String>,
    /// Shortfalls: lower-rated criteria, failed or undeduplicated injects, failed score hooks, an unfinished run.
    pub went_wrong: Vec<String>,
    /// Counts of captured and delivered messages.
    pub communications: Communications,
    /// The improvement plan, one item per criterion not performed.
    pub improvements: Vec<Improvement>,
}

/// Everything [`build`] needs from a finished run.
pub struct Inputs<'a> {
    /// Id of the drill run.
    pub run_id: &'a str,
    /// The playbook that was drilled.
    pub pb: &'a Playbook,
    /// How drill time passed.
    pub clock: ClockMode,
    /// Scenario seed of the run.
    pub seed: u64,
    /// Schedule occurrence (Unix ms) the run was for; `None` for manual runs.
    pub scheduled_for: Option<i64>,
    /// Drill start, Unix ms of drill time.
    pub started_at: i64,
    /// Drill end, Unix ms of drill time.
    pub ended_at: i64,
    /// Real milliseconds the run took.
    pub wall_ms: u64,
    /// How the run ended: `completed`, `incomplete` or `cancelled`.
    pub status: String,
    /// The scenario that was played.
    pub scenario: &'a Scenario,
    /// The drill controller's log.
    pub controller: Vec<ControllerEntry>,
    /// Final state of the drill incident; `None` if none was opened.
    pub incident: Option<&'a Incident>,
    /// The drill incident's journal events, in order.
    pub events: &'a [EventRecord],
    /// The score computed from those events.
    pub score: Score,
}

/// Assembles the after-action report: timeline, communication counts, findings and the improvement plan.
pub fn build(i: Inputs<'_>) -> AfterActionReport {
    let t0 = i.started_at;
    let timeline = i
        .events
        .iter()
        .map(|e| TimelineRow {
            seq: e.seq,
            at: fmt_ms(e.at),
            offset: format!("+{}", fmt_span(e.at - t0)),
            kind: e.kind.clone(),
            text: crate::report::describe(e),
        })
        .collect();
    let mut comms = Communications::default();
    let mut customers = std::collections::BTreeSet::new();
    for e in i.events {
        let Ok(ev) = e.event() else { continue };
        let (target, channel, customer, ok, detail) = match ev {
            Event::EffectResult { target, channel, customer, ok, detail, .. } => {
                (target, channel, customer, ok, detail)
            }
            // Only results say what was sent.
            Event::Opened { .. }
            | Event::Attached { .. }
            | Event::PhaseEntered { .. }
            | Event::PhaseCompleted { .. }
            | Event::Approved { .. }
            | Event::Activated { .. }
            | Event::RoleAssigned { .. }
            | Event::Acknowledged { .. }
            | Event::Escalated { .. }
            | Event::DeadlineMissed { .. }
            | Event::StepReady { .. }
            | Event::StepWaiting { .. }
            | Event::StepDone { .. }
            | Event::StepSkipped { .. }
            | Event::StepFailed { .. }
            | Event::Note { .. }
            | Event::UpdateDue {}
            | Event::Stale { .. }
            | Event::OutcomeRecorded { .. }
            | Event::Resolved { .. }
            | Event::Closed {}
            | Event::DeadLettered { .. }
            | Event::Redriven { .. }
            | Event::NoticeLate { .. }
            | Event::Reclaimed { .. }
            | Event::ApprovalRefused { .. }
            | Event::ActingFor { .. }
            | Event::IncludedInDigest { .. }
            | Event::DrillCancelled { .. }
            | Event::DrillPaused { .. }
            | Event::DrillResumed { .. }
            | Event::ControllerInject { .. }
            | Event::DrillHeld { .. }
            | Event::DrillReleased { .. }
            | Event::IntentRecorded { .. } => continue,
        };
        if let Some(c) = customer {
            customers.insert(c);
            let ch = channel.unwrap_or_else(|| "-".to_string());
            *comms.customer_messages_captured.entry(ch).or_default() += 1;
        } else if !ok {
            comms.failed += 1;
        } else if detail.starts_with(CAPTURED) {
            *comms.notices_captured.entry(target).or_default() += 1;
        } else {
            *comms.notices_delivered.entry(target).or_default() += 1;
        }
    }
    comms.customers_reached_in_drill = customers.len() as u32;

    let mut went_well = Vec::new();
    let mut went_wrong = Vec::new();
    for c in &i.score.criteria {
        let line = format!("{}: {}", c.title, c.finding);
        match c.rating {
            Rating::Performed => went_well.push(line),
            // Its condition never arose: neither a success nor a shortfall.
            Rating::NotApplicable => {}
            _ => went_wrong.push(format!("{line} ({})", c.rating.as_str())),
        }
    }
    for entry in &i.controller {
        if entry.result.starts_with("FAILED") || entry.result.contains("NOT deduplicated") {
            went_wrong.push(format!(
                "inject #{} {} at +{}: {}",
                entry.inject,
                entry.kind,
                fmt_span(entry.offset_ms),
                entry.result
            ));
        }
    }
    for e in &i.score.hook_errors {
        went_wrong.push(e.clone());
    }
    if i.status != "completed" {
        went_wrong.push(format!("the drill ended {} (the incident did not close)", i.status));
    }
    let path = i.pb.path.display().to_string();
    let improvements = i
        .score
        .criteria
        .iter()
        .filter(|c| !matches!(c.rating, Rating::Performed | Rating::NotApplicable))
        .enumerate()
        .map(|(n, c)| Improvement {
            id: format!("{}-{}", i.run_id, n + 1),
            criterion: c.id.clone(),
            description: improvement_text(c),
            playbook_path: path.clone(),
            playbook_hash: i.pb.hash.clone(),
            section: c.section.clone(),
            status: "open".into(),
        })
        .collect();
    AfterActionReport {
        run_id: i.run_id.to_string(),
        mode: "drill".into(),
        status: i.status,
        playbook_id: i.pb.id.clone(),
        playbook_name: i.pb.name.clone(),
        playbook_path: path,
        playbook_hash: i.pb.hash.clone(),
        incident_id: i.incident.map(|x| x.id.clone()),
        clock: i.clock,
        seed: i.seed,
        scheduled_for: i.scheduled_for.map(fmt_ms),
        started_at: fmt_ms(t0),
        ended_at: fmt_ms(i.ended_at),
        drill_duration: fmt_span(i.ended_at - t0),
        wall_ms: i.wall_ms,
        scenario: i.scenario.clone(),
        controller: i.controller,
        timeline,
        score: i.score,
        went_well,
        went_wrong,
        communications: comms,
        improvements,
    }
}

fn improvement_text(c: &super::score::Criterion) -> String {
    let base = match (c.measured.as_deref(), c.limit.as_deref()) {
        (Some(m), Some(l)) => format!("{} took {m} against {l}", c.title),
        _ => format!("{}: {}", c.title, c.finding),
    };
    let what = match c.id.as_str() {
        "acknowledge" | "assign" => "check the rota and paging target, or revise ack_within and the escalation ladder",
        "escalation" => "add an escalation level that reaches someone who can act",
        "activate" => "make sure an approver is reachable on every shift, or revise [activate] within",
        "report" => "check the report targets are configured and reachable",
        "communications" => {
            "check notification targets and their plugins; failed or late notices leave people uninformed"
        }
        "outcome" => "write the outcome report (cause, process, aftermath) sooner after resolution",
        "dedup" => "fix the trigger's dedup_key so a repeated alert attaches to the open incident",
        id if id.starts_with("step:") => "rehearse the step, give it an owner who is on duty, or revise its `within`",
        _ => "review this criterion with the drill simulator's notes",
    };
    format!("{base}; {what}")
}

impl AfterActionReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# After-action report: {} drill {}\n", self.playbook_id, self.run_id);
        let _ =
            writeln!(o, "**DRILL** — nothing in this exercise reached a customer or a target not marked drill_safe.\n");
        let _ = writeln!(o, "| | |\n|---|---|");
        let _ = writeln!(o, "| Playbook | {} — {} |", self.playbook_id, self.playbook_name);
        let _ = writeln!(o, "| Drilled version | `{}` @ `{}` |", self.playbook_path, self.playbook_hash);
        let _ = writeln!(o, "| Incident | {} |", self.incident_id.as_deref().unwrap_or("none"));
        let _ = writeln!(o, "| Clock | {} (seed {}) |", self.clock, self.seed);
        if let Some(s) = &self.scheduled_for {
            let _ = writeln!(o, "| Scheduled for | {s} |");
        }
        let _ = writeln!(o, "| Drill time | {} → {} ({}) |", self.started_at, self.ended_at, self.drill_duration);
        let _ = writeln!(o, "| Status | {} |", self.status);
        let _ = writeln!(o, "| Score | **{} / 100** — {} |", self.score.total, self.score.verdict.to_uppercase());
        let _ = writeln!(o, "| Verdict rule | {} |\n", self.score.rule);

        let _ = writeln!(o, "## Scenario: {} ({})\n", self.scenario.title, self.scenario.source);
        let _ = writeln!(o, "| # | at | inject | result |\n|---|---|---|---|");
        for c in &self.controller {
            let _ = writeln!(o, "| {} | +{} | {} | {} |", c.inject, fmt_span(c.offset_ms), c.text, c.result);
        }
        let _ = writeln!(o, "\n## Scores\n");
        let _ = writeln!(
            o,
            "| criterion | rating | measured | limit | evidence (journal seq) | finding |\n|---|---|---|---|---|---|"
        );
        for c in &self.score.criteria {
            let ev: Vec<String> = c.evidence.iter().map(|s| s.to_string()).collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                c.title,
                c.rating.as_str(),
                c.measured.as_deref().unwrap_or("-"),
                c.limit.as_deref().unwrap_or("-"),
                ev.join(", "),
                c.finding
            );
        }
        let list = |o: &mut String, title: &str, items: &[String]| {
            let _ = writeln!(o, "\n## {title}\n");
            if items.is_empty() {
                let _ = writeln!(o, "- nothing");
            }
            for x in items {
                let _ = writeln!(o, "- {x}");
            }
        };
        list(&mut o, "What went well", &self.went_well);
        list(&mut o, "What went wrong", &self.went_wrong);
        let _ = writeln!(o, "\n## Communications\n");
        let c = &self.communications;
        let fmt_map = |m: &BTreeMap<String, u32>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
            }
        };
        let _ = writeln!(
            o,
            "- customer messages captured (not sent): {} ({} customers)",
            fmt_map(&c.customer_messages_captured),
            c.customers_reached_in_drill
        );
        let _ = writeln!(o, "- notices captured (target not drill_safe): {}", fmt_map(&c.notices_captured));
        let _ = writeln!(o, "- notices delivered to drill_safe targets: {}", fmt_map(&c.notices_delivered));
        let _ = writeln!(o, "- failed: {}", c.failed);
        let _ = writeln!(o, "\n## Improvement plan\n");
        if self.improvements.is_empty() {
            let _ = writeln!(o, "- none: every applicable criterion was performed");
        }
        for i in &self.improvements {
            let _ = writeln!(
                o,
                "- **{}** ({}): {} — `{}` {} @ `{}`",
                i.id,
                i.status,
                i.description,
                i.playbook_path,
                i.section,
                &i.playbook_hash[..i.playbook_hash.len().min(12)]
            );
        }
        let _ = writeln!(o, "\n## Timeline\n");
        for t in &self.timeline {
            let _ = writeln!(o, "- `{:>4}` {} ({}) {}", t.seq, t.offset, t.at, t.text);
        }
        o
    }
}
