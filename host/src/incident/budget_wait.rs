//! Holding an intent back for its target's send budget (the rules are in
//! `budget`): held in the outbox until its reserved instant, its wait journaled.

use super::Engine;
use super::budget::{Decision, TargetBudget};
use super::events::Event;
use super::outbox::ClaimedIntent;

/// The store key counting sends of `target` on UTC day `day` (days since 1970-01-01).
fn day_key(target: &str, day: i64) -> String {
    format!("budget.daily.{target}.{day}")
}

impl Engine {
    /// Whether intent `c` must wait for its target's send budget. If so it is
    /// held in the outbox until the instant reserved for it, and its first
    /// wait is journaled; if not, the send is counted against the budget.
    pub(crate) fn defer_for_budget(&self, c: &ClaimedIntent) -> anyhow::Result<bool> {
        let g = self.generation();
        let target = &c.payload.target;
        let Some(budget) = g.config.targets.get(target).map(|t| t.delivery.budget) else { return Ok(false) };
        if !budget.is_limited() {
            return Ok(false);
        }
        let now = self.now();
        let store = self.store().clone();
        let load = |day: i64| -> anyhow::Result<u32> {
            Ok(store.kv_get(&day_key(target, day))?.and_then(|v| v.parse().ok()).unwrap_or(0))
        };
        let decision = {
            let mut targets = self.budgets.targets.lock().unwrap_or_else(|p| p.into_inner());
            let t = targets.entry(target.clone()).or_insert_with(|| TargetBudget::new(budget));
            if t.budget != budget {
                // A reload changed the budget: reservations are made again under the new one.
                *t = TargetBudget::new(budget);
            }
            let decision = t.decide(&c.id, now, &load)?;
            // The day's count is stored under the same lock: two sends decided
            // together must not store their counts in the other order, or a
            // restart would find fewer sends than went out.
            if let Decision::Go { day, started } = decision {
                store.kv_put(&day_key(target, day), &started.to_string())?;
            }
            decision
        };
        match decision {
            Decision::Go { .. } => Ok(false),
            Decision::Wait { at, daily, new } => {
                store.hold_intent(&c.id, at)?;
                if new {
                    let limit = match (daily, budget.rate, budget.daily) {
                        (false, Some(r), _) => r.to_string(),
                        (_, _, Some(d)) => format!("{d}/day"),
                        (_, Some(r), None) => r.to_string(),
                        (_, None, None) => String::new(),
                    };
                    let whom = match &c.payload.customer {
                        Some(cust) => format!("customer {}", cust.id),
                        None if c.payload.recipients.is_empty() => format!("target `{target}`"),
                        None => c.payload.recipients.join(", "),
                    };
                    let note = format!(
                        "waiting for budget of target `{target}` ({limit}) until {}: {} to {whom}",
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
