//! A failed fsync of the journal ends the daemon at once (exit 70) instead
//! of being survived; after a restart nothing that was acknowledged is lost.
use crate::common::*;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn spawn(dir: &Path, config: &Path, failpoint: Option<&str>, run: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("daemon-{run}.log"))).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["--config", config.to_str().unwrap(), "daemon"])
        .current_dir(dir)
        .env_remove("CRISIS_CONFIG")
        .env_remove("CRISIS_FAILPOINT")
        .env("CRISIS_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    if let Some(f) = failpoint {
        cmd.env("CRISIS_FAILPOINT", f);
    }
    cmd.spawn().expect("start daemon")
}

fn wait_healthy(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ureq::get(&format!("http://127.0.0.1:{port}/healthz")).call().is_ok() {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited while starting");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("daemon did not become healthy");
}

#[test]
fn a_failed_fsync_stops_the_daemon_and_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&repo().join("tests/fixtures/engine"), dir);
    let port = free_port();
    let config = write_config(dir, port, LOG_TARGETS);
    let mut child = spawn(dir, &config, Some("fsync-error-after:12"), 1);
    wait_healthy(port, &mut child);
    let token = std::fs::read_to_string(dir.join("state/api.token")).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();

    let mut acked = Vec::new();
    let mut refused = false;
    for i in 0..300 {
        let body = json!({"playbook": "outage", "scope": "EU", "fields": {"nature": "n"}, "labels": {"service": format!("s{i}"), "region": "eu"}});
        let r = agent
            .post(&format!("http://127.0.0.1:{port}/v1/incidents"))
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(&body);
        match r {
            Ok(mut r) if r.status() == 201 || r.status() == 200 => {
                let v: serde_json::Value = r.body_mut().read_json().unwrap();
                acked.push(v["incident"]["id"].as_str().unwrap().to_string());
            }
            _ => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "the daemon kept acknowledging triggers after its fsync failed");
    assert!(!acked.is_empty(), "triggers were acknowledged before the failure");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon is still running after its fsync failed");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.join("daemon-1.log")).unwrap();
    assert_eq!(status.code(), Some(70), "{log}");
    assert!(log.contains("cannot flush") && log.contains("exit 70"), "{log}");

    let mut child = spawn(dir, &config, None, 2);
    wait_healthy(port, &mut child);
    let cli = |args: &[&str]| {
        let mut full = vec!["--config", config.to_str().unwrap()];
        full.extend_from_slice(args);
        crisis_in(dir, &full)
    };
    let listed = cli(&["--json", "incident", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let ids: Vec<&str> = listed["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    for id in &acked {
        assert!(ids.contains(&id.as_str()), "acknowledged trigger {id} lost after the fsync failure");
    }
    let verify = cli(&["verify"]);
    assert!(verify.code == 0 && verify.stdout.contains("journal intact"), "{}{}", verify.stdout, verify.stderr);
    let _ = child.kill();
    let _ = child.wait();
}
