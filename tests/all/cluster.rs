//! End-to-end: three real daemons, each with its own state dir, on ONE
//! PostgreSQL database. An incident opened on one node is worked on another;
//! an ack on one node stops another node's escalation; triggers spread over
//! the nodes survive one being killed, none lost and none doubled; and a
//! page whose node dies mid-call is sent by another node with the same
//! invocation id once the dead node's lease runs out, or at once when its
//! node stops cleanly and gives its claims back.

use crate::common::*;
use crate::postgres_store::testdb;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The journal in PostgreSQL with a 2 s lease, and one chain key for every
/// node (each state dir would otherwise create its own, and only one could
/// verify the chain).
const SHARED: &str = "journal_key = \"secret:jk\"\n[secrets.jk]\nenv = \"CRISIS_TEST_JK\"\n\
[secrets.pg]\nenv = \"CRISIS_TEST_PG_URL\"\n[store]\nurl = \"secret:pg\"\nlease = \"2s\"\n";

/// The lease every node of these tests runs with.
const LEASE: Duration = Duration::from_secs(2);

const LOG_ALL: &str = "[targets.superiors]\nplugin = \"log\"\n[targets.managers]\nplugin = \"log\"\n";

fn config(extra: &str) -> String {
    format!("{SHARED}{extra}")
}

fn db_client(db: &str) -> postgres::Client {
    postgres::Client::connect(db, postgres::NoTls).unwrap()
}

/// Starts `n` daemons on the database `db`, one after the other (each migrates, then joins).
fn cluster(n: usize, db: &str, extra: &str) -> Vec<Daemon> {
    let env = [("CRISIS_TEST_PG_URL", db), ("CRISIS_TEST_JK", &"5a".repeat(32) as &str)];
    (0..n).map(|_| Daemon::start_with_env("cluster", &config(extra), &env)).collect()
}

