//! Taking in one customer complaint, the same way for the daemon's intake and
//! for a drill's complaint burst: classify it ([`classify`]), have the
//! appeasement plugin compose its first response ([`respond`], the plain
//! template when the plugin fails) and journal it all with
//! [`Engine::record_complaint`], which records the first response's intent
//! and its deadline timer on the engine's own clock.
//!
//! Why a module of its own: the drill layer may not import the daemon, and
//! a drill's complaints must go through exactly the path live ones do.

pub(crate) mod classify;
pub(crate) mod respond;

use crate::config::customers::Customer;
use crate::incident::complaint::Composer;
use crate::incident::{Engine, EngineError, NewComplaint, Recorded};
use crate::playbook::types::{Category, Channel};
use crate::plugin::PluginHost;
use std::collections::BTreeMap;

/// A complaint that passed the caller's checks, its text and labels already
/// free of contact details, ready to be classified, answered and journaled.
pub(crate) struct Incoming<'a> {
    /// Who complained (only id, segment, tier and locale reach plugins and the journal).
    pub customer: &'a Customer,
    /// The channel it came in on; the first response goes out on it.
    pub channel: Channel,
    /// The category sent with it, if any (it wins over the rules).
    pub category: Option<Category>,
    /// What the customer said, contact details masked.
    pub text: String,
    /// Free labels, contact details masked.
    pub labels: BTreeMap<String, String>,
    /// Where it was reported (`cli`, an intake token's name, `drill`).
    pub source: String,
    /// The digest of the sender's idempotency key, when it sent one.
    pub intake_key: Option<String>,
}

/// Classifies, composes and journals `c` on `engine` (live or drill, as the
/// engine is). `mask` is applied to what a plugin wrote (the first response
/// and a failure's reason) before it is journaled. `host` is `None` where no
/// plugin can be called: the rules still classify, the template answers.
/// A retry under an idempotency key already used gets its complaint back
/// without a plugin call or a new id.
pub(crate) fn record(
    engine: &Engine,
    host: Option<&PluginHost>,
    c: Incoming<'_>,
    mask: fn(&str) -> String,
) -> Result<Recorded, EngineError> {
    if let Some(k) = &c.intake_key
        && let Some(complaint) = engine.complaint_for_key(k, &c.customer.id, c.channel, &c.text)?
    {
        return Ok(Recorded { complaint, replayed: true });
    }
    let g = engine.generation();
    let cc = &g.config.complaints;
    let id = engine.reserve_complaint_id()?;
    let who = c.customer;
    let complaint =
        classify::Complaint { id: &id, given: c.category, locale: &who.locale, text: &c.text, channel: c.channel };
    let class = classify::classify(host, cc, engine.mode(), engine.now(), &complaint);
    let addressee = respond::Addressee {
        id: &who.id,
        segment: &who.segment,
        tier: &who.tier,
        locale: &who.locale,
        channel: c.channel,
    };
    let (composer, subject, body) =
        respond::compose(host, cc.composer.as_deref(), &id, class.category, engine.mode(), engine.now(), &addressee);
    let composer = match composer {
        Composer::Template { reason } => Composer::Template { reason: mask(&reason) },
        plugin => plugin,
    };
    engine.record_complaint(NewComplaint {
        id,
        customer: who.id.clone(),
        segment: who.segment.clone(),
        tier: who.tier.clone(),
        locale: who.locale.clone(),
        channel: c.channel,
        text: c.text,
        labels: c.labels,
        source: c.source,
        category: class.category,
        confidence: class.confidence,
        classified_by: class.by,
        composer,
        subject,
        body: mask(&body),
        intake_key: c.intake_key,
    })
}

/// The nearest-rank percentile `p` (0 to 100) of sorted values; `None` when there are none.
pub(crate) fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
