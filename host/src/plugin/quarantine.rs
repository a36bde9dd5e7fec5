//! Quarantine of one plugin version: a circuit breaker over plugin faults.
//!
//! Rules:
//! - only plugin faults (trap, out-of-memory, a timeout while the guest was
//!   computing) count; a slow upstream never does;
//! - `threshold` faults within `window` quarantine the version for
//!   `base`, each further quarantine for twice as long, up to [`MAX_QUARANTINE`];
//! - when a quarantine ends the next calls are let through (half-open): a
//!   fault then quarantines again at once with the doubled duration, a call
//!   that ends without a fault closes the breaker and resets the backoff;
//! - an operator may lift a quarantine at any time; the backoff level stays
//!   until a call succeeds.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// Longest quarantine the backoff reaches (unless `base` itself is longer).
pub(crate) const MAX_QUARANTINE: Duration = Duration::from_secs(3600);

/// Default length of a version's first quarantine.
pub(crate) const DEFAULT_QUARANTINE_BASE: Duration = Duration::from_secs(60);

/// How long the quarantine number `n` (0 for the first) lasts: `base · 2ⁿ`,
/// capped at an hour (or at `base` when that is longer).
pub(crate) fn quarantine_duration(base: Duration, n: u32) -> Duration {
    let cap = MAX_QUARANTINE.max(base);
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerState {
    /// Calls run; faults are counted.
    Closed,
    /// Calls are refused until `until`.
    Open {
        /// Monotonic end of the quarantine.
        until: Instant,
        /// The same moment on the wall clock, for status pages.
        until_wall: SystemTime,
    },
    /// The quarantine ended; calls run, and the first fault re-opens.
    HalfOpen,
}

/// What recording a fault did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FaultRecorded {
    /// Faults within the window, this one included.
    pub(crate) count: u32,
    /// Set when this fault quarantined the version: for how long.
    pub(crate) quarantined_for: Option<Duration>,
}

/// The breaker of one plugin version.
#[derive(Debug)]
pub(crate) struct Breaker {
    faults: VecDeque<Instant>,
    state: BreakerState,
    /// Quarantines since the last successful call; the next one lasts `base · 2^level`.
    level: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker { faults: VecDeque::new(), state: BreakerState::Closed, level: 0 }
    }
}

impl Breaker {
    /// Whether a call may run now. An expired quarantine turns half-open here.
    /// `Err` carries the state that refuses the call.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), BreakerState> {
        match self.state {
            BreakerState::Open { until, .. } if now < until => Err(self.state),
            BreakerState::Open { .. } => {
                self.state = BreakerState::HalfOpen;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The current state, with an expired quarantine shown as half-open.
    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            BreakerState::Open { until, .. } if now >= until => BreakerState::HalfOpen,
            s => s,
        }
    }

    /// Faults within `window` of `now`.
    pub(crate) fn fault_count(&self, now: Instant, window: Duration) -> u32 {
        self.faults.iter().filter(|t| now.saturating_duration_since(**t) <= window).count() as u32
    }

    /// Records a plugin fault.
    pub(crate) fn record_fault(
        &mut self,
        now: Instant,
        threshold: u32,
        window: Duration,
        base: Duration,
    ) -> FaultRecorded {
        self.faults.push_back(now);
        while self.faults.front().is_some_and(|t| now.saturating_duration_since(*t) > window) {
            self.faults.pop_front();
        }
        let count = self.faults.len() as u32;
        let trip = match self.state(now) {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => count >= threshold.max(1),
            // A call admitted before the quarantine began: it is already open.
            BreakerState::Open { .. } => false,
        };
        let quarantined_for = trip.then(|| {
            let d = quarantine_duration(base, self.level);
            self.level = self.level.saturating_add(1);
            self.state = BreakerState::Open { until: now + d, until_wall: SystemTime::now() + d };
            d
        });
        FaultRecorded { count, quarantined_for }
    }

    /// Records a call that ended without a fault: a half-open breaker closes
    /// and the backoff starts again from `base`.
    pub(crate) fn record_success(&mut self, now: Instant) {
        match self.state(now) {
            BreakerState::HalfOpen => {
                self.state = BreakerState::Closed;
                self.faults.clear();
                self.level = 0;
            }
            BreakerState::Closed => self.level = 0,
            BreakerState::Open { .. } => {}
        }
    }

