//! Membership of the daemons sharing one database: each node's heartbeat
//! row, and the renewal of the leases it holds.
//!
//! A node is alive while its heartbeat is younger than the lease time; every
//! heartbeat also pushes the leases of everything the node holds (intents it
//! is running, timers it is firing) one lease time ahead, so a call may run
//! longer than the lease and still never be run by a second node while its
//! node lives. Once a node stops, its leases run out within one lease time.

use super::{NodeRow, Result};
use ::postgres::Client;

/// Who claims, and for how long: this node's id and its lease time.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    /// The claiming node's id.
    pub(crate) node: String,
    /// How long a claim lasts without renewal (ms).
    pub(crate) ms: i64,
}

impl Default for Lease {
    /// A store not given a node (tests, one-off CLI commands) claims as `local` for 10 s.
    fn default() -> Self {
        Lease { node: "local".into(), ms: 10_000 }
    }
}

/// How long the row of a node that stopped cleanly stays listed (as left) (ms).
const LEFT_SHOWN_MS: i64 = 3_600_000;

/// Records the heartbeat and what this node holds (`scheduler`: it runs the
/// drill scheduler), and renews every lease it holds, in one transaction.
/// A node that left stays left for the rest of its run (a heartbeat racing
/// its clean stop must not revive it); starting again under the same id
/// clears it. Rows of nodes that left over an hour ago are removed.
pub(super) fn heartbeat(c: &mut Client, lease: &Lease, at: (&str, i64, i64), scheduler: bool) -> Result<()> {
    let (address, started_at, now) = at;
    let holds = serde_json::json!({ "scheduler": scheduler }).to_string();
    let mut tx = c.transaction()?;
    tx.execute(
        "INSERT INTO nodes (id, address, started_at, heartbeat_at, holds) VALUES ($1, $2, $3, $4, $5::text::jsonb) \
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, started_at = excluded.started_at, \
         heartbeat_at = excluded.heartbeat_at, \
         holds = CASE WHEN nodes.left_at IS NOT NULL AND nodes.started_at = excluded.started_at \
                      THEN nodes.holds ELSE excluded.holds END, \
         left_at = CASE WHEN nodes.started_at = excluded.started_at THEN nodes.left_at END",
        &[&lease.node, &address, &started_at, &now, &holds],
    )?;
    tx.execute("DELETE FROM nodes WHERE left_at < $1", &[&(now - LEFT_SHOWN_MS)])?;
    let until = now + lease.ms;
    tx.execute(
        "UPDATE intents SET lease_until = $2 WHERE claimed_by = $1 AND result IS NULL AND dead_letter IS NULL",
        &[&lease.node, &until],
    )?;
    tx.execute("UPDATE timers SET lease_until = $2 WHERE claimed_by = $1", &[&lease.node, &until])?;
    tx.commit()?;
    Ok(())
}

/// Every node, with the intents and timers it holds a live lease on at `now`.
pub(super) fn nodes(c: &mut Client, now: i64) -> Result<Vec<NodeRow>> {
    let found = c.query(
        "SELECT n.id, n.address, n.started_at, n.heartbeat_at, n.holds::text, n.left_at, \
                (SELECT COUNT(*) FROM intents i WHERE i.claimed_by = n.id AND i.lease_until >= $1 \
                   AND i.result IS NULL AND i.dead_letter IS NULL), \
                (SELECT COUNT(*) FROM timers t WHERE t.claimed_by = n.id AND t.lease_until >= $1) \
         FROM nodes n ORDER BY n.id",
        &[&now],
    )?;
    found
        .iter()
        .map(|r| {
            Ok(NodeRow {
                id: r.try_get(0)?,
                address: r.try_get(1)?,
                started_at: r.try_get(2)?,
                heartbeat_at: r.try_get(3)?,
                holds: super::json(r.try_get(4)?),
                left_at: r.try_get(5)?,
                intents: r.try_get(6)?,
                timers: r.try_get(7)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{PgStore, testdb};
    use crate::store::{IntentRow, Store};

    fn node(url: &str, id: &str) -> PgStore {
        PgStore::connect(url).unwrap().with_node(id, 1_000)
    }

    fn add_timer_and_intent(s: &PgStore) {
        s.transaction(&mut |tx| {
            tx.add_timer("INC-1", 100, "escalate:0", "escalate", &serde_json::json!({"level": 0}))?;
            tx.add_intent(&IntentRow {
                invocation_id: "INC-1.1".into(),
                incident_id: "INC-1".into(),
                created_at: 100,
                not_before: 100,
                payload: serde_json::json!({"target": "pager"}),
                attempts: 0,
                result: None,
                reclaimed_from: None,
            })
        })
        .unwrap();
    }

    #[test]
    fn a_lease_keeps_other_nodes_off_until_it_runs_out_and_then_says_whose_it_was() {
        let Some(url) = testdb::database() else { return };
        let (a, b) = (node(&url, "a"), node(&url, "b"));
        add_timer_and_intent(&a);
        assert_eq!(a.claim_timers(200).unwrap().len(), 1);
        assert_eq!(a.claim_intents(200, 10).unwrap().len(), 1);
        // Within a's lease (200 + 1000) b gets nothing.
        assert!(b.claim_timers(1_100).unwrap().is_empty());
        assert!(b.claim_intents(1_100, 10).unwrap().is_empty());
        // a's heartbeat renews both leases: still nothing for b after the first lease ran out.
        a.heartbeat("127.0.0.1:1", 0, 1_100).unwrap();
        assert!(b.claim_timers(1_500).unwrap().is_empty());
        assert!(b.claim_intents(1_500, 10).unwrap().is_empty());
        let held = a.nodes(1_500).unwrap();
        assert_eq!((held[0].id.as_str(), held[0].intents, held[0].timers), ("a", 1, 1));
        // a stops renewing: after its lease b takes both over, naming a.
        let timers = b.claim_timers(2_200).unwrap();
        assert_eq!(timers[0].reclaimed_from.as_deref(), Some("a"));
        let intents = b.claim_intents(2_200, 10).unwrap();
        assert_eq!(intents[0].reclaimed_from.as_deref(), Some("a"));
        assert_eq!(intents[0].invocation_id, "INC-1.1");
        // a comes back late: the timer is b's now, so a must not fire it.
        let mut took = true;
        a.transaction(&mut |tx| {
            took = tx.take_timer(timers[0].id)?;
            Ok(())
        })
        .unwrap();
        assert!(!took, "a fired a timer b had taken over");
        let mut took = false;
        b.transaction(&mut |tx| {
            took = tx.take_timer(timers[0].id)?;
            Ok(())
        })
        .unwrap();
        assert!(took);
    }

    #[test]
    fn a_restarting_node_releases_only_its_own_claims() {
        let Some(url) = testdb::database() else { return };
        let (a, b) = (node(&url, "a"), node(&url, "b"));
        add_timer_and_intent(&a);
        assert_eq!(b.claim_intents(200, 10).unwrap().len(), 1);
        assert_eq!(a.release_claims(300).unwrap(), 0);
        assert!(a.claim_intents(400, 10).unwrap().is_empty(), "a took b's live claim");
        assert_eq!(b.release_claims(300).unwrap(), 1);
        assert_eq!(a.claim_intents(400, 10).unwrap()[0].reclaimed_from, None);
    }
}
