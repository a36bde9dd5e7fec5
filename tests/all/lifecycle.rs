//! Daemon lifecycle with the real binary: one daemon per state directory,
//! and a SIGTERM that stops in bounded time, leaving the backlog in the
//! journal for the next start without sending any notice twice.

use crate::common::*;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A playbook whose incidents send three report notices, then wait for an
/// activation approval that never comes and set no timer that could fall due
/// during a test: the number of notices is fixed once triggers stop.
const NOTICE_PLAYBOOK: &str = r#"
[playbook]
id = "notice"
name = "Notice only"
category = "service-process"
severity = "sev3"
summary = "Sends notices and nothing else soon."

[trigger]
match = { alertname = "Notice" }
dedup_key = "{{ labels.n }}"

[report]
require = ["nature"]
notify = ["superiors", "departments", "oncall"]
within = "1h"

[activate]
approval = "role:director"
channels = ["superiors"]

[assign]
commander = "rota:duty"
ack_within = "1h"

[[act]]
id = "dispatch"
kind = "dispatch"
owner = "role:commander"
tasks = ["Look"]
within = "1h"

[track]
update_every = "1h"
stale_after = "2h"
notify = ["superiors"]

[outcome]
require = ["cause"]
notify = ["superiors"]
within = "72h"
"#;

/// Every target goes to the recording server through the built-in webhook notifier,
/// one call at a time, so the backlog and the calls in flight at shutdown are known.
fn webhook_targets(port: u16, grace: &str) -> String {
    let mut s = format!(
        "shutdown_grace = \"{grace}\"\n[plugins.webhook-notify]\nallowed_hosts = [\"http://localhost:{port}\"]\nallow_private = [\"http://localhost:{port}\"]\ntimeout = \"60s\"\n\
         [limits]\neffects_concurrency = 1\n"
    );
    for t in ["superiors", "departments", "customers", "oncall"] {
        s.push_str(&format!(
            "[targets.{t}]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"http://localhost:{port}/{t}\" }}\n"
        ));
    }
    s
}

/// A state directory with its config; daemons are started on it by hand so a
/// test can run two at once, send SIGTERM and watch exit codes.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
    config: PathBuf,
    runs: usize,
}

