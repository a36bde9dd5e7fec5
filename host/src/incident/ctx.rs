//! The context of one incident inside one store transaction: every event
//! is journaled and applied to the incident as it happens, and the
//! projection is saved once the work is done.

use super::events::Event;
use super::generation::Generation;
use super::state::{Incident, Status};
use crate::playbook::spec::Playbook;
use crate::store::{IncidentRow, Tx};
use std::sync::Arc;

/// One incident inside one transaction.
pub(crate) struct Ctx<'a> {
    pub(super) tx: &'a mut dyn Tx,
    /// Events journaled in this transaction, for the observer after commit.
    emitted: Vec<Event>,
    pub(super) inc: Incident,
    pub(super) pb: Arc<Playbook>,
    pub(super) generation_: &'a Generation,
    pub(super) now: i64,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        tx: &'a mut dyn Tx,
        inc: Incident,
        pb: Arc<Playbook>,
        generation_: &'a Generation,
        now: i64,
    ) -> Self {
        Ctx { tx, emitted: Vec::new(), inc, pb, generation_, now }
    }

    /// The incident as it stands and the events journaled, once the work is done.
    pub(super) fn finish(self) -> (Incident, Vec<Event>) {
        (self.inc, self.emitted)
    }

    /// Counts an event journaled before this context existed (the `opened` event).
    pub(super) fn already_emitted(&mut self, ev: Event) {
        self.emitted.push(ev);
    }

    pub(super) fn emit(&mut self, ev: Event) -> anyhow::Result<()> {
        let data = serde_json::to_value(&ev)?;
        let rec = self.tx.append(&self.inc.id, self.now, ev.kind(), &data)?;
        self.inc.apply(&ev, self.now, rec.seq);
        self.emitted.push(ev);
        Ok(())
    }

    pub(super) fn save(&mut self) -> anyhow::Result<()> {
        let i = &self.inc;
        self.tx.put_incident(&IncidentRow {
            id: i.id.clone(),
            playbook_id: i.playbook_id.clone(),
            playbook_hash: i.playbook_hash.clone(),
            mode: i.mode.to_string(),
            dedup_key: i.dedup_key.clone(),
            status: i.status.as_str().to_string(),
            phase: if i.status == Status::Closed { "closed".into() } else { i.phase.to_string() },
            severity: i.severity.to_string(),
            title: i.title.clone(),
            opened_at: i.opened_at,
            updated_at: self.now,
            state: serde_json::to_value(i)?,
        })
    }
}
