//! This daemon as one node of several sharing a PostgreSQL journal: its id,
//! its heartbeat, and the membership `crisis status` and `/metrics` show.
//!
//! The node id is generated at the first start and kept in `state_dir/node.id`,
//! so it survives restarts (a restarting node releases exactly its own
//! claims) and two daemons never share one (each has its own state dir).
//! A node is alive while its heartbeat is younger than `[store] lease`; its
//! heartbeat also renews every lease it holds, so only a stopped node's
//! work is taken over.

use super::metrics::Metrics;
use super::node_status::NodeStatus;
use crate::config::state_dir::{StateDir, write_private};
use crate::incident::Engine;
use crate::store::NodeRow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often a node records its heartbeat and renews its leases.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// On a clean stop: gives this node's claims back and marks it as left, so
/// the other nodes sharing the journal take its work over at once. A journal
/// only this daemon uses has nothing to give back.
pub(crate) fn leave(engine: &Engine) {
    let Some(cluster) = engine.store().cluster() else { return };
    match cluster.leave(engine.now()) {
        Ok(n) => {
            tracing::info!(released_intents = n, "left the cluster: this node's claims are free for the other nodes")
        }
        Err(e) => tracing::warn!(
            "could not give this node's claims back on the way out: {e:#}; other nodes take them over once the lease runs out"
        ),
    }
}

/// This daemon's identity among the nodes sharing the journal database.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The id every claim of this daemon records.
    pub(crate) id: String,
    /// Where this daemon serves its API, as other nodes and operators see it.
    pub(crate) address: String,
    /// Unix milliseconds when this daemon started.
    pub(crate) started_at: i64,
    /// How long a claim lasts without a heartbeat (ms); also when a silent node counts as dead.
    pub(crate) lease_ms: i64,
}

/// The node id in `state_dir/node.id`, created at the first start.
pub(crate) fn load_or_create_id(state_dir: &Path) -> anyhow::Result<String> {
    let path = StateDir::new(state_dir).node_id();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_string();
            let valid = !id.is_empty()
                && id.len() <= 64
                && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                anyhow::bail!(
                    "{}: not a node id (1 to 64 letters, digits, `-`, `_` or `.`); delete the file to get a new id, or write one yourself",
                    path.display()
                );
            }
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let simple = uuid::Uuid::new_v4().simple().to_string();
            let id = format!("node-{}", &simple[..12]);
            let tmp = path.with_file_name(".node.id.tmp");
            write_private(&tmp, &path, format!("{id}\n").as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write the node id to {}: {e}", path.display()))?;
            tracing::info!(node = %id, "this daemon's node id is new: {}", path.display());
            Ok(id)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read the node id from {}: {e}", path.display())),
    }
}

impl Node {
    /// How `row` looks from this node at `now`.
    fn status(&self, row: &NodeRow, now: i64) -> NodeStatus {
        let age = (now - row.heartbeat_at).max(0);
        let holds = match &row.holds {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, v)| !matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false)))
                .map(|(k, _)| k.clone())
                .collect(),
            _ => Vec::new(),
        };
        NodeStatus {
            id: row.id.clone(),
            address: row.address.clone(),
            heartbeat_age_seconds: age as f64 / 1000.0,
            alive: age <= self.lease_ms && row.left_at.is_none(),
            left: row.left_at.is_some(),
            this: row.id == self.id,
            intents: row.intents,
            timers: row.timers,
            holds,
        }
    }

    /// Every node sharing the journal at `now`; a journal only this daemon
    /// uses (SQLite) lists this node alone.
    pub(crate) fn membership(&self, engine: &Engine, now: i64) -> anyhow::Result<Vec<NodeStatus>> {
        let rows = engine.store().nodes(now)?;
        if rows.is_empty() {
            let me = NodeRow {
                id: self.id.clone(),
                address: self.address.clone(),
                started_at: self.started_at,
                heartbeat_at: now,
                intents: 0,
                timers: 0,
                holds: serde_json::Value::Null,
                left_at: None,
            };
            return Ok(vec![self.status(&me, now)]);
        }
        Ok(rows.iter().map(|r| self.status(r, now)).collect())
    }
}

/// Records this node's heartbeat every second (renewing its leases) and
/// refreshes the per-node gauges, until shutdown.
pub(crate) async fn heartbeat(
    engine: Arc<Engine>,
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let (e, n, m) = (engine.clone(), node.clone(), metrics.clone());
        let res = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let now = e.now();
            e.store().heartbeat(&n.address, n.started_at, now)?;
            m.refresh_nodes(&n.membership(&e, now)?);
            Ok(())
        })
        .await;
        let err = match res {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(format!("{err:#}")),
            Err(err) => Some(format!("the heartbeat panicked: {err}")),
        };
        match err {
            Some(err) if !failing => {
                tracing::error!(
                    "cannot record this node's heartbeat: {err}; if it stays away longer than the lease, other nodes take over its work"
                );
                failing = true;
            }
            None if failing => {
                tracing::info!("this node's heartbeat is recorded again");
                failing = false;
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
