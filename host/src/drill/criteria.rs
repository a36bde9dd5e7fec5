//! The host's own criteria, judged on the drill's journal facts.
//!
//! A criterion whose condition never arose (nobody had to escalate, no
//! duplicate alert reached the incident, no notice was sent, a step the plan
//! skipped) is rated `n/a` and left out of the total; it is never `unable`.

use super::facts::{At, Facts, StepFact};
use super::rating::{Criterion, Rating};
use super::scenario::Scenario;
use crate::incident::clock::fmt_span;
use crate::playbook::inject::InjectKind;
use crate::playbook::spec::Playbook;
use std::time::Duration;

fn dur_ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

fn timed(mut c: Criterion, actual: i64, limit: i64) -> Criterion {
    c.measured = Some(fmt_span(actual));
    c.limit = Some(fmt_span(limit));
    c
}

/// When the person who acknowledged was asked to: the owner's page, or the
/// last escalation page before the acknowledgement. Whoever is paged gets
/// `ack_within` from their own page.
struct AckWindow {
    /// Drill time the window opened.
    start: i64,
    /// The escalation page that opened it (level, journal position); `None` for the owner's page.
    escalation: Option<(usize, At)>,
}

impl AckWindow {
    fn of(f: &Facts, page: i64) -> AckWindow {
        let acked = f.acked.as_ref().map(|(a, _)| a.at);
        let last = f.escalations.iter().rfind(|(e, _)| acked.is_some_and(|a| e.at <= a));
        match last {
            Some((e, level)) => AckWindow { start: e.at, escalation: Some((*level, *e)) },
            None => AckWindow { start: page, escalation: None },
        }
    }
}

/// The host's criteria for a drill whose incident opened at `opened`.
pub(super) fn host_criteria(pb: &Playbook, f: &Facts, scenario: &Scenario, opened: At, c: &mut Vec<Criterion>) {
    let t0 = opened.at;
    report(pb, f, opened, c);
    let aw = dur_ms(pb.assign.ack_within.unwrap_or(Duration::from_secs(300)));
    // The engine's ack deadline and escalation ladder run from the page at the start of the assign phase.
    let page = f.assign_entered.unwrap_or(t0);
    let window = AckWindow::of(f, page);
    acknowledge(f, t0, aw, &window, opened, c);
    escalation(pb, f, t0, aw, page, c);
    activate(pb, f, opened, c);
    assign(pb, f, t0, aw, &window, c);
    steps(pb, f, c);
    communications(f, c);
    dedup(scenario, f, t0, c);
    outcome(pb, f, c);
    deadlines(f, t0, aw, &window, c);
}

/// Report: the report notice reached every target within report.within.
fn report(pb: &Playbook, f: &Facts, opened: At, c: &mut Vec<Criterion>) {
    let t0 = opened.at;
    let limit = pb.report.within;
    let results = &f.report_results;
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    let title = "Crisis reported upward";
    let mut cr = if pb.report.notify.is_empty() {
        let finding = "the playbook reports to no one: [report] notify is empty";
        Criterion::new("report", title, Rating::MajorChallenges, finding, "[report] notify")
    } else if results.len() < pb.report.notify.len() || failed > 0 {
        let finding = format!("{} of {} report notices delivered", results.len() - failed, pb.report.notify.len());
        Criterion::new("report", title, Rating::Unable, finding, "[report] notify")
    } else {
        let last = results.iter().map(|(e, _)| e.at).max().unwrap_or(t0);
        let r = Rating::against(last - t0, dur_ms(limit));
        let finding =
            format!("report notice delivered to {} within {}", pb.report.notify.join(", "), fmt_span(dur_ms(limit)));
        timed(Criterion::new("report", title, r, finding, "[report] within"), last - t0, dur_ms(limit))
    };
    cr.evidence = std::iter::once(opened.seq).chain(results.iter().map(|(e, _)| e.seq)).collect();
    c.push(cr);
}

