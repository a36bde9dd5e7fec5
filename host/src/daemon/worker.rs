//! The background worker: the daemon's tokio tasks around the engine's
//! timers and outbox.
//!
//! Timers fire on their own task, never behind a side-effect call. Intents
//! are claimed in small batches by a dispatcher and run concurrently: each
//! delivery lane (a target, or a target and channel for customer messages)
//! has its own concurrency limit and circuit breaker, and every call also
//! takes a permit of the global cap, so a failing or hanging target never
//! delays another. Claims keep pace with the calls: a target with enough
//! claimed work waiting is passed over until it has room, so a backlog is
//! not claimed all at once (each claim holds the journal's writer, which
//! intake is waiting for) and a slow target's backlog never stands in front
//! of another target's claims.
//!
//! A backlog inherited from the previous run (intents that fell due before
//! this one started) is already late, and must not make new incidents late
//! too: it is claimed apart from new work (each claim reads only its own
//! range of the claim index), only so many of its deliveries wait at once,
//! it takes at most half of a lane's slots, and its calls run on
//! low-priority threads, so intake and new notices get the CPU first.
//! While intake is busy (triggers keep arriving) it yields the journal too:
//! its deliveries start at a trickle, so its attempts and results do not
//! compete with intake for the writer. Inherited pages still run at normal
//! priority.
//!
//! On shutdown the `stop` flag is raised before anything else: from then on
//! no timer fires and no intent is claimed or started; calls already running
//! may finish, and claimed intents not yet started are given back.

use super::background::Background;
use super::breaker::{Admit, Breaker, BreakerState};
use super::recorder::Recorder;
use crate::config::{Config, Delivery};
use crate::incident::Engine;
use crate::incident::effects::{EffectKind, EffectOutcome, Executor};
use crate::incident::outbox::{ClaimedIntent, Next, Outbox, Settled, failpoint};
use crate::store::DueWindow;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

/// Intents claimed per dispatcher pass: small, because a claim holds the
/// journal's writer while intake may be waiting for it.
const BATCH: usize = 128;
/// How many claimed deliveries may wait per target (running or waiting for a
/// slot) before claims pass over it: this many at least, or this many per
/// slot of its lane.
const AHEAD_MIN: usize = 128;
const AHEAD_PER_SLOT: usize = 4;
/// How many claimed deliveries of the inherited backlog may wait at once,
/// over every target.
const INHERITED_AHEAD: usize = AHEAD_MIN;
/// Intake counts as busy until this long after its latest trigger.
const INTAKE_QUIET_MS: i64 = 250;
/// While intake is busy, the inherited backlog's deliveries start at most
/// this many a second: an intake that never rests slows the backlog down
/// but never stops it.
const TRICKLE_PER_SECOND: u32 = 16;
/// The shortest pause between passes that made no progress: the loops never spin.
const MIN_IDLE: Duration = Duration::from_millis(20);
/// The longest pause: new work also wakes the loops.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// One delivery lane: its own concurrency and breaker.
struct Lane {
    target: String,
    slots: Arc<Semaphore>,
    /// Taken by inherited deliveries before a slot: half the slots at most.
    inherited_slots: Arc<Semaphore>,
    concurrency: usize,
    breaker: Mutex<Breaker>,
}

/// What `crisis status` and `/metrics` show of one lane.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LaneStatus {
    /// The target, or `target/channel` for customer messages.
    pub(crate) lane: String,
    /// The notification target.
    pub(crate) target: String,
    #[serde(flatten)]
    pub(crate) breaker: BreakerState,
}

/// The outbox's live state, shared by the dispatcher, the API and metrics.
pub(crate) struct Dispatch {
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    global: Arc<Semaphore>,
    outbox: Arc<Outbox>,
    /// Pages already escalated around while their circuit was open.
    rerouted: Mutex<HashSet<String>>,
    /// Messages executed per target over the last minute.
    pub(crate) throughput: super::lag::Throughput,
    /// Claimed deliveries per target that have not finished their call yet;
    /// the inherited backlog's are counted apart, in `inherited`.
    waiting: Mutex<HashMap<String, usize>>,
    /// Claimed deliveries of the inherited backlog that have not finished their call yet.
    inherited: AtomicUsize,
    /// Paces the inherited backlog's deliveries while intake is busy; one
    /// waits on it at a time (`trickle_turn`), the rest queue without waking.
    trickle: governor::DefaultDirectRateLimiter,
    trickle_turn: tokio::sync::Mutex<()>,
    /// Raised when a delivery finishes its call, so a dispatcher passing over
    /// full targets claims again as soon as one has room.
    room: Notify,
}

