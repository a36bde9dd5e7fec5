//! What a notifier may get out of the host: webhook credentials given as
//! `secret:NAME` never reach the journal, the CLI or the log; one call never
//! has more than `max_in_flight` requests open.

use crate::common::*;
use crate::plugin_support::{host_with, inv, note, target};
use crisis::plugin::test_fixtures as fx;
use crisis::plugin::{PluginGrant, RunMode};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const CREDENTIAL: &str = "XXXXSECRET0123456789";

/// Log targets for the channels the `engine` fixture uses besides `superiors`.
const OTHER_LOG_TARGETS: &str = "[targets.departments]\nplugin = \"log\"\n[targets.customers]\nplugin = \"log\"\n[targets.oncall]\nplugin = \"log\"\n";

fn trigger(d: &Daemon) -> String {
    trigger_for(d, "checkout", "eu")
}

/// Opens an `outage` incident for `service` in `region` (its dedup key).
fn trigger_for(d: &Daemon, service: &str, region: &str) -> String {
    let (service, region) = (format!("service={service}"), format!("region={region}"));
    let v =
        d.json(&["trigger", "outage", "--scope", "EU", "--field", "nature=n", "--label", &service, "--label", &region]);
    v["incident"]["id"].as_str().unwrap().to_string()
}

/// Every file under `dir`, as bytes, with its path.
fn all_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

#[test]
fn a_webhook_credential_given_as_a_secret_never_reaches_journal_cli_or_log() {
    let server = TestServer::start(200);
    let lo = format!("http://127.0.0.1:{}", server.port);
    let hook = format!("{lo}/services/T000/B000/{CREDENTIAL}");
    let cfg = format!(
        "[secrets.superiors-hook]\nenv = \"CRISIS_TEST_SLACK_HOOK\"\n\
         [plugins.webhook-notify]\nallowed_hosts = [\"{lo}\"]\nallow_private = [\"{lo}\"]\n\
         [targets.superiors]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"secret:superiors-hook\", format = \"slack\" }}\n\
         {OTHER_LOG_TARGETS}"
    );
    let d = Daemon::start_with_env("engine", &cfg, &[("CRISIS_TEST_SLACK_HOOK", &hook), ("CRISIS_LOG", "debug")]);
    let id = trigger(&d);
    let path = format!("/services/T000/B000/{CREDENTIAL}");
    d.wait_for("the webhook call", || server.requests().iter().any(|r| r.path == path));
    d.wait_for("the journaled result", || d.ok(&["--json", "timeline", &id]).contains("webhook-notify"));
    let timeline = d.ok(&["--json", "timeline", &id]);
    assert!(timeline.contains(&format!("POST {lo} -> 200")), "the origin and status are journaled: {timeline}");
    let text_timeline = d.ok(&["timeline", &id]);
    let report = d.ok(&["report", &id]);
    let report_json = d.ok(&["report", &id, "--format", "json"]);
    for (what, text) in [
        ("timeline", &timeline),
        ("text timeline", &text_timeline),
        ("report", &report),
        ("report json", &report_json),
        ("log", &d.log()),
    ] {
        assert!(!text.contains(CREDENTIAL), "the credential is in the {what}:\n{text}");
        assert!(!text.contains("/services/T000"), "the webhook path is in the {what}:\n{text}");
    }
    for (p, bytes) in all_files(d.dir.path()) {
        if p.extension().is_some_and(|x| x == "log") || p.starts_with(d.dir.path().join("state")) {
            let hit = bytes.windows(CREDENTIAL.len()).any(|w| w == CREDENTIAL.as_bytes());
            assert!(!hit, "the credential is in {}", p.display());
        }
    }
}

/// A loopback server that answers every connection after a short pause and
/// records the largest number of connections it had open at once.
struct CountingServer {
    port: u16,
    max_open: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
}

impl CountingServer {
    fn start() -> CountingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, max_open, served) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (o, m, s) = (open.clone(), max_open.clone(), served.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (o, m, s) = (o.clone(), m.clone(), s.clone());
                std::thread::spawn(move || {
                    let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        line.clear();
                    }
                    std::thread::sleep(Duration::from_millis(30));
                    o.fetch_sub(1, Ordering::SeqCst);
                    s.fetch_add(1, Ordering::SeqCst);
                    let mut stream = stream;
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                });
            }
        });
        CountingServer { port, max_open, served }
    }
}

fn fanout(max_in_flight: Option<u32>, n: usize) -> (serde_json::Value, CountingServer) {
    let server = CountingServer::start();
    let lo = format!("http://127.0.0.1:{}", server.port);
    let grant = PluginGrant {
        allowed_hosts: vec![lo.clone()],
        allow_private: vec![lo.clone()],
        max_in_flight,
        ..Default::default()
    };
    let host = host_with(&[("probe", grant)]);
    host.reload("probe", &fx::bytes(fx::PROBE)).expect("probe fixture loads");
    let url = format!("{lo}/fan");
    let n = n.to_string();
    let out = host
        .notify("probe", &inv("fan", RunMode::Live), &note(), &target(&[("fanout", &n), ("fanout_url", &url)]))
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&out.value.detail).unwrap();
    (report["fanout"].clone(), server)
}

#[test]
fn a_plugin_opening_100_requests_gets_at_most_4_in_flight() {
    let (r, server) = fanout(None, 100);
    assert_eq!(r["ok"], 100, "every request completes, in turn: {r}");
    assert_eq!(server.served.load(Ordering::SeqCst), 100);
    let max = server.max_open.load(Ordering::SeqCst);
    assert!((1..=4).contains(&max), "{max} connections were open at once");
}

#[test]
fn max_in_flight_is_configurable_per_grant() {
    let (r, server) = fanout(Some(1), 12);
    assert_eq!(r["ok"], 12, "{r}");
    assert_eq!(server.max_open.load(Ordering::SeqCst), 1);
}

#[test]
fn a_reload_that_deletes_a_grant_revokes_it_at_once() {
    let server = TestServer::start(200);
    let lo = format!("http://127.0.0.1:{}", server.port);
    let target = format!(
        "[targets.superiors]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"{lo}/hook\" }}\nretry_for = \"1s\"\n{OTHER_LOG_TARGETS}"
    );
    let grant = format!("[plugins.webhook-notify]\nallowed_hosts = [\"{lo}\"]\nallow_private = [\"{lo}\"]\n");
    let d = Daemon::start("engine", &format!("{grant}{target}"));
    let first = trigger(&d);
    d.wait_for("the granted call", || server.requests().iter().any(|r| r.path == "/hook"));
    d.wait_for("its result", || d.ok(&["--json", "timeline", &first]).contains(&format!("POST {lo} -> 200")));
    let before = server.requests().len();

    // The grant is deleted; the target stays. The reload is accepted and the
    // very next call to that host is refused by the host, not sent.
    write_config(d.dir.path(), d.port, &target);
    let reload = d.json(&["reload"]);
    assert_eq!(reload["outcome"], "applied", "{reload}");
    let resolved = d.cli(&["resolve", &first]);
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    let second = trigger_for(&d, "billing", "us");
    assert_ne!(first, second);
    d.wait_for("the refused call to be journaled", || {
        let t = d.ok(&["--json", "timeline", &second]);
        t.contains("effect_result") && t.contains("\"ok\":false") || t.contains("dead_lettered")
    });
    let t = d.ok(&["timeline", &second]);
    assert!(t.contains("not allowed") || t.contains("denied") || t.contains("not granted"), "{t}");
    assert_eq!(server.requests().len(), before, "nothing reached the host after its grant was deleted");
}
