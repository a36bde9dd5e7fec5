//! Whether delivery keeps up. Per target: how many messages ran in the last
//! minute, and how long the oldest pending one has waited. A message that
//! waited longer than the first-response time raises one warning per target
//! (in the log and on that message's incident) until the target catches up.

use crate::incident::Engine;
use crate::store::OutboxLane;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the oldest pending message is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Width of one counting slot; six slots make the one-minute window.
const SLOT_MS: i64 = 10_000;
const SLOTS: usize = 6;

/// Messages executed per target over a sliding minute, counted in six
/// ten-second slots so recording stays O(1) at any rate.
#[derive(Default)]
pub(crate) struct Throughput {
    per_target: Mutex<HashMap<String, [(i64, u64); SLOTS]>>,
}

impl Throughput {
    /// Counts one executed message for `target` at `now_ms`.
    pub(crate) fn record(&self, target: &str, now_ms: i64) {
        let slot = now_ms.div_euclid(SLOT_MS);
        let mut map = self.per_target.lock().unwrap_or_else(|p| p.into_inner());
        let slots = map.entry(target.to_string()).or_insert([(i64::MIN, 0); SLOTS]);
        let cell = &mut slots[slot.rem_euclid(SLOTS as i64) as usize];
        if cell.0 != slot {
            *cell = (slot, 0);
        }
        cell.1 += 1;
    }

    /// Messages executed per target within the minute before `now_ms`.
    pub(crate) fn last_minute(&self, now_ms: i64) -> BTreeMap<String, u64> {
        let newest = now_ms.div_euclid(SLOT_MS);
        let map = self.per_target.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .map(|(t, slots)| {
                let n = slots.iter().filter(|(s, _)| *s > newest - SLOTS as i64 && *s <= newest).map(|(_, n)| n).sum();
                (t.clone(), n)
            })
            .collect()
    }
}

/// Seconds the oldest pending message of `lane` has waited at `now_ms`.
pub(crate) fn oldest_age_secs(lane: &OutboxLane, now_ms: i64) -> f64 {
    (now_ms - lane.oldest_at).max(0) as f64 / 1000.0
}

/// Targets whose oldest message became late since the last check (to warn
/// about) given the lanes now; `warned` keeps the targets still late.
fn newly_late<'a>(
    lanes: &'a [OutboxLane],
    now_ms: i64,
    limit: Duration,
    warned: &mut HashSet<String>,
) -> Vec<&'a OutboxLane> {
    let late: Vec<&OutboxLane> =
        lanes.iter().filter(|l| l.depth > 0 && now_ms - l.oldest_at > limit.as_millis() as i64).collect();
    let caught_up: Vec<String> = warned.iter().filter(|t| !late.iter().any(|l| &l.target == *t)).cloned().collect();
    for t in caught_up {
        tracing::info!(target = %t, "delivery caught up: no message waits longer than the first-response time");
        warned.remove(&t);
    }
    late.into_iter().filter(|l| warned.insert(l.target.clone())).collect()
}

/// Checks the outbox every few seconds until `shutdown`.
pub(crate) async fn watch(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let mut warned = HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let e = engine.clone();
        let lanes = match tokio::task::spawn_blocking(move || e.store().outbox_lanes()).await {
            Ok(Ok(lanes)) => lanes,
            Ok(Err(err)) => {
                tracing::error!("cannot read the outbox to check delivery lag: {err:#}");
                continue;
            }
            Err(err) => {
                tracing::error!("reading the outbox panicked: {err}");
                continue;
            }
        };
        let now = engine.now();
        let limit = engine.generation().config.limits.first_response;
        for lane in newly_late(&lanes, now, limit, &mut warned) {
            let waited = (now - lane.oldest_at) / 1000;
            tracing::warn!(
                target = %lane.target,
                pending = lane.depth,
                oldest = %lane.oldest_id,
                "delivery is not keeping up: the oldest message has waited {waited} s, longer than the first-response time of {} s",
                limit.as_secs()
            );
            let (e, l) = (engine.clone(), lane.clone());
            let res = tokio::task::spawn_blocking(move || {
                e.note_late_notice(&l.oldest_incident, &l.oldest_id, &l.target, waited)
            })
            .await;
            if let Ok(Err(err)) = res {
                tracing::error!("cannot journal a late message: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(target: &str, depth: i64, oldest_at: i64) -> OutboxLane {
        OutboxLane {
            target: target.into(),
            depth,
            oldest_at,
            oldest_id: format!("{target}.1"),
            oldest_incident: "INC-1".into(),
        }
    }

    #[test]
    fn the_last_minute_counts_recent_slots_only() {
        let t = Throughput::default();
        t.record("a", 0);
        t.record("a", 9_999);
        t.record("a", 59_000);
        t.record("b", 30_000);
        assert_eq!(t.last_minute(59_999), BTreeMap::from([("a".into(), 3), ("b".into(), 1)]));
        // A minute later the first slot has left the window and is reused.
        t.record("a", 60_000);
        assert_eq!(t.last_minute(60_000)["a"], 2);
        assert_eq!(t.last_minute(200_000)["a"], 0);
    }

    #[test]
    fn a_late_target_is_warned_about_once_until_it_catches_up() {
        let limit = Duration::from_secs(120);
        let mut warned = HashSet::new();
        let lanes = vec![lane("pager", 3, 0), lane("chat", 1, 100_000)];
        let late = newly_late(&lanes, 121_000, limit, &mut warned);
        assert_eq!(late.iter().map(|l| l.target.as_str()).collect::<Vec<_>>(), vec!["pager"]);
        assert!(newly_late(&lanes, 122_000, limit, &mut warned).is_empty(), "warned once");
        // The pager drains; later it lags again and is warned about again.
        assert!(newly_late(&[lane("chat", 1, 100_000)], 123_000, limit, &mut warned).is_empty());
        assert!(warned.is_empty());
        assert_eq!(newly_late(&[lane("pager", 1, 200_000)], 400_000, limit, &mut warned).len(), 1);
    }
}