/// Acknowledge: by whoever was paged last, within `ack_within` of that page.
fn acknowledge(f: &Facts, t0: i64, aw: i64, w: &AckWindow, opened: At, c: &mut Vec<Criterion>) {
    let title = "Owner acknowledged";
    let section = "[assign] ack_within";
    let mut cr = match f.acked.as_ref() {
        None => Criterion::new("acknowledge", title, Rating::Unable, "nobody acknowledged the incident", section),
        Some((a, by)) => {
            let r = Rating::against(a.at - w.start, aw);
            let (finding, limit) = match w.escalation {
                None => (
                    format!("acknowledged by {by} after {}", fmt_span(a.at - t0)),
                    format!("{} from the page at +{}", fmt_span(aw), fmt_span(w.start - t0)),
                ),
                Some((level, e)) => (
                    format!(
                        "acknowledged by {by} after {} and {} escalation(s); the owner missed the window and \
                         escalation level {level} (seq {}) was answered {} after its page",
                        fmt_span(a.at - t0),
                        f.escalations.iter().filter(|(x, _)| x.at <= a.at).count(),
                        e.seq,
                        fmt_span(a.at - e.at)
                    ),
                    format!("{} after escalation level {level} at +{}", fmt_span(aw), fmt_span(e.at - t0)),
                ),
            };
            let mut x = Criterion::new("acknowledge", title, r, finding, section);
            x.measured = Some(fmt_span(a.at - t0));
            x.limit = Some(limit);
            x.evidence.push(a.seq);
            x
        }
    };
    cr.evidence.insert(0, opened.seq);
    cr.evidence.extend(f.escalations.iter().map(|(e, _)| e.seq));
    cr.evidence.sort_unstable();
    c.push(cr);
}

/// Escalation: judged only when the owner's silence made it due.
fn escalation(pb: &Playbook, f: &Facts, t0: i64, aw: i64, page: i64, c: &mut Vec<Criterion>) {
    let title = "Escalated when the owner was silent";
    let section = "[assign] escalate";
    let acked = f.acked.as_ref().map(|(a, _)| a.at);
    let fired: Vec<&(At, usize)> = f.escalations.iter().filter(|(e, _)| acked.is_none_or(|a| e.at <= a)).collect();
    let na = |finding: String| Criterion::new("escalation", title, Rating::NotApplicable, finding, section);
    let mut cr = match pb.assign.escalate.first() {
        _ if f.assign_entered.is_none() => na("nobody was paged: the assign phase never started".into()),
        None => match acked {
            Some(a) if a - page <= aw => na(format!(
                "the owner acknowledged {} after the page, within {}; the playbook has no escalation ladder",
                fmt_span(a - page),
                fmt_span(aw)
            )),
            _ => Criterion::new(
                "escalation",
                title,
                Rating::MajorChallenges,
                "the owner was late and the playbook escalates to no one",
                section,
            ),
        },
        Some(first) => {
            let due = page + dur_ms(first.after);
            match (acked, fired.last()) {
                (Some(a), None) if a <= due => na(format!(
                    "the owner acknowledged at +{}, before the first escalation was due at +{}",
                    fmt_span(a - t0),
                    fmt_span(due - t0)
                )),
                (Some(a), Some((e, level))) => {
                    let mut x = Criterion::new(
                        "escalation",
                        title,
                        Rating::Performed,
                        format!(
                            "{} escalation notice(s) went out before the acknowledgement; level {level} paged at +{}, \
                             acknowledged at +{}",
                            fired.len(),
                            fmt_span(e.at - t0),
                            fmt_span(a - t0)
                        ),
                        section,
                    );
                    x.measured = Some(fmt_span(e.at - page));
                    x.limit = Some(fmt_span(dur_ms(first.after)));
                    x
                }
                (None, Some(_)) => Criterion::new(
                    "escalation",
                    title,
                    Rating::Unable,
                    format!("{} escalation notice(s) went out but nobody acknowledged", fired.len()),
                    section,
                ),
                (_, None) => Criterion::new(
                    "escalation",
                    title,
                    Rating::Unable,
                    format!("escalation was due at +{} and never fired", fmt_span(due - t0)),
                    section,
                ),
            }
        }
    };
    cr.evidence = fired.iter().map(|(e, _)| e.seq).collect();
    c.push(cr);
}

