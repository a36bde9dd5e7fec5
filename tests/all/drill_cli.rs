//! End to end: `crisis drill` through the real binary, standalone and via the daemon.
use crate::common::*;
use serde_json::Value;

fn json_of(r: &Run) -> Value {
    assert_eq!(r.code, 0, "stderr: {}\nstdout: {}", r.stderr, r.stdout);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

#[test]
fn every_shipped_playbook_drills_standalone_on_virtual_time_reproducibly() {
    let ids: Vec<String> = std::fs::read_dir(repo().join("playbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 5);
    for id in &ids {
        let md = crisis(&["drill", "run", id, "--clock", "virtual", "--standalone", "--seed", "3"]);
        assert_eq!(md.code, 0, "{id}: {}", md.stderr);
        assert!(md.stdout.starts_with(&format!("# After-action report: {id} drill")), "{}", md.stdout);
        for section in [
            "| Score | **",
            "## Scores",
            "## What went well",
            "## What went wrong",
            "## Improvement plan",
            "## Timeline",
            "evidence (journal seq)",
        ] {
            assert!(md.stdout.contains(section), "{id}: no {section}");
        }
        let a = json_of(&crisis(&["--json", "drill", "run", id, "--clock", "virtual", "--standalone", "--seed", "3"]));
        let b = json_of(&crisis(&[
            "drill",
            "run",
            id,
            "--standalone",
            "--seed",
            "3",
            "--clock",
            "virtual",
            "--format",
            "json",
        ]));
        assert_eq!(a["score"], b["score"], "{id}");
        assert_eq!(a["timeline"], b["timeline"], "{id}");
        assert_eq!(a["mode"], "drill");
        assert_eq!(a["status"], "completed", "{id}: {}", a["went_wrong"]);
        // A multi-hour scenario on virtual time.
        assert!(a["timeline"].as_array().unwrap().len() > 50);
        let total = a["score"]["total"].as_u64().unwrap();
        assert!(total <= 100);
        // `n/a` criteria (their condition never arose) are left out of the total.
        let applicable: Vec<&Value> =
            a["score"]["criteria"].as_array().unwrap().iter().filter(|c| c["rating"] != "n/a").collect();
        let points: u64 = applicable.iter().map(|c| c["points"].as_u64().unwrap()).sum();
        let n = applicable.len() as u64;
        assert_eq!(total, (points * 100 + n * 3 / 2) / (n * 3), "{id}: total is the normalised sum");
        // No customer contact data anywhere in the report.
        assert!(!md.stdout.contains("@example") && !md.stdout.contains("+1-555"), "{id}");
    }
}

#[test]
fn drill_run_errors_say_what_and_exit_with_the_right_code() {
    let r = crisis(&["drill", "run", "service-outag", "--standalone"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no playbook `service-outag`") && r.stderr.contains("service-outage"), "{}", r.stderr);
    let r = crisis(&["drill", "run", "service-outage", "--standalone", "--clock", "x1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("x2..x3600"), "{}", r.stderr);
    let help = crisis(&["drill", "run", "--help"]);
    assert!(help.stdout.contains("never sent") && help.stdout.contains("--standalone"), "{}", help.stdout);
}

#[test]
fn inline_injects_are_validated_with_positions() {
    let r = crisis(&["playbook", "validate", "tests/fixtures/drill/broken/bad-injects.toml"]);
    assert_eq!(r.code, 2);
    let f = "tests/fixtures/drill/broken/bad-injects.toml";
    for want in [
        format!("{f}:70:8: unknown inject kind `alarm`"),
        format!("{f}:74:8: [[drill.inject]] #2 names step `brigde`"),
        format!("{f}:78:6: [[drill.inject]] #3: `by = \"nobody-here\"` is not a person in the roster"),
        format!("{f}:82:8: a `no-ack` inject needs `duration"),
        format!("{f}:83:6: bad duration `soon`"),
    ] {
        assert!(r.stdout.contains(&want) || r.stderr.contains(&want), "missing {want}:\n{}{}", r.stdout, r.stderr);
    }
    assert!(
        r.stderr.contains("`count` does not apply to an `ack` inject") || r.stdout.contains("`count` does not apply"),
        "{}",
        r.stderr
    );
}

const TARGETS: &str = "[targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n[targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n";

fn runs(d: &Daemon) -> Vec<Value> {
    d.json(&["drill", "list"])["runs"].as_array().unwrap().clone()
}

#[test]
fn drills_through_the_daemon_survive_restarts_and_never_touch_live_incidents() {
    let mut d = Daemon::start("drill/inline", TARGETS);
    // The fixture's schedule (every 2 minutes) has an occurrence within the
    // last hour, so the scheduler starts one drill right away, once.
    d.wait_for("the scheduled drill", || {
        runs(&d).iter().any(|r| r["origin"] == "schedule" && r["status"] == "completed")
    });

    let md = d.ok(&["drill", "run", "checkout-drill", "--seed", "5"]);
    assert!(md.contains("# After-action report: checkout-drill drill checkout-drill.m"), "{md}");
    let list = d.json(&["drill", "list"]);
    let manual = list["runs"].as_array().unwrap().iter().find(|r| r["origin"] == "manual").unwrap().clone();
    let id = manual["id"].as_str().unwrap().to_string();
    assert_eq!(manual["status"], "completed");
    assert!(manual["score"].as_u64().unwrap() <= 100);
    let pb = &list["playbooks"][0];
    assert_eq!(pb["id"], "checkout-drill");
    assert_eq!(pb["never_drilled"], false);
    assert_eq!(pb["changed_since_last_drill"], false);
    assert!(pb["next"]["local"].as_str().unwrap().contains("CE"), "{}", pb["next"]); // Europe/Berlin: CET or CEST
    // Its own journal file, and no live incident in the main journal.
    assert!(d.dir.path().join(format!("state/drills/{id}.db")).exists());
    assert_eq!(d.json(&["incident", "list"])["incidents"].as_array().unwrap().len(), 0);
    let rep = d.json(&["drill", "report", &id, "--format", "json"]);
    assert_eq!(rep["run_id"], id.as_str());
    assert_eq!(rep["incident_id"], format!("DRL-{id}-1").as_str(), "daemon drill incidents are named after their run");
    assert!(rep["communications"]["notices_captured"]["regulator"].as_u64().unwrap() >= 1);

    // Suspend is persisted; after a restart the runs and the suspension are still there.
    d.ok(&["drill", "suspend", "checkout-drill"]);
    d.restart();
    let list = d.json(&["drill", "list"]);
    assert_eq!(list["playbooks"][0]["suspended"], true);
    assert!(list["runs"].as_array().unwrap().iter().any(|r| r["id"] == id.as_str()));
    let md = d.ok(&["drill", "report", &id]);
    assert!(md.contains("## Improvement plan"));
    d.ok(&["drill", "resume", "checkout-drill"]);
    assert_eq!(d.json(&["drill", "list"])["playbooks"][0]["suspended"], false);

    // A real-clock drill keeps running; a second one of the same playbook is refused.
    d.wait_for("no running drills", || runs(&d).iter().all(|r| r["status"] != "running"));
    let started = d.json(&["drill", "run", "checkout-drill", "--clock", "real"]);
    assert_eq!(started["status"], "running");
    let again = d.cli(&["drill", "run", "checkout-drill"]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(again.stderr.contains("is still running"), "{}", again.stderr);
    // People act on the running drill's incident through the normal CLI; it
    // lives in the drill's own journal, never among live incidents.
    let drill_incident = format!("DRL-{}-1", started["id"].as_str().unwrap());
    d.wait_for("the drill incident", || d.cli(&["incident", "show", &drill_incident]).code == 0);
    let shown = d.json(&["incident", "show", &drill_incident]);
    assert_eq!(shown["mode"], "drill");
    d.ok(&["update", &drill_incident, "--note", "bridge call opened by a person during the drill"]);
    assert!(d.ok(&["timeline", &drill_incident]).contains("bridge call opened by a person"));
    assert_eq!(d.json(&["incident", "list"])["incidents"].as_array().unwrap().len(), 0);
    // A restart interrupts it, and says so. The playbook is edited meanwhile:
    // the list flags it as changed since its last drill.
    let file = d.dir.path().join("playbooks/checkout-drill.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n# revised after the drill\n")).unwrap();
    d.restart();
    let real_id = started["id"].as_str().unwrap();
    d.wait_for("the interrupted run", || runs(&d).iter().any(|r| r["id"] == real_id && r["status"] == "interrupted"));
    let no = d.cli(&["drill", "report", real_id]);
    assert_eq!(no.code, 3);
    assert!(no.stderr.contains("interrupted"), "{}", no.stderr);
    let pb = &d.json(&["drill", "list"])["playbooks"][0];
    assert_eq!(pb["changed_since_last_drill"], true, "{pb}");
    assert_ne!(pb["hash"], pb["last_run"]["hash"]);
    let missing = d.cli(&["drill", "report", "nope"]);
    assert_eq!(missing.code, 3);
}
