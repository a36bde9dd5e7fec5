//! How often and how late a failing item is tried again; shared by the
//! outbox (intents) and the timers.

/// Transient failures are retried this many times in all, with backoff; the
/// same cap bounds re-sends of an effect whose result could not be journaled.
pub(crate) const MAX_ATTEMPTS: i64 = 5;

/// The wait before retry number `attempts` (1 s, 2 s, 4 s, ... at most 5 min).
pub(crate) fn backoff_ms(attempts: i64) -> i64 {
    1000 * 2i64.pow(attempts.clamp(0, 8) as u32).min(300)
}