fn kinds(d: &Daemon, id: &str) -> Vec<String> {
    d.events(id).iter().map(|e| e["kind"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn an_incident_opened_on_one_node_is_worked_on_another_and_an_ack_there_stops_the_escalation() {
    let Some(db) = testdb::database() else { return };
    let nodes = cluster(3, &db, &format!("{LOG_ALL}[targets.pager]\nplugin = \"log\"\n"));
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    let id = a.post_incident(&json!({ "playbook": "esc", "fields": { "nature": "n" }, "labels": { "n": "1" } }));
    for other in [b, c] {
        other.wait_for("the incident on another node", || {
            other.cli(&["--json", "incident", "show", &id]).code == 0
                && other.json(&["incident", "show", &id])["phase"] == "assign"
        });
    }
    let s = a.json(&["status"]);
    let nodes_seen = s["nodes"].as_array().unwrap();
    assert_eq!(nodes_seen.len(), 3, "{s}");
    assert!(nodes_seen.iter().all(|n| n["alive"] == true), "{s}");
    assert_eq!(nodes_seen.iter().filter(|n| n["this"] == true).count(), 1, "{s}");
    let text = b.ok(&["status"]);
    assert!(text.contains("nodes:") && text.matches("alive").count() >= 3, "{text}");
    // The gauges follow the heartbeat (every second), so the last node to join shows up there within a second.
    let metrics = || ureq::get(&a.url("/metrics")).call().unwrap().body_mut().read_to_string().unwrap_or_default();
    a.wait_for("three nodes up in /metrics", || metrics().matches("crisis_node_up{").count() == 3);
    assert!(metrics().contains("crisis_node_leases{"), "{}", metrics());

    c.ok(&["ack", &id, "--as", "alice"]);
    c.wait_for("the ack event", || kinds(c, &id).contains(&"acknowledged".to_string()));
    // The ack's transaction removed the escalation timer, so no node can fire it.
    let left: i64 = db_client(&db)
        .query_one("SELECT COUNT(*) FROM timers WHERE incident_id = $1 AND family = 'escalate'", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // The step deadline (6 s after the ack) is due after the escalation was (4 s after the trigger):
    // once it fired, an escalation that had not been cancelled would have fired too.
    wait_until(c, "the later step deadline", 30, || kinds(c, &id).contains(&"deadline_missed".to_string()));
    let all = kinds(a, &id);
    assert!(!all.contains(&"escalated".to_string()), "escalated after the ack on another node: {all:?}");
    let intents: i64 = db_client(&db)
        .query_one("SELECT COUNT(*) FROM intents WHERE incident_id = $1 AND target = 'managers'", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(intents, 0, "the managers were paged");
}

/// POSTs one trigger; Some(status) if a daemon answered, None if the connection failed.
fn post(agent: &ureq::Agent, d: (u16, &str), key: &str) -> Option<u16> {
    let body = json!({ "playbook": "page", "fields": { "nature": "load" }, "labels": { "n": key } });
    let r = agent
        .post(&format!("http://127.0.0.1:{}/v1/incidents", d.0))
        .header("Authorization", &format!("Bearer {}", d.1))
        .send_json(&body);
    r.ok().map(|r| r.status().as_u16())
}

#[test]
fn triggers_spread_over_three_nodes_survive_one_being_killed_none_lost_none_doubled() {
    let Some(db) = testdb::database() else { return };
    let mut nodes = cluster(3, &db, &format!("{LOG_ALL}[targets.pager]\nplugin = \"log\"\n"));
    let targets: Vec<(u16, String)> = nodes.iter().map(|d| (d.port, d.token())).collect();
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let (sent, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let dead = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (targets, answered, sent, done, dead) =
                (targets.clone(), answered.clone(), sent.clone(), done.clone(), dead.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(20)))
                    .build()
                    .into();
                let mut i = 0usize;
                while !done.load(Ordering::SeqCst) {
                    let key = format!("t{t}-{i}");
                    i += 1;
                    // Round robin over the nodes; node 0 is the one killed, and is skipped once it is.
                    let mut n = (t + i) % targets.len();
                    if n == 0 && dead.load(Ordering::SeqCst) {
                        n = 1 + i % 2;
                    }
                    let (port, token) = &targets[n];
                    match post(&agent, (*port, token), &key) {
                        Some(201 | 202) => answered.lock().unwrap().push(key),
                        Some(s) => panic!("node {n} answered {s} to trigger {key}"),
                        None => {} // The node was killed mid-request: not answered, may or may not exist.
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    wait_until(&nodes[1], "the first 60 triggers", 120, || sent.load(Ordering::SeqCst) >= 60);
    nodes[0].kill9();
    dead.store(true, Ordering::SeqCst);
    let at_kill = sent.load(Ordering::SeqCst);
    wait_until(&nodes[1], "60 more triggers after the kill", 120, || sent.load(Ordering::SeqCst) >= at_kill + 60);
    done.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 100, "only {} triggers answered", answered.len());

    let mut per_key: BTreeMap<String, i64> = BTreeMap::new();
    for r in db_client(&db).query("SELECT dedup_key FROM incidents WHERE playbook_id = 'page'", &[]).unwrap() {
        *per_key.entry(r.get::<_, String>(0)).or_default() += 1;
    }
    let doubled: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "incidents opened twice: {doubled:?}");
    let lost: Vec<_> = answered.iter().filter(|k| !per_key.contains_key(*k)).collect();
    assert!(lost.is_empty(), "answered but no incident: {lost:?}");
    let v = nodes[2].ok(&["verify"]);
    assert!(v.contains("journal intact"), "{v}");
}

#[test]
fn a_page_whose_node_dies_mid_call_is_sent_by_another_node_once_the_lease_runs_out() {
    let Some(db) = testdb::database() else { return };
    let server = ChaosServer::start(Mode::Hang);
    let extra = format!(
        "{LOG_ALL}[targets.pager]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"http://localhost:{0}/pager\" }}\n\
         [plugins.webhook-notify]\nallowed_hosts = [\"http://localhost:{0}\"]\nallow_private = [\"http://localhost:{0}\"]\n\
         timeout = \"60s\"\n",
        server.port
    );
    let mut nodes = cluster(3, &db, &extra);
    let id =
        nodes[0].post_incident(&json!({ "playbook": "page", "fields": { "nature": "n" }, "labels": { "n": "1" } }));
    wait_until(&nodes[0], "the page to reach the hanging receiver", 60, || server.refused() >= 1);

    // Who holds it: the node whose lease is on the page, found by its advertised address.
    let mut db_c = db_client(&db);
    let held = |c: &mut postgres::Client| -> (String, i64, String) {
        let r = c
            .query_one(
                "SELECT i.claimed_by, i.lease_until, n.address, i.invocation_id FROM intents i \
                 JOIN nodes n ON n.id = i.claimed_by WHERE i.target = 'pager' AND i.result IS NULL",
                &[],
            )
            .unwrap();
        let (node, until, address, inv): (String, i64, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        (format!("{node} {address}"), until, inv)
    };
    let (holder, first_until, invocation) = held(&mut db_c);
    // The holder renews its lease while its call hangs: no other node takes the page meanwhile.
    wait_until(&nodes[0], "the lease to be renewed", 10, || {
        let (h, until, _) = held(&mut db_client(&db));
        h == holder && until > first_until + 500
    });
    let port: u16 = holder.rsplit(':').next().unwrap().parse().unwrap();
    let victim = nodes.iter().position(|d| d.port == port).expect("the holder is one of the nodes");
    let dead_node = holder.split(' ').next().unwrap().to_string();
    server.set(Mode::Ok);
    nodes[victim].kill9();
    let killed = Instant::now();
    let survivor = &nodes[(victim + 1) % 3];
    wait_until(survivor, "the page sent by another node", 30, || !server.delivered().is_empty());
    let took = killed.elapsed();
    assert!(took <= LEASE + Duration::from_secs(2), "the page went out {took:?} after the kill");
    let delivered: Vec<String> = server.delivered().iter().map(|d| d.key.clone()).collect();
    assert_eq!(delivered, vec![invocation.clone()], "one delivery, with the same invocation id");
    assert_eq!(server.refused(), 1, "only the dead node's call hung: no live node's lease was taken over");
    survivor.wait_for("the take-over journaled", || {
        survivor.events(&id).iter().any(|e: &Value| {
            e["kind"] == "reclaimed"
                && e["data"]["id"] == invocation.as_str()
                && e["data"]["node"] == dead_node.as_str()
        })
    });
    let s = survivor.json(&["status"]);
    survivor.wait_for("the dead node shown dead", || {
        survivor.json(&["status"])["nodes"]
            .as_array()
            .is_some_and(|ns| ns.iter().any(|n| n["id"] == dead_node.as_str() && n["alive"] == false))
    });
    assert!(s["nodes"].as_array().is_some_and(|ns| ns.len() == 3), "{s}");
}

#[test]
fn a_node_that_stops_cleanly_gives_its_page_back_and_another_node_sends_it_without_waiting_for_the_lease() {
    let Some(db) = testdb::database() else { return };
    let server = ChaosServer::start(Mode::Hang);
    // A lease far longer than the test may take: only the clean stop's release lets another node in.
    let lease = Duration::from_secs(60);
    let extra = format!(
        "{LOG_ALL}[targets.pager]\nplugin = \"webhook-notify\"\n\
         config = {{ url = \"http://localhost:{0}/pager\" }}\n\
         [plugins.webhook-notify]\nallowed_hosts = [\"http://localhost:{0}\"]\n\
         allow_private = [\"http://localhost:{0}\"]\ntimeout = \"60s\"\n",
        server.port
    );
    // Top-level keys go before the first table.
    let cfg = format!("shutdown_grace = \"1s\"\n{}", config(&extra).replace("lease = \"2s\"", "lease = \"60s\""));
    let env = [("CRISIS_TEST_PG_URL", db.as_str()), ("CRISIS_TEST_JK", &"5a".repeat(32) as &str)];
    let mut nodes: Vec<Daemon> = (0..2).map(|_| Daemon::start_with_env("cluster", &cfg, &env)).collect();
    nodes[0].post_incident(&json!({ "playbook": "page", "fields": { "nature": "n" }, "labels": { "n": "1" } }));
    wait_until(&nodes[0], "the page to reach the hanging receiver", 60, || server.refused() >= 1);

    let r = db_client(&db)
        .query_one(
            "SELECT i.invocation_id, n.id, n.address FROM intents i JOIN nodes n ON n.id = i.claimed_by \
             WHERE i.target = 'pager' AND i.result IS NULL",
            &[],
        )
        .unwrap();
    let (invocation, holder, address): (String, String, String) = (r.get(0), r.get(1), r.get(2));
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let victim = nodes.iter().position(|d| d.port == port).expect("the holder is one of the nodes");
    server.set(Mode::Ok);
    let stopped = Instant::now();
    assert_eq!(nodes[victim].stop(), Some(0), "the clean stop failed");
    let survivor = &nodes[1 - victim];
    wait_until(survivor, "the page sent by the other node", 30, || !server.delivered().is_empty());
    let took = stopped.elapsed();
    assert!(took < lease / 4, "the page went out {took:?} after the stop: the claim was not given back");
    let delivered: Vec<String> = server.delivered().iter().map(|d| d.key.clone()).collect();
    assert_eq!(delivered, vec![invocation], "one delivery, with the same invocation id");
    // The stopped node is listed as left, not dead, and holds nothing.
    let s = survivor.json(&["status"]);
    let me = s["nodes"].as_array().and_then(|ns| ns.iter().find(|n| n["id"] == holder.as_str()).cloned());
    let me = me.unwrap_or_else(|| panic!("the stopped node is not listed: {s}"));
    assert_eq!(
        (me["left"].as_bool(), me["alive"].as_bool(), me["intents"].as_i64()),
        (Some(true), Some(false), Some(0)),
        "{s}"
    );
    let text = survivor.ok(&["status"]);
    assert!(text.lines().any(|l| l.contains(&holder) && l.contains("left")), "{text}");
    // The drill scheduler is on the one node still running, and status says so.
    survivor.wait_for("the survivor shown holding the drill scheduler", || {
        survivor.json(&["status"])["nodes"].as_array().is_some_and(|ns| {
            ns.iter()
                .any(|n| n["this"] == true && n["holds"].as_array().is_some_and(|h| h.contains(&json!("scheduler"))))
        })
    });
}
