//! Storm control with the real binary: a burst of triggers reaches a target
//! with a digest rule as at most `after` single notices plus one digest per
//! window; every folded notice's journal names the digest that carried it,
//! every commander page still goes out, and a digest survives a kill -9.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn webhook(port: u16, target: &str, extra: &str) -> String {
    format!(
        "[targets.{target}]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"http://localhost:{port}/{target}\" }}\n{extra}"
    )
}

fn plugin_grant(ports: &[u16]) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("\"http://localhost:{p}\"")).collect();
    format!(
        "[plugins.webhook-notify]\nallowed_hosts = [{0}]\nallow_private = [{0}]\ntimeout = \"5s\"\n",
        hosts.join(", ")
    )
}

/// Targets of the fixture's playbooks that these tests do not watch.
const QUIET: &str = "[targets.managers]\nplugin = \"log\"\n[targets.good]\nplugin = \"log\"\n[targets.bad]\nplugin = \"log\"\n[limits]\nintake_per_minute = 100000\n";

fn trigger(d: &Daemon, n: usize) -> String {
    d.post_incident(&json!({ "playbook": "page", "fields": { "nature": "storm" }, "labels": { "n": n.to_string() } }))
}

fn events(d: &Daemon, id: &str) -> Vec<Value> {
    d.events(id)
}

