//! Complaint metrics on `/metrics`, fed by the engine's complaint observer:
//! complaints per category and channel, first-response times (p50/p95 come
//! from the histogram), missed deadlines, template fallbacks, escalations
//! and follow-ups.

use crate::incident::complaint::{Complaint, ComplaintEvent, Composer};
use crate::playbook::types::Purpose;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
        r.register("complaints", "Complaints received, by category and channel", self.received.clone());
        r.register(
            "complaint_first_response_seconds",
            "Time from receiving a complaint to delivering its first response",
            self.first_response.clone(),
        );
        r.register(
            "complaint_first_response_missed",
            "First responses not delivered by their deadline",
            self.missed.clone(),
        );
        r.register(
            "complaint_first_response_fallbacks",
            "First responses sent as the plain template because the appeasement plugin failed",
            self.fallbacks.clone(),
        );
        r.register("complaint_escalations", "Complaints escalated, by reason", self.escalations.clone());
        r.register("complaint_follow_ups", "Follow-up messages delivered", self.follow_ups.clone());
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
                    self.first_response.observe(ms as f64 / 1000.0);
                }
            }
            ComplaintEvent::ComplaintEffect { purpose: Purpose::FollowUp, ok: true, .. } => {
                self.follow_ups.inc();
            }
            _ => {}
        }
    }
}
