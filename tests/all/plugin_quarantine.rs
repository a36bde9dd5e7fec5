//! Quarantine is for plugin faults only: a notifier that traps is
//! quarantined, an operator can lift it, and it expires by itself with
//! backoff; a slow upstream ends calls as transient errors and never
//! quarantines the notifier that serves every target.

use crate::common::*;
use crate::plugin_support::{customer, host_with, incident, inv, note, target};
use crisis::plugin::test_fixtures as fx;
use crisis::plugin::*;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A loopback server that accepts connections, reads nothing and never answers.
struct SilentServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepted.clone(), held.clone());
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                a.fetch_add(1, Ordering::SeqCst);
                h.lock().unwrap().push(s);
            }
        });
        SilentServer { port, accepted, _held: held }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn plugin_status(d: &Daemon, name: &str) -> serde_json::Value {
    let status = d.json(&["status"]);
    status["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

fn trigger(d: &Daemon, service: &str) -> String {
    let v = d.json(&[
        "trigger",
        "outage",
        "--scope",
        "EU",
        "--field",
        "nature=down",
        "--label",
        &format!("service={service}"),
        "--label",
        "region=eu",
    ]);
    v["incident"]["id"].as_str().unwrap().to_string()
}

/// The journal of one incident (`--json timeline` prints one event per line).
fn timeline(d: &Daemon, id: &str) -> Vec<serde_json::Value> {
    d.ok(&["--json", "timeline", id]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn trap_config(extra: &str) -> String {
    format!(
        r#"{extra}
[plugins.probe]
file = "{}"
world = "notifier"

[targets.superiors]
plugin = "probe"
config = {{ trap = "1" }}
[targets.departments]
plugin = "probe"
config = {{ trap = "1" }}
[targets.customers]
plugin = "log"
[targets.oncall]
plugin = "log"
"#,
        fx::path(fx::PROBE).display()
    )
}

fn metric(d: &Daemon, line_prefix: &str) -> Option<f64> {
    let text = ureq::get(&d.url("/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
    text.lines().find_map(|l| l.strip_prefix(line_prefix).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn a_trapping_notifier_is_quarantined_and_the_operator_lifts_it() {
    let d = Daemon::start("engine", &trap_config(""));
    for i in 0..3 {
        trigger(&d, &format!("trap{i}"));
    }
    d.wait_for("the probe quarantined", || plugin_status(&d, "probe")["quarantined"] == true);
    let p = plugin_status(&d, "probe");
    assert!(p["crashes"].as_u64().unwrap() >= 3, "{p}");
    let ends: chrono::DateTime<chrono::Utc> =
        p["quarantine_ends_at"].as_str().expect("end time shown").parse().unwrap();
    let left = ends - chrono::Utc::now();
    assert!(
        left > chrono::Duration::seconds(30) && left <= chrono::Duration::seconds(61),
        "default base is 60s: {left}"
    );
    assert!(d.ok(&["status"]).contains("QUARANTINED until"), "text status shows the end");

    // `plugin list` shows the daemon's live state.
    let list = d.json(&["plugin", "list"]);
    let row = list.as_array().unwrap().iter().find(|r| r["name"] == "probe").unwrap();
    assert_eq!((row["quarantined"].as_bool(), row["live"].as_bool()), (Some(true), Some(true)), "{row}");
    assert_eq!(metric(&d, "crisis_plugin_quarantined{plugin=\"probe\"} "), Some(1.0));
    assert_eq!(metric(&d, "crisis_plugin_quarantined{plugin=\"webhook-notify\"} "), Some(0.0));
    assert!(metric(&d, "crisis_plugin_quarantine_end_timestamp_seconds{plugin=\"probe\"} ").is_some());

    // Calls are refused while quarantined: the call count stays.
    let calls = plugin_status(&d, "probe")["calls"].as_u64().unwrap();
    let refused = trigger(&d, "refused");
    d.wait_for("the refused notice journaled", || {
        timeline(&d, &refused)
            .iter()
            .any(|e| e["kind"] == "effect_result" && e["data"]["detail"].as_str().unwrap_or("").contains("quarantined"))
    });
    assert_eq!(plugin_status(&d, "probe")["calls"].as_u64().unwrap(), calls, "no call ran while quarantined");

    // Unknown names are 404 with nearby names (exit 3); a lift works once (then 409, exit 1).
    let unknown = d.cli(&["plugin", "unquarantine", "prob"]);
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("probe"), "nearby name suggested: {}", unknown.stderr);
    let out = d.ok(&["plugin", "unquarantine", "probe"]);
    assert!(out.contains("no longer quarantined"), "{out}");
    let again = d.cli(&["plugin", "unquarantine", "probe"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("not quarantined"), "{}", again.stderr);
    let p = plugin_status(&d, "probe");
    assert_eq!((p["quarantined"].as_bool(), p["crashes"].as_u64()), (Some(false), Some(0)), "{p}");
    assert!(d.log().contains("quarantine lifted by an operator"), "the lift is logged");

    // The next call runs again.
    trigger(&d, "after-lift");
    d.wait_for("a call after the lift", || plugin_status(&d, "probe")["calls"].as_u64().unwrap() > calls);
}

#[test]
fn a_quarantine_expires_by_itself_and_a_fault_after_it_doubles_the_next_one() {
    let d = Daemon::start("engine", &trap_config("plugin_quarantine_base = \"1s\""));
    for i in 0..3 {
        trigger(&d, &format!("exp{i}"));
    }
    d.wait_for("the first quarantine", || d.log().contains("quarantine_ms=1000"));
    // It ends without anyone lifting it.
    d.wait_for("the quarantine to expire", || plugin_status(&d, "probe")["quarantined"] == false);
    let calls = plugin_status(&d, "probe")["calls"].as_u64().unwrap();
    // The next call is let through; it traps, so the version is quarantined again, twice as long.
    trigger(&d, "exp-next");
    d.wait_for("a call after expiry", || plugin_status(&d, "probe")["calls"].as_u64().unwrap() > calls);
    d.wait_for("the doubled quarantine", || d.log().contains("quarantine_ms=2000"));
}

/// Two targets on a server that never answers; their breakers stay closed, so
/// every retry reaches the plugin and the retries run out quickly.
fn silent_config(port: u16) -> String {
    format!(
        r#"
[plugins.webhook-notify]
allowed_hosts = ["http://127.0.0.1:{port}"]
allow_private = ["http://127.0.0.1:{port}"]
timeout = "1s"

[targets.superiors]
plugin = "webhook-notify"
config = {{ url = "http://127.0.0.1:{port}/hook" }}
breaker_failures = 1000
retry_for = "1s"
[targets.departments]
plugin = "webhook-notify"
config = {{ url = "http://127.0.0.1:{port}/hook" }}
breaker_failures = 1000
[targets.customers]
plugin = "log"
[targets.oncall]
plugin = "log"
"#
    )
}

#[test]
fn a_silent_upstream_is_a_transient_failure_and_never_quarantines_the_notifier() {
    let server = SilentServer::start();
    let d = Daemon::start("engine", &silent_config(server.port));
    let first = trigger(&d, "silent0");
    trigger(&d, "silent1");
    let errors =
        |d: &Daemon| metric(d, "crisis_plugin_calls_total{plugin=\"webhook-notify\",result=\"error\"} ").unwrap_or(0.0);
    d.wait_for("four failed webhook calls", || errors(&d) >= 4.0);
    assert!(server.accepted() >= 4, "each attempt reached the upstream: {}", server.accepted());
    let row = |d: &Daemon| {
        let list = d.json(&["plugin", "list"]);
        list.as_array().unwrap().iter().find(|r| r["name"] == "webhook-notify").cloned().unwrap()
    };
    let r = row(&d);
    assert_eq!(
        (r["quarantined"].as_bool(), r["crashes"].as_u64(), r["live"].as_bool()),
        (Some(false), Some(0), Some(true)),
        "{r}"
    );
    // The retries run out and the intent is dead-lettered with the transient
    // failure as its reason.
    let deadline = Instant::now() + Duration::from_secs(90);
    let detail = loop {
        let found = timeline(&d, &first).iter().find_map(|e| {
            (e["kind"] == "dead_lettered").then(|| e["data"]["reason"].as_str().unwrap_or("").to_string())
        });
        if let Some(detail) = found {
            break detail;
        }
        assert!(Instant::now() < deadline, "no dead letter journaled; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(detail.contains("transient"), "{detail}");
    assert!(errors(&d) >= 5.0);
    let r = row(&d);
    assert_eq!((r["quarantined"].as_bool(), r["crashes"].as_u64()), (Some(false), Some(0)), "{r}");
    assert!(!d.log().contains("quarantined after repeated crashes"), "never quarantined");
}

#[test]
fn host_waits_end_before_the_budget_so_the_webhook_answers_transient() {
    let server = SilentServer::start();
    let grant = PluginGrant {
        allowed_hosts: vec![format!("http://127.0.0.1:{}", server.port)],
        allow_private: vec![format!("http://127.0.0.1:{}", server.port)],
        limits: LimitOverrides { timeout_ms: Some(1000), ..Default::default() },
        ..Default::default()
    };
    let host = host_with(&[("webhook-notify", grant)]);
    host.reload("webhook-notify", &fx::bytes("webhook_notify")).unwrap();
    let url = format!("http://127.0.0.1:{}/hook", server.port);
    for i in 0..4 {
        let start = Instant::now();
        let err = host
            .notify("webhook-notify", &inv(&format!("s{i}"), RunMode::Live), &note(), &target(&[("url", &url)]))
            .unwrap_err();
        assert!(matches!(&err, PluginCallError::Plugin { error: PluginError::Transient(_), .. }), "{err:?}");
        assert!(err.is_retryable());
        assert!(start.elapsed() < Duration::from_millis(1000) + Duration::from_secs(2), "took {:?}", start.elapsed());
        assert!(!err.http_records().is_empty(), "the attempt is recorded");
    }
    let s = host.list().into_iter().find(|s| s.name == "webhook-notify").unwrap();
    assert_eq!((s.quarantined, s.crashes), (false, 0), "{s:?}");
}

#[test]
fn a_guest_parked_in_a_host_wait_times_out_without_fault_but_a_computing_guest_faults() {
    let host = host_with(&[(
        "chaos",
        PluginGrant { limits: LimitOverrides { timeout_ms: Some(200), ..Default::default() }, ..Default::default() },
    )]);
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    for i in 0..4 {
        let err =
            host.compose("chaos", &inv(&format!("p{i}"), RunMode::Live), &incident(), &customer("sleep")).unwrap_err();
        assert!(matches!(err, PluginCallError::Timeout { in_guest: false, .. }), "{err:?}");
    }
    let s = host.list().into_iter().find(|s| s.name == "chaos").unwrap();
    assert_eq!((s.quarantined, s.crashes), (false, 0), "sleeping is not a fault: {s:?}");
    for i in 0..3 {
        let err =
            host.compose("chaos", &inv(&format!("l{i}"), RunMode::Live), &incident(), &customer("loop")).unwrap_err();
        assert!(matches!(err, PluginCallError::Timeout { in_guest: true, .. }), "{err:?}");
    }
    let s = host.list().into_iter().find(|s| s.name == "chaos").unwrap();
    assert!(s.quarantined && s.quarantine_ends_at.is_some(), "{s:?}");
}
