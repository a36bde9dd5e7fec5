//! Send budgets at delivery time: a message over a budget waits in the
//! outbox until every budget it counts against allows it; it is never dropped.
//!
//! Rules:
//! - A message counts against its target's budget and, for a customer
//!   message, against its channel's budget (`[budgets.channel.sms]`) too. It
//!   goes at the earliest instant both allow, and that instant is reserved in
//!   both, so neither budget is ever exceeded and neither waits for nothing.
//! - `rate = "N/WINDOW"`: each budget keeps the instants of its last N
//!   granted sends, in order; the next send is granted no earlier than the
//!   oldest of them plus the window, so no window ever holds more than N.
//!   A burst of up to N goes out at once.
//! - `daily = N`: at most N sends per UTC day. The count of sends started is
//!   kept in the store's key-value table and each send adds one to it there
//!   (never writes this process's copy over it), so a restart does not reset
//!   it and daemons sharing one database count each other's sends.
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
use crate::playbook::types::Channel;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

pub(super) const DAY_MS: i64 = 86_400_000;

/// Per-budget state of one engine.
#[derive(Default)]
pub(crate) struct Budgets {
    pub(super) limiters: Mutex<HashMap<BudgetKey, Limiter>>,
}

/// Which budget a send counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum BudgetKey {
    /// `[targets.NAME]`'s `rate` and `daily`.
    Target(String),
    /// `[budgets.channel.NAME]`: every customer message on the channel, whatever its target.
    Channel(Channel),
}

impl BudgetKey {
    /// The store key counting this budget's sends on UTC day `day` (days since 1970-01-01).
    pub(super) fn day_key(&self, day: i64) -> String {
        match self {
            BudgetKey::Target(t) => format!("budget.daily.{t}.{day}"),
            BudgetKey::Channel(c) => format!("budget.channel_daily.{c}.{day}"),
        }
    }
}

impl std::fmt::Display for BudgetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetKey::Target(t) => write!(f, "target `{t}`"),
            BudgetKey::Channel(c) => write!(f, "channel `{c}`"),
        }
    }
}

/// Reads the stored count of a budget's sends on a UTC day.
pub(super) type Load<'a> = &'a dyn Fn(&BudgetKey, i64) -> anyhow::Result<u32>;

/// Sends counted for one UTC day.
#[derive(Default, Clone, Copy)]
struct Day {
    /// Sends started (as stored).
    started: u32,
    /// Sends reserved for later in the day, not yet started.
    reserved: u32,
}

/// One budget's sends: granted instants, reservations and day counts.
pub(super) struct Limiter {
    pub(super) key: BudgetKey,
    pub(super) budget: Budget,
    /// The last `rate.count` granted instants (started or reserved), ascending.
    granted: VecDeque<i64>,
    /// Invocation id -> the instant reserved for it.
    reserved: HashMap<String, i64>,
    days: BTreeMap<i64, Day>,
}

/// What the budgets say about one message.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Send now; each `(limiter index, UTC day)` is a stored day count the send adds one to.
    Go { days: Vec<(usize, i64)> },
    /// Held until `at`, set by budget `by`; `daily` when its daily budget (not
    /// its rate) set it; `new` false when the message asked again before its instant.
    Wait { at: i64, by: BudgetKey, daily: bool, new: bool },
}

impl Limiter {
    pub(super) fn new(key: BudgetKey, budget: Budget) -> Self {
        Limiter { key, budget, granted: VecDeque::new(), reserved: HashMap::new(), days: BTreeMap::new() }
    }

    fn day(&mut self, day: i64, load: Load) -> anyhow::Result<&mut Day> {
        match self.days.entry(day) {
            std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) => {
                Ok(e.insert(Day { started: load(&self.key, day)?, reserved: 0 }))
            }
        }
    }

    /// The earliest instant from `from` on at which this budget allows one
    /// more send after those already granted (which go first), the instant
    /// its own rate or daily budget alone demands, and whether the daily
    /// budget (not the rate) set that.
    fn earliest(&mut self, from: i64, load: Load) -> anyhow::Result<(i64, i64, bool)> {
        let mut at = from.max(self.granted.back().copied().unwrap_or(i64::MIN));
        let mut own = i64::MIN;
        if let Some(r) = self.budget.rate
            && self.granted.len() >= r.count as usize
            && let Some(oldest) = self.granted.get(self.granted.len() - r.count as usize)
        {
            own = oldest + r.per.as_millis() as i64;
            at = at.max(own);
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
                (own, daily) = (at, true);
            }
        }
        Ok((at, own, daily))
    }

    /// Grants message `id` the instant `at`: started if `at` is not after
    /// `now` (returns its UTC day), else reserved.
    fn grant(&mut self, id: &str, at: i64, now: i64, load: Load) -> anyhow::Result<Option<i64>> {
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
            return Ok(Some(day));
        }
        d.reserved += 1;
        self.reserved.insert(id.to_string(), at);
        Ok(None)
    }

    /// Starts the send reserved for message `id`; returns its UTC day.
    fn start_reserved(&mut self, id: &str, load: Load) -> anyhow::Result<Option<i64>> {
        let Some(at) = self.reserved.remove(id) else { return Ok(None) };
        let day = at.div_euclid(DAY_MS);
        let d = self.day(day, load)?;
        d.reserved = d.reserved.saturating_sub(1);
        d.started += 1;
        Ok(Some(day))
    }

    /// The store's count of sends on `day` after this process added one: it
    /// also holds other daemons' sends, so it is taken when it is higher.
    pub(super) fn stored(&mut self, day: i64, total: i64) {
        if let Some(d) = self.days.get_mut(&day) {
            d.started = d.started.max(u32::try_from(total).unwrap_or(u32::MAX));
        }
    }
}

