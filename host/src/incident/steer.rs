//! Steering a drill from outside its scenario: the journal records of a
//! cancel, a pause or resume, a controller inject, and a live incident that a
//! drill yields to. The drill runner and the daemon decide when; this only
//! writes the record (and, for a cancel, drops what would still run).

use super::engine::Engine;
use super::error::EngineError;
use super::events::Event;

impl Engine {
    /// Journals `ev`, one of the drill-steering events (`DrillPaused`,
    /// `DrillResumed`, `ControllerInject`, `DrillHeld`, `DrillReleased`), on
    /// incident `id`; closed incidents take it too, as a record of what
    /// happened around them. Any other event is refused as a bug.
    pub fn record_steering(&self, id: &str, ev: Event) -> Result<(), EngineError> {
        match ev {
            Event::DrillPaused { .. }
            | Event::DrillResumed { .. }
            | Event::ControllerInject { .. }
            | Event::DrillHeld { .. }
            | Event::DrillReleased { .. } => {}
            other => {
                return Err(EngineError::Internal(anyhow::anyhow!(
                    "`{}` is not a drill-steering event; this is a bug in crisis",
                    other.kind()
                )));
            }
        }
        let mut ev = Some(ev);
        self.mutate(id, true, |ctx| match ev.take() {
            Some(e) => Ok(ctx.emit(e)?),
            None => Ok(()),
        })?;
        Ok(())
    }

    /// Cancels drill incident `id`: deletes its timers, dead-letters its
    /// pending intents (`reason` says who cancelled) and journals
    /// `DrillCancelled`, all in one transaction. Refused on a live incident.
    pub fn cancel_drill(&self, id: &str, by: &str, reason: Option<&str>) -> Result<(), EngineError> {
        let inc = self.incident(id)?;
        if !inc.is_drill() {
            return Err(EngineError::conflict(format!("{id} is a live incident; only drills can be cancelled")));
        }
        let timers: Vec<i64> =
            self.store().timers()?.into_iter().filter(|t| t.incident_id == id).map(|t| t.id).collect();
        let intents: Vec<String> =
            self.store().intents_for(id)?.into_iter().filter(|i| i.result.is_none()).map(|i| i.invocation_id).collect();
        let why = format!("the drill was cancelled by {by}");
        self.mutate(id, true, |ctx| {
            for t in &timers {
                ctx.tx.delete_timer(*t)?;
            }
            for i in &intents {
                ctx.tx.dead_letter_intent(i, ctx.now, &why)?;
            }
            Ok(ctx.emit(Event::DrillCancelled {
                by: by.to_string(),
                reason: reason.map(str::to_string),
                timers_dropped: timers.len(),
                intents_dropped: intents.len(),
            })?)
        })?;
        Ok(())
    }
}
