//! The outbox under chaos, with the real binary: a hanging target does not
//! delay another target's pages, a failing target's breaker opens and the
//! commander's next escalation level is paged at once, and a corrupt row is
//! dead-lettered while everything else keeps working.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn webhook(port: u16, target: &str, extra: &str) -> String {
    format!(
        "[targets.{target}]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"http://localhost:{port}/{target}\" }}\n{extra}"
    )
}

fn plugin_grant(ports: &[u16], timeout: &str) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("\"http://localhost:{p}\"")).collect();
    format!(
        "[plugins.webhook-notify]\nallowed_hosts = [{0}]\nallow_private = [{0}]\ntimeout = \"{timeout}\"\n",
        hosts.join(", ")
    )
}

/// Log targets for the notices a test does not watch.
const QUIET: &str = "[targets.superiors]\nplugin = \"log\"\n[targets.oncall]\nplugin = \"log\"\n";

/// Opens an incident over the API; returns its id once the daemon answered.
fn trigger(d: &Daemon, playbook: &str, n: usize) -> String {
    d.post_incident(&json!({ "playbook": playbook, "fields": { "nature": "chaos" }, "labels": { "n": n.to_string() } }))
}

fn events(d: &Daemon, id: &str) -> Vec<Value> {
    d.events(id)
}

fn status(d: &Daemon) -> Value {
    d.json(&["status"])
}

/// The incident an invocation id belongs to (`INC-3.2` → `INC-3`).
fn incident_of(key: &str) -> &str {
    key.rsplit_once('.').map(|(i, _)| i).unwrap_or(key)
}

/// The webhook notifier's row in `crisis status --json`.
fn notifier(d: &Daemon) -> Value {
    let s = status(d);
    s["plugins"].as_array().and_then(|a| a.iter().find(|p| p["name"] == "webhook-notify").cloned()).unwrap_or(s)
}

#[test]
fn a_hanging_target_never_delays_another_and_its_backlog_is_delivered_once() {
    let good = ChaosServer::start(Mode::Ok);
    let bad = ChaosServer::start(Mode::Hang);
    let cfg = format!(
        "{}{QUIET}{}{}",
        plugin_grant(&[good.port, bad.port], "2s"),
        webhook(good.port, "good", ""),
        webhook(bad.port, "bad", "breaker_failures = 3\nbreaker_cooldown = \"2s\"\n")
    ) + "[targets.pager]\nplugin = \"log\"\n[targets.managers]\nplugin = \"log\"\n";
    let d = Daemon::start("outbox", &cfg);

    // 60 s of triggers, one every 500 ms.
    let mut opened: BTreeMap<String, Instant> = BTreeMap::new();
    let start = Instant::now();
    for n in 0..120 {
        let tick = start + Duration::from_millis(500 * n as u64);
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let id = trigger(&d, "pair", n);
        opened.insert(id, Instant::now());
        if n % 20 == 19 {
            let p = notifier(&d);
            assert_eq!(p["quarantined"], false, "a hanging upstream quarantined the notifier: {p}");
        }
    }
    assert!(bad.refused() > 0, "the bad target was tried");

    // Every good page arrives within 2 s of its trigger.
    wait_until(&d, "every good page", 30, || good.delivered().len() >= opened.len());
    let mut late = Vec::new();
    for r in good.delivered() {
        assert_eq!(r.path, "/good");
        let t0 = opened.get(incident_of(&r.key)).unwrap_or_else(|| panic!("unknown key {}", r.key));
        let took = r.at.saturating_duration_since(*t0);
        if took > Duration::from_secs(2) {
            late.push(format!("{} after {took:?}", r.key));
        }
    }
    assert!(late.is_empty(), "pages to the good target were delayed by the hanging one: {late:?}\n{}", d.log());

    // The bad server recovers: its backlog arrives, once per idempotency key.
    bad.set(Mode::Ok);
    wait_until(&d, "the bad target's backlog", 120, || {
        let keys: BTreeSet<String> = bad.delivered().into_iter().map(|r| incident_of(&r.key).to_string()).collect();
        keys.len() >= opened.len()
    });
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in bad.delivered() {
        assert_eq!(r.path, "/bad");
        *per_key.entry(r.key).or_default() += 1;
    }
    let dup: Vec<_> = per_key.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "delivered more than once: {dup:?}");
    assert_eq!(per_key.len(), opened.len());
    assert!(per_key.keys().all(|k| opened.contains_key(incident_of(k))));
    wait_until(&d, "the breaker to close", 30, || {
        status(&d)["outbox"]["open_breakers"].as_array().is_some_and(|a| a.is_empty())
    });
    assert_eq!(status(&d)["outbox"]["dead_letter_count"], 0);
    let p = notifier(&d);
    assert_eq!((p["quarantined"].as_bool(), p["crashes"].as_u64()), (Some(false), Some(0)), "{p}");
}

