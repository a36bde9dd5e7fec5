//! Scoring from the drill's own journal: every number comes
//! from event timestamps, every criterion is rated HSEEP-style and carries
//! the journal sequence numbers it was judged on.

use super::facts::Facts;
use super::first_response::FirstResponses;
use super::scenario::Scenario;
use crate::incident::state::Incident;
use crate::playbook::spec::Playbook;
use crate::store::EventRecord;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use super::rating::{Criterion, MAX_POINTS, Rating};

/// The drill's score: every criterion, the 0–100 total and the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Score {
    /// Every rated criterion: the host's first, then each hook's.
    pub criteria: Vec<Criterion>,
    /// Points of the applicable criteria over their maximum, normalised to 0..=100 (`n/a` is left out).
    pub total: u32,
    /// `pass` or `fail`, by [`Score::rule`].
    pub verdict: String,
    /// The lowest passing total: the playbook's `[drill] pass_score` (default 80).
    #[serde(default = "default_pass_score")]
    pub pass_score: u32,
    /// The verdict rule in words, as the reports state it.
    #[serde(default)]
    pub rule: String,
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

fn default_pass_score() -> u32 {
    DEFAULT_PASS_SCORE
}

pub use crate::playbook::spec::DEFAULT_PASS_SCORE;

/// The verdict rule as the reports state it.
pub fn verdict_rule(pass_score: u32) -> String {
    format!(
        "PASS: total ≥ {pass_score} and no criterion `unable`; `n/a` criteria (their condition never arose) are left out of the total"
    )
}

/// Scores a drill. `incident` is `None` if the drill never opened one;
/// `first_responses` are the drill's complaints' answers.
pub fn score(
    pb: &Playbook,
    incident: Option<&Incident>,
    events: &[EventRecord],
    scenario: &Scenario,
    first_responses: &FirstResponses,
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
        Some(opened) => super::criteria::host_criteria(pb, &facts, scenario, opened, &mut c),
    }
    c.push(first_responses.criterion());
    let mut hook_errors = Vec::new();
    let input = ScoreInput { playbook: pb, incident, events, scenario };
    for h in hooks {
        match h.criteria(&input) {
            Ok(more) => {
                for mut x in more {
                    x.points = x.rating.points();
                    // A hook names its criteria's source (the simulator, by plugin name), never `host`.
                    if x.source.is_empty() || x.source == "host" {
                        x.source = h.name().to_string();
                    }
                    merge(&mut c, x);
                }
            }
            Err(e) => hook_errors.push(format!("score hook `{}` failed: {e:#}", h.name())),
        }
    }
    let pass_score = pb.drill.as_ref().map_or(DEFAULT_PASS_SCORE, |d| d.pass_score);
    total(c, hook_errors, pass_score)
}

/// Adds a hook's criterion, merging it into one with the same id, so one
/// behaviour judged by the host and a plugin is one row, counted once.
/// The merge rule: the first row's title, measurement, limit and section are
/// kept (the host's, as the host scores first); the worse rating wins, and any
/// rating beats `n/a`; evidence is the union of both; the finding is the first
/// row's followed by the hook's; the source names both.
pub fn merge(criteria: &mut Vec<Criterion>, c: Criterion) {
    let Some(row) = criteria.iter_mut().find(|x| x.id == c.id) else {
        criteria.push(c);
        return;
    };
    row.rating = row.rating.max(c.rating);
    row.points = row.rating.points();
    row.evidence.extend(c.evidence);
    row.evidence.sort_unstable();
    row.evidence.dedup();
    if !c.finding.is_empty() {
        row.finding = format!("{}; {}: {}", row.finding, c.source, c.finding);
    }
    row.source = format!("{}+{}", row.source, c.source);
}