/// A claimed delivery's place in its target's count of waiting work; given
/// up when its call ends, or when it ends without one.
struct Queued {
    dispatch: Arc<Dispatch>,
    target: Option<String>,
    inherited: bool,
}

impl Queued {
    fn join(dispatch: &Arc<Dispatch>, target: &str, inherited: bool) -> Queued {
        if inherited {
            dispatch.inherited.fetch_add(1, Ordering::SeqCst);
        } else {
            *dispatch.waiting.lock().unwrap_or_else(|p| p.into_inner()).entry(target.to_string()).or_default() += 1;
        }
        Queued { dispatch: dispatch.clone(), target: Some(target.to_string()), inherited }
    }

    fn leave(&mut self) {
        let Some(target) = self.target.take() else { return };
        if self.inherited {
            self.dispatch.inherited.fetch_sub(1, Ordering::SeqCst);
        } else {
            let mut waiting = self.dispatch.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = waiting.get_mut(&target) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    waiting.remove(&target);
                }
            }
        }
        self.dispatch.room.notify_one();
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Dispatch {
    /// A dispatcher with `global` calls at most running at once.
    pub(crate) fn new(global: usize) -> Self {
        Dispatch {
            lanes: Mutex::default(),
            global: Arc::new(Semaphore::new(global.max(1))),
            outbox: Arc::new(Outbox::default()),
            rerouted: Mutex::default(),
            throughput: super::lag::Throughput::default(),
            waiting: Mutex::default(),
            inherited: AtomicUsize::new(0),
            trickle: governor::RateLimiter::direct(
                governor::Quota::per_second(NonZeroU32::new(TRICKLE_PER_SECOND).unwrap_or(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::MIN),
            ),
            trickle_turn: tokio::sync::Mutex::new(()),
            room: Notify::new(),
        }
    }

    /// Targets with at least their share of claimed work still waiting.
    fn full_targets(&self, config: &Config) -> Vec<String> {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting
            .iter()
            .filter(|(target, n)| {
                let slots = config.targets.get(target.as_str()).map_or(1, |t| t.delivery.concurrency);
                **n >= AHEAD_MIN.max(AHEAD_PER_SLOT * slots)
            })
            .map(|(target, _)| target.clone())
            .collect()
    }

    /// Every lane that has been used, with its breaker.
    pub(crate) fn lanes(&self) -> Vec<LaneStatus> {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<LaneStatus> = lanes
            .iter()
            .map(|(k, l)| LaneStatus {
                lane: k.clone(),
                target: l.target.clone(),
                breaker: l.breaker.lock().unwrap_or_else(|p| p.into_inner()).state(),
            })
            .collect();
        out.sort_by(|a, b| a.lane.cmp(&b.lane));
        out
    }

    /// Open breakers per target (a target counts as open if any of its lanes is).
    pub(crate) fn open_by_target(&self) -> BTreeMap<String, bool> {
        let mut out = BTreeMap::new();
        for l in self.lanes() {
            let open = !matches!(l.breaker, BreakerState::Closed { .. });
            *out.entry(l.target).or_insert(false) |= open;
        }
        out
    }

    /// The lane of an intent, created (or re-limited after a reload) from the target's settings.
    fn lane(&self, c: &ClaimedIntent, config: &Config) -> Arc<Lane> {
        let p = &c.payload;
        let key = match (p.kind, &p.customer) {
            (EffectKind::Appease, Some(cust)) => format!("{}/{}", p.target, cust.channel),
            _ => p.target.clone(),
        };
        let d = config.targets.get(&p.target).map(|t| t.delivery).unwrap_or_default();
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let lane = lanes.entry(key).or_insert_with(|| Arc::new(new_lane(&p.target, &d, None)));
        if lane.concurrency != d.concurrency {
            let breaker = lane.breaker.lock().unwrap_or_else(|p| p.into_inner()).clone();
            *lane = Arc::new(new_lane(&p.target, &d, Some(breaker)));
        } else {
            lane.breaker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .configure(d.breaker_failures, d.breaker_cooldown.as_millis() as i64);
        }
        lane.clone()
    }
}

fn new_lane(target: &str, d: &Delivery, breaker: Option<Breaker>) -> Lane {
    let mut breaker =
        breaker.unwrap_or_else(|| Breaker::new(d.breaker_failures, d.breaker_cooldown.as_millis() as i64));
    breaker.configure(d.breaker_failures, d.breaker_cooldown.as_millis() as i64);
    Lane {
        target: target.to_string(),
        slots: Arc::new(Semaphore::new(d.concurrency.max(1))),
        inherited_slots: Arc::new(Semaphore::new((d.concurrency / 2).max(1))),
        concurrency: d.concurrency,
        breaker: Mutex::new(breaker),
    }
}

/// Gives the previous run's claims back to the outbox and returns the
/// instant before which what is due is that run's backlog. Called before the
/// API serves: it rewrites every intent the previous run held (tens of
/// thousands after a long outage of a target), which intake would wait for.
pub(crate) async fn release_previous_run(engine: &Arc<Engine>) -> i64 {
    // This node's claims belong to its previous run, which is gone (one daemon
    // per state dir, so per node id); other nodes' claims are left alone.
    let e = engine.clone();
    let now = engine.now();
    match tokio::task::spawn_blocking(move || e.store().release_claims(now)).await {
        Ok(Ok(n)) if n > 0 => {
            tracing::info!("{n} side effects this node claimed in its previous run are back in the outbox")
        }
        Ok(Err(e)) => tracing::error!("cannot release the previous run's claims: {e:#}"),
        _ => {}
    }
    // What the release held back is due `now` at the latest, so due before the next instant.
    now + 1
}

/// Runs the timer task and the dispatcher until `stop` is raised and
/// `shutdown` flips to true; returns once the calls already running finished.
/// `started` is what [`release_previous_run`] returned.
pub(crate) async fn run(
    engine: Arc<Engine>,
    executor: Arc<dyn Executor>,
    dispatch: Arc<Dispatch>,
    started: i64,
    stop: Arc<AtomicBool>,
    shutdown: watch::Receiver<bool>,
) {
    let timers_wake = Arc::new(Notify::new());
    let intents_wake = Arc::new(Notify::new());
    let fan_out = {
        let (wake, t, i) = (engine.wake.clone(), timers_wake.clone(), intents_wake.clone());
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                t.notify_one();
                i.notify_one();
            }
        })
    };
    let timers = tokio::spawn(timer_loop(engine.clone(), stop.clone(), timers_wake, shutdown.clone()));
    let recorder = Arc::new(super::recorder::Recorder::start(engine.clone(), dispatch.outbox.clone()));
    let background = match Background::start(dispatch.global.available_permits()) {
        Ok(pool) => Some(Arc::new(pool)),
        Err(e) => {
            tracing::error!("cannot start the backlog's low-priority threads; it runs beside new work: {e}");
            None
        }
    };
    let inherited = Inherited { started, background };
    dispatcher(engine, executor, dispatch, recorder, inherited, stop, intents_wake, shutdown).await;
    let _ = timers.await;
    fan_out.abort();
}

