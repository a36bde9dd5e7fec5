//! The after-action report as one self-contained HTML page: inline CSS and
//! SVG, no script and no external resource of any kind (a Content Security
//! Policy of `default-src 'none'` makes the browser refuse one anyway), so
//! the file can be mailed, archived and opened offline.
//!
//! The page is rendered by a minijinja template whose name ends in `.html`,
//! which turns on minijinja's HTML auto-escaping: every value from the run
//! (titles, findings, payload text) is escaped, none is marked safe.

use super::report::AfterActionReport;
use super::score::{Criterion, Rating};
use super::trend::{TrendPoint, changed_before};
use crate::incident::clock::fmt_span;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

const TEMPLATE: &str = include_str!("report.html");

/// Width of the timeline chart in SVG units.
const WIDTH: f64 = 960.0;
/// Left margin of the chart, where the lane labels go.
const LEFT: f64 = 230.0;
/// Right margin of the chart.
const RIGHT: f64 = 50.0;
/// Height of one lane of the chart.
const LANE: f64 = 26.0;
/// Height of the axis under the lanes.
const AXIS: f64 = 30.0;
/// Longest lane label, in characters.
const LABEL_CHARS: usize = 34;

/// When a timed criterion was due, as drill time: `limit` after its clock
/// started, or, for a limit moved by escalation ("5m after escalation level 1
/// at +6m 15s"), that long after the moment named.
fn deadline_of(limit: &str, start: i64) -> Option<i64> {
    let ms = |t: &str| humantime::parse_duration(t.trim()).ok().map(|d| d.as_millis() as i64);
    match limit.split_once(" after ") {
        None => Some(start + ms(limit)?),
        Some((within, from)) => {
            let (_, at) = from.rsplit_once(" at +")?;
            Some(ms(at)? + ms(within)?)
        }
    }
}

/// How a rating is shown: CSS class and label.
fn rating_view(r: Rating) -> (&'static str, &'static str) {
    match r {
        Rating::Performed => ("performed", "P — performed"),
        Rating::SomeChallenges => ("some", "S — some challenges"),
        Rating::MajorChallenges => ("major", "M — major challenges"),
        Rating::Unable => ("unable", "U — unable to perform"),
        Rating::NotApplicable => ("na", "n/a — did not arise, not scored"),
    }
}

#[derive(Serialize)]
struct Lane {
    y: f64,
    label: String,
}

#[derive(Serialize)]
struct Tick {
    x: f64,
    label: String,
}

/// One mark on the chart; `class` says what it is (`inject`, `phase`, `due`, `met`, `missed`, `overdue`).
#[derive(Serialize)]
struct Mark {
    x: f64,
    y: f64,
    class: &'static str,
    title: String,
}

/// A deadline: from the moment its clock started to when it was due.
#[derive(Serialize)]
struct Span {
    x1: f64,
    x2: f64,
    y: f64,
}

#[derive(Serialize)]
struct Chart {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    axis_y: f64,
    lanes: Vec<Lane>,
    ticks: Vec<Tick>,
    spans: Vec<Span>,
    marks: Vec<Mark>,
    phase_lines: Vec<f64>,
}

#[derive(Serialize)]
struct CritRow<'a> {
    c: &'a Criterion,
    class: &'static str,
    label: &'static str,
    linked: Vec<i64>,
    unlinked: Vec<i64>,
}

#[derive(Serialize)]
struct Bar {
    x: f64,
    y: f64,
    h: f64,
    score: u32,
    current: bool,
    changed: bool,
    title: String,
}

#[derive(Serialize)]
struct View<'a> {
    r: &'a AfterActionReport,
    short_hash: &'a str,
    chart: Chart,
    criteria: Vec<CritRow<'a>>,
    cited: Vec<&'a super::report::TimelineRow>,
    bars: Vec<Bar>,
    trend_width: f64,
}

fn parse_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|d| d.timestamp_millis())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

