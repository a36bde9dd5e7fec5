//! The outbox pump: runs pending side effects and journals their results.
//!
//! Intents are executed outside the engine's writer lock and their results
//! journaled afterwards. An intent whose result was never journaled (the
//! process died in between) is executed again with the same invocation id.

use super::effects::Executor;
use super::Engine;
use std::time::Duration;

/// Transient failures are retried this many times in all, with backoff.
pub const MAX_ATTEMPTS: i64 = 5;

/// Executes the intents due now; returns how many ran.
pub fn run_pending(engine: &Engine, executor: &dyn Executor) -> anyhow::Result<usize> {
    run_pending_until(engine, executor, &|| false)
}

/// Like [`run_pending`], but claims no further intent once `stop()` is true,
/// so a shutdown waits for at most the call already running.
pub fn run_pending_until(engine: &Engine, executor: &dyn Executor, stop: &dyn Fn() -> bool) -> anyhow::Result<usize> {
    let pending = engine.pending_intents(64).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut n = 0;
    // An intent is recorded before it runs: never run one that is not yet on disk.
    if !pending.is_empty() {
        engine.store().sync()?;
    }
    for (id, payload, attempts) in pending {
        if stop() {
            break;
        }
        n += 1;
        engine.store().mark_attempt(&id)?;
        if attempts > 0 {
            tracing::info!(invocation_id = %id, attempt = attempts + 1, "retrying side effect with its original invocation id");
        }
        let outcome = executor.execute(&id, &payload);
        failpoint("after-execute", &id);
        if !outcome.ok && outcome.transient && attempts + 1 < MAX_ATTEMPTS {
            let backoff = 1000 * 2i64.pow(attempts as u32);
            tracing::warn!(invocation_id = %id, "transient failure, retrying in {backoff} ms: {}", outcome.detail);
            engine.store().defer_intent(&id, engine.now() + backoff)?;
            continue;
        }
        engine.record_effect(&id, &outcome).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(n)
}

/// Test hook for crash tests: with `CRISIS_FAILPOINT=after-execute`, the
/// worker announces the invocation id on stderr and stops right after running
/// an intent, before journaling its result, so a test can kill -9 it there.
fn failpoint(name: &str, id: &str) {
    if std::env::var("CRISIS_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name} reached for {id}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
