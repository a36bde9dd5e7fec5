//! End-to-end: steering a running daemon drill (x60 clock) with `crisis drill
//! cancel`, `pause`, `resume` and `inject`, and drills yielding to a sev1
//! live incident until it is resolved; plus the scheduler deferring an
//! occurrence due while drills yield.
use crate::common::*;
use serde_json::{Value, json};

const TARGETS: &str = "[targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n[targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n";

fn runs(d: &Daemon) -> Vec<Value> {
    d.json(&["drill", "list"])["runs"].as_array().unwrap().clone()
}

fn status(d: &Daemon, id: &str) -> String {
    runs(d).iter().find(|r| r["id"] == id).map(|r| r["status"].as_str().unwrap().to_string()).unwrap_or_default()
}

/// Starts an x60 drill of the manual fixture playbook and waits for its incident; returns (run id, drill incident).
fn start_drill(d: &Daemon) -> (String, String) {
    let started = d.json(&["drill", "run", "control-drill"]);
    assert_eq!(started["status"], "running", "{started}");
    assert_eq!(started["clock"], "x60");
    let id = started["id"].as_str().unwrap().to_string();
    let inc = format!("DRL-{id}-1");
    d.wait_for("the drill incident", || d.cli(&["incident", "show", &inc]).code == 0);
    (id, inc)
}

fn has_event(d: &Daemon, inc: &str, kind: &str, f: impl Fn(&Value) -> bool) -> bool {
    d.events(inc).iter().any(|e| e["kind"] == kind && f(&e["data"]))
}

fn drill_ms(reply: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(reply["drill_time"].as_str().unwrap()).unwrap().timestamp_millis()
}

