//! Scoring from the drill's own journal: every number comes
//! from event timestamps, every criterion is rated HSEEP-style and carries
//! the journal sequence numbers it was judged on.

use super::facts::{At, Facts, StepFact};
use super::scenario::Scenario;
use crate::incident::clock::fmt_span;
use crate::incident::state::Incident;
use crate::playbook::inject::InjectKind;
use crate::playbook::spec::Playbook;
use crate::store::EventRecord;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// HSEEP ratings: P / S / M / U.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rating {
    /// Performed without challenges: within the limit (3 points).
    Performed,
    /// Performed with some challenges: up to 1.5 times the limit (2 points).
    SomeChallenges,
    /// Performed with major challenges: up to 3 times the limit (1 point).
    MajorChallenges,
    /// Unable to be performed: beyond 3 times the limit or not done; fails the drill (0 points).
    Unable,
}

impl Rating {
    /// Points this rating earns, from 3 (performed) down to 0 (unable).
    pub fn points(self) -> u32 {
        match self {
            Rating::Performed => 3,
            Rating::SomeChallenges => 2,
            Rating::MajorChallenges => 1,
            Rating::Unable => 0,
        }
    }
    /// The rating as written in reports and JSON (`performed`, `some-challenges`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Performed => "performed",
            Rating::SomeChallenges => "some-challenges",
            Rating::MajorChallenges => "major-challenges",
            Rating::Unable => "unable",
        }
    }
    /// Rates a measured time against its limit: within it, up to 1.5×, up to 3×, beyond.
    pub fn against(actual_ms: i64, limit_ms: i64) -> Rating {
        let limit = limit_ms.max(1);
        if actual_ms <= limit {
            Rating::Performed
        } else if actual_ms * 2 <= limit * 3 {
            Rating::SomeChallenges
        } else if actual_ms <= limit * 3 {
            Rating::MajorChallenges
        } else {
            Rating::Unable
        }
    }
}

/// Points for the best rating.
pub const MAX_POINTS: u32 = 3;

/// One rated objective.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Criterion {
    /// Stable id: `acknowledge`, `activate`, `assign`, `report`, `communications`, `step:ID`, `outcome`, ...
    pub id: String,
    /// Human title shown in the report, e.g. `Owner acknowledged`.
    pub title: String,
    /// How well the objective was met.
    pub rating: Rating,
    /// Points earned, always `rating.points()` (the host recomputes it for hook criteria).
    pub points: u32,
    /// What was measured (drill time), e.g. `4m 10s`.
    pub measured: Option<String>,
    /// The threshold it was measured against.
    pub limit: Option<String>,
    /// Why it got this rating.
    pub finding: String,
    /// Journal event sequence numbers this rating rests on.
    pub evidence: Vec<i64>,
    /// The playbook section it concerns, e.g. `[assign] ack_within` or `[[act]] id = "bridge"`.
    pub section: String,
    /// `host` or the score hook that added it.
    pub source: String,
}

impl Criterion {
    /// A host criterion with no measurement, limit or evidence yet.
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        rating: Rating,
        finding: impl Into<String>,
        section: impl Into<String>,
    ) -> Self {
        Criterion {
            id: id.into(),
            title: title.into(),
            rating,
            points: rating.points(),
            measured: None,
            limit: None,
            finding: finding.into(),
            evidence: Vec::new(),
            section: section.into(),
            source: "host".into(),
        }
    }
}

/// The drill's score: every criterion, the 0–100 total and the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Score {
    /// Every rated criterion: the host's first, then each hook's.
    pub criteria: Vec<Criterion>,
    /// Points over the maximum, normalised to 0..=100.
    pub total: u32,
    /// `pass` unless some criterion is rated `unable`: a failed objective fails the drill.
    pub verdict: String,
    /// Score hooks that failed (their criteria are missing).
    #[serde(default)]
    pub hook_errors: Vec<String>,
}

/// What a [`ScoreHook`] gets to judge.
pub struct ScoreInput<'a> {
    /// The playbook that was drilled.
    pub playbook: &'a Playbook,
    /// Final state of the drill incident; `None` if the drill never opened one.
    pub incident: Option<&'a Incident>,
    /// The drill incident's journal events, in order.
    pub events: &'a [EventRecord],
    /// The scenario that was played.
    pub scenario: &'a Scenario,
}

