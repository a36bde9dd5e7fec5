//! `crisis complaint report --since 7d`: what came in and how fast it was
//! answered, counted from the complaint rows (never their text).

use crate::complaints::percentile;
use crate::incident::complaint::{Complaint, ComplaintState, Composer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The summary of the complaints received in a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ComplaintReport {
    /// Start of the window (Unix ms).
    pub since: i64,
    /// Complaints received in it.
    pub total: usize,
    /// Per category name.
    pub by_category: BTreeMap<String, usize>,
    /// Per channel name.
    pub by_channel: BTreeMap<String, usize>,
    /// Per state name.
    pub by_state: BTreeMap<String, usize>,
    /// Median time to the delivered first response (ms), if any was delivered.
    pub first_response_p50_ms: Option<i64>,
    /// 95th percentile of it (ms).
    pub first_response_p95_ms: Option<i64>,
    /// First responses still undelivered or delivered late.
    pub first_response_missed: usize,
    /// First responses sent as the plain template.
    pub template_fallbacks: usize,
    /// Complaints escalated.
    pub escalated: usize,
    /// Complaints resolved (followed up or not).
    pub resolved: usize,
    /// Follow-ups delivered.
    pub followed_up: usize,
}

/// Counts `complaints` (all received at or after `since`).
pub(crate) fn report(since: i64, complaints: &[Complaint]) -> ComplaintReport {
    let mut r = ComplaintReport { since, total: complaints.len(), ..Default::default() };
    let mut times = Vec::new();
    for c in complaints {
        *r.by_category.entry(c.category.to_string()).or_default() += 1;
        *r.by_channel.entry(c.channel.to_string()).or_default() += 1;
        *r.by_state.entry(c.state.to_string()).or_default() += 1;
        times.extend(c.first_response_ms());
        r.first_response_missed += usize::from(c.first_response_missed);
        r.template_fallbacks += usize::from(matches!(c.composer, Some(Composer::Template { .. })));
        r.escalated += usize::from(c.escalated_to.is_some());
        r.resolved += usize::from(c.resolved_at.is_some());
        r.followed_up += usize::from(c.state == ComplaintState::FollowedUp);
    }
    times.sort_unstable();
    r.first_response_p50_ms = percentile(&times, 50);
    r.first_response_p95_ms = percentile(&times, 95);
    r
}
