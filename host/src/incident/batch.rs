//! Intake batches: the alerts of one Alertmanager group journaled in one
//! transaction under one writer lock, so a group is never half-applied.
//!
//! Single triggers (`POST /v1/incidents`, the CLI) are grouped the same way
//! when they arrive together: each queues its checked trigger, then takes the
//! writer lock, and whoever holds the lock journals every trigger queued by
//! then in one transaction. A burst of concurrent triggers thus costs one
//! commit instead of one each; each caller still returns only once its own
//! trigger is durable (the group's commit is flushed by `Store::sync`).
//!
//! Each alert is checked first; an alert the engine refuses (unknown
//! playbook, missing report field, dedup key too long) is answered on its
//! own and writes nothing, while every other alert of the group is
//! journaled together. A store failure rolls the whole group back.

use super::commands::resolve_ctx;
use super::dedup::FallbackKey;
use super::engine::Engine;
use super::error::EngineError;
use super::events::Event;
use super::generation::Generation;
use super::state::Incident;
use super::trigger_types::{PreparedTrigger, Queued, TriggerDone};
use super::{TriggerOutcome, TriggerRequest};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

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
        self.note_intake();
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
    Trigger(TriggerDone),
    Resolve(Option<(Incident, Vec<Event>)>),
}

impl Engine {
    /// Journals one checked trigger together with every other trigger waiting
    /// for the writer at the same time, then waits until it is durable.
    pub(super) fn trigger_grouped(
        &self,
        generation_: Arc<Generation>,
        prepared: PreparedTrigger,
    ) -> Result<TriggerOutcome, EngineError> {
        let (answer, rx) = sync_channel(1);
        self.triggers.lock().push(Queued { prepared: Box::new(prepared), generation_, answer });
        // Whoever holds the writer next takes this trigger (and every other one
        // queued by then): by the time this thread held it, its answer was sent.
        self.with_writer(|| {
            let group = std::mem::take(&mut *self.triggers.lock());
            if !group.is_empty() {
                self.write_group(group);
            }
        });
        let (prepared, done) = rx.recv().map_err(|_| {
            EngineError::Internal(anyhow::anyhow!(
                "the writer handling this trigger stopped before answering; whether it was journaled is unknown \
                 (`crisis incident list` shows it if it was)"
            ))
        })?;
        let done = done?;
        self.store().sync()?;
        self.wake.notify_one();
        Ok(self.triggered(&prepared, done))
    }

    /// Journals queued triggers, under the writer lock, in one transaction.
    /// When that transaction fails, each trigger is journaled in one of its
    /// own, so a trigger the engine refuses is answered alone and the others
    /// of its group are still written.
    fn write_group(&self, group: Vec<Queued>) {
        if group.len() > 1 {
            let mut done = Vec::with_capacity(group.len());
            let res = self.store().transaction_unsynced(&mut |tx| {
                done.clear();
                for q in &group {
                    done.push(self.trigger_in(tx, &q.generation_, &q.prepared)?);
                }
                Ok(())
            });
            if res.is_ok() {
                for (q, d) in group.into_iter().zip(done) {
                    let _ = q.answer.send((q.prepared, Ok(d)));
                }
                return;
            }
        }
        for q in group {
            let (mut done, mut refused) = (None, None);
            let res =
                self.store().transaction_unsynced(&mut |tx| match self.trigger_in(tx, &q.generation_, &q.prepared) {
                    Ok(d) => {
                        done = Some(d);
                        Ok(())
                    }
                    Err(e) => {
                        refused = Some(e);
                        Err(anyhow::anyhow!("the trigger was refused; nothing of it was written"))
                    }
                });
            let out = match (refused, done, res) {
                (Some(e), _, _) => Err(e),
                (None, _, Err(e)) => Err(EngineError::Internal(e)),
                (None, Some(d), Ok(())) => Ok(d),
                (None, None, Ok(())) => {
                    Err(EngineError::Internal(anyhow::anyhow!("a committed trigger produced no result")))
                }
            };
            let _ = q.answer.send((q.prepared, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{PLAYBOOK, fixture_with};
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn request(service: &str) -> TriggerRequest {
        let mut labels = BTreeMap::new();
        labels.insert("service".to_string(), service.to_string());
        labels.insert("region".to_string(), "eu".to_string());
        TriggerRequest {
            playbook: "outage".into(),
            scope: Some("all EU shoppers".into()),
            fields: BTreeMap::from([("nature".to_string(), "checkout returns 500".to_string())]),
            labels,
            ..Default::default()
        }
    }

    #[test]
    fn concurrent_triggers_open_one_incident_per_key_and_keep_the_chain() {
        let f = fixture_with(PLAYBOOK);
        let outcomes: Vec<TriggerOutcome> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let e = &f.engine;
                    s.spawn(move || {
                        (0..10).map(move |i| e.trigger(request(&format!("svc-{}", (t * 10 + i) / 2))).unwrap())
                    })
                })
                .collect();
            threads.into_iter().flat_map(|t| t.join().unwrap().collect::<Vec<_>>()).collect()
        });
        assert_eq!(outcomes.len(), 80);
        let ids: BTreeSet<&str> = outcomes.iter().map(|o| o.incident.id.as_str()).collect();
        assert_eq!(ids.len(), 40, "two triggers per key, one incident per key");
        assert_eq!(outcomes.iter().filter(|o| o.deduped).count(), 40);
        let report = f.engine.store().verify(None).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn a_trigger_failing_inside_a_group_fails_alone() {
        let f = fixture_with(PLAYBOOK);
        let broken = f.engine.trigger(request("checkout")).unwrap().incident.id;
        let conn = rusqlite::Connection::open(f._dir.path().join("journal.db")).unwrap();
        conn.execute("UPDATE incidents SET state = '{not json' WHERE id = ?1", [&broken]).unwrap();
        let g = f.engine.generation();
        let mut answers = Vec::new();
        let group = ["search", "checkout"]
            .iter()
            .map(|service| {
                let (answer, rx) = sync_channel(1);
                answers.push(rx);
                let prepared = Box::new(f.engine.prepare_trigger(&g, request(service), None).unwrap());
                Queued { prepared, generation_: g.clone(), answer }
            })
            .collect();
        f.engine.write_group(group);
        let results: Vec<_> = answers.iter().map(|rx| rx.recv().unwrap().1).collect();
        assert!(results[0].is_ok(), "the other trigger of the group is journaled");
        assert!(results[1].is_err(), "the trigger attaching to the unreadable incident fails");
        let open = f.engine.store().incidents(true, None).unwrap();
        assert!(open.iter().any(|r| r.dedup_key.as_deref() == Some("search:eu")), "{open:?}");
    }
}
