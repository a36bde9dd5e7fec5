//! Intake batches: the alerts of one Alertmanager group journaled in one
//! transaction under one writer lock, so a group is never half-applied.
//!
//! Each alert is checked first; an alert the engine refuses (unknown
//! playbook, missing report field, dedup key too long) is answered on its
//! own and writes nothing, while every other alert of the group is
//! journaled together. A store failure rolls the whole group back.

use super::commands::{PreparedTrigger, resolve_ctx};
use super::dedup::FallbackKey;
use super::engine::Engine;
use super::error::EngineError;
use super::events::Event;
use super::state::Incident;
use super::{TriggerOutcome, TriggerRequest};

/// One thing an intake batch does.
#[derive(Debug, Clone)]
pub enum IntakeOp {
    /// Opens an incident or attaches to the open one with the same dedup key;
    /// `fallback` stands in for a dedup template that renders empty.
    Trigger {
        /// The trigger, as `Engine::trigger` takes it.
        req: TriggerRequest,
        /// The sender's own key, if it has one.
        fallback: Option<FallbackKey>,
    },
    /// Resolves the open incident of `playbook` with dedup key `key`, if any.
    Resolve {
        /// The playbook id.
        playbook: String,
        /// The dedup key of the incident to resolve.
        key: String,
        /// Who resolves it, for the journal.
        source: String,
    },
}

/// What one operation of a batch did.
#[derive(Debug, Clone)]
pub enum IntakeDone {
    /// The trigger opened or attached to this incident.
    Triggered(TriggerOutcome),
    /// The resolve closed this incident, or found none open with the key.
    Resolved(Option<Incident>),
}

/// A checked operation waiting for the transaction.
enum Checked {
    Trigger(Box<PreparedTrigger>),
    Resolve { playbook: String, key: String, source: String },
}

impl Engine {
    /// Runs every operation in one transaction. The outer `Err` is a store
    /// failure (nothing of the batch was written); each inner `Err` is one
    /// operation the engine refused before anything was written.
    pub fn intake_batch(&self, ops: Vec<IntakeOp>) -> Result<Vec<Result<IntakeDone, EngineError>>, EngineError> {
        let generation_ = self.generation();
        let checked: Vec<Result<Checked, EngineError>> = ops
            .into_iter()
            .map(|op| match op {
                IntakeOp::Trigger { req, fallback } => {
                    self.prepare_trigger(&generation_, req, fallback.as_ref()).map(|p| Checked::Trigger(Box::new(p)))
                }
                IntakeOp::Resolve { playbook, key, source } => Ok(Checked::Resolve { playbook, key, source }),
            })
            .collect();
        if checked.iter().all(Result::is_err) {
            // Nothing to write: no transaction, no flush.
            return Ok(checked.into_iter().filter_map(Result::err).map(Err).collect());
        }
        let done = self.write(|tx| -> Result<Vec<Option<Written>>, EngineError> {
            let mut out = Vec::with_capacity(checked.len());
            for c in &checked {
                let w = match c {
                    Err(_) => None,
                    Ok(Checked::Trigger(p)) => Some(Written::Trigger(self.trigger_in(tx, &generation_, p)?)),
                    Ok(Checked::Resolve { playbook, key, source }) => match tx.open_by_dedup(playbook, key)? {
                        Some(id) => {
                            Some(Written::Resolve(Some(self.mutate_in(tx, &generation_, &id, false, &mut |ctx| {
                                resolve_ctx(ctx, source, source)
                            })?)))
                        }
                        None => Some(Written::Resolve(None)),
                    },
                };
                out.push(w);
            }
            Ok(out)
        })?;
        Ok(checked
            .into_iter()
            .zip(done)
            .map(|(c, w)| match (c, w) {
                (Err(e), _) => Err(e),
                (Ok(Checked::Trigger(p)), Some(Written::Trigger(d))) => {
                    Ok(IntakeDone::Triggered(self.triggered(&p, d)))
                }
                (Ok(_), Some(Written::Resolve(r))) => Ok(IntakeDone::Resolved(r.map(|(inc, emitted)| {
                    self.observe(&emitted, &inc);
                    inc
                }))),
                (Ok(_), _) => {
                    Err(EngineError::Internal(anyhow::anyhow!("an intake batch lost track of one of its operations")))
                }
            })
            .collect())
    }
}

/// What one checked operation wrote, for after the commit.
enum Written {
    Trigger(super::commands::TriggerDone),
    Resolve(Option<(Incident, Vec<Event>)>),
}
