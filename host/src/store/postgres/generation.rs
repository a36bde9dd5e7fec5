//! Coordination of several daemons on one PostgreSQL database: the
//! published playbook generations every node serves (announced with
//! `NOTIFY crisis_generation`), the drill scheduler's session lock, and
//! scheduled drill occurrences claimed once for the whole cluster.
//!
//! Listening and holding the scheduler lock each need a connection of their
//! own: a notification arrives only on the listening session, and a session
//! advisory lock lives exactly as long as its connection, so the database
//! itself hands the scheduler to another node when the holder dies.

use super::conn::connect;
use super::{PgStore, Result};
use crate::store::{Cluster, Lease, PublishedFile, PublishedGeneration};
use ::postgres::Client;
use ::postgres::fallible_iterator::FallibleIterator;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Session advisory lock held by the node that runs the drill scheduler.
const SCHEDULER_LOCK: i64 = 0x6372_6973_6973_0010;
/// Channel a publication is announced on; the payload is the generation number.
const CHANNEL: &str = "crisis_generation";
/// How often a node without the scheduler lock tries again, and how often a
/// dedicated connection is checked.
const RETRY: Duration = Duration::from_secs(1);

impl Cluster for PgStore {
    fn publish_generation(&self, files: &[PublishedFile], by: &str, at: i64) -> Result<u64> {
        let text = serde_json::to_string(files)?;
        let by = by.to_string();
        self.lock().call(move |c| {
            let mut tx = c.transaction()?;
            // Numbers are handed out one publisher at a time, so they never collide.
            tx.batch_execute("LOCK TABLE cluster_generations IN EXCLUSIVE MODE")?;
            let n: i64 =
                tx.query_one("SELECT COALESCE(MAX(number), 0) + 1 FROM cluster_generations", &[])?.try_get(0)?;
            tx.execute(
                "INSERT INTO cluster_generations (number, files, published_by, published_at) VALUES ($1, $2, $3, $4)",
                &[&n, &text, &by, &at],
            )?;
            // Delivered to listeners when the transaction commits, never before.
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &n.to_string()])?;
            tx.commit()?;
            Ok(n as u64)
        })
    }

    fn latest_generation(&self) -> Result<Option<PublishedGeneration>> {
        self.lock().call(|c| {
            let Some(r) = c.query_opt(
                "SELECT number, files, published_by, published_at FROM cluster_generations ORDER BY number DESC LIMIT 1",
                &[],
            )?
            else {
                return Ok(None);
            };
            let number: i64 = r.try_get(0)?;
            let files: String = r.try_get(1)?;
            let files: Vec<PublishedFile> = serde_json::from_str(&files)
                .map_err(|e| anyhow::anyhow!("published generation {number} is not readable: {e}"))?;
            Ok(Some(PublishedGeneration {
                number: number as u64,
                files,
                published_by: r.try_get(2)?,
                published_at: r.try_get(3)?,
            }))
        })
    }

    fn watch_generations(&self, wake: Box<dyn FnMut(u64) -> bool + Send>) -> Result<()> {
        let (config, target) = self.dedicated();
        std::thread::Builder::new().name("crisis-pg-listen".into()).spawn(move || listen(config, &target, wake))?;
        Ok(())
    }

    fn scheduler_lease(&self) -> Result<Arc<Lease>> {
        let (config, target) = self.dedicated();
        let lease = Arc::new(Lease::default());
        let weak = Arc::downgrade(&lease);
        *self.scheduler.lock().unwrap_or_else(|p| p.into_inner()) = weak.clone();
        std::thread::Builder::new().name("crisis-pg-lease".into()).spawn(move || hold(config, &target, weak))?;
        Ok(lease)
    }

    fn claim_drill_slot(&self, run_id: &str, by: &str, at: i64) -> Result<bool> {
        let (id, by) = (run_id.to_string(), by.to_string());
        self.lock().call(move |c| {
            let n = c.execute(
                "INSERT INTO drill_slots (run_id, claimed_by, claimed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&id, &by, &at],
            )?;
            Ok(n == 1)
        })
    }

    fn leave(&self, now: i64) -> Result<usize> {
        let lease = self.lease.clone();
        self.side(move |c| super::outbox::leave(c, &lease, now))
    }
}

/// Listens on its own connection; reconnects after a loss and then wakes
/// with 0, since notifications sent meanwhile are gone.
fn listen(config: ::postgres::Config, target: &str, mut wake: Box<dyn FnMut(u64) -> bool + Send>) {
    let mut lost = false;
    loop {
        let mut client = match connect(&config).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                if !lost {
                    tracing::warn!("cannot listen for published generations on {target}: {e:#}; retrying");
                }
                lost = true;
                std::thread::sleep(RETRY);
                continue;
            }
        };
        if lost {
            tracing::info!("listening for published generations on {target} again");
            if !wake(0) {
                return;
            }
        }
        lost = false;
        while !lost {
            let next = client.notifications().timeout_iter(RETRY).next();
            match next {
                Ok(Some(n)) => {
                    if !wake(n.payload().parse().unwrap_or(0)) {
                        return;
                    }
                }
                // Nothing within the timeout, or the server went away: find out which.
                Ok(None) => lost = client.is_closed() || client.batch_execute("SELECT 1").is_err(),
                Err(_) => lost = true,
            }
        }
        tracing::warn!("lost the connection listening for published generations on {target}; reconnecting");
    }
}

/// Contends for the scheduler lock until the lease is dropped; dropping the
/// connection then gives the lock back at once.
fn hold(config: ::postgres::Config, target: &str, lease: Weak<Lease>) {
    let mut client: Option<Client> = None;
    loop {
        let Some(l) = lease.upgrade() else { return };
        if client.as_ref().is_none_or(Client::is_closed) {
            if l.held() {
                tracing::warn!("lost the drill scheduler lock: its connection to {target} closed");
            }
            l.set_held(false);
            client = connect(&config).ok();
        }
        if let Some(c) = client.as_mut() {
            let res = if l.held() {
                c.batch_execute("SELECT 1").map(|_| true)
            } else {
                c.query_one("SELECT pg_try_advisory_lock($1)", &[&SCHEDULER_LOCK]).and_then(|r| r.try_get::<_, bool>(0))
            };
            match res {
                Ok(true) if !l.held() => {
                    tracing::info!("this node now runs the drill scheduler");
                    l.set_held(true);
                }
                Ok(_) => {}
                Err(e) => {
                    if l.held() {
                        tracing::warn!("lost the drill scheduler lock on {target}: {e}");
                    }
                    l.set_held(false);
                    client = None;
                }
            }
        }
        drop(l);
        std::thread::sleep(RETRY);
    }
}
