//! Complaint metrics on `/metrics`, fed by the engine's complaint observer:
//! complaints per category and channel, first-response times (a histogram,
//! and p50/p95 gauges over the last [`RECENT`] delivered first responses),
//! missed deadlines, template fallbacks, escalations and follow-ups.

use crate::complaints::percentile;
use crate::incident::complaint::{Complaint, ComplaintEvent, Composer};
use crate::playbook::types::Purpose;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// The p50/p95 gauges are computed over this many most recently delivered
/// first responses (milliseconds), so they follow today's service, not the
/// daemon's whole uptime, at a bounded cost per complaint.
pub(crate) const RECENT: usize = 500;

/// Labels of the complaints counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ComplaintLabels {
    pub category: String,
    pub channel: String,
}

/// Labels of the escalations counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub reason: String,
}

/// The complaint metric families. Why a struct of its own: the daemon's
/// metrics hold one and the complaint observer feeds it.
pub(crate) struct ComplaintMetrics {
    received: Family<ComplaintLabels, Counter>,
    first_response: Histogram,
    /// The last [`RECENT`] first-response times (ms), oldest first.
    recent: Mutex<VecDeque<i64>>,
    first_response_p50: Gauge<f64, AtomicU64>,
    first_response_p95: Gauge<f64, AtomicU64>,
    missed: Counter,
    fallbacks: Counter,
    escalations: Family<ReasonLabels, Counter>,
    follow_ups: Counter,
}

impl Default for ComplaintMetrics {
    fn default() -> Self {
        ComplaintMetrics {
            received: Family::default(),
            // 0.25 s .. about 68 minutes.
            first_response: Histogram::new(exponential_buckets(0.25, 2.0, 15)),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            first_response_p50: Gauge::default(),
            first_response_p95: Gauge::default(),
            missed: Counter::default(),
            fallbacks: Counter::default(),
            escalations: Family::default(),
            follow_ups: Counter::default(),
        }
    }
}

impl ComplaintMetrics {
    /// Adds the families to the daemon's registry.
    pub(crate) fn register(&self, r: &mut Registry) {
        crate::daemon::metric_registry::register_all!(
            r,
            ("complaints", "Complaints received, by category and channel", self.received),
            (
                "complaint_first_response_seconds",
                "Time from receiving a complaint to delivering its first response",
                self.first_response
            ),
            (
                "complaint_first_response_p50_seconds",
                "Median first-response time over the most recent delivered first responses",
                self.first_response_p50
            ),
            (
                "complaint_first_response_p95_seconds",
                "95th percentile first-response time over the most recent delivered first responses",
                self.first_response_p95
            ),
            ("complaint_first_response_missed", "First responses not delivered by their deadline", self.missed),
            (
                "complaint_first_response_fallbacks",
                "First responses sent as the plain template because the appeasement plugin failed",
                self.fallbacks
            ),
            ("complaint_escalations", "Complaints escalated, by reason", self.escalations),
            ("complaint_follow_ups", "Follow-up messages delivered", self.follow_ups),
        );
    }

    /// Adds one delivered first response to the recent window and moves the p50/p95 gauges.
    fn observe_first_response(&self, ms: i64) {
        self.first_response.observe(ms as f64 / 1000.0);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(ms);
        let mut sorted: Vec<i64> = recent.iter().copied().collect();
        drop(recent);
        sorted.sort_unstable();
        let secs = |p| percentile(&sorted, p).map_or(0.0, |ms| ms as f64 / 1000.0);
        self.first_response_p50.set(secs(50));
        self.first_response_p95.set(secs(95));
    }

    /// Counts one committed complaint event.
    pub(crate) fn observe(&self, ev: &ComplaintEvent, c: &Complaint) {
        match ev {
            ComplaintEvent::ComplaintClassified { category, .. } => {
                let labels = ComplaintLabels { category: category.to_string(), channel: c.channel.to_string() };
                self.received.get_or_create(&labels).inc();
            }
            ComplaintEvent::FirstResponseRecorded { composer: Composer::Template { .. }, .. } => {
                self.fallbacks.inc();
            }
            ComplaintEvent::FirstResponseMissed { .. } => {
                self.missed.inc();
            }
            ComplaintEvent::ComplaintEscalated { reason, .. } => {
                let reason =
                    serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                self.escalations.get_or_create(&ReasonLabels { reason }).inc();
            }
            ComplaintEvent::ComplaintEffect { purpose: Purpose::FirstResponse, ok: true, invocation_id, .. }
                if c.first_response_id.as_deref() == Some(invocation_id.as_str()) =>
            {
                if let Some(ms) = c.first_response_ms() {
                    self.observe_first_response(ms);
                }
            }
            ComplaintEvent::ComplaintEffect { purpose: Purpose::FollowUp, ok: true, .. } => {
                self.follow_ups.inc();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_gauges_follow_the_recent_window_only() {
        let m = ComplaintMetrics::default();
        for ms in 1..=100 {
            m.observe_first_response(ms * 1000);
        }
        assert_eq!((m.first_response_p50.get(), m.first_response_p95.get()), (50.0, 95.0));
        // A window's worth of fast answers pushes the slow ones out.
        for _ in 0..RECENT {
            m.observe_first_response(2000);
        }
        assert_eq!((m.first_response_p50.get(), m.first_response_p95.get()), (2.0, 2.0));
        assert_eq!(m.recent.lock().unwrap().len(), RECENT);
    }
}