/// Adds criteria to a drill's score (the `drill-sim` plugin's scoring export
/// will implement this). Criteria it returns are rated like the host's own.
pub trait ScoreHook: Send + Sync {
    /// A short name recorded as the source of its criteria and in hook errors.
    fn name(&self) -> &str;
    /// Extra criteria for this drill; an error is listed in the report and the hook's criteria are left out.
    fn criteria(&self, input: &ScoreInput<'_>) -> anyhow::Result<Vec<Criterion>>;
}

fn dur_ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

fn span(d: Duration) -> String {
    fmt_span(dur_ms(d))
}

fn timed(mut c: Criterion, actual: i64, limit: i64) -> Criterion {
    c.measured = Some(fmt_span(actual));
    c.limit = Some(fmt_span(limit));
    c
}

/// Scores a drill. `incident` is `None` if the drill never opened one.
pub fn score(
    pb: &Playbook,
    incident: Option<&Incident>,
    events: &[EventRecord],
    scenario: &Scenario,
    hooks: &[Arc<dyn ScoreHook>],
) -> Score {
    let mut c = Vec::new();
    let facts = Facts::read(events);
    match facts.opened {
        None => c.push(Criterion::new(
            "report",
            "Crisis reported",
            Rating::Unable,
            "the drill never opened an incident",
            "[trigger]",
        )),
        Some(opened) => host_criteria(pb, &facts, scenario, opened, &mut c),
    }
    let mut hook_errors = Vec::new();
    let input = ScoreInput { playbook: pb, incident, events, scenario };
    for h in hooks {
        match h.criteria(&input) {
            Ok(more) => c.extend(more.into_iter().map(|mut x| {
                x.points = x.rating.points();
                x.source = h.name().to_string();
                x
            })),
            Err(e) => hook_errors.push(format!("score hook `{}` failed: {e:#}", h.name())),
        }
    }
    total(c, hook_errors)
}

/// Sums criteria into a score clamped to 0..=100.
pub fn total(criteria: Vec<Criterion>, hook_errors: Vec<String>) -> Score {
    let max = criteria.len() as u32 * MAX_POINTS;
    let got: u32 = criteria.iter().map(|c| c.rating.points()).sum();
    let total = (got * 100 + max / 2).checked_div(max).unwrap_or(0).min(100);
    let verdict =
        if criteria.is_empty() || criteria.iter().any(|c| c.rating == Rating::Unable) { "fail" } else { "pass" };
    Score { criteria, total, verdict: verdict.into(), hook_errors }
}

fn host_criteria(pb: &Playbook, f: &Facts, scenario: &Scenario, opened: At, c: &mut Vec<Criterion>) {
    let t0 = opened.at;
    let min5 = Duration::from_secs(300);

    // Report: the report notice reached every target within report.within.
    {
        let limit = pb.report.within;
        let results = &f.report_results;
        let failed = results.iter().filter(|(_, ok)| !ok).count();
        let mut cr = if pb.report.notify.is_empty() {
            Criterion::new(
                "report",
                "Crisis reported upward",
                Rating::MajorChallenges,
                "the playbook reports to no one: [report] notify is empty",
                "[report] notify",
            )
        } else if results.len() < pb.report.notify.len() || failed > 0 {
            Criterion::new(
                "report",
                "Crisis reported upward",
                Rating::Unable,
                format!("{} of {} report notices delivered", results.len() - failed, pb.report.notify.len()),
                "[report] notify",
            )
        } else {
            let last = results.iter().map(|(e, _)| e.at).max().unwrap_or(t0);
            let r = Rating::against(last - t0, dur_ms(limit));
            timed(
                Criterion::new(
                    "report",
                    "Crisis reported upward",
                    r,
                    format!("report notice delivered to {} within {}", pb.report.notify.join(", "), span(limit)),
                    "[report] within",
                ),
                last - t0,
                dur_ms(limit),
            )
        };
        cr.evidence = std::iter::once(opened.seq).chain(results.iter().map(|(e, _)| e.seq)).collect();
        c.push(cr);
    }

    // Acknowledge.
    let ack_limit = pb.assign.ack_within.unwrap_or(min5);
    let acked = f.acked.as_ref();
    {
        let escalations: Vec<i64> = f.escalations.clone();
        let mut cr = match acked {
            None => Criterion::new(
                "acknowledge",
                "Owner acknowledged",
                Rating::Unable,
                "nobody acknowledged the incident",
                "[assign] ack_within",
            ),
            Some((a, by)) => {
                let r = Rating::against(a.at - t0, dur_ms(ack_limit));
                let f = format!(
                    "acknowledged by {by} after {}{}",
                    fmt_span(a.at - t0),
                    if escalations.is_empty() {
                        String::new()
                    } else {
                        format!(" and {} escalation(s)", escalations.len())
                    }
                );
                let mut x = timed(
                    Criterion::new("acknowledge", "Owner acknowledged", r, f, "[assign] ack_within"),
                    a.at - t0,
                    dur_ms(ack_limit),
                );
                x.evidence.push(a.seq);
                x
            }
        };
        cr.evidence.insert(0, opened.seq);
        cr.evidence.extend(escalations.iter().copied());
        c.push(cr);
        // Escalation: judged when the owner missed the engine's own ack deadline,
        // which runs from the page at the start of the assign phase.
        let paged = f.assign_entered;
        let late = match (acked, paged) {
            (None, Some(_)) => true,
            (Some((a, _)), Some(p)) => a.at - p > dur_ms(ack_limit),
            _ => false,
        };
        if late {
            let mut cr = if !escalations.is_empty() {
                Criterion::new(
                    "escalation",
                    "Escalated when the owner was silent",
                    Rating::Performed,
                    format!("{} escalation notice(s) went out before acknowledgement", escalations.len()),
                    "[assign] escalate",
                )
            } else if pb.assign.escalate.is_empty() {
                Criterion::new(
                    "escalation",
                    "Escalated when the owner was silent",
                    Rating::MajorChallenges,
                    "the owner was late and the playbook escalates to no one",
                    "[assign] escalate",
                )
            } else {
                Criterion::new(
                    "escalation",
                    "Escalated when the owner was silent",
                    Rating::SomeChallenges,
                    "the owner was late, but no escalation fired before the acknowledgement",
                    "[assign] escalate",
                )
            };
            cr.evidence = escalations;
            c.push(cr);
        }
    }

    // Activate.
    {
        let limit = pb.activate.within.unwrap_or(Duration::from_secs(900));
        let mut cr = match &f.activated {
            None => Criterion::new(
                "activate",
                "Plan activated",
                Rating::Unable,
                if pb.activate.approval.is_some() {
                    "the plan was never activated (activation waits for approval)"
                } else {
                    "the plan was never activated"
                },
                "[activate]",
            ),
            Some((a, by)) => {
                let r = Rating::against(a.at - t0, dur_ms(limit));
                let mut x = timed(
                    Criterion::new(
                        "activate",
                        "Plan activated",
                        r,
                        format!("activated ({by}) after {}", fmt_span(a.at - t0)),
                        "[activate] within",
                    ),
                    a.at - t0,
                    dur_ms(limit),
                );
                x.evidence.push(a.seq);
                x
            }
        };
        cr.evidence.insert(0, opened.seq);
        cr.evidence.extend(f.activation_evidence.iter().copied());
        cr.evidence.sort_unstable();
        c.push(cr);
    }

    // Assign: every role the playbook names is filled, and the assign phase completes in time.
    {
        let wanted: Vec<&str> = [
            Some("commander"),
            pb.assign.liaison.as_ref().map(|_| "liaison"),
            pb.assign.scribe.as_ref().map(|_| "scribe"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let assigned = &f.roles;
        let missing: Vec<&str> = wanted.iter().copied().filter(|r| !assigned.contains_key(*r)).collect();
        // Measured over the assign phase itself: activation delays are the activate criterion's.
        let entered = f.assign_entered.unwrap_or(t0);
        let done = f.assign_completed;
        let mut cr = match done {
            None => Criterion::new(
                "assign",
                "Owner and roles assigned",
                Rating::Unable,
                "the assign phase never completed (no acknowledged commander)",
                "[assign]",
            ),
            Some(d) => {
                let took = d.at - entered;
                let mut r = Rating::against(took, dur_ms(ack_limit));
                let mut f = format!(
                    "{} named; commander acknowledged {} into the assign phase",
                    wanted
                        .iter()
                        .filter_map(|w| assigned.get(*w).map(|(_, person)| format!("{w} {person}")))
                        .collect::<Vec<_>>()
                        .join(", "),
                    fmt_span(took)
                );
                if !missing.is_empty() {
                    r = r.max(Rating::MajorChallenges);
                    f = format!("{f}; nobody was available for {}", missing.join(", "));
                }
                let mut x = timed(
                    Criterion::new("assign", "Owner and roles assigned", r, f, "[assign]"),
                    took,
                    dur_ms(ack_limit),
                );
                x.evidence.push(d.seq);
                x
            }
        };
        cr.evidence.extend(assigned.values().map(|(e, _)| e.seq));
        cr.evidence.sort_unstable();
        c.push(cr);
    }

    // Each step against its `within`.
    for step in &pb.act {
        let mine: Vec<&(At, StepFact)> = f.steps.iter().filter(|(_, x)| x.concerns(&step.id)).collect();
        let ready =
            mine.iter().find(|(_, x)| matches!(x, StepFact::Ready(_) | StepFact::Waiting(_))).map(|(e, _)| e.at);
        let end = mine
            .iter()
            .find(|(_, x)| matches!(x, StepFact::Done { .. } | StepFact::Skipped { .. } | StepFact::Failed { .. }));
        let title = format!("Step {} ({})", step.id, step.kind);
        let section = format!("[[act]] id = \"{}\"", step.id);
        let id = format!("step:{}", step.id);
        let cr = match end {
            Some((_, StepFact::Skipped { reason, .. })) if reason.starts_with("`when") => continue, // not part of this plan
            None => Criterion::new(id, title, Rating::Unable, "the step never finished", section),
            Some((_, StepFact::Failed { reason, .. })) => {
                Criterion::new(id, title, Rating::Unable, format!("the step failed: {reason}"), section)
            }
            Some((_, StepFact::Skipped { reason, .. })) => {
                Criterion::new(id, title, Rating::Unable, format!("the step was skipped: {reason}"), section)
            }
            Some((e, fact)) => {
                let by = match fact {
                    StepFact::Done { by, .. } => by.as_str(),
                    _ => "",
                };
                let took = e.at - ready.unwrap_or(e.at);
                match step.within {
                    Some(w) => {
                        let r = Rating::against(took, dur_ms(w));
                        timed(
                            Criterion::new(
                                id,
                                title,
                                r,
                                format!("done by {by} {} after it became ready", fmt_span(took)),
                                format!("{section} within"),
                            ),
                            took,
                            dur_ms(w),
                        )
                    }
                    None => {
                        let mut x = Criterion::new(
                            id,
                            title,
                            Rating::Performed,
                            format!("done by {by} {} after it became ready (no deadline set)", fmt_span(took)),
                            section,
                        );
                        x.measured = Some(fmt_span(took));
                        x
                    }
                }
            }
        };
        let mut cr = cr;
        cr.evidence = mine.iter().map(|(e, _)| e.seq).collect();
        if mine.iter().any(|(_, x)| matches!(x, StepFact::Note(_))) && cr.rating == Rating::Performed {
            cr.finding = format!("{}; recovered from an injected failure", cr.finding);
        }
        c.push(cr);
    }

    // Communications: every notice delivered (or captured) within the 2-minute service level.
    {
        let sla = dur_ms(crate::playbook::spec::DEFAULT_REPORT_WITHIN);
        let intents = &f.intents;
        let mut total = 0;
        let mut good = 0;
        let mut bad_seqs = Vec::new();
        let mut all_seqs = Vec::new();
        for (r, invocation_id, ok) in &f.notice_results {
            total += 1;
            let started = intents.get(invocation_id).copied().unwrap_or(r.at);
            all_seqs.push(r.seq);
            if *ok && r.at - started <= sla {
                good += 1;
            } else {
                bad_seqs.push(r.seq);
            }
        }
        let pending = intents.len() - f.effect_results.min(intents.len());
        let rating = if total == 0 {
            Rating::MajorChallenges
        } else {
            let pct = good * 100 / total;
            match pct {
                100 => Rating::Performed,
                90..=99 => Rating::SomeChallenges,
                50..=89 => Rating::MajorChallenges,
                _ => Rating::Unable,
            }
        };
        let rating = if pending > 0 { rating.max(Rating::SomeChallenges) } else { rating };
        let mut cr = Criterion::new(
            "communications",
            "Communications within their service level",
            rating,
            format!(
                "{good} of {total} notices delivered within {}{}",
                fmt_span(sla),
                if pending > 0 { format!("; {pending} message(s) never ran") } else { String::new() }
            ),
            "[report] notify, [track] notify, [outcome] notify",
        );
        cr.limit = Some(fmt_span(sla));
        cr.evidence = if bad_seqs.is_empty() {
            all_seqs.into_iter().take(20).collect()
        } else {
            bad_seqs.into_iter().take(50).collect()
        };
        c.push(cr);
    }

    // Deduplication of the scenario's duplicate alerts.
    if scenario.injects.iter().any(|i| matches!(i.kind, InjectKind::DuplicateAlert)) {
        let attached: Vec<i64> = f.attached_by_drill.clone();
        let mut cr = if attached.is_empty() {
            Criterion::new(
                "dedup",
                "Duplicate alert deduplicated",
                Rating::Unable,
                "the duplicate alert was not attached to the open incident",
                "[trigger] dedup_key",
            )
        } else {
            Criterion::new(
                "dedup",
                "Duplicate alert deduplicated",
                Rating::Performed,
                format!("{} duplicate alert(s) attached to the open incident", attached.len()),
                "[trigger] dedup_key",
            )
        };
        cr.evidence = attached;
        c.push(cr);
    }

    // Outcome report complete, in time after resolution.
    {
        let limit = pb.outcome.within.unwrap_or(Duration::from_secs(72 * 3600));
        let resolved = f.resolved;
        let mut cr = match (&f.outcome, resolved) {
            (None, _) => Criterion::new(
                "outcome",
                "Outcome report complete",
                Rating::Unable,
                "no outcome report was written",
                "[outcome]",
            ),
            (Some((o, written)), res) => {
                let missing: Vec<&str> = pb
                    .outcome
                    .require
                    .iter()
                    .filter(|f| written.field(**f).trim().is_empty())
                    .map(|f| f.as_str())
                    .collect();
                let from = res.map(|r| r.at).unwrap_or(o.at);
                let took = (o.at - from).max(0);
                let mut r = Rating::against(took, dur_ms(limit));
                let mut f = format!("written by {} {} after resolution", written.by, fmt_span(took));
                if !missing.is_empty() {
                    r = r.max(Rating::MajorChallenges);
                    f = format!("{f}; missing {}", missing.join(", "));
                }
                let mut x = timed(
                    Criterion::new("outcome", "Outcome report complete", r, f, "[outcome] within"),
                    took,
                    dur_ms(limit),
                );
                x.evidence = res.iter().map(|r| r.seq).chain([o.seq]).collect();
                x
            }
        };
        if let Some(cl) = f.closed {
            cr.evidence.push(cl.seq);
        }
        c.push(cr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_follow_the_thresholds() {
        assert_eq!(Rating::against(300_000, 300_000), Rating::Performed);
        assert_eq!(Rating::against(450_000, 300_000), Rating::SomeChallenges);
        assert_eq!(Rating::against(450_001, 300_000), Rating::MajorChallenges);
        assert_eq!(Rating::against(900_000, 300_000), Rating::MajorChallenges);
        assert_eq!(Rating::against(900_001, 300_000), Rating::Unable);
    }

    #[test]
    fn totals_stay_in_bounds_and_unable_fails() {
        let mk = |r| Criterion::new("x", "x", r, "", "");
        assert_eq!(total(vec![], vec![]).total, 0);
        let all = total(vec![mk(Rating::Performed); 7], vec![]);
        assert_eq!((all.total, all.verdict.as_str()), (100, "pass"));
        let mixed = total(vec![mk(Rating::Performed), mk(Rating::Unable)], vec![]);
        assert_eq!((mixed.total, mixed.verdict.as_str()), (50, "fail"));
        for n in 1..40u32 {
            for k in 0..=n {
                let v: Vec<Criterion> =
                    (0..n).map(|i| mk(if i < k { Rating::Performed } else { Rating::MajorChallenges })).collect();
                let t = total(v, vec![]).total;
                assert!((33..=100).contains(&t), "{n} {k} {t}");
            }
        }
    }
}
