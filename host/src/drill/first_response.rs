//! The drill's complaints and how fast their first responses went out, read
//! from the drill's own journal, and the criterion that rates them against
//! `[complaints] first_response`.

use super::contain::CAPTURED;
use super::rating::{Criterion, Rating};
use crate::complaints::percentile;
use crate::incident::clock::fmt_span;
use crate::incident::complaint::{Complaint, ComplaintEvent};
use crate::playbook::types::Purpose;
use crate::store::{ComplaintQuery, Store};
use std::time::Duration;

/// One drill complaint's first response.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The complaint's id (`CMP-<n>` in the drill's journal).
    pub complaint: String,
    /// Milliseconds of drill time from receipt to the delivered (captured) answer; `None` if never answered.
    pub ms: Option<i64>,
    /// Whether the drill executor captured it (never sent).
    pub captured: bool,
    /// Journal sequence number of the answer's result, for evidence.
    pub seq: Option<i64>,
}

/// Every drill complaint's first response and the limit they are judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstResponses {
    /// `[complaints] first_response` of the drill's configuration.
    pub limit: Duration,
    /// One per complaint, oldest first.
    pub answers: Vec<Answer>,
}

impl FirstResponses {
    /// Reads the complaints of a drill's journal.
    pub fn read(store: &dyn Store, limit: Duration) -> anyhow::Result<FirstResponses> {
        let mut answers = Vec::new();
        for row in store.complaints(&ComplaintQuery::default())? {
            let c = Complaint::from_row(&row)?;
            let mut answer = Answer { complaint: c.id.clone(), ms: c.first_response_ms(), captured: false, seq: None };
            for rec in store.events(&c.id, 0)? {
                if let Ok(ComplaintEvent::ComplaintEffect {
                    purpose: Purpose::FirstResponse, ok: true, detail, ..
                }) = ComplaintEvent::from_record(&rec)
                {
                    answer.captured = detail.starts_with(CAPTURED);
                    answer.seq = Some(rec.seq);
                    break;
                }
            }
            answers.push(answer);
        }
        Ok(FirstResponses { limit, answers })
    }

    /// The criterion: `n/a` without complaints; else rated by the share
    /// answered within the limit (all: performed, at least 90%: some
    /// challenges, at least half: major challenges, fewer: unable), showing the p95.
    pub fn criterion(&self) -> Criterion {
        let title = "Complaints answered within the first-response time";
        let section = "[complaints] first_response";
        let limit = self.limit.as_millis() as i64;
        let n = self.answers.len();
        if n == 0 {
            let finding = "the drill received no complaints";
            return Criterion::new("first-response", title, Rating::NotApplicable, finding, section);
        }
        let mut times: Vec<i64> = self.answers.iter().filter_map(|a| a.ms).collect();
        times.sort_unstable();
        let within = times.iter().filter(|&&t| t <= limit).count();
        let rating = if within == n {
            Rating::Performed
        } else if within * 10 >= n * 9 {
            Rating::SomeChallenges
        } else if within * 2 >= n {
            Rating::MajorChallenges
        } else {
            Rating::Unable
        };
        let captured = self.answers.iter().filter(|a| a.captured).count();
        let spans = match (percentile(&times, 50), percentile(&times, 95)) {
            (Some(p50), Some(p95)) => format!("p50 {}, p95 {}", fmt_span(p50), fmt_span(p95)),
            _ => "none answered".into(),
        };
        let finding = format!(
            "{within} of {n} complaints answered within {} ({spans}); {} unanswered; {captured} first responses captured, never sent",
            fmt_span(limit),
            n - times.len()
        );
        let mut c = Criterion::new("first-response", title, rating, finding, section);
        // The limit is per complaint, not one deadline on the drill's
        // timeline, so it is named in the measurement and `limit` stays empty.
        c.measured = Some(match percentile(&times, 95) {
            Some(p95) => format!("p95 {}, {within}/{n} within {}", fmt_span(p95), fmt_span(limit)),
            None => format!("0/{n} answered"),
        });
        // Evidence cites the incident's timeline; the answers are on the complaints' own streams.
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(ms: &[Option<i64>]) -> FirstResponses {
        FirstResponses {
            limit: Duration::from_secs(120),
            answers: ms
                .iter()
                .enumerate()
                .map(|(i, &ms)| Answer { complaint: format!("CMP-{i}"), ms, captured: true, seq: Some(i as i64) })
                .collect(),
        }
    }

    #[test]
    fn no_complaints_is_not_applicable() {
        assert_eq!(answers(&[]).criterion().rating, Rating::NotApplicable);
    }

    #[test]
    fn the_share_in_time_rates_and_the_p95_is_shown() {
        let all = answers(&[Some(0), Some(1_000), Some(120_000)]).criterion();
        assert_eq!(all.rating, Rating::Performed);
        assert_eq!(all.measured.as_deref(), Some("p95 2m, 3/3 within 2m"));
        assert!(all.finding.contains("3 of 3 complaints answered within 2m"), "{}", all.finding);
        assert!(all.finding.contains("3 first responses captured"), "{}", all.finding);
        let mut ten = vec![Some(1_000); 9];
        ten.push(Some(120_001));
        assert_eq!(answers(&ten).criterion().rating, Rating::SomeChallenges);
        assert_eq!(answers(&[Some(0), None]).criterion().rating, Rating::MajorChallenges);
        let late = answers(&[Some(0), Some(500_000), None]).criterion();
        assert_eq!(late.rating, Rating::Unable);
        assert!(late.finding.contains("1 unanswered"), "{}", late.finding);
        assert_eq!(answers(&[None]).criterion().measured.as_deref(), Some("0/1 answered"));
    }
}