fn activate(pb: &Playbook, f: &Facts, opened: At, c: &mut Vec<Criterion>) {
    let t0 = opened.at;
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
            let finding = format!("activated ({by}) after {}", fmt_span(a.at - t0));
            let mut x = timed(
                Criterion::new("activate", "Plan activated", r, finding, "[activate] within"),
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

/// Assign: every role the playbook names is filled, and the commander acknowledged
/// within the acknowledgement window (the escalated one, if the owner missed it).
fn assign(pb: &Playbook, f: &Facts, t0: i64, aw: i64, w: &AckWindow, c: &mut Vec<Criterion>) {
    let wanted: Vec<&str> =
        [Some("commander"), pb.assign.liaison.as_ref().map(|_| "liaison"), pb.assign.scribe.as_ref().map(|_| "scribe")]
            .into_iter()
            .flatten()
            .collect();
    let assigned = &f.roles;
    let missing: Vec<&str> = wanted.iter().copied().filter(|r| !assigned.contains_key(*r)).collect();
    // Measured over the assign phase itself: activation delays are the activate criterion's.
    let entered = f.assign_entered.unwrap_or(t0);
    let limit = w.start + aw - entered;
    let mut cr = match f.assign_completed {
        None => Criterion::new(
            "assign",
            "Owner and roles assigned",
            Rating::Unable,
            "the assign phase never completed (no acknowledged commander)",
            "[assign]",
        ),
        Some(d) => {
            let took = d.at - entered;
            let mut r = Rating::against(took, limit);
            let named: Vec<String> =
                wanted.iter().filter_map(|w| assigned.get(*w).map(|(_, person)| format!("{w} {person}"))).collect();
            let mut finding =
                format!("{} named; commander acknowledged {} into the assign phase", named.join(", "), fmt_span(took));
            if !missing.is_empty() {
                r = r.max(Rating::MajorChallenges);
                finding = format!("{finding}; nobody was available for {}", missing.join(", "));
            }
            let mut x =
                timed(Criterion::new("assign", "Owner and roles assigned", r, finding, "[assign]"), took, limit);
            x.evidence.push(d.seq);
            x
        }
    };
    cr.evidence.extend(assigned.values().map(|(e, _)| e.seq));
    cr.evidence.sort_unstable();
    c.push(cr);
}

/// Each step against its `within`; a step the plan skipped (`when`) is n/a.
fn steps(pb: &Playbook, f: &Facts, c: &mut Vec<Criterion>) {
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
        let mut cr = match end {
            Some((_, StepFact::Skipped { reason, .. })) if reason.starts_with("`when") => {
                Criterion::new(id, title, Rating::NotApplicable, format!("not part of this plan: {reason}"), section)
            }
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
                        let finding = format!("done by {by} {} after it became ready", fmt_span(took));
                        let x = Criterion::new(id, title, r, finding, format!("{section} within"));
                        timed(x, took, dur_ms(w))
                    }
                    None => {
                        let finding =
                            format!("done by {by} {} after it became ready (no deadline set)", fmt_span(took));
                        let mut x = Criterion::new(id, title, Rating::Performed, finding, section);
                        x.measured = Some(fmt_span(took));
                        x
                    }
                }
            }
        };
        cr.evidence = mine.iter().map(|(e, _)| e.seq).collect();
        if mine.iter().any(|(_, x)| matches!(x, StepFact::Note(_))) && cr.rating == Rating::Performed {
            cr.finding = format!("{}; recovered from an injected failure", cr.finding);
        }
        c.push(cr);
    }
}

