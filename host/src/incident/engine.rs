//! The engine: turns commands, timers and effect results into journaled
//! events, and advances incidents through the plan.
//!
//! Every mutation runs in one store transaction under one writer lock:
//! the incident's state is loaded, the command's events are appended (each
//! applied to the state as it is journaled), the plan is advanced as far as
//! it goes on its own, and the projection is saved. Nothing takes effect
//! unless its event is durable.

use super::clock::Clock;
use super::ctx::Ctx;
use super::error::{EngineError, Hint};
use super::events::Event;
use super::generation::Generation;
use super::state::{Incident, Status};
use crate::playbook::spec::Playbook;
use crate::playbook::types::Mode;
use crate::store::{Store, Tx};
use arc_swap::ArcSwap;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Maximum bytes in a dedup key.
pub const MAX_DEDUP_KEY: usize = 255;

/// Who did something, as recorded in the journal.
pub type Actor = String;

/// Called after commit with each event an operation journaled and the incident's
/// resulting state; metrics hang off this.
pub type Observer = Arc<dyn Fn(&Event, &Incident) + Send + Sync>;

/// The incident engine. Cheap to share behind an `Arc`.
pub struct Engine {
    observer: Mutex<Option<Observer>>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    generation: ArcSwap<Generation>,
    pinned: Mutex<HashMap<String, Arc<Playbook>>>,
    /// Playbook versions known to be in the store, so a trigger does not rewrite them.
    pub(super) stored_versions: Mutex<HashSet<String>>,
    writer: Mutex<()>,
    pub(super) mode: Mode,
    /// Incident ids are `{id_prefix}-{n}`.
    id_prefix: String,
    /// Woken whenever new timers or intents may be due.
    pub wake: Arc<tokio::sync::Notify>,
    /// Send budgets of the targets and customer channels, in this engine's time.
    pub(super) budgets: super::budget::Budgets,
    /// Told about every committed complaint change (complaint metrics).
    pub(super) complaint_observer: Mutex<Option<super::complaint::ComplaintObserver>>,
    /// Triggers waiting for the writer lock, journaled together by whoever holds it next.
    pub(super) triggers: super::trigger_types::TriggerQueue,
    /// When the latest trigger or intake batch arrived (Unix ms, this engine's
    /// clock), so background work can tell whether intake is busy.
    last_intake: AtomicI64,
}

/// What the store is told when a write closure refused: the typed error
/// itself travels back to the caller beside the transaction.
#[derive(Debug, thiserror::Error)]
#[error("the operation was refused; nothing was written")]
struct Refused;

