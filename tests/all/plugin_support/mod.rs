//! Shared helpers for the plugin integration tests: a loopback HTTP server
//! that records what it receives, and small constructors.

use crisis::plugin::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP/1.1 server on 127.0.0.1 that answers every request with
/// a fixed status and body and records the requests. It serves at most
/// `max_requests` requests, then its thread ends.
pub(crate) struct TestServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    pub(crate) fn start(status: u16, reply: &'static str) -> TestServer {
        Self::start_inner(status, reply, None)
    }

    /// Like `start`, but each response waits for one message on the returned
    /// sender, so a test controls exactly when a call can finish.
    pub(crate) fn start_gated(status: u16, reply: &'static str) -> (TestServer, std::sync::mpsc::Sender<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (Self::start_inner(status, reply, Some(rx)), tx)
    }

    fn start_inner(status: u16, reply: &'static str, gate: Option<std::sync::mpsc::Receiver<()>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        std::thread::spawn(move || {
            for _ in 0..64 {
                let Ok((stream, _)) = listener.accept() else { return };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() {
                        break;
                    }
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let get = |n: &str| {
                    headers.iter().find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone())
                };
                let mut body = Vec::new();
                if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
                    body.resize(len, 0);
                    let _ = reader.read_exact(&mut body);
                } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                    loop {
                        let mut size = String::new();
                        if reader.read_line(&mut size).is_err() {
                            break;
                        }
                        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                        let mut chunk = vec![0; n + 2];
                        let _ = reader.read_exact(&mut chunk);
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                }
                rec.lock().unwrap().push(Received {
                    method,
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                if let Some(g) = &gate {
                    let _ = g.recv_timeout(std::time::Duration::from_secs(30));
                }
                let mut s = stream;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-request-id: req-42\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = s.flush();
            }
        });
        TestServer { port, received }
    }

    pub(crate) fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

pub(crate) fn host_with(grants: &[(&str, PluginGrant)]) -> PluginHost {
    let mut cfg = PluginHostConfig {
        load_builtins: false,
        engine: EngineOptions { pool_instances: 16, pool_memories: 32, ..Default::default() },
        ..Default::default()
    };
    for (n, g) in grants {
        cfg.grants.insert(n.to_string(), g.clone());
    }
    PluginHost::new(cfg).expect("plugin host starts")
}

pub(crate) fn inv(id: &str, mode: RunMode) -> Invocation {
    Invocation { invocation_id: id.into(), incident_id: "inc-1".into(), mode, now_unix_ms: 0, budget_ms: None }
}

pub(crate) fn incident() -> IncidentInfo {
    IncidentInfo {
        id: "inc-1".into(),
        title: "Checkout down".into(),
        playbook_id: "service-outage".into(),
        severity: Severity::Sev2,
        category: Category::ServiceProcess,
        phase: "act".into(),
        summary: "Checkout is failing".into(),
        labels: vec![("service".into(), "checkout".into())],
    }
}

pub(crate) fn note() -> Notification {
    Notification {
        incident: incident(),
        target: "superiors".into(),
        subject: "Checkout down".into(),
        body_text: "Checkout is failing for customers in eu-west.".into(),
        params: vec![],
    }
}

pub(crate) fn customer(id: &str) -> CustomerRef {
    CustomerRef {
        id: id.into(),
        segment: "affected".into(),
        tier: "standard".into(),
        locale: "en".into(),
        channel: Channel::Sms,
    }
}

pub(crate) fn target(pairs: &[(&str, &str)]) -> NotifyTarget {
    NotifyTarget { config: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
}

/// Runs the test `test` (a `module_path!()`-qualified name) again in a child
/// process of this test binary, with `vars` in its environment from the start,
/// and asserts that it passed. Returns true in that child, where the test body
/// runs, and false in the parent once the child passed.
///
/// Why: setting a variable with `std::env::set_var` while other tests run on
/// other threads of the same process is a data race (libc reads the
/// environment without the lock std takes), and every test of the suite shares
/// this one process.
pub(crate) fn in_child_with_env(test: &str, vars: &[(&str, &str)]) -> bool {
    if vars.iter().all(|(k, v)| std::env::var(k).as_deref() == Ok(*v)) {
        return true;
    }
    // libtest names tests without the crate: `plugin_egress::name`.
    let name = test.split_once("::").map_or(test, |(_, rest)| rest);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(vars.iter().copied())
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed in its child process:\n{stdout}\n{stderr}");
    // A filter that matches nothing also exits 0: make sure the test ran.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{name} did not run in its child process:\n{stdout}\n{stderr}"
    );
    false
}

/// Append a custom section so the bytes (and sha256) differ while the
/// component stays the same. Why: tests need two "versions" of a plugin.
pub(crate) fn with_custom_section(mut wasm: Vec<u8>, tag: &str) -> Vec<u8> {
    let name = b"crisis-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    assert!(payload.len() < 128);
    wasm.push(0);
    wasm.push(payload.len() as u8);
    wasm.extend_from_slice(&payload);
    wasm
}
