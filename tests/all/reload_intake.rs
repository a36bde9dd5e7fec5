//! End-to-end: hot reload, status, Alertmanager and event intake, metrics.
use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn playbook_path(d: &Daemon) -> std::path::PathBuf {
    d.dir.path().join("playbooks/outage.toml")
}

fn status(d: &Daemon) -> Value {
    d.json(&["status"])
}

fn generation(d: &Daemon) -> u64 {
    status(d)["reload"]["applied"]["generation"].as_u64().unwrap()
}

fn metric(d: &Daemon, line_prefix: &str) -> f64 {
    let text = ureq::get(&d.url("/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    let mut r =
        agent().post(&d.url(path)).header("Authorization", &format!("Bearer {}", d.token())).send_json(body).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn trigger(d: &Daemon, service: &str) -> Value {
    d.json(&[
        "trigger",
        "outage",
        "--scope",
        "EU",
        "--field",
        "nature=n",
        "--label",
        &format!("service={service}"),
        "--label",
        "region=eu",
    ])
}

#[test]
fn edits_apply_live_broken_edits_are_rejected_and_incidents_stay_pinned() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let g0 = generation(&d);
    let before = trigger(&d, "checkout")["incident"].clone();
    let old_hash = before["playbook_hash"].as_str().unwrap().to_string();

    // An edit: a new manual step. The watcher applies it with no restart.
    let original = std::fs::read_to_string(playbook_path(&d)).unwrap();
    let edited = original.replace(
        "[track]",
        "[[act]]\nid = \"post-mortem-prep\"\nkind = \"manual\"\ntasks = [\"Collect logs\"]\n\n[track]",
    );
    std::fs::write(playbook_path(&d), &edited).unwrap();
    d.wait_for("the edit to apply", || generation(&d) > g0);
    let after = trigger(&d, "search")["incident"].clone();
    assert_ne!(after["playbook_hash"], before["playbook_hash"], "the next trigger runs the new version");
    let shown = d.json(&["incident", "show", before["id"].as_str().unwrap()]);
    assert_eq!(shown["playbook_hash"], old_hash.as_str(), "the earlier incident stays on its pinned version");

    // A broken edit: rejected with path:line:col, the previous generation keeps serving.
    let g1 = generation(&d);
    std::fs::write(playbook_path(&d), edited.replace("within = \"10m\"", "within = \"ten minutes\"")).unwrap();
    let r = d.cli(&["reload"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("playbooks/outage.toml:") && r.stderr.contains("bad duration `ten minutes`"),
        "{}",
        r.stderr
    );
    let line = r.stderr.lines().find(|l| l.contains("bad duration")).unwrap();
    let parts: Vec<&str> = line.split(':').collect();
    assert!(parts[1].parse::<u32>().is_ok() && parts[2].parse::<u32>().is_ok(), "path:line:col in {line}");
    let st = status(&d);
    assert_eq!(st["reload"]["applied"]["generation"], g1);
    assert_eq!(st["reload"]["on_disk"]["differs"], true);
    assert!(st["reload"]["errors"][0].as_str().unwrap().contains("bad duration"), "{st}");
    assert_eq!(metric(&d, "crisis_config_last_reload_successful "), 0.0);
    let still = trigger(&d, "payments")["incident"].clone();
    assert_eq!(still["playbook_hash"], after["playbook_hash"], "the last good version keeps serving");

    // Fixing it applies.
    std::fs::write(playbook_path(&d), &original).unwrap();
    let r = d.cli(&["reload"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("applied") || r.stdout.starts_with("unchanged"), "{}", r.stdout);
    d.wait_for("in sync", || status(&d)["reload"]["on_disk"]["differs"] == false);
    assert_eq!(metric(&d, "crisis_config_last_reload_successful "), 1.0);
    assert!(d.ok(&["reload"]).starts_with("unchanged"));

    // A deleted playbook stops new triggers only.
    let open_id = trigger(&d, "mail")["incident"]["id"].as_str().unwrap().to_string();
    std::fs::write(d.dir.path().join("playbooks/other.toml"), original.replace("id = \"outage\"", "id = \"other\""))
        .unwrap();
    d.ok(&["reload"]);
    std::fs::remove_file(playbook_path(&d)).unwrap();
    let r = d.cli(&["reload"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(d.cli(&["trigger", "outage", "--scope", "x", "--field", "nature=y"]).code, 3);
    d.ok(&["update", &open_id, "--note", "still running on its pinned version"]);
}

#[test]
fn a_burst_of_writes_gives_few_reloads_and_ends_on_the_final_content() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let original = std::fs::read_to_string(playbook_path(&d)).unwrap();
    let applied_before = metric(&d, "crisis_reloads_total{result=\"applied\"}");
    let start = Instant::now();
    for i in 0..100 {
        let text = original.replace("name = \"Checkout outage\"", &format!("name = \"Checkout outage v{i}\""));
        std::fs::write(playbook_path(&d), text).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(start.elapsed() < Duration::from_secs(3));
    d.wait_for("the final content", || d.json(&["status"])["reload"]["on_disk"]["differs"] == false);
    let pbs = d.json(&["trigger", "outage", "--scope", "x", "--field", "nature=y"]);
    assert_eq!(pbs["incident"]["title"], "Checkout outage v99");
    std::thread::sleep(Duration::from_millis(800));
    let applied = metric(&d, "crisis_reloads_total{result=\"applied\"}") - applied_before;
    assert!((1.0..=10.0).contains(&applied), "{applied} reloads applied for 100 writes");
}

#[test]
fn restart_only_settings_are_refused_and_broken_start_is_not_ready() {
    let d = Daemon::start("engine", LOG_TARGETS);
    // The CLI reads its own copy of the config (still pointing at the running
    // daemon) while the daemon's file asks for a new listen address.
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    let cli_config = d.dir.path().join("cli.toml");
    std::fs::write(&cli_config, &cfg).unwrap();
    std::fs::write(&d.config, cfg.replace(&format!("127.0.0.1:{}", d.port), "127.0.0.1:1")).unwrap();
    let r = crisis_in(d.dir.path(), &["--config", cli_config.to_str().unwrap(), "reload"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("restart required: `listen` changed"), "{}", r.stderr);
    assert!(r.stderr.contains("crisis.toml:2:1:"), "{}", r.stderr);
    drop(d);

    // A daemon started on a broken directory with no earlier generation: up but not ready.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/engine"), dir.path());
    let good = std::fs::read_to_string(dir.path().join("playbooks/outage.toml")).unwrap();
    std::fs::write(
        dir.path().join("playbooks/outage.toml"),
        good.replace("severity = \"sev2\"", "severity = \"sev9\""),
    )
    .unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, LOG_TARGETS);
    let mut child = std::process::Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "daemon"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = |expect: u16| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = agent().get(&format!("http://127.0.0.1:{port}/readyz")).call()
                && r.status().as_u16() == expect
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(ready(503), "broken start is not ready");
    std::fs::write(dir.path().join("playbooks/outage.toml"), &good).unwrap();
    assert!(ready(200), "fixing the file makes it ready without a restart");
    let _ = child.kill();
    let _ = child.wait();

    // Restarted on a broken directory, it serves the last good generation from the journal.
    std::fs::write(
        dir.path().join("playbooks/outage.toml"),
        good.replace("severity = \"sev2\"", "severity = \"sev9\""),
    )
    .unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "daemon"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(ready(200), "serves the persisted last good generation");
    let r = crisis_in(dir.path(), &["--config", config.to_str().unwrap(), "--json", "status"]);
    let st: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(st["reload"]["errors"][0].as_str().unwrap_or("").contains("sev9"), "{st}");
    let _ = child.kill();
    let _ = child.wait();
}

fn am_payload(status: &str, service: &str) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutDown\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "crisis",
        "groupLabels": {"alertname": "CheckoutDown"},
        "commonLabels": {"alertname": "CheckoutDown", "service": service, "region": "eu"},
        "commonAnnotations": {"summary": "Checkout error rate above 20%"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "CheckoutDown", "service": service, "region": "eu", "severity": "sev1"},
            "annotations": {"summary": "Checkout error rate above 20%", "description": "5xx on /checkout"},
            "startsAt": "2026-11-23T10:00:00Z",
            "endsAt": if status == "resolved" { "2026-11-23T10:30:00Z" } else { "0001-01-01T00:00:00Z" },
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": "c0ffee"
        }]
    })
}

#[test]
fn alertmanager_intake_opens_dedups_and_resolves() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let (code, v) = post(&d, "/v1/intake/alertmanager", &am_payload("firing", "checkout"));
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["accepted"][0]["result"], "opened");
    let id = v["accepted"][0]["incident"].as_str().unwrap().to_string();
    let inc = d.json(&["incident", "show", &id]);
    assert_eq!(inc["severity"], "sev1");
    assert_eq!(inc["fields"]["nature"], "Checkout error rate above 20%");
    assert_eq!(inc["fields"]["alert_starts_at"], "2026-11-23T10:00:00Z");

    let (code, v) = post(&d, "/v1/intake/alertmanager", &am_payload("firing", "checkout"));
    assert_eq!(code, 202);
    assert_eq!(v["accepted"][0]["result"], "deduped");
    assert_eq!(v["accepted"][0]["incident"], id.as_str());

    let (code, v) = post(&d, "/v1/intake/alertmanager", &am_payload("resolved", "checkout"));
    assert_eq!(code, 202);
    assert_eq!(v["accepted"][0]["result"], "resolved");
    assert_eq!(d.json(&["incident", "show", &id])["status"], "resolved");
    let tl = d.ok(&["timeline", &id]);
    assert!(tl.contains("alert ended 2026-11-23T10:30:00Z"), "{tl}");

    // An alert nothing matches is accepted but opens nothing.
    let mut other = am_payload("firing", "checkout");
    other["alerts"][0]["labels"]["alertname"] = json!("DiskFull");
    let (code, v) = post(&d, "/v1/intake/alertmanager", &other);
    assert_eq!(code, 202);
    assert_eq!(v["accepted"][0]["result"], "unmatched");

    // Malformed, wrong version, no token.
    let (code, v) = post(&d, "/v1/intake/alertmanager", &json!({"version": "4"}));
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("alerts"), "{v}");
    let (code, _) = post(&d, "/v1/intake/alertmanager", &json!({"version": "3", "alerts": []}));
    assert_eq!(code, 400);
    let r = agent().post(&d.url("/v1/intake/alertmanager")).send_json(am_payload("firing", "x")).unwrap();
    assert_eq!(r.status(), 401);

    // Generic events: trigger by playbook id and resolve by dedup key.
    let (code, v) = post(
        &d,
        "/v1/intake/events",
        &json!({"playbook": "outage", "summary": "payments failing", "scope": "all", "dedup_key": "evt-1"}),
    );
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["accepted"][0]["result"], "opened");
    let (code, v) =
        post(&d, "/v1/intake/events", &json!({"playbook": "outage", "action": "resolve", "dedup_key": "evt-1"}));
    assert_eq!(code, 202);
    assert_eq!(v["accepted"][0]["result"], "resolved");
    let (code, _) = post(&d, "/v1/intake/events", &json!({"playbok": "outage"}));
    assert_eq!(code, 400);

    // Metrics reflect all of this.
    assert_eq!(metric(&d, "crisis_intake_total{source=\"alertmanager\",result=\"opened\"}"), 1.0);
    assert_eq!(metric(&d, "crisis_intake_total{source=\"alertmanager\",result=\"deduped\"}"), 1.0);
    assert_eq!(metric(&d, "crisis_intake_total{source=\"alertmanager\",result=\"resolved\"}"), 1.0);
    assert!(metric(&d, "crisis_intake_total{source=\"alertmanager\",result=\"rejected\"}") >= 2.0);
    assert_eq!(metric(&d, "crisis_incidents_opened_total{playbook=\"outage\",severity=\"sev1\",mode=\"live\"}"), 1.0);
    assert!(metric(&d, "crisis_ready ") == 1.0);
    let text = ureq::get(&d.url("/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(text.contains("crisis_time_to_resolve_seconds_count 2"), "{text}");
    assert!(text.contains("crisis_notifications_total{target=\"superiors\",result=\"sent\"}"), "{text}");
}

#[test]
fn intake_is_rate_limited_per_source() {
    let d = Daemon::start("engine", &format!("{LOG_TARGETS}\n[limits]\nintake_per_minute = 3\n"));
    let codes: Vec<u16> = (0..6)
        .map(|i| {
            post(
                &d,
                "/v1/intake/events",
                &json!({"playbook": "outage", "summary": "s", "scope": "x", "dedup_key": format!("k{i}")}),
            )
            .0
        })
        .collect();
    assert_eq!(&codes[..3], &[202, 202, 202]);
    assert!(codes[3..].contains(&429), "{codes:?}");
    assert!(metric(&d, "crisis_intake_total{source=\"events\",result=\"rate_limited\"}") >= 1.0);
}

#[test]
fn editors_that_write_by_rename_and_directories_created_later_are_seen() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let g0 = generation(&d);
    // Write a new version to a temp file and rename it over the playbook, as vim and many editors do.
    let original = std::fs::read_to_string(playbook_path(&d)).unwrap();
    let tmp = d.dir.path().join("playbooks/.outage.toml.swp");
    std::fs::write(&tmp, original.replace("Checkout outage", "Checkout outage (renamed)")).unwrap();
    std::fs::rename(&tmp, playbook_path(&d)).unwrap();
    d.wait_for("the renamed file to apply", || generation(&d) > g0);
    let v = trigger(&d, "checkout");
    assert_eq!(v["incident"]["title"], "Checkout outage (renamed)");

    // The playbook directory is removed and created again later: watched again.
    std::fs::rename(d.dir.path().join("playbooks"), d.dir.path().join("old-playbooks")).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    std::fs::create_dir(d.dir.path().join("playbooks")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let g1 = generation(&d);
    std::fs::write(playbook_path(&d), original.replace("Checkout outage", "Checkout outage (new dir)")).unwrap();
    d.wait_for("the new directory to apply", || {
        generation(&d) > g1 && status(&d)["reload"]["on_disk"]["differs"] == false
    });
    assert_eq!(trigger(&d, "search")["incident"]["title"], "Checkout outage (new dir)");
}
