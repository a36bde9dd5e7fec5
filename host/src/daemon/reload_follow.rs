//! Following the cluster: a node adopts each generation another node
//! publishes, one at a time, validated like any reload of its own.

use super::cluster_gen::snapshot_of;
use super::reload::{Attempt, Outcome, Reloader, file_hashes};
use crate::diag::Diagnostic;
use crate::incident::loader;
use std::sync::Arc;
use std::time::Instant;

impl Reloader {
    /// Listens for generations other nodes publish and adopts each, one at a time.
    pub(super) fn follow_cluster(self: &Arc<Self>) {
        let Some(c) = &self.cluster else { return };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        if let Err(e) = c.watch(Box::new(move |n| tx.send(n).is_ok())) {
            tracing::error!("cannot listen for generations other nodes publish: {e:#}");
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(mut n) = rx.recv().await {
                // A burst of publications is adopted once, at the newest.
                while let Ok(m) = rx.try_recv() {
                    n = if n == 0 || m == 0 { 0 } else { n.max(m) };
                }
                let me = me.clone();
                let _ = tokio::task::spawn_blocking(move || me.adopt(n)).await;
            }
        });
        // Anything published between start and the first LISTEN.
        self.clone().adopt_soon();
    }

    fn adopt_soon(self: Arc<Self>) {
        tokio::task::spawn_blocking(move || self.adopt(0));
    }

    /// Swaps to the newest published generation if it is newer than the one
    /// serving here (`hint`: the number announced, 0 if unknown). A set this
    /// node's configuration rejects is not applied, and the node says so.
    pub(super) fn adopt(&self, hint: u64) {
        let Some(c) = &self.cluster else { return };
        let _one = self.apply.lock().unwrap_or_else(|p| p.into_inner());
        if hint != 0 && c.applied_number().is_some_and(|n| n >= hint) {
            return;
        }
        let p = match c.latest() {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("cannot read the published generation: {e:#}");
                return;
            }
        };
        if c.applied_number().is_some_and(|n| n >= p.number) {
            return;
        }
        let started = Instant::now();
        let now = self.engine().now();
        let current = self.engine().generation();
        let cfg = (*current.config).clone();
        let root = cfg.playbooks.clone();
        let loaded = loader::load_snapshot(cfg, snapshot_of(&p, &root), p.number, now);
        let trigger = format!("cluster (generation {} published by {})", p.number, p.published_by);
        let mut attempt = Attempt::starting(trigger, now, &current);
        let (number, by) = (p.number, p.published_by.clone());
        match loaded.generation {
            Some(g) => {
                attempt.outcome = Outcome::Applied;
                attempt.generation = g.number;
                attempt.set_hash = g.set_hash.clone();
                self.engine().swap_generation(g);
                self.persist();
                c.set_applied(p);
                let mut st = self.lock();
                st.ready = true;
                st.errors.clear();
                st.files = file_hashes(&loaded.snapshot);
                tracing::info!("adopted cluster generation {number} published by {by}");
            }
            None => {
                attempt.errors = loaded.diagnostics.iter().map(Diagnostic::to_string).collect();
                let why = format!(
                    "generation {number} published by {by} is invalid with this node's configuration; generation {} keeps serving here: {}",
                    current.number,
                    attempt.errors.join("; ")
                );
                tracing::error!("{why}");
                c.set_error(Some(why));
            }
        }
        attempt.duration_ms = started.elapsed().as_millis() as u64;
        self.lock().last_attempt = Some(attempt);
        self.update_gauges(self.ready());
    }
}
