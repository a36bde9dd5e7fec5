//! HSEEP ratings and rated criteria: what the host's criteria and score hooks produce.

use serde::{Deserialize, Serialize};

/// HSEEP ratings: P / S / M / U, plus `n/a`. Ordered from best to worst, with
/// `n/a` first, so `max` picks the worse of two ratings and any rating beats `n/a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rating {
    /// Not applicable: the condition the criterion judges never arose (the owner acknowledged,
    /// so nobody had to escalate; no duplicate alert was injected; ...). Left out of the total.
    #[serde(rename = "n/a")]
    NotApplicable,
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
            Rating::NotApplicable => 0,
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
            Rating::NotApplicable => "n/a",
        }
    }
    /// Whether the criterion counts towards the total (everything but `n/a`).
    pub fn is_applicable(self) -> bool {
        self != Rating::NotApplicable
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