#[test]
fn a_lane_calls_its_target_again_while_the_last_result_is_still_being_journaled() {
    // One call at a time to `good`, and no result can be journaled: the lane's
    // slot covers the call only, so every notice still reaches the target.
    let server = ChaosServer::start(Mode::Ok);
    let cfg = format!(
        "{}{QUIET}{}{}",
        plugin_grant(&[server.port], "2s"),
        webhook(server.port, "good", "concurrency = 1\n"),
        webhook(server.port, "bad", "concurrency = 1\n")
    ) + "[targets.pager]\nplugin = \"log\"\n[targets.managers]\nplugin = \"log\"\n";
    let mut d = Daemon::start_with_env("outbox", &cfg, &[("CRISIS_FAILPOINT", "before-record")]);
    let ids: Vec<String> = (0..5).map(|n| trigger(&d, "pair", n)).collect();
    wait_until(&d, "every notice to reach its target with no result journaled", 30, || {
        server.delivered().len() >= 2 * ids.len()
    });
    assert!(d.log().contains("failpoint before-record reached"), "{}", d.log());
    for id in &ids {
        assert!(!events(&d, id).iter().any(|e| e["kind"] == "effect_result"), "{id}: a result was journaled");
    }

    // Killed before any result was journaled: each notice runs again under its
    // own invocation id, and its result is journaled once.
    d.kill9();
    d.restart_with_env(&[]);
    wait_until(&d, "every result journaled after the restart", 30, || {
        ids.iter().all(|id| events(&d, id).iter().filter(|e| e["kind"] == "effect_result").count() >= 2)
    });
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for r in server.delivered() {
        *per_key.entry(format!("{}{}", r.path, r.key)).or_default() += 1;
    }
    assert_eq!(per_key.len(), 2 * ids.len(), "one key per notice: {per_key:?}");
    assert!(per_key.values().all(|n| *n == 2), "each ran once before the kill and once after: {per_key:?}");
    for id in &ids {
        let results: Vec<Value> = events(&d, id).into_iter().filter(|e| e["kind"] == "effect_result").collect();
        let invocations: BTreeSet<String> =
            results.iter().map(|e| e["data"]["invocation_id"].as_str().unwrap_or_default().to_string()).collect();
        assert_eq!(invocations.len(), results.len(), "{id}: a result journaled twice: {results:?}");
    }
}