/// Waits for `delay`, a wake-up or shutdown; false on shutdown.
async fn idle(delay: Duration, wake: &Notify, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = wake.notified() => true,
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.changed() => !*shutdown.borrow(),
    }
}

/// How long until `next` (Unix ms), between the idle bounds.
fn until(engine: &Engine, next: Option<i64>) -> Duration {
    match next {
        Some(t) => Duration::from_millis((t - engine.now()).max(0) as u64).clamp(MIN_IDLE, MAX_IDLE),
        None => MAX_IDLE,
    }
}

/// Fires due timers, on its own so a hanging send never delays an escalation.
async fn timer_loop(
    engine: Arc<Engine>,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let e = engine.clone();
        let next = tokio::task::spawn_blocking(move || {
            if let Err(err) = e.fire_due_timers() {
                tracing::error!("firing timers failed: {err}");
            }
            e.store().next_timer_due().ok().flatten()
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!("the timer pass panicked: {e}");
            None
        });
        if !idle(until(&engine, next), &wake, &mut shutdown).await {
            return;
        }
    }
}

/// How this run tells and runs the backlog it inherited.
#[derive(Clone)]
struct Inherited {
    /// Intents due before this instant (Unix ms) are the previous run's.
    started: i64,
    /// Where their calls run; `None` when the threads could not be started.
    background: Option<Arc<Background>>,
}

