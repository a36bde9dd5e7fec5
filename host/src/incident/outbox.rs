//! The outbox: runs pending side effects and journals their results, one
//! item at a time, so that one item's failure never stops the others.
//!
//! Intents are executed outside the engine's writer lock and their results
//! journaled afterwards. An intent whose result was never journaled (the
//! process died in between) is executed again with the same invocation id,
//! but an intent is given up on once it has run [`MAX_ATTEMPTS`] times *and*
//! its target's `retry_for` has passed since it was recorded (so an outage
//! shorter than that delays a message but never loses it). An intent that
//! keeps failing after that, whose result cannot be journaled, or whose row
//! cannot be read is dead-lettered (set aside with its reason, journaled on
//! its incident) and can be re-driven with `crisis retry`.

use super::Engine;
use super::ctx::Ctx;
use super::effects::{EffectOutcome, Executor, IntentPayload};
use super::error::EngineError;
use super::events::Event;
use super::state::{Incident, Status};
use super::timers::Timer;
use crate::config::Delivery;
use crate::playbook::types::Purpose;
use crate::store::{DeadItemKind, DueWindow, IntentRow};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub(crate) use super::retry::MAX_ATTEMPTS;
pub(crate) use super::retry::backoff_ms;

/// A due intent taken from the store for execution.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedIntent {
    pub(crate) id: String,
    pub(crate) incident_id: String,
    pub(crate) payload: IntentPayload,
    /// Executions started before this one.
    pub(crate) attempts: i64,
    /// When the intent was recorded (Unix ms): transient failures are retried
    /// until the target's `retry_for` has passed since then.
    pub(crate) created_at: i64,
}

impl ClaimedIntent {
    /// Whether this is a page to a person (commander or escalation level).
    pub(crate) fn is_page(&self) -> bool {
        matches!(self.payload.purpose, Purpose::Page | Purpose::Escalate)
    }
}

/// What to do with a claimed intent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Run it now (the attempt is already counted).
    Execute,
    /// Nothing to run: its earlier result was journaled now, or it was set aside.
    Settled,
}

/// How one execution ended, for the caller's circuit breaker and logs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Delivered (or refused for good by the target) and journaled.
    Recorded,
    /// A transient failure: back in the outbox at this instant.
    Retrying(i64),
    /// Given up on and set aside.
    DeadLettered,
}

/// Outcomes of calls that ran but whose result could not yet be journaled,
/// kept so the next try journals them instead of sending again.
#[derive(Default)]
pub(crate) struct Outbox {
    unrecorded: Mutex<HashMap<String, (EffectOutcome, i64)>>,
}

impl Outbox {
    fn unrecorded(&self) -> std::sync::MutexGuard<'_, HashMap<String, (EffectOutcome, i64)>> {
        self.unrecorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides whether a claimed intent runs: journals a result kept from an
    /// earlier run instead of sending again, dead-letters an intent that used
    /// its attempts, and otherwise counts the attempt.
    pub(crate) fn prepare(&self, engine: &Engine, c: &ClaimedIntent) -> anyhow::Result<Next> {
        let kept = self.unrecorded().get(&c.id).cloned();
        if let Some((outcome, failures)) = kept {
            self.record(engine, c, &outcome, failures)?;
            return Ok(Next::Settled);
        }
        if c.attempts >= MAX_ATTEMPTS && !still_retried(engine, c) {
            let reason = format!("ran {} times without a journaled result", c.attempts);
            engine.dead_letter_intent(c, &reason)?;
            return Ok(Next::Settled);
        }
        engine.store().mark_attempt(&c.id)?;
        if c.attempts > 0 {
            tracing::info!(invocation_id = %c.id, attempt = c.attempts + 1, "retrying side effect with its original invocation id");
        }
        Ok(Next::Execute)
    }

    /// Journals how an execution ended, or schedules its retry.
    pub(crate) fn settle(&self, engine: &Engine, c: &ClaimedIntent, outcome: EffectOutcome) -> anyhow::Result<Settled> {
        if !outcome.ok && outcome.transient {
            if c.attempts + 1 < MAX_ATTEMPTS || still_retried(engine, c) {
                let at = engine.now() + backoff_ms(c.attempts);
                tracing::warn!(invocation_id = %c.id, "transient failure, retrying in {} ms: {}", at - engine.now(), outcome.detail);
                engine.store().release_intent(&c.id, Some(at))?;
                return Ok(Settled::Retrying(at));
            }
            let secs = (engine.now() - c.created_at) / 1000;
            let reason = format!("failed {} times in {secs} s: {}", c.attempts + 1, outcome.detail);
            engine.dead_letter_intent(c, &reason)?;
            return Ok(Settled::DeadLettered);
        }
        self.record(engine, c, &outcome, 0)
    }