#[test]
fn a_failing_targets_breaker_opens_the_next_level_is_paged_at_once_and_it_closes_after_recovery() {
    let pager = ChaosServer::start(Mode::Fail);
    let managers = ChaosServer::start(Mode::Ok);
    let cfg = format!(
        "{}{QUIET}{}{}",
        plugin_grant(&[pager.port, managers.port], "5s"),
        webhook(pager.port, "pager", "breaker_failures = 2\nbreaker_cooldown = \"5s\"\n"),
        webhook(managers.port, "managers", "")
    ) + "[targets.good]\nplugin = \"log\"\n[targets.bad]\nplugin = \"log\"\n";
    let d = Daemon::start("outbox", &cfg);
    let id = trigger(&d, "page", 1);

    // Two 500s open the breaker; the deferred page escalates around it.
    wait_until(&d, "the pager breaker to open", 30, || {
        status(&d)["outbox"]["open_breakers"].as_array().unwrap().iter().any(|t| t == "pager")
    });
    let metrics = get_text(&d, "/metrics");
    assert!(metrics.contains("crisis_target_breaker_open{target=\"pager\"} 1"), "{metrics}");
    wait_until(&d, "escalation level 1 to be paged", 30, || managers.delivered().iter().any(|r| r.path == "/managers"));
    let evs = events(&d, &id);
    let note = evs
        .iter()
        .position(|e| e["kind"] == "note" && e["text"].as_str().unwrap_or("").contains("cannot be delivered"));
    let esc = evs.iter().position(|e| e["kind"] == "escalated" && e["data"]["level"] == 1);
    assert!(
        note.is_some() && esc.is_some() && note < esc,
        "the journal says why it escalated, then escalates: {evs:#?}"
    );
    assert!(evs[note.unwrap()]["text"].as_str().unwrap().contains("circuit of target `pager` is open"), "{evs:#?}");
    assert!(pager.refused() >= 2);

    // Recovery: the probe succeeds, the breaker closes, the commander's page arrives once.
    pager.set(Mode::Ok);
    wait_until(&d, "the commander's page after recovery", 60, || !pager.delivered().is_empty());
    wait_until(&d, "the pager breaker to close", 30, || {
        let s = status(&d);
        s["outbox"]["breakers"].as_array().unwrap().iter().any(|b| b["lane"] == "pager" && b["state"] == "closed")
    });
    let keys: Vec<String> = pager.delivered().into_iter().map(|r| r.key).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(get_text(&d, "/metrics").contains("crisis_target_breaker_open{target=\"pager\"} 0"));
}

