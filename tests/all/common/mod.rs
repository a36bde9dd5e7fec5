//! Shared harness for end-to-end tests: runs the real `crisis` binary.

pub(crate) mod browser;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test: `CRISIS_BIN` when set (so parallel checkouts that
/// share one target directory can each test their own build), else cargo's.
pub(crate) fn bin() -> PathBuf {
    std::env::var_os("CRISIS_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_crisis")))
}

/// The repository root (shipped playbooks and examples live there).
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The result of one CLI run.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The standard output as JSON, or a panic that shows what was printed instead.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs a `crisis plugin ...` command in `dir` with the compile cache shared by every test of this run
/// (a component takes seconds to compile and milliseconds to load from the cache).
pub(crate) fn plugin_cli(dir: &Path, args: &[&str]) -> Run {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache").display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--cache-dir", cache.as_str()]);
    crisis_in(dir, &all)
}

/// Runs `crisis ARGS` in `dir` with no inherited config.
pub(crate) fn crisis_in(dir: &Path, args: &[&str]) -> Run {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CRISIS_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run crisis")
        .into()
}

/// Runs `crisis ARGS` from the repository root.
pub(crate) fn crisis(args: &[&str]) -> Run {
    crisis_in(&repo(), args)
}

/// A free loopback port (bound and released; the daemon binds it next).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Copies a fixture directory (recursively) into `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A real `crisis daemon` on a free loopback port with a temporary state dir.
pub(crate) struct Daemon {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub config: PathBuf,
    child: Option<std::process::Child>,
    runs: usize,
    env: Vec<(String, String)>,
}

/// The config the harness writes; `extra` is appended (targets, plugins).
pub(crate) fn write_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let cfg = format!(
        "state_dir = \"state\"\nlisten = \"127.0.0.1:{port}\"\nplaybooks = \"playbooks\"\nroster = \"roster.toml\"\ncustomers = \"customers.csv\"\n{extra}\n"
    );
    let path = dir.join("crisis.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Log targets for every channel the engine fixtures use.
pub(crate) const LOG_TARGETS: &str = "[targets.superiors]\nplugin = \"log\"\n[targets.departments]\nplugin = \"log\"\n[targets.customers]\nplugin = \"log\"\n[targets.oncall]\nplugin = \"log\"\n";

impl Daemon {
    /// Copies `fixture` (relative to tests/fixtures) and starts a daemon on it.
    pub(crate) fn start(fixture: &str, extra_config: &str) -> Daemon {
        Self::start_with_env(fixture, extra_config, &[])
    }

    pub(crate) fn start_with_env(fixture: &str, extra_config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("tests/fixtures").join(fixture), dir.path());
        let port = free_port();
        let config = write_config(dir.path(), port, extra_config);
        let mut d = Daemon {
            dir,
            port,
            config,
            child: None,
            runs: 0,
            env: env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        };
        d.spawn();
        d
    }

    /// Starts `n` daemons, each on its own copy of `fixture` (own state and
    /// playbook directories), all with the same config and environment (for
    /// several nodes on one shared database).
    pub(crate) fn start_many(n: usize, fixture: &str, extra_config: &str, env: &[(&str, &str)]) -> Vec<Daemon> {
        (0..n).map(|_| Self::start_with_env(fixture, extra_config, env)).collect()
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("daemon-{run}.log"))
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["--config", self.config.to_str().unwrap(), "daemon"])
            .current_dir(self.dir.path())
            .env_remove("CRISIS_CONFIG")
            .env("CRISIS_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start daemon"));
        self.wait_healthy();
    }

    fn wait_healthy(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("daemon did not become healthy; log:\n{}", self.log());
    }

    /// Runs the CLI against this daemon.
    pub(crate) fn cli(&self, args: &[&str]) -> Run {
        let mut full = vec!["--config", self.config.to_str().unwrap()];
        full.extend_from_slice(args);
        crisis_in(self.dir.path(), &full)
    }

    /// Runs the CLI and asserts it succeeded.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let r = self.cli(args);
        assert_eq!(r.code, 0, "crisis {args:?} failed: {}\n{}", r.stderr, r.stdout);
        r.stdout
    }

    /// Runs the CLI with --json and parses stdout.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// SIGKILL: no chance to flush or clean up.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    /// SIGTERM: a clean stop; waits up to 30 s for the exit and returns its code.
    pub(crate) fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    pub(crate) fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Restarts with a different environment (e.g. without a failpoint).
    pub(crate) fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.env = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        self.restart();
    }

    /// Everything every run of this daemon logged.
    pub(crate) fn log(&self) -> String {
        (1..=self.runs)
            .map(|r| std::fs::read_to_string(self.log_path(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(crate) fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/api.token")).unwrap()
    }

    /// Opens an incident through `POST /v1/incidents` with `body`; returns
    /// its id once the daemon answered 201 or 202.
    pub(crate) fn post_incident(&self, body: &serde_json::Value) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut r = agent
            .post(&self.url("/v1/incidents"))
            .header("Authorization", &format!("Bearer {}", self.token()))
            .send_json(body)
            .unwrap();
        let status = r.status().as_u16();
        let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert!(status == 201 || status == 202, "{status} {v}");
        v["incident"]["id"].as_str().unwrap().to_string()
    }

    /// An incident's journal events over the API (empty if it cannot be read yet).
    pub(crate) fn events(&self, id: &str) -> Vec<serde_json::Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let text = agent
            .get(&self.url(&format!("/v1/incidents/{id}/events")))
            .header("Authorization", &format!("Bearer {}", self.token()))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        v["events"].as_array().cloned().unwrap_or_default()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `f` holds, or panics with the log.
    pub(crate) fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One request a [`TestServer`] received.
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

/// Reads one HTTP/1.1 request (request line, headers, a `content-length`
/// body) from a keep-alive connection; `None` once the peer closes it or a
/// read fails, so the test server's connection thread ends.
pub(crate) fn read_request(reader: &mut impl std::io::BufRead) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut headers, mut len) = (Vec::new(), 0usize);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Received { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// A loopback HTTP/1.1 server that records requests and answers `status`.
pub(crate) struct TestServer {
    pub port: u16,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl TestServer {
    pub(crate) fn start(status: u16) -> TestServer {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let rec = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    while let Some(r) = read_request(&mut reader) {
                        rec.lock().unwrap().push(r);
                        let reply = "{\"ok\":true}";
                        let mut s = stream.try_clone().unwrap();
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                            reply.len()
                        );
                    }
                });
            }
        });
        TestServer { port, received }
    }

    pub(crate) fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 exchange on loopback: returns (port, receiver of (request head, body)).
