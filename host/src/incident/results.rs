//! Journaling the results of side effects, alone or many in one transaction.
//!
//! A busy outbox settles hundreds of calls a second; journaling each result
//! in its own transaction makes every one wait for the writer lock and a
//! flush of its own, so the outbox falls behind intake. Results that arrive
//! together are written together: one transaction, one flush, each result
//! still journaled on its own incident exactly once.

use super::Engine;
use super::complaint::is_complaint_id;
use super::ctx::Ctx;
use super::effects::{EffectOutcome, IntentPayload};
use super::error::EngineError;
use super::events::Event;
use super::state::Incident;
use crate::playbook::types::Purpose;
use std::collections::{HashMap, HashSet};

/// A result to journal: its invocation id, the outcome and the intent's payload.
type Unjournaled<'a> = (&'a str, &'a EffectOutcome, serde_json::Value);

impl Engine {
    /// Journals the result of a side effect (once; repeats are ignored).
    pub fn record_effect(&self, invocation_id: &str, outcome: &EffectOutcome) -> Result<(), EngineError> {
        self.record_effects(&[(invocation_id, outcome)])
    }

    /// Journals the results of several side effects in one transaction.
    /// Results already journaled, and intents that no longer exist, are
    /// skipped. An error writes nothing of the group: the caller then
    /// records each result on its own to find the one that fails.
    pub fn record_effects(&self, results: &[(&str, &EffectOutcome)]) -> Result<(), EngineError> {
        let generation_ = self.generation();
        let mut observed: Vec<(Incident, Vec<Event>)> = Vec::new();
        let mut complaints = Vec::new();
        self.write(|tx| {
            observed.clear();
            complaints.clear();
            // An incident's results are journaled together, so its state is
            // loaded and saved once for the group, not once per result.
            let mut per_incident: Vec<(String, Vec<Unjournaled<'_>>)> = Vec::new();
            let mut at: HashMap<String, usize> = HashMap::new();
            let mut seen = HashSet::new();
            for (invocation_id, outcome) in results {
                let Some(intent) = tx.intent(invocation_id)? else { continue };
                // Journaled already, or earlier in this group.
                if intent.result.is_some() || !seen.insert(*invocation_id) {
                    continue;
                }
                // A complaint's message is journaled on the complaint's own stream.
                if is_complaint_id(&intent.incident_id) {
                    complaints.push(self.record_complaint_effect(tx, &intent, outcome)?);
                    continue;
                }
                let i = *at.entry(intent.incident_id.clone()).or_insert_with(|| {
                    per_incident.push((intent.incident_id.clone(), Vec::new()));
                    per_incident.len() - 1
                });
                per_incident[i].1.push((invocation_id, outcome, intent.payload));
            }
            for (incident_id, items) in &per_incident {
                let done = self.mutate_in(tx, &generation_, incident_id, true, &mut |ctx| {
                    items.iter().try_for_each(|(id, outcome, payload)| record_in(ctx, id, outcome, payload))
                })?;
                observed.push(done);
            }
            Ok::<_, EngineError>(())
        })?;
        for (inc, events) in &observed {
            self.observe(events, inc);
        }
        self.observe_complaints(&complaints);
        Ok(())
    }
}

/// Marks the intent done and journals its result on the incident loaded in `ctx`.
fn record_in(
    ctx: &mut Ctx<'_>,
    invocation_id: &str,
    outcome: &EffectOutcome,
    payload: &serde_json::Value,
) -> Result<(), EngineError> {
    let p: IntentPayload = serde_json::from_value(payload.clone()).map_err(anyhow::Error::from)?;
    ctx.tx.complete_intent(invocation_id, ctx.now, &serde_json::to_value(outcome).map_err(anyhow::Error::from)?)?;
    // A digest's members were kept only to write its text; its result ends them.
    if p.purpose == Purpose::Digest {
        ctx.tx.kv_delete_prefix(&super::digest::member_prefix(invocation_id))?;
    }
    ctx.emit(Event::EffectResult {
        invocation_id: invocation_id.to_string(),
        purpose: p.purpose,
        target: p.target,
        channel: p.customer.as_ref().map(|c| c.channel.clone()),
        customer: p.customer.map(|c| c.id),
        ok: outcome.ok,
        detail: outcome.detail.clone(),
    })?;
    Ok(())
}
