//! A restart with a large backlog of pending notices: every notice runs
//! exactly once (counted by invocation id at the receiving server), intake
//! keeps answering while the backlog drains, and the notices of incidents
//! opened meanwhile do not queue behind it.

use crate::common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::Command;

/// Incidents in the backlog; the `pair` playbook sends two notices each.
const INCIDENTS: u64 = 5_000;

fn config(port: u16) -> String {
    let lo = format!("http://localhost:{port}");
    let mut cfg = format!(
        "[limits]\nintake_per_minute = 10000000\n\
         [plugins.webhook-notify]\nallowed_hosts = [\"{lo}\"]\nallow_private = [\"{lo}\"]\ntimeout = \"5s\"\n"
    );
    for t in ["good", "bad"] {
        // One failure opens the circuit for longer than the test: the backlog
        // waits without being attempted until the restart.
        cfg.push_str(&format!(
            "[targets.{t}]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"{lo}/{t}\" }}\nbreaker_failures = 1\nbreaker_cooldown = \"1h\"\n"
        ));
    }
    cfg + "[targets.superiors]\nplugin = \"log\"\n[targets.pager]\nplugin = \"log\"\n[targets.managers]\nplugin = \"log\"\n"
}

fn pending(d: &Daemon) -> i64 {
    let s = d.json(&["status"]);
    s["outbox"]["depth"].as_object().map(|m| m.values().filter_map(|v| v.as_i64()).sum()).unwrap_or(0)
}

#[test]
fn a_restart_with_ten_thousand_pending_notices_runs_each_once_and_intake_answers_throughout() {
    let server = ChaosServer::start(Mode::Fail);
    let mut d = Daemon::start("outbox", &config(server.port));
    let out = Command::new(env!("CARGO_BIN_EXE_crisis-load"))
        .args(["--url", &d.url(""), "--token", &d.token(), "--playbook", "pair", "--count"])
        .arg(INCIDENTS.to_string())
        .args(["--concurrency", "8", "--dedup-ratio", "0", "--max-seconds", "600", "--json", "--field", "nature=storm"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let load: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(load["ok"], INCIDENTS, "{load}");
    let backlog = 2 * INCIDENTS as i64;
    wait_until(&d, "the whole backlog to be recorded", 120, || pending(&d) >= backlog);

    // A crash with the backlog on disk; the targets are back when it restarts.
    d.kill9();
    server.set(Mode::Ok);
    d.restart();

    // Intake answers while the backlog drains.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut during = 0u64;
    while pending(&d) > backlog / 2 && during < 200 {
        let r = agent
            .post(&d.url("/v1/incidents"))
            .header("Authorization", &format!("Bearer {}", d.token()))
            .send_json(json!({ "playbook": "pair", "dedup_key": format!("during-{during}"), "fields": { "nature": "during" } }))
            .unwrap();
        assert!(matches!(r.status().as_u16(), 201 | 202), "intake refused during the drain: {}", r.status());
        during += 1;
    }
    assert!(during > 0, "the backlog drained before intake could be tried; raise INCIDENTS");

    let expected = backlog as usize + 2 * during as usize;
    wait_until(&d, "every notice to be delivered", 600, || server.delivered().len() >= expected);
    wait_until(&d, "the outbox to be empty", 60, || pending(&d) == 0);
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in server.delivered() {
        *per_key.entry(r.key).or_default() += 1;
    }
    let twice: Vec<_> = per_key.iter().filter(|(_, n)| **n != 1).take(10).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(per_key.len(), expected);
    assert_eq!(d.json(&["status"])["outbox"]["dead_letter_count"], 0);

    // Incidents are numbered in order, so those past the backlog's opened
    // during the drain; each of their notices went out while at least half
    // of the backlog was still waiting, and none waited for all of it.
    let during_drain = |key: &str| {
        let n = key.strip_prefix("INC-").and_then(|k| k.split('.').next()).and_then(|n| n.parse::<u64>().ok());
        n.unwrap_or_else(|| panic!("unexpected invocation id {key}")) > INCIDENTS
    };
    let order: Vec<bool> = server.delivered().iter().map(|r| during_drain(&r.key)).collect();
    let last_backlog = order.iter().rposition(|d| !d).unwrap();
    let late = order.iter().enumerate().filter(|(i, d)| **d && *i > last_backlog).count();
    assert_eq!(late, 0, "{late} notices of new incidents waited for the whole backlog");
}
