//! Settles executed side effects in groups.
//!
//! Deliveries finish concurrently; each hands its outcome to one recorder
//! task and waits for the answer. The recorder takes everything that has
//! arrived (up to [`GROUP`]) and journals it in one transaction, so while
//! one group is being written the next one gathers: under load results
//! share transactions and flushes, and a lone result is written at once.

use crate::incident::Engine;
use crate::incident::effects::EffectOutcome;
use crate::incident::outbox::{ClaimedIntent, Outbox, Settled, failpoint};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most results journaled in one transaction.
const GROUP: usize = 256;

/// One executed intent waiting for its result to be journaled.
struct Pending {
    intent: ClaimedIntent,
    outcome: EffectOutcome,
    done: oneshot::Sender<anyhow::Result<Settled>>,
}

/// The handle deliveries settle through; the task stops once every handle is dropped.
pub(crate) struct Recorder {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Recorder {
    /// Starts the recorder task on the current runtime.
    pub(crate) fn start(engine: Arc<Engine>, outbox: Arc<Outbox>) -> Recorder {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(record_groups(engine, outbox, rx));
        Recorder { queue }
    }

    /// Journals how `intent` ended (or schedules its retry), together with
    /// whatever else ended meanwhile.
    pub(crate) async fn settle(&self, intent: ClaimedIntent, outcome: EffectOutcome) -> anyhow::Result<Settled> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending { intent, outcome, done })
            .map_err(|_| anyhow::anyhow!("the result recorder has stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the result recorder stopped before answering"))?
    }
}

async fn record_groups(engine: Arc<Engine>, outbox: Arc<Outbox>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut group = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut group, GROUP).await > 0 {
        let (items, answers): (Vec<_>, Vec<_>) = group.drain(..).map(|p| ((p.intent, p.outcome), p.done)).unzip();
        let (e, o) = (engine.clone(), outbox.clone());
        let first = items.first().map(|(c, _)| c.id.clone()).unwrap_or_default();
        match tokio::task::spawn_blocking(move || {
            failpoint("before-record", &first);
            o.settle_all(&e, items)
        })
        .await
        {
            Ok(results) => {
                for (result, answer) in results.into_iter().zip(answers) {
                    let _ = answer.send(result);
                }
            }
            Err(err) => {
                tracing::error!("journaling a group of side-effect results panicked: {err}");
                for answer in answers {
                    let _ = answer.send(Err(anyhow::anyhow!("journaling its result panicked: {err}")));
                }
            }
        }
    }
}
