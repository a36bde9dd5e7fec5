//! The background worker: fires due timers and runs pending side effects.
//!
//! Intents are executed outside the engine's writer lock and their results
//! journaled afterwards. An intent whose result was never journaled (the
//! daemon died in between) is executed again with the same invocation id.

use crate::incident::effects::Executor;
use crate::incident::Engine;
use std::sync::Arc;
use std::time::Duration;

/// Transient failures are retried this many times in all, with backoff.
pub const MAX_ATTEMPTS: i64 = 5;

/// Runs until `shutdown` flips to true.
pub async fn run(engine: Arc<Engine>, executor: Arc<dyn Executor>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        let e = engine.clone();
        let x = executor.clone();
        let pass = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            e.fire_due_timers().map_err(|err| anyhow::anyhow!("{err}"))?;
            while run_pending(&e, &*x)? > 0 {
                e.fire_due_timers().map_err(|err| anyhow::anyhow!("{err}"))?;
            }
            Ok(())
        })
        .await;
        match pass {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("worker pass failed: {e:#}"),
            Err(e) => tracing::error!("worker pass panicked: {e}"),
        }
        let delay = next_delay(&engine);
        tokio::select! {
            _ = engine.wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
        }
    }
}

/// How long until the next timer or intent is due (at most one second).
fn next_delay(engine: &Engine) -> Duration {
    let now = engine.now();
    let store = engine.store();
    let next = [store.next_timer_due().ok().flatten(), store.next_intent_due().ok().flatten()].into_iter().flatten().min();
    match next {
        Some(t) if t > now => Duration::from_millis(((t - now) as u64).min(1000)),
        Some(_) => Duration::from_millis(0),
        None => Duration::from_secs(1),
    }
}

/// Executes the intents due now; returns how many ran.
pub fn run_pending(engine: &Engine, executor: &dyn Executor) -> anyhow::Result<usize> {
    let pending = engine.pending_intents(64).map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = pending.len();
    // An intent is recorded before it runs: never run one that is not yet on disk.
    if n > 0 {
        engine.store().sync()?;
    }
    for (id, payload, attempts) in pending {
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