/// The digests an incident's journal says carried its notices.
fn digests_in(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .filter(|e| e["kind"] == "included_in_digest")
        .map(|e| {
            assert_eq!(e["data"]["target"], "superiors", "{e}");
            e["data"]["digest"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The incident an invocation id belongs to (`INC-3.2` → `INC-3`).
fn incident_of(key: &str) -> &str {
    key.rsplit_once('.').map(|(i, _)| i).unwrap_or(key)
}

fn superiors_counters(d: &Daemon) -> Value {
    let s = d.json(&["status"]);
    let all = s["outbox"]["digests"].as_array().cloned().unwrap_or_default();
    all.into_iter().find(|c| c["target"] == "superiors" && c["mode"] == "live").unwrap_or(Value::Null)
}

/// 500 triggers (scaled down from 5,000: each one is a debug-build API call
/// and journal write, and 500 already span several 2 s windows).
const BURST: usize = 500;
const AFTER: u64 = 5;

#[test]
fn a_burst_reaches_superiors_as_a_few_notices_and_one_digest_per_window() {
    let superiors = ChaosServer::start(Mode::Ok);
    let pager = ChaosServer::start(Mode::Ok);
    let cfg = format!(
        "{}{QUIET}{}{}",
        plugin_grant(&[superiors.port, pager.port]),
        webhook(superiors.port, "superiors", &format!("digest = {{ after = {AFTER}, within = \"2s\" }}\n")),
        webhook(pager.port, "pager", "")
    );
    let d = Daemon::start("outbox", &cfg);
    let ids: Vec<String> = (0..BURST).map(|n| trigger(&d, n)).collect();

    // Every commander page goes out, one per incident, never folded.
    wait_until(&d, "every commander page", 120, || {
        pager.delivered().iter().map(|r| incident_of(&r.key).to_string()).collect::<BTreeSet<_>>().len() >= BURST
    });
    let paged: BTreeSet<String> = pager.delivered().iter().map(|r| incident_of(&r.key).to_string()).collect();
    assert_eq!(paged, ids.iter().cloned().collect::<BTreeSet<_>>(), "a page for every incident");

    // Each incident sends two foldable notices to superiors (report, activation):
    // every one either went out alone or is journaled as included in a digest.
    wait_until(&d, "every superiors notice to be sent or folded", 120, || {
        let c = superiors_counters(&d);
        let delivered = superiors.delivered();
        let singles = delivered.iter().filter(|r| !r.key.starts_with("DIG-")).count() as u64;
        c["folded"].as_u64().unwrap_or(0) + singles >= 2 * BURST as u64
    });
    let mut carried: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        for dg in digests_in(&events(&d, id)) {
            *carried.entry(dg).or_default() += 1;
        }
    }
    assert!(!carried.is_empty(), "a burst of {BURST} folds notices");

    // Every digest named in a journal is delivered, exactly once.
    wait_until(&d, "every digest to be delivered", 60, || {
        let got: BTreeSet<String> = superiors.delivered().into_iter().map(|r| r.key).collect();
        carried.keys().all(|k| got.contains(k))
    });
    let delivered = superiors.delivered();
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &delivered {
        *by_key.entry(r.key.as_str()).or_default() += 1;
    }
    assert!(by_key.values().all(|n| *n == 1), "each notice and digest is delivered once: {by_key:?}");
    let digests = delivered.iter().filter(|r| r.key.starts_with("DIG-")).count() as u64;
    let singles = delivered.len() as u64 - digests;

    // At most `after` single notices plus one digest per window.
    let c = superiors_counters(&d);
    let windows = c["windows"].as_u64().unwrap();
    assert_eq!(c["digests"].as_u64().unwrap(), digests, "{c}");
    assert_eq!(c["folded"].as_u64().unwrap() as usize, carried.values().sum::<usize>(), "{c}");
    assert!(digests <= windows, "{digests} digests in {windows} windows");
    assert!(singles <= AFTER * windows, "{singles} single notices in {windows} windows of after = {AFTER}");
    assert_eq!(singles + carried.values().sum::<usize>() as u64, 2 * BURST as u64, "nothing lost, nothing sent twice");
    assert!(singles < BURST as u64 / 2, "the storm was folded: {singles} single notices for {BURST} incidents");
    // A sent digest's members go with its journaled result.
    let db = rusqlite::Connection::open(d.dir.path().join("state/journal.db")).unwrap();
    wait_until(&d, "the members of the sent digests to be deleted", 30, || {
        let n: i64 =
            db.query_row("SELECT COUNT(*) FROM kv WHERE key LIKE 'digest-member:%'", [], |r| r.get(0)).unwrap();
        n == 0
    });

    // The timeline and `incident show` say which digest carried a notice.
    let (id, dg) =
        ids.iter().find_map(|id| digests_in(&events(&d, id)).first().map(|dg| (id.clone(), dg.clone()))).unwrap();
    let timeline = d.ok(&["timeline", &id]);
    assert!(timeline.contains(&format!("included in digest {dg}")), "{timeline}");
    let show = d.ok(&["incident", "show", &id]);
    assert!(show.contains(&format!("included in digest {dg}")), "{show}");
}

#[test]
fn a_digest_survives_a_kill_9_in_its_window_and_is_sent_once() {
    let superiors = ChaosServer::start(Mode::Ok);
    let cfg = format!(
        "{}{QUIET}{}[targets.pager]\nplugin = \"log\"\n",
        plugin_grant(&[superiors.port]),
        webhook(superiors.port, "superiors", "digest = { after = 1, within = \"3s\" }\n")
    );
    let mut d = Daemon::start("outbox", &cfg);
    let ids: Vec<String> = (0..3).map(|n| trigger(&d, n)).collect();
    let folded_at = Instant::now();
    wait_until(&d, "the third incident's notice to be folded", 30, || !digests_in(&events(&d, &ids[2])).is_empty());
    let dg = digests_in(&events(&d, &ids[2]))[0].clone();
    assert!(superiors.delivered().iter().all(|r| r.key != dg), "the digest waits for the window's end");

    // Killed inside the window; still down when the window ends.
    d.kill9();
    let window_over = folded_at + Duration::from_secs(3);
    if let Some(rest) = window_over.checked_duration_since(Instant::now()) {
        std::thread::sleep(rest);
    }
    d.restart();

    // The digest goes out at start, its result is journaled on the incident that carries it, once.
    let carrier = ids
        .iter()
        .find(|id| events(&d, id).iter().any(|e| e["kind"] == "intent_recorded" && e["data"]["invocation_id"] == *dg))
        .expect("an incident carries the digest's intent")
        .clone();
    wait_until(&d, "the digest's result to be journaled", 30, || {
        events(&d, &carrier).iter().any(|e| e["kind"] == "effect_result" && e["data"]["invocation_id"] == *dg)
    });
    let sent = superiors.delivered().iter().filter(|r| r.key == dg).count();
    assert_eq!(sent, 1, "the digest {dg} is sent once across the kill");
    for id in &ids[1..] {
        assert!(digests_in(&events(&d, id)).contains(&dg), "{id} names {dg}");
    }
}

/// Records every call that reaches it: the "real world" of a drill.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<crisis::incident::effects::IntentPayload>>);

impl crisis::incident::effects::Executor for Recorder {
    fn execute(
        &self,
        _id: &str,
        p: &crisis::incident::effects::IntentPayload,
    ) -> crisis::incident::effects::EffectOutcome {
        self.0.lock().unwrap().push(p.clone());
        crisis::incident::effects::EffectOutcome::sent("delivered by the recorder")
    }
}

#[test]
fn a_drills_digests_are_captured_or_tagged_like_every_drill_notice() {
    let dir = tempfile::tempdir().unwrap();
    let r = repo();
    let digest = "digest = { after = 1, within = \"1m\" }\n";
    let cfg = format!(
        "playbooks = {:?}\nroster = {:?}\ncustomers = {:?}\nstate_dir = {:?}\n\
         [targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n{digest}[targets.departments]\nplugin = \"log\"\ndrill_safe = true\n\
         [targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n{digest}\
         [targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n\
         [targets.status-page]\nplugin = \"status\"\n\
         [status_page]\ncomponents = [{{ id = \"login\" }}, {{ id = \"checkout\" }}, {{ id = \"payments\" }}]\n",
        r.join("playbooks"),
        r.join("examples/roster.toml"),
        r.join("examples/customers.csv"),
        dir.path().join("state")
    );
    std::fs::write(dir.path().join("crisis.toml"), cfg).unwrap();
    let config = crisis::config::load(&dir.path().join("crisis.toml")).unwrap_or_else(|d| panic!("{d:?}"));
    let g = crisis::incident::loader::load(config, 1, 0).generation.unwrap();
    let mut folded = 0;
    for pb in g.playbooks.keys() {
        let rec = std::sync::Arc::new(Recorder::default());
        let opts = crisis::drill::DrillOptions::virtual_in_memory(format!("{pb}-1"), 1);
        let out = crisis::drill::run(&g, pb, opts, rec.clone(), &crisis::drill::Extensions::default()).unwrap();
        let evs = &out.events;
        for e in evs.iter().filter(|e| e.kind == "included_in_digest") {
            folded += 1;
            let dg = e.data["digest"].as_str().unwrap();
            let target = e.data["target"].as_str().unwrap();
            let result = evs
                .iter()
                .find(|r| r.kind == "effect_result" && r.data["invocation_id"] == dg)
                .unwrap_or_else(|| panic!("{pb}: digest {dg} has a result before the drill ends"));
            let detail = result.data["detail"].as_str().unwrap();
            if target == "regulator" {
                assert!(detail.starts_with(crisis::drill::contain::CAPTURED), "{pb}: {detail}");
            }
        }
        for p in rec.0.lock().unwrap().iter() {
            assert_ne!(p.target, "regulator", "{pb}: a drill digest reached a target that is not drill_safe");
            assert!(p.subject.starts_with(&format!("[DRILL {pb}-1]")), "{}", p.subject);
        }
    }
    assert!(folded > 0, "the shipped playbooks send a target more than one notice in a drill");
}
