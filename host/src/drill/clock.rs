//! Drill clocks: real time, real time sped up N times, or virtual time that
//! jumps straight to the next thing due.

use crate::incident::clock::{Clock, ManualClock};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a drill's time passes (the playbook's `[drill] clock`, or `--clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ClockMode {
    /// Wall-clock time, as in a live incident.
    Real,
    /// Real time sped up N times from the drill start.
    Speed(u32),
    /// Time moves only when the drill runner advances it to the next due event.
    Virtual,
}

impl ClockMode {
    /// How many drill milliseconds pass per real millisecond (`None` for virtual).
    pub fn factor(self) -> Option<u32> {
        match self {
            ClockMode::Real => Some(1),
            ClockMode::Speed(n) => Some(n),
            ClockMode::Virtual => None,
        }
    }
}

impl From<crate::playbook::spec::DrillClock> for ClockMode {
    fn from(c: crate::playbook::spec::DrillClock) -> Self {
        use crate::playbook::spec::DrillClock as D;
        match c {
            D::Real => ClockMode::Real,
            D::Virtual => ClockMode::Virtual,
            D::Speed(n) => ClockMode::Speed(n),
        }
    }
}

impl std::str::FromStr for ClockMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<crate::playbook::spec::DrillClock>().map(ClockMode::from)
    }
}

impl std::fmt::Display for ClockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockMode::Real => f.write_str("real"),
            ClockMode::Virtual => f.write_str("virtual"),
            ClockMode::Speed(n) => write!(f, "x{n}"),
        }
    }
}

impl From<ClockMode> for String {
    fn from(c: ClockMode) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for ClockMode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Real time scaled by `factor` from `start_ms` (drill time) at `origin` (real
/// time), minus the real time spent paused: a paused drill's deadlines stand still.
#[derive(Debug)]
pub struct ScaledClock {
    origin: Instant,
    start_ms: i64,
    factor: u32,
    pause: Mutex<Pause>,
}

/// Real time the clock stood still: finished pauses, and the one under way.
#[derive(Debug, Default)]
struct Pause {
    total: Duration,
    since: Option<Instant>,
}

impl ScaledClock {
    /// Starts drill time at `start_ms` (Unix ms) now, running `factor` times real time (at least 1).
    pub fn new(start_ms: i64, factor: u32) -> Self {
        ScaledClock { origin: Instant::now(), start_ms, factor: factor.max(1), pause: Mutex::new(Pause::default()) }
    }

    fn paused(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.pause.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops drill time; `false` if it was already stopped.
    pub fn pause(&self) -> bool {
        let mut p = self.paused();
        if p.since.is_some() {
            return false;
        }
        p.since = Some(Instant::now());
        true
    }

    /// Lets drill time run again; returns the real time this pause lasted (`None` if it was not paused).
    pub fn resume(&self) -> Option<Duration> {
        let mut p = self.paused();
        let d = p.since.take()?.elapsed();
        p.total += d;
        Some(d)
    }

    /// Real milliseconds until drill time `at` (0 if it has passed).
    pub fn real_ms_until(&self, at: i64) -> u64 {
        let ahead = at - self.now_ms();
        if ahead <= 0 { 0 } else { (ahead as u64).div_ceil(self.factor as u64) }
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> i64 {
        // Monotonic: a wall-clock step does not bend drill time.
        let now = {
            let p = self.paused();
            p.since.unwrap_or_else(Instant::now).saturating_duration_since(self.origin).saturating_sub(p.total)
        };
        let real = now.as_millis() as i64;
        self.start_ms + real * self.factor as i64
    }
}

/// The clock a drill runs on.
pub enum DrillTime {
    /// Virtual time, advanced by the drill runner to the next due event.
    Virtual(Arc<ManualClock>),
    /// Real or sped-up time (factor 1 for real).
    Scaled(Arc<ScaledClock>),
}

impl DrillTime {
    /// A clock for `mode` whose time starts at `start_ms` (Unix ms).
    pub fn new(mode: ClockMode, start_ms: i64) -> Self {
        match mode.factor() {
            None => DrillTime::Virtual(Arc::new(ManualClock::new(start_ms))),
            Some(f) => DrillTime::Scaled(Arc::new(ScaledClock::new(start_ms, f))),
        }
    }

    /// The clock to hand to the engine, shared with this handle.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self {
            DrillTime::Virtual(c) => c.clone(),
            DrillTime::Scaled(c) => c.clone(),
        }
    }

    /// Current drill time in Unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock().now_ms()
    }

    /// Stops drill time (a no-op on a virtual clock, whose runner simply does not advance it).
    pub fn pause(&self) {
        if let DrillTime::Scaled(c) = self {
            c.pause();
        }
    }

    /// Lets drill time run again; the real time the pause lasted (zero on a virtual clock).
    pub fn resume(&self) -> Duration {
        match self {
            DrillTime::Scaled(c) => c.resume().unwrap_or_default(),
            DrillTime::Virtual(_) => Duration::ZERO,
        }
    }
}

/// 2026-01-05T01:00:00Z, a Monday 09:00 in Shanghai: the base of virtual drill time.
pub const VIRTUAL_EPOCH_MS: i64 = 1_767_574_800_000;

/// The start of a drill's timeline: its scheduled time, else (virtual) a fixed
/// instant derived from the seed (a whole hour within four weeks of the base,
/// so different seeds meet different rota shifts), else (real) now.
pub fn start_time(mode: ClockMode, seed: u64, scheduled_for: Option<i64>, now: i64) -> i64 {
    match (scheduled_for, mode) {
        (Some(s), ClockMode::Virtual) => s,
        (_, ClockMode::Virtual) => VIRTUAL_EPOCH_MS + (seed % (28 * 24)) as i64 * 3_600_000,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for s in ["real", "virtual", "x10", "x60"] {
            assert_eq!(s.parse::<ClockMode>().unwrap().to_string(), s);
        }
        assert!("x1".parse::<ClockMode>().unwrap_err().contains("x2..x3600"));
        assert_eq!(
            chrono::DateTime::from_timestamp_millis(VIRTUAL_EPOCH_MS).unwrap().to_rfc3339(),
            "2026-01-05T01:00:00+00:00"
        );
    }

    #[test]
    fn scaled_clock_runs_n_times_faster() {
        let c = ScaledClock::new(1_000_000, 600);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let gained = c.now_ms() - 1_000_000;
        assert!(gained >= 20 * 600, "gained {gained}");
        assert!(c.real_ms_until(c.now_ms() + 6000) <= 10);
    }

    #[test]
    fn a_paused_clock_stands_still_and_resumes_where_it_stopped() {
        let c = ScaledClock::new(1_000_000, 600);
        assert!(c.pause());
        assert!(!c.pause());
        let at = c.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(c.now_ms(), at, "no drill time passes while paused");
        let paused = c.resume().unwrap();
        assert!(paused >= Duration::from_millis(20));
        assert!(c.resume().is_none());
        let after = c.now_ms();
        assert!(after >= at && after < at + 20 * 600, "resumed from {at}, now {after}");
    }

    #[test]
    fn virtual_start_is_fixed_by_seed_or_schedule() {
        assert_eq!(start_time(ClockMode::Virtual, 7, None, 5), start_time(ClockMode::Virtual, 7, None, 99));
        assert_ne!(start_time(ClockMode::Virtual, 7, None, 5), start_time(ClockMode::Virtual, 8, None, 5));
        assert_eq!(start_time(ClockMode::Virtual, 7, Some(42), 5), 42);
        assert_eq!(start_time(ClockMode::Speed(60), 7, Some(42), 5), 5);
    }
}