/// Claims due intents and hands each to its lane.
#[allow(clippy::too_many_arguments)]
async fn dispatcher(
    engine: Arc<Engine>,
    executor: Arc<dyn Executor>,
    dispatch: Arc<Dispatch>,
    recorder: Arc<Recorder>,
    inherited: Inherited,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let e = engine.clone();
        // Targets with enough work already waiting here are passed over: the
        // outbox is claimed as fast as it runs, not all at once (a claim holds
        // the journal's writer, which intake waits for), and a target that
        // cannot keep up never holds back another's claims.
        let config = engine.generation().config.clone();
        let skip = dispatch.full_targets(&config);
        // New work first; the inherited backlog up to its own allowance, on
        // which its targets' new work never waits, refilled once half of it
        // ran: one claim (and one flush) per half allowance, not per call.
        let waiting_old = dispatch.inherited.load(Ordering::SeqCst);
        let room = match waiting_old <= INHERITED_AHEAD / 2 {
            true => (INHERITED_AHEAD - waiting_old).min(BATCH),
            false => 0,
        };
        let skipping = !skip.is_empty() || room == 0;
        let started = inherited.started;
        let claimed = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(ClaimedIntent, bool)>> {
            let err = |err| anyhow::anyhow!("{err}");
            let new = e.claim_intents_except(BATCH, &skip, DueWindow::Since(started)).map_err(err)?;
            let old = match room {
                0 => Vec::new(),
                n => e.claim_intents_except(n, &[], DueWindow::Before(started)).map_err(err)?,
            };
            // An intent is recorded before it runs: never run one that is not yet on disk.
            if !new.is_empty() || !old.is_empty() {
                e.store().sync()?;
            }
            Ok(new.into_iter().map(|c| (c, false)).chain(old.into_iter().map(|c| (c, true))).collect())
        })
        .await;
        let claimed = match claimed {
            Ok(Ok(c)) => c,
            Ok(Err(err)) => {
                tracing::error!("claiming side effects failed: {err:#}");
                Vec::new()
            }
            Err(err) => {
                tracing::error!("claiming side effects panicked: {err}");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            // With targets passed over, what is due may be theirs: wait for
            // room in one of them (or new work) instead of polling for it.
            // Otherwise a finished call frees nothing to claim, so only new
            // work or the next due intent wakes the dispatcher.
            let woken = if skipping {
                tokio::select! {
                    w = idle(MAX_IDLE, &wake, &mut shutdown) => w,
                    _ = dispatch.room.notified() => true,
                }
            } else {
                let e = engine.clone();
                let next = tokio::task::spawn_blocking(move || e.store().next_intent_due().ok().flatten())
                    .await
                    .ok()
                    .flatten();
                idle(until(&engine, next), &wake, &mut shutdown).await
            };
            if !woken {
                break;
            }
            continue;
        }
        for (c, old) in claimed {
            let lane = dispatch.lane(&c, &config);
            let queued = Queued::join(&dispatch, &c.payload.target, old);
            // An inherited page is as urgent as a new one; the rest yield.
            let pool = if old && !c.is_page() { inherited.background.clone() } else { None };
            let (x, r) = (executor.clone(), recorder.clone());
            running.spawn(deliver(engine.clone(), x, r, lane, c, queued, pool, stop.clone()));
        }
    }
    // Calls already running finish (the daemon bounds this by its grace period);
    // the ones still waiting for a slot see `stop` and end, leaving their claims for the next start.
    while running.join_next().await.is_some() {}
}