/// Communications: every notice delivered (or captured) within the 2-minute service level.
fn communications(f: &Facts, c: &mut Vec<Criterion>) {
    let sla = dur_ms(crate::playbook::spec::DEFAULT_REPORT_WITHIN);
    let mut total = 0u32;
    let mut good = 0u32;
    let mut bad_seqs = Vec::new();
    let mut all_seqs = Vec::new();
    for (r, invocation_id, ok) in &f.notice_results {
        total += 1;
        let started = f.intents.get(invocation_id).copied().unwrap_or(r.at);
        all_seqs.push(r.seq);
        if *ok && r.at - started <= sla {
            good += 1;
        } else {
            bad_seqs.push(r.seq);
        }
    }
    let pending = f.intents.len() - f.effect_results.min(f.intents.len());
    let rating = match (good * 100).checked_div(total) {
        None if pending == 0 => Rating::NotApplicable,
        None => Rating::SomeChallenges,
        Some(100) => Rating::Performed,
        Some(90..=99) => Rating::SomeChallenges,
        Some(50..=89) => Rating::MajorChallenges,
        Some(_) => Rating::Unable,
    };
    let rating = if pending > 0 { rating.max(Rating::SomeChallenges) } else { rating };
    let finding = if rating == Rating::NotApplicable {
        "no notice was sent in this drill".to_string()
    } else {
        format!(
            "{good} of {total} notices delivered within {}{}",
            fmt_span(sla),
            if pending > 0 { format!("; {pending} message(s) never ran") } else { String::new() }
        )
    };
    let mut cr = Criterion::new(
        "communications",
        "Communications within their service level",
        rating,
        finding,
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

/// Deduplication of the scenario's duplicate alerts: n/a when none was injected
/// or it fell due after the incident was resolved (the controller skips it then).
fn dedup(scenario: &Scenario, f: &Facts, t0: i64, c: &mut Vec<Criterion>) {
    let title = "Duplicate alert deduplicated";
    let section = "[trigger] dedup_key";
    let first = scenario.injects.iter().find(|i| matches!(i.kind, InjectKind::DuplicateAlert));
    let attached = f.attached_by_drill.clone();
    let mut cr = match first {
        None => Criterion::new("dedup", title, Rating::NotApplicable, "no duplicate alert was injected", section),
        Some(_) if !attached.is_empty() => Criterion::new(
            "dedup",
            title,
            Rating::Performed,
            format!("{} duplicate alert(s) attached to the open incident", attached.len()),
            section,
        ),
        Some(i) if f.resolved.is_some_and(|r| r.at <= t0 + dur_ms(i.at)) => Criterion::new(
            "dedup",
            title,
            Rating::NotApplicable,
            "the duplicate alert fell due after the incident was resolved, so it was never sent",
            section,
        ),
        Some(_) => Criterion::new(
            "dedup",
            title,
            Rating::Unable,
            "the duplicate alert was not attached to the open incident",
            section,
        ),
    };
    cr.evidence = attached;
    c.push(cr);
}

/// Outcome report complete, in time after resolution.
fn outcome(pb: &Playbook, f: &Facts, c: &mut Vec<Criterion>) {
    let limit = pb.outcome.within.unwrap_or(Duration::from_secs(72 * 3600));
    let mut cr = match &f.outcome {
        None => Criterion::new(
            "outcome",
            "Outcome report complete",
            Rating::Unable,
            "no outcome report was written",
            "[outcome]",
        ),
        Some((o, written)) => {
            let missing: Vec<&str> = pb
                .outcome
                .require
                .iter()
                .filter(|f| written.field(**f).trim().is_empty())
                .map(|f| f.as_str())
                .collect();
            let from = f.resolved.map(|r| r.at).unwrap_or(o.at);
            let took = (o.at - from).max(0);
            let mut r = Rating::against(took, dur_ms(limit));
            let mut finding = format!("written by {} {} after resolution", written.by, fmt_span(took));
            if !missing.is_empty() {
                r = r.max(Rating::MajorChallenges);
                finding = format!("{finding}; missing {}", missing.join(", "));
            }
            let mut x = timed(
                Criterion::new("outcome", "Outcome report complete", r, finding, "[outcome] within"),
                took,
                dur_ms(limit),
            );
            x.evidence = f.resolved.iter().map(|r| r.seq).chain([o.seq]).collect();
            x
        }
    };
    if let Some(cl) = f.closed {
        cr.evidence.push(cl.seq);
    }
    c.push(cr);
}

/// Deadlines: a missed deadline fails the drill, and each one is named with
/// its journal event. A missed acknowledgement the escalation ladder answered
/// (the escalated person acknowledged within `ack_within` of their page) is the
/// ladder working, judged by the acknowledge and escalation criteria instead.
fn deadlines(f: &Facts, t0: i64, aw: i64, w: &AckWindow, c: &mut Vec<Criterion>) {
    let answered = w.escalation.is_some() && f.acked.as_ref().is_some_and(|(a, _)| a.at - w.start <= aw);
    let missed: Vec<&(At, String, i64)> = f.missed.iter().filter(|(_, what, _)| !(what == "ack" && answered)).collect();
    let title = "Deadlines met";
    let section = "[report] within, [activate] within, [assign] ack_within, [[act]] within, [outcome] within";
    let mut cr = if missed.is_empty() {
        let finding = match f.missed.len() {
            0 => "no deadline was missed".to_string(),
            _ => "no deadline was missed; the owner's acknowledgement window was answered by escalation".to_string(),
        };
        Criterion::new("deadlines", title, Rating::Performed, finding, section)
    } else {
        let each: Vec<String> = missed
            .iter()
            .map(|(e, what, due)| {
                format!("`{what}` due +{} (seq {} at +{})", fmt_span(due - t0), e.seq, fmt_span(e.at - t0))
            })
            .collect();
        let finding = format!("{} deadline(s) missed: {}", missed.len(), each.join("; "));
        Criterion::new("deadlines", title, Rating::Unable, finding, section)
    };
    cr.measured = Some(format!("{} missed", missed.len()));
    cr.evidence = missed.iter().map(|(e, _, _)| e.seq).collect();
    c.push(cr);
}
