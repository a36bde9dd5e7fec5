//! The background worker: the daemon's tokio loop around the engine's
//! timers and outbox, woken when work may be due.
//!
//! On shutdown the `stop` flag is raised before anything else: from then on
//! the worker claims no timer and no intent; only the side-effect call
//! already running (if any) may finish.

use crate::incident::effects::Executor;
use crate::incident::outbox::run_pending_until;
use crate::incident::Engine;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs until `stop` is raised and `shutdown` flips to true; returns once
/// the pass in progress (if any) has finished.
pub async fn run(engine: Arc<Engine>, executor: Arc<dyn Executor>, stop: Arc<AtomicBool>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let e = engine.clone();
        let x = executor.clone();
        let s = stop.clone();
        let pass = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let stopping = || s.load(Ordering::SeqCst);
            if stopping() {
                return Ok(());
            }
            e.fire_due_timers().map_err(|err| anyhow::anyhow!("{err}"))?;
            while !stopping() && run_pending_until(&e, &*x, &stopping)? > 0 {
                if stopping() {
                    break;
                }
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