/// GET with the API token, as text.
fn get_text(d: &Daemon, path: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    agent
        .get(&d.url(path))
        .header("Authorization", &format!("Bearer {}", d.token()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

#[test]
fn corrupt_rows_are_dead_lettered_and_everything_else_keeps_working() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    let a = d.json(&[
        "trigger",
        "outage",
        "--scope",
        "EU",
        "--field",
        "nature=n",
        "--label",
        "service=a",
        "--label",
        "region=eu",
    ])["incident"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.wait_for("A's report notice to be sent", || events(&d, &a).iter().any(|e| e["kind"] == "effect_result"));
    d.kill9();

    // Corrupt a pending timer of A (due now), and add unreadable intents: one of A, one of no incident.
    let db = rusqlite::Connection::open(d.dir.path().join("state/journal.db")).unwrap();
    let n = db
        .execute("UPDATE timers SET data = '{corrupt', due_at = 0 WHERE id = (SELECT id FROM timers WHERE incident_id = ?1 AND kind = 'deadline:ack')", [&a])
        .unwrap();
    assert_eq!(n, 1, "A has an ack deadline pending");
    db.execute("INSERT INTO intents (invocation_id, incident_id, created_at, not_before, payload) VALUES (?1, ?2, 0, 0, '{oops')", [format!("{a}.99"), a.clone()])
        .unwrap();
    db.execute("INSERT INTO intents (invocation_id, incident_id, created_at, not_before, payload) VALUES ('LOST.1', x'ff', 0, 0, 'nope')", []).unwrap();
    drop(db);
    d.restart();

    // The daemon starts and dead-letters each item, journaled on A where it can be.
    let dead_in = |kind: &str| {
        events(&d, &a).iter().filter(|e| e["kind"] == "dead_lettered" && e["data"]["item"] == kind).count()
    };
    d.wait_for("A's corrupt timer and intent to be dead-lettered", || dead_in("timer") == 1 && dead_in("intent") == 1);
    d.wait_for("three dead letters in status", || status(&d)["outbox"]["dead_letter_count"] == 3);
    let ids: Vec<String> = status(&d)["outbox"]["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&format!("{a}.99")) && ids.contains(&"LOST.1".to_string()), "{ids:?}");
    let shown = d.ok(&["incident", "show", &a]);
    assert!(shown.contains(&format!("DEAD LETTER intent {a}.99")), "{shown}");

    // Every other incident's timers and sends keep working: B escalates after 2 s and its notices go out.
    let b = d.json(&[
        "trigger",
        "outage",
        "--scope",
        "EU",
        "--field",
        "nature=n",
        "--label",
        "service=b",
        "--label",
        "region=eu",
    ])["incident"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.wait_for("B to escalate on its timer", || events(&d, &b).iter().any(|e| e["kind"] == "escalated"));
    d.wait_for("B's notices to be sent", || {
        events(&d, &b).iter().filter(|e| e["kind"] == "effect_result" && e["data"]["ok"] == true).count() >= 2
    });

    // A retry is journaled; the payload is still unreadable, so it is set aside again.
    d.ok(&["retry", &format!("{a}.99"), "--as", "alice"]);
    d.wait_for("the retried intent to be dead-lettered again", || dead_in("intent") == 2);
    assert!(events(&d, &a).iter().any(|e| e["kind"] == "redriven" && e["data"]["by"] == "alice"));
    let r = d.cli(&["retry", &format!("{b}.1")]);
    assert_eq!(r.code, 1, "only dead letters can be retried: {}", r.stderr);
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_message_older_than_the_first_response_time_is_warned_about_and_journaled_once() {
    let pager = ChaosServer::start(Mode::Fail);
    let managers = ChaosServer::start(Mode::Ok);
    let cfg = format!(
        "[limits]\nfirst_response = \"2s\"\n{}{QUIET}{}{}",
        plugin_grant(&[pager.port, managers.port], "5s"),
        webhook(pager.port, "pager", "breaker_failures = 2\nbreaker_cooldown = \"1s\"\n"),
        webhook(managers.port, "managers", "")
    ) + "[targets.good]\nplugin = \"log\"\n[targets.bad]\nplugin = \"log\"\n";
    let d = Daemon::start("outbox", &cfg);
    let id = trigger(&d, "page", 1);

    wait_until(&d, "the late page to be journaled", 30, || events(&d, &id).iter().any(|e| e["kind"] == "notice_late"));
    let late: Vec<Value> = events(&d, &id).into_iter().filter(|e| e["kind"] == "notice_late").collect();
    assert_eq!(late[0]["data"]["target"], "pager", "{late:#?}");
    assert!(late[0]["data"]["waited_secs"].as_i64().unwrap() >= 2, "{late:#?}");
    assert!(d.log().contains("delivery is not keeping up"), "{}", d.log());
    let s = status(&d);
    assert!(s["outbox"]["oldest_age_seconds"]["pager"].as_f64().unwrap() >= 2.0, "{s}");
    assert!(get_text(&d, "/metrics").contains("crisis_outbox_oldest_age_seconds{target=\"pager\"}"));
    let timeline = d.ok(&["timeline", &id]);
    assert!(timeline.contains("still waiting after"), "{timeline}");

    // The target recovers: its backlog goes out, the daemon says it caught up,
    // and the late page was journaled once, not at every check.
    pager.set(Mode::Ok);
    wait_until(&d, "the page after recovery", 60, || !pager.delivered().is_empty());
    wait_until(&d, "delivery to catch up", 30, || d.log().contains("delivery caught up"));
    let s = status(&d);
    assert!(s["outbox"]["depth"].get("pager").is_none(), "{s}");
    assert!(s["outbox"]["executed_last_minute"]["pager"].as_u64().unwrap() >= 1, "{s}");
    let late = events(&d, &id).into_iter().filter(|e| e["kind"] == "notice_late").count();
    assert_eq!(late, 1);
}