    /// [`Outbox::settle`] for executions that ended together: every result to
    /// journal is written in one transaction. If that transaction fails, each
    /// item is settled on its own, so one bad item never holds up the others.
    pub(crate) fn settle_all(
        &self,
        engine: &Engine,
        items: Vec<(ClaimedIntent, EffectOutcome)>,
    ) -> Vec<anyhow::Result<Settled>> {
        let journaled = |o: &EffectOutcome| o.ok || !o.transient;
        let group: Vec<(&str, &EffectOutcome)> =
            items.iter().filter(|(_, o)| journaled(o)).map(|(c, o)| (c.id.as_str(), o)).collect();
        let together = group.len() > 1 && engine.record_effects(&group).is_ok();
        items
            .into_iter()
            .map(|(c, o)| {
                if together && journaled(&o) {
                    self.unrecorded().remove(&c.id);
                    Ok(Settled::Recorded)
                } else {
                    self.settle(engine, &c, o)
                }
            })
            .collect()
    }

    /// Journals `outcome`; if that fails, keeps it and retries later (dead-letters after the cap).
    fn record(
        &self,
        engine: &Engine,
        c: &ClaimedIntent,
        outcome: &EffectOutcome,
        failures: i64,
    ) -> anyhow::Result<Settled> {
        match engine.record_effect(&c.id, outcome) {
            Ok(()) => {
                self.unrecorded().remove(&c.id);
                Ok(Settled::Recorded)
            }
            Err(e) if failures + 1 >= MAX_ATTEMPTS => {
                self.unrecorded().remove(&c.id);
                tracing::error!(invocation_id = %c.id, "cannot journal the result of a side effect: {e}");
                engine.dead_letter_intent(c, &format!("its result could not be journaled: {e}"))?;
                Ok(Settled::DeadLettered)
            }
            Err(e) => {
                tracing::warn!(invocation_id = %c.id, "cannot journal the result of a side effect yet (it is not sent again): {e}");
                self.unrecorded().insert(c.id.clone(), (outcome.clone(), failures + 1));
                let at = engine.now() + backoff_ms(failures);
                engine.store().release_intent(&c.id, Some(at))?;
                Ok(Settled::Retrying(at))
            }
        }
    }

    /// Handles an error from [`Outbox::prepare`] or [`Outbox::settle`]:
    /// the item goes back to the outbox with a backoff, so one bad item never
    /// stops the pass.
    pub(crate) fn item_failed(&self, engine: &Engine, c: &ClaimedIntent, err: &anyhow::Error) {
        tracing::error!(invocation_id = %c.id, "side effect bookkeeping failed: {err:#}");
        let at = engine.now() + backoff_ms(c.attempts);
        if let Err(e) = engine.store().release_intent(&c.id, Some(at)) {
            tracing::error!(invocation_id = %c.id, "cannot give the intent back to the outbox: {e:#}");
        }
    }
}

/// Whether `c` is still inside its target's `retry_for` window (targets
/// without their own limits, such as customer channels, use the default).
fn still_retried(engine: &Engine, c: &ClaimedIntent) -> bool {
    let retry_for = engine
        .generation()
        .config
        .targets
        .get(&c.payload.target)
        .map_or(Delivery::default().retry_for, |t| t.delivery.retry_for);
    engine.now() - c.created_at < retry_for.as_millis() as i64
}

impl Engine {
    /// Journals on `incident` that its message `invocation_id` to `target` has
    /// waited `waited_secs`, longer than the first-response time.
    pub(crate) fn note_late_notice(
        &self,
        incident: &str,
        invocation_id: &str,
        target: &str,
        waited_secs: i64,
    ) -> Result<(), EngineError> {
        self.mutate(incident, true, |ctx| {
            ctx.emit(Event::NoticeLate {
                invocation_id: invocation_id.to_string(),
                target: target.to_string(),
                waited_secs,
            })?;
            Ok(())
        })
        .map(|_| ())
    }

    /// Claims up to `limit` due intents. Rows whose payload cannot be read are
    /// dead-lettered here, so the caller only sees intents it can run.
    pub(crate) fn claim_intents(&self, limit: usize) -> Result<Vec<ClaimedIntent>, EngineError> {
        self.claim_intents_except(limit, &[], DueWindow::Any)
    }