impl Engine {
    /// An engine for live incidents.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, generation: Generation) -> Self {
        Self::with_mode(store, clock, generation, Mode::Live)
    }

    /// An engine whose incidents all run in `mode`; the mode is fixed here by
    /// the host and journaled in each incident's first event.
    pub fn with_mode(store: Arc<dyn Store>, clock: Arc<dyn Clock>, generation: Generation, mode: Mode) -> Self {
        Engine {
            observer: Mutex::new(None),
            store,
            clock,
            generation: ArcSwap::from_pointee(generation),
            pinned: Mutex::new(HashMap::new()),
            stored_versions: Mutex::new(HashSet::new()),
            writer: Mutex::new(()),
            mode,
            id_prefix: match mode {
                Mode::Drill => "DRL".into(),
                Mode::Live => "INC".into(),
            },
            wake: Arc::new(tokio::sync::Notify::new()),
            budgets: Default::default(),
            complaint_observer: Mutex::new(None),
            triggers: Default::default(),
            last_intake: AtomicI64::new(i64::MIN),
        }
    }

    /// When the latest trigger or intake batch arrived (Unix ms), or
    /// `i64::MIN` before the first.
    pub fn last_intake(&self) -> i64 {
        self.last_intake.load(Ordering::Relaxed)
    }

    /// Notes that intake work arrived now.
    pub(super) fn note_intake(&self) {
        self.last_intake.fetch_max(self.now(), Ordering::Relaxed);
    }

    /// Numbers incidents `{prefix}-{n}` instead of `INC-n`/`DRL-n`; drills run
    /// by the daemon use their run id so their incidents are unique across runs.
    pub fn with_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = prefix.into();
        self
    }

    /// The prefix of this engine's incident ids.
    pub fn id_prefix(&self) -> &str {
        &self.id_prefix
    }

    /// Installs the observer called after each committed operation.
    pub fn set_observer(&self, f: Observer) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    pub(super) fn observe(&self, events: &[Event], inc: &Incident) {
        let obs = self.observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(obs) = obs {
            for e in events {
                obs(e, inc);
            }
        }
    }

    /// The journal, for reads that need no engine logic.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The engine's clock (virtual in drills), in Unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The generation new incidents start from.
    pub fn generation(&self) -> Arc<Generation> {
        self.generation.load_full()
    }

    /// Swaps in a new generation atomically; running incidents keep their pinned playbooks.
    pub fn swap_generation(&self, g: Generation) {
        self.generation.store(Arc::new(g));
    }

    /// The playbook version an incident pinned when it opened.
    pub fn pinned_playbook(&self, hash: &str) -> Result<Arc<Playbook>, EngineError> {
        if let Some(p) = self.cached_pin(hash) {
            return Ok(p);
        }
        let spec = self.store.playbook_version(hash)?;
        self.remember_pin(hash, spec)
    }

    /// Same, inside a transaction (the store's connection is already held).
    pub(super) fn pinned_in(&self, tx: &mut dyn Tx, hash: &str) -> Result<Arc<Playbook>, EngineError> {
        if let Some(p) = self.cached_pin(hash) {
            return Ok(p);
        }
        let spec = tx.playbook_version(hash)?;
        self.remember_pin(hash, spec)
    }

    /// Keeps a playbook version the engine is about to pin (a trigger's own playbook).
    pub(super) fn pin(&self, pb: &Arc<Playbook>) {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner()).insert(pb.hash.clone(), pb.clone());
    }

    fn cached_pin(&self, hash: &str) -> Option<Arc<Playbook>> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner()).get(hash).cloned()
    }

    fn remember_pin(&self, hash: &str, spec: Option<serde_json::Value>) -> Result<Arc<Playbook>, EngineError> {
        let spec = spec.ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!("pinned playbook version {hash} is missing from the journal"))
        })?;
        let pb: Playbook = serde_json::from_value(spec).map_err(|e| EngineError::Internal(e.into()))?;
        let pb = Arc::new(pb);
        self.pin(&pb);
        Ok(pb)
    }

    /// Loads an incident's current state.
    pub fn incident(&self, id: &str) -> Result<Incident, EngineError> {
        match self.store.incident(id)? {
            Some(row) => serde_json::from_value(row.state).map_err(|e| EngineError::Internal(e.into())),
            None => {
                let ids = self.store.incident_ids().unwrap_or_default();
                Err(not_found(id, &ids))
            }
        }
    }

    /// Runs `f` in one store transaction under the writer lock and returns
    /// what it returned. An `Err` from `f` rolls everything back and reaches
    /// the caller unchanged; once `f` succeeded, returns after the commit is
    /// durable and wakes the worker. The lock is released before the flush,
    /// so concurrent operations share it.
    pub(super) fn write<T, E: From<anyhow::Error>>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut done: Option<T> = None;
        let mut refused: Option<E> = None;
        let res = self.store.transaction_unsynced(&mut |tx| match f(tx) {
            Ok(v) => {
                done = Some(v);
                Ok(())
            }
            Err(e) => {
                refused = Some(e);
                Err(Refused.into())
            }
        });
        drop(writer);
        if let Some(e) = refused {
            return Err(e);
        }
        res?;
        self.store.sync()?;
        self.wake.notify_one();
        Ok(done.expect("a committed transaction produced its value"))
    }

    /// Runs `f` under the writer lock, for callers that open their own transactions.
    pub(super) fn with_writer<T>(&self, f: impl FnOnce() -> T) -> T {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        f()
    }

    /// Runs `f` on an incident inside one transaction, then advances and saves
    /// it; calls the observer with what was journaled.
    pub(super) fn mutate(
        &self,
        id: &str,
        allow_closed: bool,
        mut f: impl FnMut(&mut Ctx<'_>) -> Result<(), EngineError>,
    ) -> Result<Incident, EngineError> {
        let generation_ = self.generation();
        let (inc, emitted) = self.write(|tx| self.mutate_in(tx, &generation_, id, allow_closed, &mut f))?;
        self.observe(&emitted, &inc);
        Ok(inc)
    }

    /// The body of [`Engine::mutate`], inside the caller's transaction; the
    /// caller tells the observer about the events once it committed.
    pub(super) fn mutate_in(
        &self,
        tx: &mut dyn Tx,
        generation_: &Generation,
        id: &str,
        allow_closed: bool,
        f: &mut dyn FnMut(&mut Ctx<'_>) -> Result<(), EngineError>,
    ) -> Result<(Incident, Vec<Event>), EngineError> {
        let now = self.clock.now_ms();
        let Some(row) = tx.incident(id)? else {
            let ids = tx.incident_ids()?;
            return Err(not_found(id, &ids));
        };
        let inc: Incident = serde_json::from_value(row.state).map_err(anyhow::Error::from)?;
        if inc.status == Status::Closed && !allow_closed {
            return Err(EngineError::conflict(format!("incident {id} is closed; nothing more can be done on it"))
                .with_hint(Hint::OpenNew));
        }
        let pb = self.pinned_in(tx, &inc.playbook_hash)?;
        let mut ctx = Ctx::new(tx, inc, pb, generation_, now);
        f(&mut ctx)?;
        ctx.advance()?;
        ctx.save()?;
        Ok(ctx.finish())
    }
}

/// "No incident `x`", with the ids that look like it.
fn not_found(id: &str, ids: &[String]) -> EngineError {
    let nearby = crate::diag::nearby(id, ids.iter().map(String::as_str));
    EngineError::NotFound { what: "incident", id: id.to_string(), nearby }
}
