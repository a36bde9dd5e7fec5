//! Drill schedules as pure functions over a time range, so
//! they can be tested on virtual time: cron in an IANA time zone (croner
//! handles daylight saving like Vixie cron: a local time skipped by spring
//! forward runs once right after the gap, a repeated local time runs once),
//! at most one late run within the grace period, blackout windows, suspend,
//! and no overlapping runs of the same playbook.

use crate::config::Blackout;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::Duration;

/// Why a scheduled occurrence did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Skip {
    /// Older than the grace period when it was noticed (the daemon was down).
    Missed {
        /// How late the occurrence was noticed, in milliseconds.
        late_ms: i64,
    },
    /// A later occurrence superseded it (only the newest late one runs).
    Superseded,
    /// The playbook's drills are suspended (`crisis drill suspend`).
    Suspended,
    /// The occurrence (or now) falls in a blackout window; `window` describes it (start – end and reason).
    Blackout {
        /// The window: start – end and its reason.
        window: String,
    },
    /// A run of the same playbook was still going.
    Overlap,
}

impl Skip {
    /// The run status recorded for the skipped occurrence: `missed`, `suspended`, `blackout` or `refused-overlap`.
    pub fn status(&self) -> &'static str {
        match self {
            Skip::Missed { .. } | Skip::Superseded => "missed",
            Skip::Suspended => "suspended",
            Skip::Blackout { .. } => "blackout",
            Skip::Overlap => "refused-overlap",
        }
    }
    /// Why it was skipped, in a sentence for `crisis drill list` and the log.
    pub fn describe(&self) -> String {
        match self {
            Skip::Missed { late_ms } => format!(
                "missed: noticed {} late, beyond the [drills] grace period",
                crate::incident::clock::fmt_span(*late_ms)
            ),
            Skip::Superseded => "missed: a later occurrence was due too; only the newest runs".into(),
            Skip::Suspended => "skipped: the playbook's drills are suspended (crisis drill resume PLAYBOOK)".into(),
            Skip::Blackout { window } => format!("skipped: inside blackout window {window}"),
            Skip::Overlap => "refused: a drill of this playbook is still running".into(),
        }
    }
}

/// What to do about one scheduled occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Run the occurrence due `at`; `late_ms` is how far behind it is (within the grace period).
    Run {
        /// When the occurrence was due.
        at: DateTime<Utc>,
        /// How far behind it is, in milliseconds.
        late_ms: i64,
    },
    /// Record the occurrence due `at` as not run, for the reason in `skip`.
    Skip {
        /// When the occurrence was due.
        at: DateTime<Utc>,
        /// Why it does not run.
        skip: Skip,
    },
}

impl Decision {
    /// The occurrence this decision is about.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Decision::Run { at, .. } | Decision::Skip { at, .. } => *at,
        }
    }
}

/// A parsed schedule: cron plus time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The parsed `[drill] schedule` cron expression.
    pub cron: Cron,
    /// Time zone the cron expression is read in (UTC unless `[drill] timezone` says otherwise).
    pub tz: Tz,
}

impl Schedule {
    /// Parses `[drill] schedule` and `timezone` (default UTC, as validated).
    pub fn parse(cron: &str, tz: Option<&str>) -> Result<Schedule, String> {
        let c = Cron::from_str(cron).map_err(|e| format!("bad cron schedule `{cron}`: {e}"))?;
        let tz = match tz {
            None => Tz::UTC,
            Some(t) => t.parse::<Tz>().map_err(|_| format!("unknown time zone `{t}`"))?,
        };
        Ok(Schedule { cron: c, tz })
    }

    /// Occurrences in `(after, until]`, oldest first, at most `limit`.
    pub fn occurrences(&self, after: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        for t in self.cron.iter_after(after.with_timezone(&self.tz)) {
            let t = t.with_timezone(&Utc);
            if t > until || out.len() >= limit {
                break;
            }
            if t > after {
                out.push(t);
            }
        }
        out
    }

