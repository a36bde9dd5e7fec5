//! Crash safety with a real kill -9: nothing acknowledged is lost, timers that
//! fell due while the daemon was down fire once, and an intent interrupted
//! between execution and result is retried once with its original id.
use crate::common::*;

#[test]
fn sigkill_during_triggers_loses_no_acknowledged_trigger() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    let config = d.config.clone();
    let dir = d.dir.path().to_path_buf();
    // A client thread sends triggers as fast as it can, recording each one the daemon acknowledged.
    let sender = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0..400 {
            let r = crisis_in(
                &dir,
                &[
                    "--config",
                    config.to_str().unwrap(),
                    "--json",
                    "trigger",
                    "outage",
                    "--scope",
                    "EU",
                    "--field",
                    "nature=n",
                    "--label",
                    &format!("service=s{i}"),
                    "--label",
                    "region=eu",
                ],
            );
            if r.code == 0 {
                let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
                acked.push(v["incident"]["id"].as_str().unwrap().to_string());
            } else if r.code == 4 {
                break;
            }
        }
        acked
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    d.kill9();
    let acked = sender.join().unwrap();
    assert!(!acked.is_empty(), "some triggers were acknowledged before the kill");
    d.restart();
    let listed = d.json(&["incident", "list"]);
    let ids: Vec<&str> = listed["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    for id in &acked {
        assert!(ids.contains(&id.as_str()), "acknowledged trigger {id} lost after kill -9");
    }
    assert!(d.ok(&["verify"]).contains("journal intact"));
}

#[test]
fn timers_due_while_down_fire_once_after_restart() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    let id = d.json(&["trigger", "outage", "--scope", "EU", "--field", "nature=n"])["incident"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.wait_for("assign phase", || d.json(&["incident", "show", &id])["phase"] == "assign");
    d.kill9();
    // The 2s escalation falls due while the daemon is down.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    d.restart();
    d.wait_for("the late escalation", || d.json(&["incident", "show", &id])["escalations"] == 1);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(d.json(&["incident", "show", &id])["escalations"], 1, "fired exactly once");
}

#[test]
fn intent_interrupted_before_its_result_is_retried_once_with_its_id() {
    let mut d = Daemon::start_with_env("engine", LOG_TARGETS, &[("CRISIS_FAILPOINT", "after-execute")]);
    d.json(&["trigger", "outage", "--scope", "EU", "--field", "nature=n"]);
    // The worker runs the first intent (the report notice) and stops before journaling its result.
    d.wait_for("the failpoint", || d.log().contains("failpoint after-execute reached for INC-1.1"));
    d.kill9();
    assert_eq!(d.log().matches("invocation_id=\"INC-1.1\"").count(), 1, "executed once before the crash");
    d.restart_with_env(&[]);
    d.wait_for("the retried result", || d.ok(&["--json", "timeline", "INC-1"]).contains("effect_result"));
    let log = d.log();
    assert!(log.contains("retrying side effect with its original invocation id"), "{log}");
    let timeline = d.ok(&["--json", "timeline", "INC-1"]);
    let results = timeline.lines().filter(|l| l.contains("\"effect_result\"") && l.contains("\"INC-1.1\"")).count();
    assert_eq!(results, 1, "one journaled result for INC-1.1:\n{timeline}");
    // Executed exactly twice in all: once before the crash, once after; never again.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let executions =
        d.log().lines().filter(|l| l.contains("notification (log target)") && l.contains("INC-1.1")).count();
    assert_eq!(executions, 2, "{}", d.log());
}