/// What `limiters` (every budget message `id` counts against) say about it at `now`.
pub(super) fn decide(limiters: &mut [Limiter], id: &str, now: i64, load: Load) -> anyhow::Result<Decision> {
    // A message that asks again before the instant a budget reserved for it keeps waiting.
    if let Some((at, l)) = limiters
        .iter()
        .filter_map(|l| l.reserved.get(id).map(|at| (*at, l)))
        .filter(|(at, _)| *at > now)
        .max_by_key(|(at, _)| *at)
    {
        return Ok(Decision::Wait { at, by: l.key.clone(), daily: false, new: false });
    }
    // The earliest instant every budget without a reservation for it allows;
    // the wait is put down to the budget whose own limit demands the latest.
    let mut at = now;
    let mut by: Option<(i64, BudgetKey, bool)> = None;
    loop {
        let mut moved = false;
        for l in limiters.iter_mut().filter(|l| !l.reserved.contains_key(id)) {
            let (t, own, d) = l.earliest(at, load)?;
            if by.as_ref().is_none_or(|(o, _, _)| own > *o) {
                by = Some((own, l.key.clone(), d));
            }
            if t > at {
                (at, moved) = (t, true);
            }
        }
        if !moved {
            break;
        }
    }
    if let Some((_, by, daily)) = by.filter(|_| at > now) {
        // Reserved in each budget that had no reservation yet; one it already
        // had (a reload reset another) stays until this one comes due too.
        for l in limiters.iter_mut().filter(|l| !l.reserved.contains_key(id)) {
            l.grant(id, at, now, load)?;
        }
        return Ok(Decision::Wait { at, by, daily, new: true });
    }
    let mut days = Vec::new();
    for (i, l) in limiters.iter_mut().enumerate() {
        let day = match l.start_reserved(id, load)? {
            Some(day) => Some(day),
            None => l.grant(id, now, now, load)?,
        };
        days.extend(day.map(|d| (i, d)));
    }
    Ok(Decision::Go { days })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::budget::Rate;
    use std::time::Duration;

    fn budget(rate: Option<(u32, u64)>, daily: Option<u32>) -> Budget {
        Budget { rate: rate.map(|(count, secs)| Rate { count, per: Duration::from_secs(secs) }), daily }
    }

    fn target(rate: Option<(u32, u64)>, daily: Option<u32>) -> Vec<Limiter> {
        vec![Limiter::new(BudgetKey::Target("customers".into()), budget(rate, daily))]
    }

    fn none(_: &BudgetKey, _: i64) -> anyhow::Result<u32> {
        Ok(0)
    }

    /// The instant each message goes (now, or the one reserved for it).
    fn instant(d: Decision, now: i64) -> i64 {
        match d {
            Decision::Go { .. } => now,
            Decision::Wait { at, .. } => at,
        }
    }

    #[test]
    fn a_burst_goes_at_once_and_the_rest_waits_a_window_each() {
        let mut b = target(Some((3, 60)), None);
        let mut at = Vec::new();
        for i in 0..8 {
            match decide(&mut b, &format!("m{i}"), 1_000, &none).unwrap() {
                Decision::Go { .. } => at.push(1_000),
                Decision::Wait { at: t, daily, new, .. } => {
                    assert!(!daily && new);
                    at.push(t)
                }
            }
        }
        assert_eq!(at, [1_000, 1_000, 1_000, 61_000, 61_000, 61_000, 121_000, 121_000]);
        // A held message asks again before its instant: same instant, not a new reservation.
        let by = BudgetKey::Target("customers".into());
        assert_eq!(
            decide(&mut b, "m4", 30_000, &none).unwrap(),
            Decision::Wait { at: 61_000, by, daily: false, new: false }
        );
        assert!(matches!(decide(&mut b, "m4", 61_000, &none).unwrap(), Decision::Go { .. }));
    }

    #[test]
    fn no_window_holds_more_than_the_rate_whatever_the_arrivals() {
        let mut b = target(Some((5, 10)), None);
        let mut sent = Vec::new();
        let mut now = 0;
        for i in 0..200 {
            now += (i * 7919) % 4_000;
            sent.push(instant(decide(&mut b, &format!("m{i}"), now, &none).unwrap(), now));
        }
        sent.sort();
        for (i, t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|u| **u < t + 10_000).count();
            assert!(in_window <= 5, "{in_window} sends in the window from {t}");
        }
    }

    #[test]
    fn the_daily_budget_counts_stored_sends_and_waits_for_the_next_utc_day() {
        let mut b = target(None, Some(3));
        let stored = |_: &BudgetKey, _: i64| -> anyhow::Result<u32> { Ok(2) };
        let now = 5 * DAY_MS + 3_600_000;
        assert_eq!(decide(&mut b, "a", now, &stored).unwrap(), Decision::Go { days: vec![(0, 5)] });
        let by = BudgetKey::Target("customers".into());
        assert_eq!(
            decide(&mut b, "b", now, &stored).unwrap(),
            Decision::Wait { at: 6 * DAY_MS, by, daily: true, new: true }
        );
    }

    #[test]
    fn a_count_stored_by_another_daemon_fills_the_day_sooner() {
        let mut b = target(None, Some(10));
        let now = 5 * DAY_MS;
        assert_eq!(decide(&mut b, "a", now, &none).unwrap(), Decision::Go { days: vec![(0, 5)] });
        // The store's sum says another daemon sent eight more today.
        b[0].stored(5, 9);
        assert!(matches!(decide(&mut b, "b", now, &none).unwrap(), Decision::Go { .. }));
        assert!(matches!(decide(&mut b, "c", now, &none).unwrap(), Decision::Wait { daily: true, .. }));
    }

    /// A customer message's target budget and channel budget, in that order.
    fn target_and_channel(target_rate: (u32, u64), channel_rate: (u32, u64)) -> Vec<Limiter> {
        vec![
            Limiter::new(BudgetKey::Target("customers".into()), budget(Some(target_rate), None)),
            Limiter::new(BudgetKey::Channel(Channel::Sms), budget(Some(channel_rate), None)),
        ]
    }

    #[test]
    fn a_message_goes_when_both_its_target_and_its_channel_allow_and_is_counted_in_both() {
        let mut b = target_and_channel((100, 60), (2, 60));
        assert_eq!(decide(&mut b, "m0", 0, &none).unwrap(), Decision::Go { days: vec![(0, 0), (1, 0)] });
        assert!(matches!(decide(&mut b, "m1", 0, &none).unwrap(), Decision::Go { .. }));
        // The channel is full for this minute, though the target is not.
        let wait = decide(&mut b, "m2", 0, &none).unwrap();
        assert_eq!(wait, Decision::Wait { at: 60_000, by: BudgetKey::Channel(Channel::Sms), daily: false, new: true });
        // Reserved in the target too: its window now holds that instant.
        assert_eq!(b[0].reserved.get("m2"), Some(&60_000));
        assert_eq!(decide(&mut b, "m2", 60_000, &none).unwrap(), Decision::Go { days: vec![(0, 0), (1, 0)] });
        assert!(b[0].reserved.is_empty() && b[1].reserved.is_empty());
    }

    #[test]
    fn the_later_of_two_budgets_sets_the_instant_whichever_comes_first() {
        // Target 1/min and channel 2/min: the target is the tighter one.
        let mut b = target_and_channel((1, 60), (2, 60));
        let mut sent = Vec::new();
        for i in 0..6 {
            sent.push(instant(decide(&mut b, &format!("m{i}"), 0, &none).unwrap(), 0));
        }
        assert_eq!(sent, [0, 60_000, 120_000, 180_000, 240_000, 300_000]);
        // And the other way round: a 10/min target behind a 3/min channel.
        let mut b = target_and_channel((10, 60), (3, 60));
        let mut sent = Vec::new();
        for i in 0..7 {
            sent.push(instant(decide(&mut b, &format!("m{i}"), 0, &none).unwrap(), 0));
        }
        assert_eq!(sent, [0, 0, 0, 60_000, 60_000, 60_000, 120_000]);
    }

    #[test]
    fn no_window_of_either_budget_holds_more_than_its_rate() {
        let mut b = target_and_channel((7, 30), (5, 20));
        let (mut sent, mut now) = (Vec::new(), 0);
        for i in 0..300 {
            now += (i * 7919) % 3_000;
            sent.push(instant(decide(&mut b, &format!("m{i}"), now, &none).unwrap(), now));
        }
        sent.sort();
        for (i, t) in sent.iter().enumerate() {
            assert!(sent[i..].iter().take_while(|u| **u < t + 20_000).count() <= 5, "channel window from {t}");
            assert!(sent[i..].iter().take_while(|u| **u < t + 30_000).count() <= 7, "target window from {t}");
        }
    }
}