pub(crate) fn one_shot_server(status: u16) -> (u16, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before the request head ended");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + len].to_vec();
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: 7\r\nx-request-id: srv-9\r\nconnection: close\r\n\r\nanswer!"
        );
        s.write_all(reply.as_bytes()).unwrap();
        let _ = tx.send((head, body));
    });
    (port, rx)
}

/// How a [`ChaosServer`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 200 at once.
    Ok,
    /// Reads the request, never answers (keeps the connection open).
    Hang,
    /// 500 at once.
    Fail,
}

/// One request a [`ChaosServer`] answered with 200.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub key: String,
    pub path: String,
    pub at: std::time::Instant,
}

/// A loopback webhook receiver that can be told to hang or answer 500; it
/// records every request it answered 200 by `Idempotency-Key`, and counts the others.
pub(crate) struct ChaosServer {
    pub port: u16,
    mode: std::sync::Arc<std::sync::Mutex<Mode>>,
    pub delivered: std::sync::Arc<std::sync::Mutex<Vec<Delivered>>>,
    pub refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ChaosServer {
    pub(crate) fn start(mode: Mode) -> ChaosServer {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = ChaosServer {
            port,
            mode: std::sync::Arc::new(std::sync::Mutex::new(mode)),
            delivered: Default::default(),
            refused: Default::default(),
        };
        let (mode, delivered, refused) = (s.mode.clone(), s.delivered.clone(), s.refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (mode, delivered, refused) = (mode.clone(), delivered.clone(), refused.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut out = stream;
                    while let Some(r) = read_request(&mut reader) {
                        let key = r.header("idempotency-key").unwrap_or("").to_string();
                        let path = r.path;
                        let m = *mode.lock().unwrap();
                        let status = match m {
                            Mode::Hang => {
                                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                // Never answer; the caller gives up on its own deadline.
                                std::thread::sleep(std::time::Duration::from_secs(300));
                                return;
                            }
                            Mode::Fail => {
                                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                "500 Internal Server Error"
                            }
                            Mode::Ok => {
                                delivered.lock().unwrap().push(Delivered { key, path, at: std::time::Instant::now() });
                                "200 OK"
                            }
                        };
                        let reply = "{\"ok\":true}";
                        if write!(
                            out,
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
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
        s
    }

    /// Changes how the next requests are answered.
    pub(crate) fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The requests answered 200 so far.
    pub(crate) fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap().clone()
    }

    /// Requests hung or answered 500 so far.
    pub(crate) fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Waits until `f` holds or `secs` pass; panics with `what` and the daemon log.
pub(crate) fn wait_until(d: &Daemon, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out after {secs}s waiting for {what}; log:\n{}", d.log());
}