#[test]
fn pause_stops_the_drill_clock_and_resume_lets_it_run_again() {
    let d = Daemon::start("drill/control", TARGETS);
    let (id, inc) = start_drill(&d);

    let paused = d.json(&["drill", "pause", &id]);
    assert_eq!((paused["action"].as_str(), paused["paused"].as_bool()), (Some("pause"), Some(true)), "{paused}");
    assert_eq!(paused["by"], "bootstrap-admin");
    assert_eq!(paused["drill_incident"], inc.as_str());
    assert_eq!(paused["held_by"], json!([{"by": "controller", "id": "bootstrap-admin"}]));
    let real = std::time::Instant::now();
    assert!(has_event(&d, &inc, "drill_paused", |e| e["by"] == "bootstrap-admin" && e["live_incident"].is_null()));
    let again = d.cli(&["drill", "pause", &id]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(again.stderr.contains("already paused (by bootstrap-admin)"), "{}", again.stderr);
    let human = d.ok(&["timeline", &inc]);
    assert!(human.contains("drill paused by bootstrap-admin"), "{human}");

    let resumed = d.json(&["drill", "resume", &id]);
    let real_ms = real.elapsed().as_millis() as i64;
    assert_eq!((resumed["action"].as_str(), resumed["paused"].as_bool()), (Some("resume"), Some(false)), "{resumed}");
    // At x60 the real time spent above is a minute of drill time per second;
    // paused, the drill clock moved by no more than the instant it took to resume.
    let moved = drill_ms(&resumed) - drill_ms(&paused);
    assert!(moved * 2 < real_ms * 60, "drill clock moved {moved} ms in {real_ms} real ms while paused");
    assert!(has_event(&d, &inc, "drill_resumed", |e| e["by"] == "bootstrap-admin"
        && e["clock_running"] == true
        && e["paused_ms"].as_i64().unwrap() > 0));
    let not_paused = d.cli(&["drill", "resume", &id]);
    assert_eq!(not_paused.code, 1);
    assert!(not_paused.stderr.contains("not paused"), "{}", not_paused.stderr);
    // Once resumed, drill time runs on again.
    let t = drill_ms(&d.json(&["drill", "pause", &id]));
    assert!(t > drill_ms(&resumed), "the clock ran between resume and the next pause");
    d.ok(&["drill", "cancel", &id]);
}

#[test]
fn cancel_ends_the_run_cancelled_and_a_finished_run_cannot_be_steered() {
    let d = Daemon::start("drill/control", TARGETS);
    let (id, inc) = start_drill(&d);
    let c = d.json(&["drill", "cancel", &id, "--reason", "the bridge line is needed for real work"]);
    assert_eq!(c["action"], "cancel");
    assert_eq!(c["by"], "bootstrap-admin");
    assert!(c["result"].as_str().unwrap().contains("cancelled by bootstrap-admin"), "{c}");
    d.wait_for("the cancelled run", || status(&d, &id) == "cancelled");
    let rep = d.json(&["drill", "report", &id, "--format", "json"]);
    assert_eq!(rep["status"], "cancelled");
    assert_eq!(rep["score"]["verdict"], "cancelled", "cancelled runs are not judged pass or fail");
    let row = runs(&d).into_iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(row["verdict"], "cancelled");
    let cancelled: Vec<&Value> =
        rep["timeline"].as_array().unwrap().iter().filter(|t| t["kind"] == "drill_cancelled").collect();
    assert_eq!(cancelled.len(), 1, "{}", rep["timeline"]);
    assert!(
        cancelled[0]["text"].as_str().unwrap().contains("by bootstrap-admin: the bridge line is needed"),
        "{}",
        cancelled[0]
    );
    assert!(rep["controller"].as_array().unwrap().iter().any(|e| e["kind"] == "cancel"));
    // The drill's deadlines (report, acknowledgement, escalation) were pending: they were dropped.
    assert!(!cancelled[0]["text"].as_str().unwrap().contains(" 0 timer(s)"), "{}", cancelled[0]);
    assert!(d.cli(&["incident", "show", &inc]).code != 0, "the finished drill's engine is gone");

    for args in [vec!["drill", "cancel", &id], vec!["drill", "pause", &id], vec!["drill", "resume", &id]] {
        let r = d.cli(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stdout);
        assert!(r.stderr.contains("is not running (it ended `cancelled`)"), "{args:?}: {}", r.stderr);
    }
    let unknown = d.cli(&["drill", "cancel", "control-drill.m1"]);
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("no drill run `control-drill.m1`"), "{}", unknown.stderr);
    let unknown = d.cli(&["drill", "inject", "nope.m1", "no-ack", "--payload", r#"{"duration":"5m"}"#]);
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    // A virtual drill finishes inside its request: there is nothing left to steer.
    let done = d.json(&["drill", "run", "control-drill", "--clock", "virtual"]);
    let done_id = done["id"].as_str().unwrap();
    let r = d.cli(&["drill", "cancel", done_id]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("only a running drill can be steered"), "{}", r.stderr);
}

#[test]
fn the_controller_injects_into_a_running_drill_with_checked_input() {
    let d = Daemon::start("drill/control", TARGETS);
    let (id, inc) = start_drill(&d);
    let v = d.json(&["drill", "inject", &id, "complaint-burst", "--target", "phone", "--payload", r#"{"count": 3}"#]);
    assert_eq!(v["action"], "inject");
    assert_eq!(v["by"], "bootstrap-admin");
    assert!(v["result"].as_str().unwrap().contains(&format!("3 of 3 complaints attached to {inc}")), "{v}");
    assert!(
        has_event(&d, &inc, "controller_inject", |e| e["by"] == "bootstrap-admin" && e["inject"] == "complaint-burst")
    );
    assert!(d.ok(&["timeline", &inc]).contains("controller inject by bootstrap-admin: complaint-burst"));

    for (args, want) in [
        (vec!["complaint-brust"], "unknown inject kind `complaint-brust`"),
        (vec!["alert"], "exactly one alert"),
        (vec!["no-ack", "--target", "bob"], "--target does not apply to a `no-ack` inject"),
        (vec!["step-done", "--target", "brigde"], "names step `brigde`, which this playbook does not have"),
        (vec!["no-ack", "--payload", r#"{"duration":"5m","colour":"red"}"#], "unknown inject key(s) colour"),
        (vec!["no-ack", "--payload", r#"{"duration":"soon"}"#], "bad duration `soon`"),
        (vec!["no-ack", "--payload", r#"{"at":"5m","duration":"5m"}"#], "a controller inject plays now"),
    ] {
        let mut a = vec!["drill", "inject", id.as_str()];
        a.extend(args.iter().copied());
        let r = d.cli(&a);
        assert_eq!(r.code, 2, "{a:?}: {} {}", r.stdout, r.stderr);
        assert!(r.stderr.contains(want), "{a:?}: {}", r.stderr);
    }
    let r = d.cli(&["drill", "inject", &id, "no-ack", "--payload", "[1]"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("expected a JSON object"), "{}", r.stderr);

    // Steering is the exercise controller's (admin) job: a responder token is refused.
    let v = d.json(&["token", "create", "li-wei", "--role", "responder"]);
    let secret = v["secret"].as_str().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let r = agent
        .post(&d.url(&format!("/v1/drills/runs/{id}/pause")))
        .header("Authorization", &format!("Bearer {secret}"))
        .send_json(json!({}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    d.ok(&["drill", "cancel", &id]);
    d.wait_for("the cancelled run", || status(&d, &id) == "cancelled");
    let rep = d.json(&["drill", "report", &id, "--format", "json"]);
    let row = rep["timeline"].as_array().unwrap().iter().find(|t| t["kind"] == "controller_inject").cloned();
    assert!(
        row.is_some_and(|r| r["text"].as_str().unwrap().contains("3 customer complaints by phone")),
        "{}",
        rep["timeline"]
    );
}

#[test]
fn a_sev1_live_incident_pauses_a_running_scheduled_drill_until_it_is_resolved() {
    let d = Daemon::start("drill/control", TARGETS);
    // The every-minute schedule has an occurrence within the grace period: it starts right away.
    d.wait_for("the scheduled drill", || {
        runs(&d).iter().any(|r| r["origin"] == "schedule" && r["status"] == "running")
    });
    let run = runs(&d).into_iter().find(|r| r["origin"] == "schedule" && r["status"] == "running").unwrap();
    let run_id = run["id"].as_str().unwrap().to_string();
    let drill_inc = format!("DRL-{run_id}-1");
    d.wait_for("the drill incident", || d.cli(&["incident", "show", &drill_inc]).code == 0);

    let live = d.post_incident(&json!({
        "playbook": "control-drill",
        "severity": "sev1",
        "fields": { "nature": "checkout returns 500", "scope": "everyone" },
        "labels": { "alertname": "CheckoutDown", "service": "checkout" },
    }));
    d.wait_for("the drill to yield", || {
        has_event(&d, &drill_inc, "drill_paused", |e| e["by"] == "crisis" && e["live_incident"] == live.as_str())
    });
    d.wait_for("the live incident's record", || {
        has_event(&d, &live, "drill_held", |e| {
            e["run_id"] == run_id.as_str() && e["drill_incident"] == drill_inc.as_str()
        })
    });
    // While held, the controller's resume cannot let the drill run.
    let r = d.cli(&["drill", "resume", &run_id]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("held by live incident {live}")), "{}", r.stderr);

    d.ok(&["resolve", &live]);
    d.wait_for("the drill to resume", || {
        has_event(&d, &drill_inc, "drill_resumed", |e| {
            e["live_incident"] == live.as_str() && e["clock_running"] == true
        })
    });
    d.wait_for("the live incident's release record", || {
        has_event(&d, &live, "drill_released", |e| e["run_id"] == run_id.as_str())
    });
    assert!(
        d.ok(&["timeline", &live])
            .contains(&format!("drill {run_id} ({drill_inc}) paused while this incident is open"))
    );
    assert_eq!(status(&d, &run_id), "running");
}

#[test]
fn an_occurrence_due_while_drills_yield_starts_afterwards_instead_of_being_missed() {
    use crisis::daemon::drills::{DrillService, Yielding, tick};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let f = repo().join("tests/fixtures/drill/inline");
    let cfg = format!(
        "playbooks = {:?}\nroster = {:?}\ncustomers = {:?}\nstate_dir = {:?}\n{TARGETS}[drills]\ngrace = \"30s\"\n",
        f.join("playbooks"),
        f.join("roster.toml"),
        f.join("customers.csv"),
        dir.path().join("state")
    );
    std::fs::write(dir.path().join("crisis.toml"), cfg).unwrap();
    let config = crisis::config::load(&dir.path().join("crisis.toml")).unwrap_or_else(|d| panic!("{d:?}"));
    let g = Arc::new(crisis::incident::loader::load(config, 1, 0).generation.expect("valid fixture"));
    let svc = Arc::new(DrillService::open(&dir.path().join("state")).unwrap());
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    svc.index.set_last_checked("checkout-drill", at("2026-06-01T10:00:30Z").timestamp_millis()).unwrap();
    // A live sev1 opened at 10:01: the 10:02 occurrence is not decided while it is open.
    *svc.yielding.lock().unwrap() = Yielding { since: Some(at("2026-06-01T10:01:00Z").timestamp_millis()), last: None };
    assert!(tick(&svc, &g, at("2026-06-01T10:02:10Z")).unwrap().is_empty());
    assert!(svc.index.list(10).unwrap().is_empty());
    // It was resolved at 10:03:50: 10:02 is 110 s late, beyond the 30 s grace, yet it runs now.
    let (from, to) = (at("2026-06-01T10:01:00Z").timestamp_millis(), at("2026-06-01T10:03:50Z").timestamp_millis());
    *svc.yielding.lock().unwrap() = Yielding { since: None, last: Some((from, to)) };
    let started = tick(&svc, &g, at("2026-06-01T10:03:50Z")).unwrap();
    assert_eq!(started.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["checkout-drill.20260601T1002Z"]);
}