    /// Lifts a quarantine by hand. Returns false when the version was not
    /// quarantined (closed, or its quarantine already ended).
    pub(crate) fn lift(&mut self, now: Instant) -> bool {
        if !matches!(self.state(now), BreakerState::Open { .. }) {
            return false;
        }
        self.state = BreakerState::Closed;
        self.faults.clear();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(300);
    const B: Duration = Duration::from_secs(60);

    #[test]
    fn durations_double_from_base_up_to_an_hour() {
        assert_eq!(quarantine_duration(B, 0), B);
        assert_eq!(quarantine_duration(B, 1), Duration::from_secs(120));
        assert_eq!(quarantine_duration(B, 5), Duration::from_secs(1920));
        assert_eq!(quarantine_duration(B, 6), MAX_QUARANTINE);
        assert_eq!(quarantine_duration(B, 40), MAX_QUARANTINE);
        assert_eq!(quarantine_duration(Duration::from_secs(1), 3), Duration::from_secs(8));
        // A base longer than the cap is used as is.
        assert_eq!(quarantine_duration(Duration::from_secs(7200), 2), Duration::from_secs(7200));
    }

    #[test]
    fn threshold_faults_open_then_expiry_half_opens_and_a_fault_reopens_doubled() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        assert_eq!(b.record_fault(t0, 3, W, B).quarantined_for, None);
        assert_eq!(b.record_fault(t0, 3, W, B).quarantined_for, None);
        let r = b.record_fault(t0, 3, W, B);
        assert_eq!((r.count, r.quarantined_for), (3, Some(B)));
        assert!(b.admit(t0 + B - Duration::from_millis(1)).is_err());
        assert!(matches!(b.state(t0 + B), BreakerState::HalfOpen));
        b.admit(t0 + B).unwrap();
        // One fault in half-open re-quarantines, twice as long.
        let t1 = t0 + B;
        assert_eq!(b.record_fault(t1, 3, W, B).quarantined_for, Some(2 * B));
        assert!(b.admit(t1 + 2 * B - Duration::from_millis(1)).is_err());
        b.admit(t1 + 2 * B).unwrap();
        let t2 = t1 + 2 * B;
        assert_eq!(b.record_fault(t2, 3, W, B).quarantined_for, Some(4 * B));
    }

    #[test]
    fn a_success_after_expiry_closes_and_resets_the_backoff() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..3 {
            b.record_fault(t0, 3, W, B);
        }
        b.admit(t0 + B).unwrap();
        b.record_success(t0 + B);
        assert_eq!(b.state(t0 + B), BreakerState::Closed);
        assert_eq!(b.fault_count(t0 + B, W), 0);
        // A single fault no longer trips; three do, for `base` again.
        let t1 = t0 + B;
        assert_eq!(b.record_fault(t1, 3, W, B).quarantined_for, None);
        b.record_fault(t1, 3, W, B);
        assert_eq!(b.record_fault(t1, 3, W, B).quarantined_for, Some(B));
    }

    #[test]
    fn faults_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        b.record_fault(t0, 3, W, B);
        b.record_fault(t0, 3, W, B);
        let r = b.record_fault(t0 + W + Duration::from_secs(1), 3, W, B);
        assert_eq!((r.count, r.quarantined_for), (1, None));
    }

    #[test]
    fn lifting_needs_an_open_quarantine_and_keeps_the_backoff_level() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        assert!(!b.lift(t0), "nothing to lift");
        for _ in 0..3 {
            b.record_fault(t0, 3, W, B);
        }
        assert!(b.lift(t0));
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.admit(t0).unwrap();
        for _ in 0..2 {
            assert_eq!(b.record_fault(t0, 3, W, B).quarantined_for, None);
        }
        assert_eq!(b.record_fault(t0, 3, W, B).quarantined_for, Some(2 * B), "backoff kept after a manual lift");
        assert!(!b.lift(t0 + 2 * B), "an expired quarantine is not lifted again");
    }
}