/// Gives a claimed intent back to the outbox, due at `at` if given.
async fn give_back(engine: &Arc<Engine>, id: &str, at: Option<i64>) {
    let (e, id) = (engine.clone(), id.to_string());
    let res = tokio::task::spawn_blocking(move || e.store().release_intent(&id, at)).await;
    if let Ok(Err(err)) = res {
        tracing::error!("cannot give an intent back to the outbox: {err:#}");
    }
}

/// Runs one intent in its lane: waits for a lane slot, asks the breaker,
/// takes a global slot, executes it, tells the breaker, frees both slots and
/// then settles it. With `background`, the call itself runs there, and only
/// once one of the lane's slots for inherited work is free.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    engine: Arc<Engine>,
    executor: Arc<dyn Executor>,
    recorder: Arc<Recorder>,
    lane: Arc<Lane>,
    c: ClaimedIntent,
    mut queued: Queued,
    background: Option<Arc<Background>>,
    stop: Arc<AtomicBool>,
) {
    let dispatch = queued.dispatch.clone();
    let inherited_slot = match background {
        Some(_) => match lane.inherited_slots.clone().acquire_owned().await {
            Ok(s) => Some(s),
            Err(_) => return,
        },
        None => None,
    };
    if inherited_slot.is_some() {
        // While triggers keep arriving, wait for the trickle's turn, or for intake to rest.
        let _turn = dispatch.trickle_turn.lock().await;
        while engine.now().saturating_sub(engine.last_intake()) < INTAKE_QUIET_MS {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            tokio::select! {
                _ = dispatch.trickle.until_ready() => break,
                _ = tokio::time::sleep(Duration::from_millis(INTAKE_QUIET_MS as u64)) => {}
            }
        }
    }
    let Ok(slot) = lane.slots.clone().acquire_owned().await else { return };
    // Stopping: thousands may be waiting here, so each ends without a write of its
    // own; their claims are released together when the daemon next starts, or their
    // leases run out for the other nodes.
    if stop.load(Ordering::SeqCst) {
        return;
    }
    // Over its target's send budget: held until its reserved instant. Asked only when
    // the breaker may admit a call, so a call it holds back spends no budget.
    let state = lane.breaker.lock().unwrap_or_else(|p| p.into_inner()).state();
    let waits = matches!(state, BreakerState::HalfOpen)
        || matches!(state, BreakerState::Open { until } if until > engine.now());
    let (e, item) = (engine.clone(), c.clone());
    match tokio::task::spawn_blocking(move || if waits { Ok(false) } else { e.defer_for_budget(&item) }).await {
        Ok(Ok(true)) => return,
        Ok(Ok(false)) => {}
        Ok(Err(err)) => {
            tracing::error!(invocation_id = %c.id, "cannot check the send budget; retrying in a second: {err:#}");
            return give_back(&engine, &c.id, Some(engine.now() + 1000)).await;
        }
        Err(err) => tracing::error!(invocation_id = %c.id, "checking the send budget panicked: {err}"),
    }
    let admit = lane.breaker.lock().unwrap_or_else(|p| p.into_inner()).admit(engine.now());
    if let Admit::Deny { until } = admit {
        // Not attempted and not counted: due again when the probe may run.
        let (e, id) = (engine.clone(), c.id.clone());
        if let Ok(Err(err)) = tokio::task::spawn_blocking(move || e.store().hold_intent(&id, until)).await {
            tracing::error!("cannot hold an intent back for its open circuit: {err:#}");
        }
        let first = c.is_page() && dispatch.rerouted.lock().unwrap_or_else(|p| p.into_inner()).insert(c.id.clone());
        if first {
            let e = engine.clone();
            let why = format!("the circuit of target `{}` is open", c.payload.target);
            let c = c.clone();
            let res = tokio::task::spawn_blocking(move || e.page_undeliverable(&c, &why)).await;
            if let Ok(Err(err)) = res {
                tracing::error!("cannot escalate around an undeliverable page: {err}");
            }
        }
        return;
    }
    let Ok(global) = dispatch.global.clone().acquire_owned().await else { return };
    if stop.load(Ordering::SeqCst) {
        return;
    }
    let (e, x, d, item) = (engine.clone(), executor.clone(), dispatch.clone(), c.clone());
    let ran = match background {
        None => {
            tokio::task::spawn_blocking(move || -> anyhow::Result<Option<EffectOutcome>> {
                match d.outbox.prepare(&e, &item)? {
                    Next::Settled => Ok(None),
                    Next::Execute => Ok(Some(execute(&*x, &item))),
                }
            })
            .await
        }
        // The attempt is journaled on an ordinary thread: a low-priority one
        // must never hold the journal's writer.
        Some(pool) => match tokio::task::spawn_blocking(move || d.outbox.prepare(&e, &item)).await {
            Ok(Ok(Next::Execute)) => {
                let item = c.clone();
                pool.run(move || -> anyhow::Result<Option<EffectOutcome>> { Ok(Some(execute(&*x, &item))) }).await
            }
            Ok(Ok(Next::Settled)) => Ok(Ok(None)),
            Ok(Err(err)) => Ok(Err(err)),
            Err(err) => Err(err),
        },
    };
    // The breaker hears how the call went before the lane's slot is free, so
    // a failing target is not called again on a stale count.
    let now = engine.now();
    let recovered = match &ran {
        Ok(Ok(Some(outcome))) => {
            let (ok, transient) = (outcome.ok, outcome.transient);
            let mut b = lane.breaker.lock().unwrap_or_else(|p| p.into_inner());
            // A refusal (not transient) still shows the target answering.
            let recovered = (ok || !transient) && b.success();
            if !ok && transient && b.failure(now) {
                tracing::warn!(target = %c.payload.target, "circuit opened after repeated failures; calls wait for the cooldown");
            }
            recovered
        }
        _ => false,
    };
    // The slots bound calls to the target, not the journaling after one: held
    // through it, a lane's throughput would be its concurrency over the
    // flush latency, which in an alert storm is intake's, not the target's.
    drop(global);
    drop(slot);
    drop(inherited_slot);
    queued.leave();
    let res = match ran {
        Ok(Ok(Some(outcome))) => Ok(recorder.settle(c.clone(), outcome).await.map(Some)),
        Ok(Ok(None)) => Ok(Ok(None)),
        Ok(Err(err)) => Ok(Err(err)),
        Err(err) => Err(err),
    };
    match res {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(settled))) => {
            if recovered {
                // Its backlog need not wait out each item's own backoff.
                let (e, target) = (engine.clone(), c.payload.target.clone());
                let res = tokio::task::spawn_blocking(move || e.store().expedite_target(&target, now)).await;
                match res {
                    Ok(Ok(n)) => {
                        tracing::info!(target = %c.payload.target, waiting = n, "circuit closed: the target answers again");
                        engine.wake.notify_one();
                    }
                    Ok(Err(err)) => tracing::error!("cannot make a recovered target's backlog due: {err:#}"),
                    Err(err) => tracing::error!("making a recovered target's backlog due panicked: {err}"),
                }
            }
            if settled == Settled::Recorded {
                dispatch.throughput.record(&c.payload.target, now);
            }
            if settled == Settled::DeadLettered {
                tracing::warn!(invocation_id = %c.id, "side effect dead-lettered; re-drive it with: crisis retry {}", c.id);
            }
        }
        Ok(Err(err)) => {
            let (e, d, item) = (engine.clone(), dispatch.clone(), c.clone());
            let _ = tokio::task::spawn_blocking(move || d.outbox.item_failed(&e, &item, &err)).await;
        }
        Err(err) => {
            tracing::error!(invocation_id = %c.id, "side-effect call panicked: {err}");
            let (e, d, item) = (engine.clone(), dispatch.clone(), c.clone());
            let err = anyhow::anyhow!("the call panicked: {err}");
            let _ = tokio::task::spawn_blocking(move || d.outbox.item_failed(&e, &item, &err)).await;
        }
    }
}

/// Runs a prepared intent's call.
fn execute(x: &dyn Executor, item: &ClaimedIntent) -> EffectOutcome {
    let outcome = x.execute(&item.id, &item.payload);
    failpoint("after-execute", &item.id);
    outcome
}
