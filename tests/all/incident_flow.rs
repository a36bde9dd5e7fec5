//! End-to-end: a whole incident through all six phases with the real daemon and CLI.
use crate::common::*;
use serde_json::Value;

fn trigger(d: &Daemon, service: &str) -> Value {
    d.json(&[
        "trigger",
        "outage",
        "--title",
        "Checkout down in EU",
        "--scope",
        "EU shoppers",
        "--field",
        "nature=checkout returns 500",
        "--label",
        &format!("service={service}"),
        "--label",
        "region=eu",
    ])
}

fn wait_phase(d: &Daemon, id: &str, phase: &str) {
    d.wait_for(&format!("{id} to reach {phase}"), || d.json(&["incident", "show", id])["phase"] == phase);
}

#[test]
fn a_whole_incident_through_six_phases_from_the_cli() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let v = trigger(&d, "checkout");
    assert_eq!(v["deduped"], false);
    let id = v["incident"]["id"].as_str().unwrap().to_string();
    assert_eq!(id, "INC-1");

    // The report notice is sent, the plan activates, alice (duty rota) is commander.
    wait_phase(&d, &id, "assign");
    let inc = d.json(&["incident", "show", &id]);
    assert_eq!(inc["roles"]["commander"], "alice");
    assert_eq!(inc["roles"]["liaison"], "bob");

    // A duplicate trigger attaches instead of opening another incident.
    let dup = trigger(&d, "checkout");
    assert_eq!(dup["deduped"], true);
    assert_eq!(dup["incident"]["id"], id.as_str());

    d.ok(&["ack", &id, "--as", "alice"]);
    wait_phase(&d, &id, "act");
    let err = d.cli(&["step", &id, "tell-customers", "done"]);
    assert_eq!(err.code, 1, "{}", err.stderr);
    assert!(err.stderr.contains("waits for dispatch"), "{}", err.stderr);
    d.ok(&["step", &id, "dispatch", "done", "--note", "two engineers on site", "--as", "alice"]);
    d.ok(&["update", &id, "--note", "gateway restarted, watching error rate", "--as", "alice"]);
    // Appease and notify steps run by themselves; then the plan waits for the outcome.
    wait_phase(&d, &id, "outcome");
    d.ok(&["resolve", &id, "--as", "alice"]);
    d.ok(&[
        "outcome",
        &id,
        "--cause",
        "expired TLS certificate on the gateway",
        "--process",
        "rotated the certificate, restarted",
        "--aftermath",
        "apology SMS and coupons to affected customers",
        "--as",
        "alice",
    ]);
    let inc = d.json(&["incident", "show", &id]);
    assert_eq!(inc["status"], "closed");

    let report = d.json(&["report", &id, "--format", "json"]);
    for p in ["report", "activate", "assign", "act", "track", "outcome"] {
        let row = report["phases"].as_array().unwrap().iter().find(|r| r["phase"] == p).unwrap();
        assert!(row["entered"].is_string() && row["completed"].is_string(), "phase {p}: {row}");
    }
    assert_eq!(report["cause"], "expired TLS certificate on the gateway");
    assert_eq!(report["duplicate_triggers"], 1);
    assert_eq!(report["roles"]["commander"], "alice");
    assert!(report["times"]["to_acknowledge_ms"].as_i64().unwrap() >= 0);
    assert!(report["times"]["to_resolve_ms"].as_i64().unwrap() >= 0);
    // Three affected customers by SMS, counted by channel; superiors notified.
    assert_eq!(report["customer_messages"]["sms"]["sent"], 3, "{report}");
    assert_eq!(report["customers_reached"], 3);
    assert!(report["notifications"]["superiors"]["sent"].as_u64().unwrap() >= 2);
    let md = d.ok(&["report", &id]);
    assert!(md.contains("# Outcome report: INC-1"), "{md}");
    assert!(md.contains("| sms | 3 | 0 | 0 |"), "{md}");
    assert!(md.contains("dispatch done by alice: two engineers on site"), "{md}");

    // No customer contact detail in the report, the journal or the log.
    let timeline = d.ok(&["--json", "timeline", &id]);
    for secret in ["+86-555-0101", "lin.wei@example.com", "anna@example.org", "Lin Wei", "Anna Schmidt"] {
        assert!(!md.contains(secret) && !report.to_string().contains(secret), "{secret} in report");
        assert!(!timeline.contains(secret), "{secret} in journal");
        assert!(!d.log().contains(secret), "{secret} in the daemon log");
    }

    // Acting on a closed incident is refused clearly.
    let r = d.cli(&["update", &id, "--note", "more"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is closed"), "{}", r.stderr);

    // After resolution the same dedup key opens a new incident.
    let again = trigger(&d, "checkout");
    assert_eq!(again["deduped"], false);
    assert_eq!(again["incident"]["id"], "INC-2");

    assert!(d.ok(&["verify"]).contains("journal intact"));
}

#[test]
fn bad_input_gets_the_documented_exit_codes() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    // Unknown playbook: exit 3 with nearby ids.
    let r = d.cli(&["trigger", "outgae", "--scope", "x", "--field", "nature=y"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("did you mean outage"), "{}", r.stderr);
    // Missing required report field: exit 2 naming it.
    let r = d.cli(&["trigger", "outage", "--scope", "EU"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("missing report field `nature`"), "{}", r.stderr);
    // Unknown incident: exit 3 with nearby ids.
    trigger(&d, "checkout");
    let r = d.cli(&["incident", "show", "INC-9"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("INC-1"), "{}", r.stderr);
    // Bad usage: exit 2 (clap).
    assert_eq!(d.cli(&["step", "INC-1"]).code, 2);

    // Wrong or missing token: 401. Malformed JSON: 400 with the reason.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = agent.get(&d.url("/v1/incidents")).call().unwrap();
    assert_eq!(r.status(), 401);
    let r = agent.get(&d.url("/v1/incidents")).header("Authorization", "Bearer nope").call().unwrap();
    assert_eq!(r.status(), 401);
    let mut r = agent
        .post(&d.url("/v1/incidents"))
        .header("Authorization", &format!("Bearer {}", d.token()))
        .header("Content-Type", "application/json")
        .send("{\"playbook\": ")
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.body_mut().read_to_string().unwrap().contains("malformed request"));

    // Daemon down: exit 4 with a hint.
    d.kill9();
    let r = d.cli(&["incident", "list"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("crisis daemon"), "{}", r.stderr);
}

#[test]
fn verify_detects_an_edited_or_deleted_journal_row() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let id = trigger(&d, "checkout")["incident"]["id"].as_str().unwrap().to_string();
    d.ok(&["update", &id, "--note", "first note"]);
    d.ok(&["update", &id, "--note", "second note"]);
    assert_eq!(d.cli(&["verify"]).code, 0);
    let db = rusqlite::Connection::open(d.dir.path().join("state/journal.db")).unwrap();
    db.execute("UPDATE events SET data = replace(data, 'first note', 'nothing happened') WHERE kind = 'note'", [])
        .unwrap();
    let r = d.cli(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("was edited"), "{}", r.stderr);
    db.execute("UPDATE events SET data = replace(data, 'nothing happened', 'first note') WHERE kind = 'note'", [])
        .unwrap();
    assert_eq!(d.cli(&["verify"]).code, 0);
    db.execute("DELETE FROM events WHERE seq = 2", []).unwrap();
    let r = d.cli(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
}