    /// The next occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after.with_timezone(&self.tz), false).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// The blackout window containing `t`, if any.
pub fn in_blackout(t: DateTime<Utc>, blackouts: &[Blackout]) -> Option<&Blackout> {
    blackouts.iter().find(|b| b.start <= t && t < b.end)
}

fn window_name(b: &Blackout) -> String {
    format!(
        "{} – {}{}",
        b.start.to_rfc3339(),
        b.end.to_rfc3339(),
        b.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
    )
}

/// Most occurrences considered in one check (a minutely cron after a long outage).
pub const MAX_OCCURRENCES: usize = 1000;

/// Decides every occurrence of `schedule` in `(last_checked, now]`.
///
/// Only the newest occurrence can run, and only if it is at most `grace`
/// old; older ones are recorded as missed. A runnable occurrence is still
/// skipped if the playbook is `suspended`, if it (or now) falls in a
/// blackout window, or if a run of the same playbook is `running`.
pub fn due_runs(
    schedule: &Schedule,
    last_checked: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
    blackouts: &[Blackout],
    suspended: bool,
    running: bool,
) -> Vec<Decision> {
    let occ = schedule.occurrences(last_checked, now, MAX_OCCURRENCES);
    let grace_ms = grace.as_millis() as i64;
    let n = occ.len();
    occ.into_iter()
        .enumerate()
        .map(|(i, at)| {
            let late_ms = (now - at).num_milliseconds();
            let skip = if suspended {
                Some(Skip::Suspended)
            } else if let Some(b) = in_blackout(at, blackouts).or_else(|| in_blackout(now, blackouts)) {
                Some(Skip::Blackout { window: window_name(b) })
            } else if late_ms > grace_ms {
                Some(Skip::Missed { late_ms })
            } else if i + 1 < n {
                Some(Skip::Superseded)
            } else if running {
                Some(Skip::Overlap)
            } else {
                None
            };
            match skip {
                Some(skip) => Decision::Skip { at, skip },
                None => Decision::Run { at, late_ms },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_run_on_time_and_nothing_twice() {
        let s = Schedule::parse("0 10 * * TUE", Some("Asia/Shanghai")).unwrap();
        // Tuesday 2026-01-06 10:00 Shanghai = 02:00 UTC.
        let d = due_runs(&s, utc("2026-01-06T01:59:00Z"), utc("2026-01-06T02:00:30Z"), HOUR, &[], false, false);
        assert_eq!(d, vec![Decision::Run { at: utc("2026-01-06T02:00:00Z"), late_ms: 30_000 }]);
        // The next check starts where this one ended: nothing again.
        assert!(
            due_runs(&s, utc("2026-01-06T02:00:30Z"), utc("2026-01-06T02:05:00Z"), HOUR, &[], false, false).is_empty()
        );
    }

    #[test]
    fn missed_runs_inside_grace_run_once_late_older_are_skipped() {
        let s = Schedule::parse("0 * * * *", None).unwrap();
        // Down from 05:30 to 09:20: 06:00, 07:00, 08:00 missed; 09:00 is 20 min late, within 1h.
        let d = due_runs(&s, utc("2026-02-01T05:30:00Z"), utc("2026-02-01T09:20:00Z"), HOUR, &[], false, false);
        assert_eq!(d.len(), 4);
        assert!(matches!(d[0], Decision::Skip { skip: Skip::Missed { .. }, .. }));
        assert!(matches!(d[2], Decision::Skip { skip: Skip::Missed { .. }, .. }));
        assert_eq!(d[3], Decision::Run { at: utc("2026-02-01T09:00:00Z"), late_ms: 20 * 60_000 });
        // With a 5 minute grace the 09:00 run is too late as well.
        let d = due_runs(
            &s,
            utc("2026-02-01T05:30:00Z"),
            utc("2026-02-01T09:20:00Z"),
            Duration::from_secs(300),
            &[],
            false,
            false,
        );
        assert!(d.iter().all(|x| matches!(x, Decision::Skip { skip: Skip::Missed { .. }, .. })));
        // Two occurrences both inside grace: only the newest runs.
        let s5 = Schedule::parse("*/5 * * * *", None).unwrap();
        let d = due_runs(&s5, utc("2026-02-01T09:01:00Z"), utc("2026-02-01T09:12:00Z"), HOUR, &[], false, false);
        assert_eq!(d[0], Decision::Skip { at: utc("2026-02-01T09:05:00Z"), skip: Skip::Superseded });
        assert_eq!(d[1], Decision::Run { at: utc("2026-02-01T09:10:00Z"), late_ms: 120_000 });
    }

    #[test]
    fn overlap_suspend_and_blackout_skip() {
        let s = Schedule::parse("30 9 * * *", Some("UTC")).unwrap();
        let (a, b) = (utc("2026-03-02T09:00:00Z"), utc("2026-03-02T09:31:00Z"));
        assert_eq!(
            due_runs(&s, a, b, HOUR, &[], false, true),
            vec![Decision::Skip { at: utc("2026-03-02T09:30:00Z"), skip: Skip::Overlap }]
        );
        assert_eq!(
            due_runs(&s, a, b, HOUR, &[], true, false)[0],
            Decision::Skip { at: utc("2026-03-02T09:30:00Z"), skip: Skip::Suspended }
        );
        let freeze = Blackout {
            start: utc("2026-03-02T00:00:00Z"),
            end: utc("2026-03-03T00:00:00Z"),
            reason: Some("release freeze".into()),
        };
        let d = due_runs(&s, a, b, HOUR, std::slice::from_ref(&freeze), false, false);
        assert!(
            matches!(&d[0], Decision::Skip { skip: Skip::Blackout { window }, .. } if window.contains("release freeze")),
            "{d:?}"
        );
        // A late run whose occurrence was outside the window but "now" is inside it is also held back.
        let late = Blackout { start: utc("2026-03-02T09:45:00Z"), end: utc("2026-03-02T12:00:00Z"), reason: None };
        let d = due_runs(&s, a, utc("2026-03-02T09:50:00Z"), HOUR, std::slice::from_ref(&late), false, false);
        assert!(matches!(d[0], Decision::Skip { skip: Skip::Blackout { .. }, .. }));
        // The window's end is exclusive.
        let d = due_runs(&s, utc("2026-03-02T11:00:00Z"), utc("2026-03-02T12:00:00Z"), HOUR, &[late], false, false);
        assert!(d.is_empty());
    }

    #[test]
    fn berlin_spring_forward_runs_once_after_the_gap() {
        // 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist.
        let s = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let occ = s.occurrences(utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"), 10);
        assert_eq!(
            occ,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // the gap: once, at 03:00 CEST
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
        let d = due_runs(&s, utc("2026-03-29T00:00:00Z"), utc("2026-03-29T01:00:10Z"), HOUR, &[], false, false);
        assert_eq!(d, vec![Decision::Run { at: utc("2026-03-29T01:00:00Z"), late_ms: 10_000 }]);
    }

    #[test]
    fn berlin_fall_back_runs_once_not_twice() {
        // 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 happens twice.
        let s = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let occ = s.occurrences(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10);
        assert_eq!(occ, vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]);
        // Checking across the repeated hour in small steps never yields a second run.
        let mut runs = 0;
        let mut t = utc("2026-10-25T00:00:00Z");
        while t < utc("2026-10-25T03:00:00Z") {
            let next = t + chrono::Duration::minutes(7);
            runs += due_runs(&s, t, next, HOUR, &[], false, false)
                .iter()
                .filter(|d| matches!(d, Decision::Run { .. }))
                .count();
            t = next;
        }
        assert_eq!(runs, 1);
    }

    #[test]
    fn time_zone_shifts_the_instant() {
        let sh = Schedule::parse("0 10 * * TUE", Some("Asia/Shanghai")).unwrap();
        let be = Schedule::parse("0 10 * * TUE", Some("Europe/Berlin")).unwrap();
        let from = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
        assert_eq!(sh.next_after(from).unwrap(), utc("2026-07-07T02:00:00Z"));
        assert_eq!(be.next_after(from).unwrap(), utc("2026-07-07T08:00:00Z")); // CEST, UTC+2
        let winter = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(be.next_after(winter).unwrap(), utc("2026-12-01T09:00:00Z")); // CET, UTC+1, a Tuesday
    }
}
