//! End-to-end: three real daemons on one PostgreSQL database, each with its
//! own state and playbook directory. One node runs the drill scheduler and a
//! scheduled drill runs once even when the scheduler moves because its node
//! was killed; a reload on one node is served by every node, each showing
//! where its own files differ; a broken edit changes no node.
use crate::common::*;
use crate::postgres_store::testdb;
use serde_json::Value;
use std::time::{Duration, Instant};

const STORE: &str = "[store]\nurl = \"secret:pg\"\n[secrets.pg]\nenv = \"CRISIS_TEST_PG_URL\"\n";

const DRILL_TARGETS: &str = "[targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n[targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n";

fn status(d: &Daemon) -> Value {
    d.json(&["status"])
}

/// Waits up to `secs` for `f`, panicking with every node's log.
fn until(nodes: &[&Daemon], what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<String> = nodes.iter().map(|d| d.log()).collect();
    panic!("timed out waiting for {what}; logs:\n{}", logs.join("\n-----\n"));
}

fn drill_runs(d: &Daemon, id: &str) -> usize {
    d.json(&["drill", "list"])["runs"].as_array().unwrap().iter().filter(|r| r["id"] == id).count()
}

fn max_published(db: &str) -> i64 {
    let mut c = ::postgres::Client::connect(db, ::postgres::NoTls).unwrap();
    c.query_one("SELECT COALESCE(MAX(number), 0) FROM cluster_generations", &[]).unwrap().get(0)
}

#[test]
fn a_scheduled_drill_runs_once_when_the_scheduler_node_is_killed() {
    let Some(db) = testdb::database() else { return };
    let mut nodes =
        Daemon::start_many(3, "drill/inline", &format!("{DRILL_TARGETS}{STORE}"), &[("CRISIS_TEST_PG_URL", &db)]);
    let all: Vec<&Daemon> = nodes.iter().collect();
    until(&all, "exactly one node holding the scheduler", 10, || {
        nodes.iter().filter(|d| status(d)["scheduler"] == true).count() == 1
    });
    let holder = nodes.iter().position(|d| status(d)["scheduler"] == true).unwrap();

    // A daily occurrence at least 25 seconds away, published from the holder to every node.
    let at = chrono::DateTime::from_timestamp(((chrono::Utc::now().timestamp() + 25) / 60 + 1) * 60, 0).unwrap();
    let file = nodes[holder].dir.path().join("playbooks/checkout-drill.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text
        .replace("schedule = \"*/2 * * * *\"", &format!("schedule = \"{}\"", at.format("%M %H * * *")))
        .replace("timezone = \"Europe/Berlin\"", "timezone = \"UTC\"");
    std::fs::write(&file, text).unwrap();
    let r = nodes[holder].json(&["reload"]);
    assert_ne!(r["outcome"], "rejected", "{r}");
    let generation = r["generation"].as_u64().unwrap();
    until(&all, "every node serving the new schedule", 5, || {
        nodes.iter().all(|d| status(d)["reload"]["cluster"]["generation"].as_u64() == Some(generation))
    });
    let slot = format!("checkout-drill.{}", at.format("%Y%m%dT%H%MZ"));

    // Killed before the occurrence is due: its session lock goes with its connection.
    nodes[holder].kill9();
    let dead = nodes.remove(holder);
    let left: Vec<&Daemon> = nodes.iter().chain(std::iter::once(&dead)).collect();
    until(&left, "another node taking over the scheduler", 10, || {
        nodes.iter().filter(|d| status(d)["scheduler"] == true).count() == 1
    });
    let secs = (at - chrono::Utc::now()).num_seconds().max(0) as u64 + 60;
    until(&left, &format!("drill {slot} on a surviving node"), secs, || {
        nodes.iter().map(|d| drill_runs(d, &slot)).sum::<usize>() == 1
    });
    let runner = nodes.iter().position(|d| drill_runs(d, &slot) == 1).unwrap();
    assert_eq!(status(&nodes[runner])["scheduler"], true, "the drill ran on a node without the scheduler");

    // The node that ran it dies too: the last node takes over, decides the
    // same occurrence again and finds it claimed by the cluster, so it never runs twice.
    nodes[runner].kill9();
    let last = &nodes[1 - runner];
    assert!(status(last)["scheduler_checked_at"].is_null(), "the last node scheduled while another held the lock");
    until(&[last, &nodes[runner], &dead], "the last node taking over and deciding the schedule", 40, || {
        let s = status(last);
        s["scheduler"] == true && !s["scheduler_checked_at"].is_null()
    });
    assert_eq!(drill_runs(last, &slot), 0, "drill {slot} ran twice");
}

#[test]
fn a_reload_on_one_node_is_served_by_all_and_a_broken_edit_by_none() {
    let Some(db) = testdb::database() else { return };
    let nodes = Daemon::start_many(3, "engine", &format!("{LOG_TARGETS}{STORE}"), &[("CRISIS_TEST_PG_URL", &db)]);
    let all: Vec<&Daemon> = nodes.iter().collect();
    let (a, others) = (&nodes[0], &nodes[1..]);
    // The first node published its files; the others adopted them and match them.
    let first = max_published(&db) as u64;
    for d in &nodes {
        let c = &status(d)["reload"]["cluster"];
        assert_eq!(c["generation"].as_u64(), Some(first), "{c}");
        assert_eq!(c["drift"], serde_json::json!([]), "{c}");
    }

    let file = a.dir.path().join("playbooks/outage.toml");
    let good = format!("{}\n# edited on node A\n", std::fs::read_to_string(&file).unwrap());
    std::fs::write(&file, &good).unwrap();
    let r = a.json(&["reload"]);
    assert_ne!(r["outcome"], "rejected", "{r}");
    let generation = r["generation"].as_u64().unwrap();
    assert_eq!(generation, first + 1);
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(good.as_bytes()))
    };
    let serves = |d: &Daemon| {
        let s = status(d);
        s["playbooks"].as_array().unwrap().iter().any(|p| p["id"] == "outage" && p["hash"] == hash.as_str())
            && s["reload"]["cluster"]["generation"].as_u64() == Some(generation)
    };
    // Within 2 seconds of the reload, plus one status round trip per node.
    let started = Instant::now();
    until(&all, "the other nodes serving the new generation", 3, || others.iter().all(serves));
    assert!(started.elapsed() < Duration::from_millis(2500), "took {:?}", started.elapsed());
    assert!(serves(a));
    // The others serve A's file; their own, unchanged copy is the drift.
    for d in others {
        let c = &status(d)["reload"]["cluster"];
        assert_eq!(c["drift"], serde_json::json!([{"path": "outage.toml", "kind": "differs"}]), "{c}");
        assert_eq!(c["published_by"], format!("127.0.0.1:{}", a.port));
    }
    assert_eq!(status(a)["reload"]["cluster"]["drift"], serde_json::json!([]));

    // A broken edit is rejected on A and never published: no node changes.
    std::fs::write(&file, "[playbook\nid = \"outage\"\n").unwrap();
    let r = a.cli(&["--json", "reload"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(max_published(&db) as u64, generation, "a rejected set was published");
    for d in &nodes {
        assert!(serves(d), "{}", status(d));
    }
    let c = &status(a)["reload"]["cluster"];
    assert_eq!(c["drift"], serde_json::json!([{"path": "outage.toml", "kind": "differs"}]), "{c}");
}