/// Sums the applicable criteria into a 0..=100 total and applies the verdict
/// rule: PASS when the total reaches `pass_score` and no criterion is `unable`
/// (and at least one criterion applied).
pub fn total(criteria: Vec<Criterion>, hook_errors: Vec<String>, pass_score: u32) -> Score {
    let rated: Vec<&Criterion> = criteria.iter().filter(|c| c.rating.is_applicable()).collect();
    let max = rated.len() as u32 * MAX_POINTS;
    let got: u32 = rated.iter().map(|c| c.rating.points()).sum();
    let total = (got * 100 + max / 2).checked_div(max).unwrap_or(0).min(100);
    let failed = rated.is_empty() || total < pass_score || rated.iter().any(|c| c.rating == Rating::Unable);
    let verdict = if failed { "fail" } else { "pass" };
    Score { criteria, total, verdict: verdict.into(), pass_score, rule: verdict_rule(pass_score), hook_errors }
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
        assert_eq!(total(vec![], vec![], 80).total, 0);
        assert_eq!(total(vec![], vec![], 80).verdict, "fail");
        let all = total(vec![mk(Rating::Performed); 7], vec![], 80);
        assert_eq!((all.total, all.verdict.as_str()), (100, "pass"));
        let mixed = total(vec![mk(Rating::Performed), mk(Rating::Unable)], vec![], 80);
        assert_eq!((mixed.total, mixed.verdict.as_str()), (50, "fail"));
        for n in 1..40u32 {
            for k in 0..=n {
                let v: Vec<Criterion> =
                    (0..n).map(|i| mk(if i < k { Rating::Performed } else { Rating::MajorChallenges })).collect();
                let t = total(v, vec![], 80).total;
                assert!((33..=100).contains(&t), "{n} {k} {t}");
            }
        }
    }

    #[test]
    fn not_applicable_is_left_out_of_the_total_and_never_fails() {
        let mk = |r| Criterion::new("x", "x", r, "", "");
        let s = total(vec![mk(Rating::Performed), mk(Rating::NotApplicable), mk(Rating::NotApplicable)], vec![], 80);
        assert_eq!((s.total, s.verdict.as_str()), (100, "pass"));
        // Only n/a: nothing was judged, which is no pass.
        assert_eq!(total(vec![mk(Rating::NotApplicable)], vec![], 0).verdict, "fail");
        assert_eq!(Rating::NotApplicable.as_str(), "n/a");
        assert_eq!(serde_json::to_value(Rating::NotApplicable).unwrap(), "n/a");
        assert!(!Rating::NotApplicable.is_applicable());
        // Any rating is worse than n/a; unable is the worst.
        assert_eq!(Rating::NotApplicable.max(Rating::Performed), Rating::Performed);
        assert_eq!(Rating::Unable.max(Rating::MajorChallenges), Rating::Unable);
    }

    #[test]
    fn pass_score_is_the_lowest_passing_total_and_the_rule_says_so() {
        let mk = |r| Criterion::new("x", "x", r, "", "");
        // 3 + 3 + 2 of 9 points: 89.
        let v = vec![mk(Rating::Performed), mk(Rating::Performed), mk(Rating::SomeChallenges)];
        let at80 = total(v.clone(), vec![], 80);
        assert_eq!((at80.total, at80.verdict.as_str()), (89, "pass"));
        let at90 = total(v.clone(), vec![], 90);
        assert_eq!((at90.total, at90.verdict.as_str()), (89, "fail"));
        assert_eq!(total(v, vec![], 89).verdict, "pass");
        assert!(at90.rule.contains("total ≥ 90") && at90.rule.contains("`unable`"), "{}", at90.rule);
        assert_eq!(at90.pass_score, 90);
    }

    #[test]
    fn a_hook_criterion_with_the_hosts_id_merges_into_one_row() {
        let mut host =
            Criterion::new("dedup", "Duplicate alert deduplicated", Rating::Performed, "attached", "[trigger]");
        host.evidence = vec![7, 3];
        host.measured = Some("1m".into());
        let mut c = vec![host, Criterion::new("outcome", "Outcome", Rating::Performed, "", "")];
        let mut hook = Criterion::new("dedup", "duplicate alert deduplicated", Rating::SomeChallenges, "late", "[sim]");
        hook.source = "drill-sim".into();
        hook.evidence = vec![3, 9];
        hook.measured = Some("7/10 points".into());
        hook.limit = Some("10 points".into());
        merge(&mut c, hook);
        assert_eq!(c.len(), 2);
        let d = &c[0];
        assert_eq!((d.title.as_str(), d.rating, d.points), ("Duplicate alert deduplicated", Rating::SomeChallenges, 2));
        assert_eq!((d.measured.as_deref(), d.limit.as_deref()), (Some("1m"), None));
        assert_eq!(d.evidence, vec![3, 7, 9]);
        assert_eq!(d.source, "host+drill-sim");
        assert!(d.finding.starts_with("attached; drill-sim: late"), "{}", d.finding);
        // n/a from the hook never hides the host's rating; a new id adds a row.
        let mut na = Criterion::new("outcome", "o", Rating::NotApplicable, "", "");
        na.source = "drill-sim".into();
        merge(&mut c, na);
        assert_eq!(c[1].rating, Rating::Performed);
        merge(&mut c, Criterion::new("drill-sim:other", "other", Rating::Performed, "", ""));
        assert_eq!(c.len(), 3);
    }
}
