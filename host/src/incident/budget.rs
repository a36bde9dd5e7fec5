//! Send budgets at delivery time: a message over its target's budget waits
//! in the outbox until the budget allows it; it is never dropped.
//!
//! Rules:
//! - `rate = "N/WINDOW"`: each target keeps the instants of its last N
//!   granted sends, in order; the next send is granted no earlier than the
//!   oldest of them plus the window, so no window ever holds more than N.
//!   A burst of up to N goes out at once.
//! - `daily = N`: at most N sends per UTC day. The count of sends started is
//!   kept in the store's key-value table, so a restart does not reset it.
//! - A message that must wait gets its send instant reserved at once and is
//!   held in the outbox until then: one hold per message (not one retry per
//!   message per dispatcher pass), and one journal note saying until when.
//! - Time is the engine's clock, so a drill on a virtual clock spends its
//!   budget in virtual time.
//!
//! Governor's GCRA was not used here: it only answers "when may the next
//! one go", so every waiting message would be told the same instant and come
//! back together; reserving instants needs the window's history.

use crate::config::budget::Budget;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

pub(super) const DAY_MS: i64 = 86_400_000;

/// Per-target budget state of one engine.
#[derive(Default)]
pub(crate) struct Budgets {
    pub(super) targets: Mutex<HashMap<String, TargetBudget>>,
}

/// Sends counted for one UTC day.
#[derive(Default, Clone, Copy)]
struct Day {
    /// Sends started (as stored).
    started: u32,
    /// Sends reserved for later in the day, not yet started.
    reserved: u32,
}

pub(super) struct TargetBudget {
    pub(super) budget: Budget,
    /// The last `rate.count` granted instants (started or reserved), ascending.
    granted: VecDeque<i64>,
    /// Invocation id -> the instant reserved for it.
    reserved: HashMap<String, i64>,
    days: BTreeMap<i64, Day>,
}

/// What the budget says about one message.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Send now; the day's stored count becomes `started`.
    Go { day: i64, started: u32 },
    /// Reserved for `at`; `daily` when the daily budget (not the rate) set it.
    Wait { at: i64, daily: bool, new: bool },
}

impl TargetBudget {
    pub(super) fn new(budget: Budget) -> Self {
        TargetBudget { budget, granted: VecDeque::new(), reserved: HashMap::new(), days: BTreeMap::new() }
    }

    fn day(&mut self, day: i64, load: &dyn Fn(i64) -> anyhow::Result<u32>) -> anyhow::Result<&mut Day> {
        match self.days.entry(day) {
            std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) => Ok(e.insert(Day { started: load(day)?, reserved: 0 })),
        }
    }

    pub(super) fn decide(
        &mut self,
        id: &str,
        now: i64,
        load: &dyn Fn(i64) -> anyhow::Result<u32>,
    ) -> anyhow::Result<Decision> {
        if let Some(at) = self.reserved.get(id).copied() {
            if at > now {
                return Ok(Decision::Wait { at, daily: false, new: false });
            }
            self.reserved.remove(id);
            let day = at.div_euclid(DAY_MS);
            let d = self.day(day, load)?;
            d.reserved = d.reserved.saturating_sub(1);
            d.started += 1;
            return Ok(Decision::Go { day, started: d.started });
        }
        let mut at = now.max(self.granted.back().copied().unwrap_or(i64::MIN));
        if let Some(r) = self.budget.rate
            && self.granted.len() >= r.count as usize
            && let Some(oldest) = self.granted.get(self.granted.len() - r.count as usize)
        {
            at = at.max(oldest + r.per.as_millis() as i64);
        }
        let mut daily = false;
        if let Some(limit) = self.budget.daily {
            loop {
                let day = at.div_euclid(DAY_MS);
                let d = self.day(day, load)?;
                if d.started + d.reserved < limit {
                    break;
                }
                at = at.max((day + 1) * DAY_MS);
                daily = true;
            }
        }
        if let Some(r) = self.budget.rate {
            self.granted.push_back(at);
            while self.granted.len() > r.count as usize {
                self.granted.pop_front();
            }
        }
        let day = at.div_euclid(DAY_MS);
        // Days before yesterday can no longer be granted.
        self.days.retain(|d, _| *d >= now.div_euclid(DAY_MS) - 1);
        let d = self.day(day, load)?;
        if at <= now {
            d.started += 1;
            return Ok(Decision::Go { day, started: d.started });
        }
        d.reserved += 1;
        self.reserved.insert(id.to_string(), at);
        Ok(Decision::Wait { at, daily, new: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::budget::Rate;
    use std::time::Duration;

    fn budget(rate: Option<(u32, u64)>, daily: Option<u32>) -> TargetBudget {
        TargetBudget::new(Budget {
            rate: rate.map(|(count, secs)| Rate { count, per: Duration::from_secs(secs) }),
            daily,
        })
    }

    fn none(_: i64) -> anyhow::Result<u32> {
        Ok(0)
    }

    #[test]
    fn a_burst_goes_at_once_and_the_rest_waits_a_window_each() {
        let mut b = budget(Some((3, 60)), None);
        let mut at = Vec::new();
        for i in 0..8 {
            match b.decide(&format!("m{i}"), 1_000, &none).unwrap() {
                Decision::Go { .. } => at.push(1_000),
                Decision::Wait { at: t, daily, new } => {
                    assert!(!daily && new);
                    at.push(t)
                }
            }
        }
        assert_eq!(at, [1_000, 1_000, 1_000, 61_000, 61_000, 61_000, 121_000, 121_000]);
        // A held message asks again before its instant: same instant, not a new reservation.
        assert_eq!(b.decide("m4", 30_000, &none).unwrap(), Decision::Wait { at: 61_000, daily: false, new: false });
        assert!(matches!(b.decide("m4", 61_000, &none).unwrap(), Decision::Go { .. }));
    }

    #[test]
    fn no_window_holds_more_than_the_rate_whatever_the_arrivals() {
        let mut b = budget(Some((5, 10)), None);
        let mut sent = Vec::new();
        let mut now = 0;
        for i in 0..200 {
            now += (i * 7919) % 4_000;
            match b.decide(&format!("m{i}"), now, &none).unwrap() {
                Decision::Go { .. } => sent.push(now),
                Decision::Wait { at, .. } => sent.push(at),
            }
        }
        sent.sort();
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|u| **u < t + 10_000).count();
            assert!(in_window <= 5, "{in_window} sends in the window from {t}");
        }
    }

    #[test]
    fn the_daily_budget_counts_stored_sends_and_waits_for_the_next_utc_day() {
        let mut b = budget(None, Some(3));
        let stored = |_: i64| -> anyhow::Result<u32> { Ok(2) };
        let now = 5 * DAY_MS + 3_600_000;
        assert_eq!(b.decide("a", now, &stored).unwrap(), Decision::Go { day: 5, started: 3 });
        assert_eq!(b.decide("b", now, &stored).unwrap(), Decision::Wait { at: 6 * DAY_MS, daily: true, new: true });
    }
}