fn chart(r: &AfterActionReport) -> Chart {
    let t0 = parse_ms(&r.started_at).unwrap_or(0);
    let at_of: BTreeMap<i64, i64> =
        r.timeline.iter().filter_map(|t| parse_ms(&t.at).map(|at| (t.seq, at - t0))).collect();
    // The chart covers the drill; a deadline due later is drawn at its right edge.
    // Timed criteria become deadlines: met at their last evidence event, due `limit` after their clock started.
    let timed: Vec<(&Criterion, i64, i64, i64)> = r
        .score
        .criteria
        .iter()
        .filter_map(|c| {
            let measured = humantime::parse_duration(c.measured.as_deref()?).ok()?.as_millis() as i64;
            let met = c.evidence.iter().filter_map(|s| at_of.get(s)).max().copied()?;
            let start = met - measured;
            Some((c, start, deadline_of(c.limit.as_deref()?, start)?, met))
        })
        .collect();
    let missed: Vec<_> = r.timeline.iter().filter(|t| t.kind == "deadline_missed").collect();
    let end = parse_ms(&r.ended_at).map(|e| e - t0).unwrap_or(0);
    let span = r.controller.iter().map(|c| c.offset_ms).chain(at_of.values().copied()).fold(end, i64::max).max(1);
    let inner = WIDTH - LEFT - RIGHT;
    let x = |ms: i64| LEFT + (ms.clamp(0, span) as f64 / span as f64 * inner * 10.0).round() / 10.0;

    let mut lanes = vec!["Injects".to_string(), "Phases".to_string()];
    if !missed.is_empty() {
        lanes.push("Deadline missed (journal)".into());
    }
    let first_deadline_lane = lanes.len();
    lanes.extend(timed.iter().map(|t| truncate(&t.0.title, LABEL_CHARS)));
    let y = |lane: usize| 20.0 + lane as f64 * LANE;
    let mut marks = Vec::new();
    for c in &r.controller {
        marks.push(Mark {
            x: x(c.offset_ms),
            y: y(0),
            class: "inject",
            title: format!("+{} inject #{} {}: {} → {}", fmt_span(c.offset_ms), c.inject, c.kind, c.text, c.result),
        });
    }
    let mut phase_lines = Vec::new();
    for t in r.timeline.iter().filter(|t| t.kind == "phase_entered") {
        if let Some(&ms) = at_of.get(&t.seq) {
            phase_lines.push(x(ms));
            marks.push(Mark {
                x: x(ms),
                y: y(1),
                class: "phase",
                title: format!("{} #{} {}", t.offset, t.seq, t.text),
            });
        }
    }
    for t in &missed {
        if let Some(&ms) = at_of.get(&t.seq) {
            marks.push(Mark {
                x: x(ms),
                y: y(2),
                class: "overdue",
                title: format!("{} #{} {}", t.offset, t.seq, t.text),
            });
        }
    }
    let mut spans = Vec::new();
    for (i, (c, start, due, met)) in timed.iter().enumerate() {
        let ly = y(first_deadline_lane + i);
        spans.push(Span { x1: x(*start), x2: x(*due), y: ly });
        let limit = c.limit.as_deref().unwrap_or("-");
        let after = if *due > span { ", after the drill ended" } else { "" };
        let title = format!("{}: due +{} ({limit}{after})", c.title, fmt_span(*due));
        marks.push(Mark { x: x(*due), y: ly, class: "due", title });
        let (class, word) = if c.rating == Rating::Performed { ("met", "met") } else { ("missed", "missed") };
        marks.push(Mark {
            x: x(*met),
            y: ly,
            class,
            title: format!(
                "{}: {word} at +{}, took {} against {limit}",
                c.title,
                fmt_span(*met),
                c.measured.as_deref().unwrap_or("-")
            ),
        });
    }
    let axis_y = y(lanes.len()) - LANE / 2.0 + 6.0;
    let ticks =
        (0..=6).map(|k| span * k / 6).map(|ms| Tick { x: x(ms), label: format!("+{}", fmt_span(ms)) }).collect();
    Chart {
        width: WIDTH,
        height: axis_y + AXIS,
        left: LEFT,
        right: WIDTH - RIGHT,
        axis_y,
        lanes: lanes.into_iter().enumerate().map(|(i, label)| Lane { y: y(i), label }).collect(),
        ticks,
        spans,
        marks,
        phase_lines,
    }
}

fn bars(run_id: &str, trend: &[TrendPoint]) -> Vec<Bar> {
    trend
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let h = (p.score.min(100) as f64 * 0.6).max(1.0);
            let changed = changed_before(trend, i);
            Bar {
                x: 4.0 + i as f64 * 28.0,
                y: 64.0 - h,
                h,
                score: p.score,
                current: p.run_id == run_id,
                changed,
                title: format!(
                    "{}: {} {}{}",
                    p.run_id,
                    p.score,
                    p.verdict,
                    if changed { " (playbook edited since the previous drill)" } else { "" }
                ),
            }
        })
        .collect()
}

/// Renders `r` as one HTML page; `trend` is the playbook's scored runs up to this one, oldest first.
pub fn render(r: &AfterActionReport, trend: &[TrendPoint]) -> anyhow::Result<String> {
    let in_timeline: BTreeSet<i64> = r.timeline.iter().map(|t| t.seq).collect();
    let cited_seqs: BTreeSet<i64> = r.score.criteria.iter().flat_map(|c| c.evidence.iter().copied()).collect();
    let criteria = r
        .score
        .criteria
        .iter()
        .map(|c| {
            let (class, label) = rating_view(c.rating);
            let (linked, unlinked) = c.evidence.iter().partition(|s| in_timeline.contains(s));
            CritRow { c, class, label, linked, unlinked }
        })
        .collect();
    let bars = bars(&r.run_id, trend);
    let view = View {
        r,
        short_hash: &r.playbook_hash[..r.playbook_hash.len().min(12)],
        chart: chart(r),
        criteria,
        cited: r.timeline.iter().filter(|t| cited_seqs.contains(&t.seq)).collect(),
        trend_width: 8.0 + bars.len() as f64 * 28.0,
        bars,
    };
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    Ok(env.get_template("report.html")?.render(&view)?)
}

#[cfg(test)]
mod tests;
