//! Holding an intent back for its send budgets (the rules are in `budget`):
//! held in the outbox until its reserved instant, its wait journaled.

use super::Engine;
use super::budget::{BudgetKey, Decision, Limiter, decide};
use super::events::Event;
use super::outbox::ClaimedIntent;
use crate::config::budget::Budget;
use crate::playbook::types::Channel;

impl Engine {
    /// The budgets intent `c` counts against: its target's, and for a
    /// customer message its channel's; unlimited ones are left out.
    fn budgets_of(&self, c: &ClaimedIntent) -> Vec<(BudgetKey, Budget)> {
        let g = self.generation();
        let target = &c.payload.target;
        let mut out = Vec::new();
        if let Some(b) = g.config.targets.get(target).map(|t| t.delivery.budget) {
            out.push((BudgetKey::Target(target.clone()), b));
        }
        // A channel the engine does not know has no budget; its delivery fails on its own.
        if let Some(ch) = c.payload.customer.as_ref().and_then(|cust| cust.channel.parse::<Channel>().ok())
            && let Some(b) = g.config.channel_budgets.get(&ch)
        {
            out.push((BudgetKey::Channel(ch), *b));
        }
        out.retain(|(_, b)| b.is_limited());
        out
    }

    /// Whether intent `c` must wait for its send budgets. If so it is held in
    /// the outbox until the instant reserved for it, and its first wait is
    /// journaled; if not, the send is counted against every budget it is in.
    pub(crate) fn defer_for_budget(&self, c: &ClaimedIntent) -> anyhow::Result<bool> {
        let budgets = self.budgets_of(c);
        if budgets.is_empty() {
            return Ok(false);
        }
        let now = self.now();
        let store = self.store().clone();
        let load = |key: &BudgetKey, day: i64| -> anyhow::Result<u32> {
            Ok(store.kv_get(&key.day_key(day))?.and_then(|v| v.parse().ok()).unwrap_or(0))
        };
        let (decision, keys) = {
            let mut all = self.budgets.limiters.lock().unwrap_or_else(|p| p.into_inner());
            let mut limiters: Vec<Limiter> = budgets
                .iter()
                .map(|(key, budget)| match all.remove(key) {
                    Some(l) if l.budget == *budget => l,
                    // New, or a reload changed it: reservations are made again under the new budget.
                    _ => Limiter::new(key.clone(), *budget),
                })
                .collect();
            let decision = decide(&mut limiters, &c.id, now, &load);
            let keys: Vec<BudgetKey> = limiters.iter().map(|l| l.key.clone()).collect();
            all.extend(limiters.into_iter().map(|l| (l.key.clone(), l)));
            (decision?, keys)
        };
        match decision {
            Decision::Go { days } => {
                // Each send adds one to the stored day counts (outside the lock: an
                // add is atomic in the store, so their order does not matter).
                for (i, day) in days {
                    let total = store.kv_add(&keys[i].day_key(day), 1)?;
                    let mut all = self.budgets.limiters.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(l) = all.get_mut(&keys[i]) {
                        l.stored(day, total);
                    }
                }
                Ok(false)
            }
            Decision::Wait { at, by, daily, new } => {
                store.hold_intent(&c.id, at)?;
                if new {
                    let budget = budgets.iter().find(|(k, _)| *k == by).map(|(_, b)| *b).unwrap_or_default();
                    let limit = match (daily, budget.rate, budget.daily) {
                        (false, Some(r), _) => r.to_string(),
                        (_, _, Some(d)) => format!("{d}/day"),
                        (_, Some(r), None) => r.to_string(),
                        (_, None, None) => String::new(),
                    };
                    let whom = match &c.payload.customer {
                        Some(cust) => format!("customer {}", cust.id),
                        None if c.payload.recipients.is_empty() => format!("target `{}`", c.payload.target),
                        None => c.payload.recipients.join(", "),
                    };
                    let note = format!(
                        "waiting for budget of {by} ({limit}) until {}: {} to {whom}",
                        super::clock::fmt_ms(at),
                        c.id
                    );
                    self.mutate(&c.incident_id, true, |ctx| {
                        Ok(ctx.emit(Event::Note { by: "crisis".into(), note: note.clone() })?)
                    })?;
                }
                Ok(true)
            }
        }
    }
}