impl Site {
    fn new(extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("tests/fixtures/engine"), dir.path());
        std::fs::remove_file(dir.path().join("playbooks/outage.toml")).unwrap();
        std::fs::write(dir.path().join("playbooks/notice.toml"), NOTICE_PLAYBOOK).unwrap();
        let port = free_port();
        let config = write_config(dir.path(), port, extra);
        Site { dir, port, config, runs: 0 }
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("daemon-{run}.log"))
    }

    /// Starts `crisis daemon` with `config`; its output goes to the run's log.
    fn spawn_with(&mut self, config: &Path) -> (Child, usize) {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();
        let child = Command::new(bin())
            .args(["--config", config.to_str().unwrap(), "daemon"])
            .current_dir(self.dir.path())
            .env_remove("CRISIS_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env("CRISIS_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start daemon");
        (child, self.runs)
    }

    /// Starts the daemon and waits until it answers /healthz.
    fn start(&mut self) -> (Child, usize) {
        let config = self.config.clone();
        let (child, run) = self.spawn_with(&config);
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                    return (child, run);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not become healthy; log:\n{}", self.log(run));
    }

    fn log(&self, run: usize) -> String {
        std::fs::read_to_string(self.log_path(run)).unwrap_or_default()
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/api.token")).unwrap().trim().to_string()
    }

    /// Opens `n` incidents over HTTP from a few client threads.
    fn trigger(&self, n: usize) {
        let url = format!("http://127.0.0.1:{}/v1/incidents", self.port);
        let auth = format!("Bearer {}", self.token());
        let threads = 8;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (url, auth) = (url.clone(), auth.clone());
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    for i in (t..n).step_by(threads) {
                        let body = serde_json::json!({"playbook": "notice", "dedup_key": format!("k{i}"), "fields": {"nature": "n"}, "source": "test"});
                        let r = agent.post(&url).header("Authorization", &auth).send_json(&body).expect("trigger");
                        assert!(r.status().is_success(), "trigger {i}: {}", r.status());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -TERM");
}

/// Waits for the process to exit, at most `limit`; `None` if it is still running.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The number in `key=N` on the daemon's "stopped" line.
fn stopped_field(log: &str, key: &str) -> usize {
    let line = log
        .lines()
        .find(|l| l.contains("stopped: journal flushed"))
        .unwrap_or_else(|| panic!("no stopped line in:\n{log}"));
    let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key} in {line}"));
    line[at + key.len() + 1..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// A loopback webhook receiver that records each `Idempotency-Key` on
/// arrival and answers after `delay_ms`; `hang_next` makes it never answer
/// the next request.
struct Receiver {
    port: u16,
    keys: Arc<Mutex<Vec<String>>>,
    delay_ms: Arc<AtomicU64>,
    hang_next: Arc<AtomicBool>,
}

impl Receiver {
    fn start(delay_ms: u64) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = Receiver {
            port,
            keys: Default::default(),
            delay_ms: Arc::new(AtomicU64::new(delay_ms)),
            hang_next: Default::default(),
        };
        let (keys, delay, hang) = (r.keys.clone(), r.delay_ms.clone(), r.hang_next.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (keys, delay, hang) = (keys.clone(), delay.clone(), hang.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut out = stream;
                    while let Some(r) = read_request(&mut reader) {
                        keys.lock().unwrap().push(r.header("idempotency-key").unwrap_or("").to_string());
                        if hang.swap(false, Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_secs(600));
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(delay.load(Ordering::SeqCst)));
                        let reply = "{\"ok\":true}";
                        if write!(
                            out,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                            reply.len()
                        )
                        .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        r
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused_until_the_first_is_gone() {
    let mut site = Site::new(LOG_TARGETS);
    // The second daemon listens elsewhere: only the state directory is shared.
    let other = site.dir.path().join("other.toml");
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace(&format!("127.0.0.1:{}", site.port), &format!("127.0.0.1:{}", free_port()));
    std::fs::write(&other, text).unwrap();
    let state = site.dir.path().join("state");

    let (mut first, _) = site.start();
    let (mut second, run) = site.spawn_with(&other);
    let status = wait_exit(&mut second, Duration::from_secs(60)).expect("the second daemon exits by itself");
    let log = site.log(run);
    assert_eq!(status.code(), Some(1), "{log}");
    let expected = format!("state_dir {} is in use by crisis daemon pid {} (started ", state.display(), first.id());
    assert!(
        log.contains(&expected) && log.contains("); stop it first"),
        "expected `{expected}…; stop it first` in:\n{log}"
    );

    // After a clean stop the next daemon starts and records itself.
    sigterm(&first);
    assert_eq!(wait_exit(&mut first, Duration::from_secs(20)).and_then(|s| s.code()), Some(0));
    let (mut third, _) = site.start();
    let lock = std::fs::read_to_string(state.join("daemon.lock")).unwrap();
    assert!(lock.contains(&format!("pid={}\n", third.id())), "{lock}");

    // SIGKILL leaves no stale lock: the kernel drops it with the process.
    third.kill().unwrap();
    third.wait().unwrap();
    let (mut fourth, _) = site.start();
    let lock = std::fs::read_to_string(state.join("daemon.lock")).unwrap();
    assert!(lock.contains(&format!("pid={}\n", fourth.id())), "{lock}");
    fourth.kill().unwrap();
    fourth.wait().unwrap();
}

#[test]
fn sigterm_with_a_large_backlog_stops_within_the_grace_period_and_the_restart_sends_each_notice_once() {
    let receiver = Receiver::start(50);
    let grace = Duration::from_secs(3);
    let mut site = Site::new(&webhook_targets(receiver.port, "3s"));
    let (mut d, run1) = site.start();
    // Three notices per incident; the receiver's delay keeps the worker far behind.
    site.trigger(7_500);
    wait_until("the first notices", Duration::from_secs(60), || !receiver.keys().is_empty());

    let t = Instant::now();
    sigterm(&d);
    let status = wait_exit(&mut d, grace + Duration::from_secs(2));
    let log1 = site.log(run1);
    let status = status.unwrap_or_else(|| panic!("still running {:?} after SIGTERM; log:\n{log1}", t.elapsed()));
    assert_eq!(status.code(), Some(0), "{log1}");
    let sent1 = receiver.keys().len();
    let left = stopped_field(&log1, "pending_intents");
    assert!(left >= 20_000, "at least 20,000 notices were pending at shutdown, found {left}");
    assert_eq!(stopped_field(&log1, "abandoned_calls"), 0, "{log1}");

    // The restart works through the backlog at full speed.
    receiver.delay_ms.store(0, Ordering::SeqCst);
    let (mut d, run2) = site.start();
    wait_until("the whole backlog", Duration::from_secs(900), || receiver.keys().len() >= sent1 + left);
    sigterm(&d);
    assert_eq!(wait_exit(&mut d, Duration::from_secs(20)).and_then(|s| s.code()), Some(0));
    let log2 = site.log(run2);
    assert_eq!(stopped_field(&log2, "pending_intents"), 0, "nothing is left after the second run:\n{log2}");

    let keys = receiver.keys();
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    assert!(keys.iter().all(|k| !k.is_empty()), "every notice carries its invocation id");
    assert_eq!(distinct.len(), keys.len(), "no invocation id was sent twice across both runs");
    assert_eq!(keys.len(), sent1 + left, "every notice pending at shutdown was sent after the restart");
}

#[test]
fn a_call_hanging_past_the_grace_period_is_abandoned_and_runs_again_with_its_id() {
    let receiver = Receiver::start(0);
    receiver.hang_next.store(true, Ordering::SeqCst);
    let grace = Duration::from_secs(2);
    let mut site = Site::new(&webhook_targets(receiver.port, "2s"));
    let (mut d, run1) = site.start();
    site.trigger(1);
    wait_until("the hanging call", Duration::from_secs(60), || !receiver.keys().is_empty());
    let hung = receiver.keys()[0].clone();

    sigterm(&d);
    let status = wait_exit(&mut d, grace + Duration::from_secs(2));
    let log1 = site.log(run1);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exits 0 within the grace period plus 2 s:\n{log1}");
    assert_eq!(stopped_field(&log1, "abandoned_calls"), 1, "{log1}");
    assert!(stopped_field(&log1, "pending_intents") >= 1, "{log1}");
    assert_eq!(receiver.keys(), vec![hung.clone()], "nothing else was claimed during the grace period");

    let (mut d, run2) = site.start();
    wait_until("the retried call", Duration::from_secs(60), || {
        receiver.keys().iter().filter(|k| **k == hung).count() == 2
    });
    let log2 = site.log(run2);
    assert!(log2.contains("retrying side effect with its original invocation id"), "{log2}");
    d.kill().unwrap();
    d.wait().unwrap();
}
