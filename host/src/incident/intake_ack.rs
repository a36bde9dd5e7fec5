//! An alert source acknowledging: the sender of a PagerDuty `acknowledge`
//! event is a system, not a person, so it takes no incident role. The
//! journal says who acknowledged (the intake, by its token name), and the
//! acknowledgement stops escalation exactly as a person's does.

use super::engine::Engine;
use super::error::EngineError;
use super::events::Event;
use super::state::{Incident, Status};

/// What an intake acknowledgement found.
#[derive(Debug, Clone)]
pub enum IntakeAck {
    /// The open incident with the key, now acknowledged.
    Acknowledged(Incident),
    /// The open incident with the key had already been acknowledged; nothing was written.
    AlreadyAcknowledged(Incident),
    /// No incident of the playbook is open with the key; nothing was written.
    NoOpenIncident,
}

impl Engine {
    /// Acknowledges the open incident of `playbook` whose dedup key is `key`,
    /// as `by` (a description of the intake, never a person id). A repeat is
    /// no error: senders repeat events, and the first acknowledgement stands.
    pub fn ack_by_key(&self, playbook: &str, key: &str, by: &str) -> Result<IntakeAck, EngineError> {
        let generation_ = self.generation();
        let done = self.write(|tx| -> Result<Found, EngineError> {
            let Some(id) = tx.open_by_dedup(playbook, key)? else { return Ok(Found::None) };
            let row = tx
                .incident(&id)?
                .ok_or_else(|| anyhow::anyhow!("the dedup index points at incident {id}, which is missing"))?;
            let inc: Incident = serde_json::from_value(row.state).map_err(anyhow::Error::from)?;
            if inc.acked_at.is_some() || inc.status != Status::Open {
                return Ok(Found::Already(inc));
            }
            let written = self.mutate_in(tx, &generation_, &id, false, &mut |ctx| Ok(ctx.acknowledge(by)?))?;
            Ok(Found::Acked(written))
        })?;
        Ok(match done {
            Found::None => IntakeAck::NoOpenIncident,
            Found::Already(inc) => IntakeAck::AlreadyAcknowledged(inc),
            Found::Acked((inc, emitted)) => {
                self.observe(&emitted, &inc);
                IntakeAck::Acknowledged(inc)
            }
        })
    }
}

/// What the transaction found, for after the commit.
enum Found {
    None,
    Already(Incident),
    Acked((Incident, Vec<Event>)),
}