    /// [`Engine::claim_intents`], passing over the intents of `skip_targets`
    /// and those that fell due outside `window`.
    pub(crate) fn claim_intents_except(
        &self,
        limit: usize,
        skip_targets: &[String],
        window: DueWindow,
    ) -> Result<Vec<ClaimedIntent>, EngineError> {
        let rows = self.store().claim_intents_except(self.now(), limit, skip_targets, window)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(node) = &row.reclaimed_from {
                self.note_reclaimed(&row.incident_id, &row.invocation_id, node);
            }
            let payload = serde_json::from_value::<IntentPayload>(row.payload.clone())
                .map_err(|e| anyhow::anyhow!("its stored payload cannot be read: {e}"));
            // A digest's text is written from its members when it goes out.
            let payload = payload.and_then(|mut p| {
                if p.purpose == Purpose::Digest {
                    self.fill_digest(&row.invocation_id, &mut p)
                        .map_err(|e| anyhow::anyhow!("its digest text cannot be built: {e:#}"))?;
                }
                Ok(p)
            });
            match payload {
                Ok(payload) => out.push(ClaimedIntent {
                    id: row.invocation_id,
                    incident_id: row.incident_id,
                    payload,
                    attempts: row.attempts,
                    created_at: row.created_at,
                }),
                Err(e) => self.dead_letter_row(&row, &format!("{e}")),
            }
        }
        Ok(out)
    }

    /// Journals on `incident` that its intent `id` was taken over after `node`'s
    /// lease ran out, so it may run a second time with the same invocation id.
    fn note_reclaimed(&self, incident: &str, id: &str, node: &str) {
        tracing::warn!(invocation_id = %id, node = %node, "running again a side effect whose node's lease ran out");
        let res = self.mutate(incident, true, |ctx| {
            ctx.emit(Event::Reclaimed { item: DeadItemKind::Intent, id: id.to_string(), node: node.to_string() })?;
            Ok(())
        });
        if let Err(e) = res {
            tracing::error!(invocation_id = %id, "cannot journal that the side effect was taken over: {e}");
        }
    }

    /// Dead-letters an unreadable intent row, journaling it on its incident if that exists.
    fn dead_letter_row(&self, row: &IntentRow, reason: &str) {
        tracing::error!(invocation_id = %row.invocation_id, incident = %row.incident_id, "dead-lettering an unreadable intent: {reason}");
        let journaled = !row.incident_id.is_empty()
            && self
                .mutate(&row.incident_id, true, |ctx| {
                    ctx.tx.dead_letter_intent(&row.invocation_id, ctx.now, reason)?;
                    ctx.emit(Event::DeadLettered {
                        item: DeadItemKind::Intent,
                        id: row.invocation_id.clone(),
                        purpose: None,
                        reason: reason.to_string(),
                    })?;
                    Ok(())
                })
                .is_ok();
        if !journaled {
            let now = self.now();
            if let Err(e) = self.store().transaction(&mut |tx| tx.dead_letter_intent(&row.invocation_id, now, reason)) {
                tracing::error!(invocation_id = %row.invocation_id, "cannot set the unreadable intent aside: {e:#}");
            }
        }
    }

    /// Sets an intent aside for good (until `crisis retry`), journals why, and
    /// pages around it when it was a page nobody will receive.
    pub(crate) fn dead_letter_intent(&self, c: &ClaimedIntent, reason: &str) -> Result<(), EngineError> {
        tracing::error!(invocation_id = %c.id, target = %c.payload.target, "dead-lettering side effect: {reason}");
        let res = self.mutate(&c.incident_id, true, |ctx| {
            if ctx.tx.intent(&c.id)?.is_none_or(|i| i.result.is_some()) {
                return Ok(());
            }
            ctx.tx.dead_letter_intent(&c.id, ctx.now, reason)?;
            ctx.emit(Event::DeadLettered {
                item: DeadItemKind::Intent,
                id: c.id.clone(),
                purpose: Some(c.payload.purpose.clone()),
                reason: reason.to_string(),
            })?;
            if c.is_page() {
                ctx.escalate_around(&c.id, &c.payload.target, "it was dead-lettered")?;
            }
            Ok(())
        });
        match res {
            Ok(_) => Ok(()),
            Err(EngineError::NotFound { .. }) => {
                // Not an incident's: a complaint's message, journaled on the complaint.
                let p = &c.payload;
                match self.dead_letter_complaint_intent(&c.incident_id, &c.id, &p.purpose, &p.target, reason) {
                    Err(EngineError::NotFound { .. }) => {
                        let now = self.now();
                        Ok(self.store().transaction(&mut |tx| tx.dead_letter_intent(&c.id, now, reason))?)
                    }
                    other => other,
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A page cannot be delivered now (its target's circuit is open): pages
    /// the next escalation level at once instead of waiting for the ack timer.
    pub(crate) fn page_undeliverable(&self, c: &ClaimedIntent, why: &str) -> Result<(), EngineError> {
        self.mutate(&c.incident_id, true, |ctx| Ok(ctx.escalate_around(&c.id, &c.payload.target, why)?))?;
        Ok(())
    }

    /// Puts a dead-lettered intent back in the outbox (`crisis retry`), journaled.
    pub fn retry_intent(&self, invocation_id: &str, by: &str) -> Result<Incident, EngineError> {
        let Some(row) = self.store().intent(invocation_id)? else {
            let dead: Vec<String> = self
                .store()
                .dead_letters()?
                .into_iter()
                .filter(|d| d.kind == DeadItemKind::Intent)
                .map(|d| d.id)
                .collect();
            let nearby = crate::diag::nearby(invocation_id, dead.iter().map(String::as_str));
            return Err(EngineError::NotFound { what: "intent", id: invocation_id.to_string(), nearby });
        };
        let purpose = serde_json::from_value::<IntentPayload>(row.payload).ok().map(|p| p.purpose);
        self.mutate(&row.incident_id, true, |ctx| {
            if !ctx.tx.redrive_intent(invocation_id, ctx.now)? {
                return Err(EngineError::conflict(format!(
                    "intent {invocation_id} is not dead-lettered; only dead letters can be retried"
                )));
            }
            ctx.emit(Event::Redriven {
                invocation_id: invocation_id.to_string(),
                purpose: purpose.clone(),
                by: by.to_string(),
            })?;
            Ok(())
        })
    }
}

impl Ctx<'_> {
    /// Pages the next escalation level that has not fired yet, now, because
    /// the page `invocation_id` to `target` will not reach anyone; journals why.
    pub(super) fn escalate_around(&mut self, invocation_id: &str, target: &str, why: &str) -> anyhow::Result<()> {
        if self.inc.acked_at.is_some() || self.inc.status != Status::Open {
            return Ok(());
        }
        for level in 0..self.pb.assign.escalate.len() {
            let next = Timer::Escalate { level, round: 1 };
            // A level whose timer is still pending has not been paged yet.
            if self.tx.cancel_timer(&self.inc.id, &next.key())? > 0 {
                self.emit(Event::Note {
                    by: "crisis".into(),
                    note: format!("page {invocation_id} through `{target}` cannot be delivered ({why}); paging escalation level {} now", level + 1),
                })?;
                return self.fire_timer(&next, self.now);
            }
        }
        self.emit(Event::Note { by: "crisis".into(), note: format!("page {invocation_id} through `{target}` cannot be delivered ({why}); no escalation level is left to page") })
    }
}

/// Executes the intents due now, one after the other; returns how many were
/// handled. Used where calls may run in turn (drills on a virtual clock, tests).
pub(crate) fn run_pending(engine: &Engine, executor: &dyn Executor) -> anyhow::Result<usize> {
    run_pending_until(engine, executor, &|| false)
}

/// Like [`run_pending`], but claims no further intent once `stop()` is true,
/// so a shutdown waits for at most the call already running.
pub(crate) fn run_pending_until(
    engine: &Engine,
    executor: &dyn Executor,
    stop: &dyn Fn() -> bool,
) -> anyhow::Result<usize> {
    let outbox = Outbox::default();
    let claimed = engine.claim_intents(64).map_err(|e| anyhow::anyhow!("{e}"))?;
    // An intent is recorded before it runs: never run one that is not yet on disk.
    if !claimed.is_empty() {
        engine.store().sync()?;
    }
    let mut n = 0;
    for c in &claimed {
        if stop() {
            engine.store().release_intent(&c.id, None)?;
            continue;
        }
        // Over its target's send budget: held until its reserved instant, not run now.
        if engine.defer_for_budget(c)? {
            continue;
        }
        n += 1;
        let res = outbox.prepare(engine, c).and_then(|next| match next {
            Next::Settled => Ok(()),
            Next::Execute => {
                let outcome = executor.execute(&c.id, &c.payload);
                failpoint("after-execute", &c.id);
                outbox.settle(engine, c, outcome).map(|_| ())
            }
        });
        if let Err(e) = res {
            outbox.item_failed(engine, c, &e);
        }
    }
    Ok(n)
}

/// Test hook for crash tests: with `CRISIS_FAILPOINT=after-execute`, the
/// worker announces the invocation id on stderr and stops right after running
/// an intent, before journaling its result, so a test can kill -9 it there;
/// `before-record` stops the result recorder instead, while calls go on.
pub(crate) fn failpoint(name: &str, id: &str) {
    if std::env::var("CRISIS_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name} reached for {id}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}
