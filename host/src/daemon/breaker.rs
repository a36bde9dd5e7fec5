//! A circuit breaker per delivery target.
//!
//! Closed: calls run. After `threshold` consecutive failures it opens: calls
//! are not attempted until `cooldown` has passed. Then one probe call runs
//! (half-open) while the others keep waiting; success closes it, failure
//! opens it for another cooldown.
//!
//! Written here rather than taken from a crate: the outbox must know the
//! instant the next probe is allowed (so a deferred intent is due exactly
//! then, without counting an attempt), must drive it from the engine's
//! millisecond clock, and records results of calls run on blocking threads
//! after the fact. The general-purpose crates wrap the call itself and do
//! not expose the reopening instant.

use serde::Serialize;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub(crate) enum BreakerState {
    /// Calls run; `failures` consecutive ones failed so far.
    Closed { failures: u32 },
    /// No call runs before `until` (Unix ms).
    Open { until: i64 },
    /// One probe call is running; the others wait for its result.
    HalfOpen,
}

/// Whether a call may run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Run it.
    Call,
    /// Run it as the single probe of a half-open circuit.
    Probe,
    /// Do not run it; try again at `until` (Unix ms).
    Deny { until: i64 },
}

/// How long others wait while a probe is running.
const PROBE_WAIT_MS: i64 = 1000;

/// One target's breaker.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown_ms: i64,
    state: BreakerState,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures for `cooldown_ms`.
    pub(crate) fn new(threshold: u32, cooldown_ms: i64) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown_ms: cooldown_ms.max(0),
            state: BreakerState::Closed { failures: 0 },
        }
    }

    /// Changes the limits (a reload), keeping the state.
    pub(crate) fn configure(&mut self, threshold: u32, cooldown_ms: i64) {
        self.threshold = threshold.max(1);
        self.cooldown_ms = cooldown_ms.max(0);
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    /// Asks to run a call at `now`.
    pub(crate) fn admit(&mut self, now: i64) -> Admit {
        match self.state {
            BreakerState::Closed { .. } => Admit::Call,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                Admit::Probe
            }
            BreakerState::Open { until } => Admit::Deny { until },
            BreakerState::HalfOpen => Admit::Deny { until: now + PROBE_WAIT_MS.min(self.cooldown_ms.max(1)) },
        }
    }

    /// A call answered: the target works. Returns true if this closed a
    /// circuit that was open or probing (the target just recovered).
    pub(crate) fn success(&mut self) -> bool {
        let recovered = !matches!(self.state, BreakerState::Closed { .. });
        self.state = BreakerState::Closed { failures: 0 };
        recovered
    }

    /// A call failed at `now`; returns true if this opened the circuit.
    pub(crate) fn failure(&mut self, now: i64) -> bool {
        match self.state {
            BreakerState::Closed { failures } if failures + 1 >= self.threshold => {
                self.state = BreakerState::Open { until: now + self.cooldown_ms };
                true
            }
            BreakerState::Closed { failures } => {
                self.state = BreakerState::Closed { failures: failures + 1 };
                false
            }
            BreakerState::HalfOpen => {
                self.state = BreakerState::Open { until: now + self.cooldown_ms };
                true
            }
            // A call started before the circuit opened: it is already open.
            BreakerState::Open { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_counts_consecutive_failures_and_success_resets() {
        let mut b = Breaker::new(3, 100);
        assert_eq!(b.admit(0), Admit::Call);
        assert!(!b.failure(0));
        assert!(!b.failure(0));
        assert_eq!(b.state(), BreakerState::Closed { failures: 2 });
        b.success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert!(!b.failure(0));
        assert!(!b.failure(0));
        assert_eq!(b.state(), BreakerState::Closed { failures: 2 });
        assert!(b.failure(10), "the third consecutive failure opens it");
        assert_eq!(b.state(), BreakerState::Open { until: 110 });
    }

    #[test]
    fn open_denies_until_the_cooldown_then_admits_one_probe() {
        let mut b = Breaker::new(1, 100);
        assert!(b.failure(0));
        assert_eq!(b.admit(50), Admit::Deny { until: 100 });
        assert_eq!(b.admit(99), Admit::Deny { until: 100 });
        assert_eq!(b.admit(100), Admit::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Only one probe: the others wait.
        assert!(matches!(b.admit(101), Admit::Deny { until } if until > 101));
    }

    #[test]
    fn probe_success_closes_and_probe_failure_reopens() {
        let mut b = Breaker::new(2, 100);
        b.failure(0);
        b.failure(0);
        assert_eq!(b.admit(100), Admit::Probe);
        b.failure(150);
        assert_eq!(b.state(), BreakerState::Open { until: 250 }, "a failed probe opens it for another cooldown");
        assert_eq!(b.admit(250), Admit::Probe);
        assert!(b.success(), "a successful probe reports the recovery");
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert_eq!(b.admit(251), Admit::Call);
        assert!(!b.success(), "a success on a closed circuit is no recovery");
    }

    #[test]
    fn late_failures_do_not_extend_an_open_circuit() {
        let mut b = Breaker::new(1, 100);
        assert!(b.failure(0));
        assert!(!b.failure(50));
        assert_eq!(b.state(), BreakerState::Open { until: 100 });
        b.configure(4, 10);
        assert_eq!(b.state(), BreakerState::Open { until: 100 }, "a reload keeps the state");
    }
}
