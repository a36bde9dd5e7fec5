//! Headless Chromium for end-to-end tests, driven over the DevTools protocol
//! on a blocking WebSocket: open a page, evaluate JavaScript, collect console
//! errors, uncaught exceptions and the requests the page made, take a
//! screenshot.
//!
//! Chromium is the Debian `chromium` package (`CRISIS_CHROMIUM` names another
//! binary). When it is missing a test is skipped with the reason printed,
//! unless `CRISIS_REQUIRE_BROWSER=1` (set by CI), where that is a failure.

use serde_json::{Value, json};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// How long any one reply or awaited event may take.
const WAIT: Duration = Duration::from_secs(30);

/// One headless Chromium with a fresh profile and one page, killed on drop.
pub(crate) struct Browser {
    child: Child,
    dir: tempfile::TempDir,
    ws: WebSocket<TcpStream>,
    /// The page's session id (flattened target sessions).
    session: String,
    next_id: u64,
    /// Every event received from the page, in order.
    events: Vec<Value>,
}

fn chromium() -> PathBuf {
    std::env::var_os("CRISIS_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

impl Browser {
    /// Starts Chromium with one blank page; `None`, after printing why, when
    /// it is not installed and `CRISIS_REQUIRE_BROWSER` is not `1`.
    pub(crate) fn launch(test: &str) -> Option<Browser> {
        let bin = chromium();
        if !bin.exists() {
            let why = format!("Chromium is not installed at {} (apt-get install -y chromium)", bin.display());
            if std::env::var("CRISIS_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("CRISIS_REQUIRE_BROWSER=1 but {why}");
            }
            println!("skipped {test}: {why}; set CRISIS_REQUIRE_BROWSER=1 to make this a failure");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        let log = std::fs::File::create(dir.path().join("chromium.log")).unwrap();
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--window-size=1280,1024",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let ws = match connect(&mut child, &profile) {
            Ok(ws) => ws,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{why}:\n{}", std::fs::read_to_string(dir.path().join("chromium.log")).unwrap_or_default());
            }
        };
        let mut b = Browser { child, dir, ws, session: String::new(), next_id: 0, events: Vec::new() };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}))["targetId"].clone();
        let attached = b.call(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("a session id").to_string();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            b.page(&format!("{domain}.enable"), json!({}));
        }
        Some(b)
    }

    /// Chromium's own log (stderr), for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromium.log")).unwrap_or_default()
    }

    /// Sends one command (to the page's session, or to the browser when `session` is `None`) and returns its result.
    fn call(&mut self, session: Option<String>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap_or_else(|e| panic!("send {method}: {e}"));
        loop {
            let v = self.read(method);
            if v["id"] == json!(id) {
                if let Some(err) = v.get("error") {
                    panic!("{method} failed: {err}");
                }
                return v["result"].clone();
            }
        }
    }

    /// One message from Chromium; events are kept for [`Browser::errors`] and [`Browser::requests`].
    fn read(&mut self, waiting_for: &str) -> Value {
        loop {
            let msg = self.ws.read().unwrap_or_else(|e| panic!("no reply to {waiting_for} from Chromium: {e}"));
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v.get("method").is_some() {
                self.events.push(v.clone());
            }
            return v;
        }
    }

    /// Sends one command to the page.
    pub(crate) fn page(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(s), method, params)
    }

    /// Opens `url` in the page and waits for its load event.
    pub(crate) fn navigate(&mut self, url: &str) {
        let seen = self.events.len();
        let r = self.page("Page.navigate", json!({"url": url}));
        assert!(r.get("errorText").is_none(), "cannot open {url}: {r}");
        let deadline = Instant::now() + WAIT;
        while !self.events[seen..].iter().any(|e| e["method"] == "Page.loadEventFired") {
            assert!(Instant::now() < deadline, "{url} did not finish loading");
            self.read("Page.loadEventFired");
        }
    }

    /// Evaluates `expression` in the page and returns its value (objects by value); panics on an exception.
    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .page("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}));
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("{expression} threw: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Evaluates `expression`, which leaves the page (a form submit, a click
    /// on a submit button, a key that submits), and waits for the next page's load event.
    pub(crate) fn eval_then_load(&mut self, expression: &str) {
        let seen = self.events.len();
        self.eval(expression);
        self.wait_load(seen, expression);
    }

    /// Waits until a `Page.loadEventFired` arrives after the first `seen` events.
    fn wait_load(&mut self, seen: usize, what: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.events[seen..].iter().any(|e| e["method"] == "Page.loadEventFired") {
            assert!(Instant::now() < deadline, "no page loaded after {what}");
            self.read("Page.loadEventFired");
        }
    }

    /// Polls `expression` in the page until it is truthy; returns how long that took.
    pub(crate) fn wait_until(&mut self, what: &str, expression: &str) -> Duration {
        let start = Instant::now();
        loop {
            let v = self.eval(expression);
            if v.as_bool() == Some(true) {
                return start.elapsed();
            }
            assert!(start.elapsed() < WAIT, "{what}: `{expression}` still {v} after {WAIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Presses and releases one printable key on the focused element, and waits for the page it submits.
    pub(crate) fn press_then_load(&mut self, key: &str) {
        let seen = self.events.len();
        self.page("Input.dispatchKeyEvent", json!({"type": "keyDown", "key": key, "text": key}));
        self.page("Input.dispatchKeyEvent", json!({"type": "keyUp", "key": key}));
        self.wait_load(seen, &format!("pressing {key}"));
    }

    /// Console errors and assertions, uncaught exceptions and error log entries (failed loads, CSP refusals) so far.
    pub(crate) fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                        Some(format!("console.{}: {}", p["type"].as_str()?, p["args"]))
                    }
                    "Runtime.exceptionThrown" => Some(format!("exception: {}", p["exceptionDetails"])),
                    "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!("log: {}", p["entry"])),
                    _ => None,
                }
            })
            .collect()
    }

    /// URLs of every request the page made, in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_string))
            .collect()
    }

    /// Writes a PNG screenshot of the whole page to `path`.
    pub(crate) fn screenshot(&mut self, path: &Path) {
        let r = self.page("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
        let png = data_encoding::BASE64.decode(r["data"].as_str().expect("screenshot data").as_bytes()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// Waits for Chromium to write `DevToolsActivePort` (port, then the browser's WebSocket path) and connects.
fn connect(child: &mut Child, profile: &Path) -> Result<WebSocket<TcpStream>, String> {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + WAIT;
    let (port, path) = loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                break (port.trim().to_string(), path.trim().to_string());
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("Chromium exited ({status}) before listening"));
        }
        if Instant::now() > deadline {
            return Err(format!("Chromium wrote no DevToolsActivePort in {WAIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stream = TcpStream::connect(format!("127.0.0.1:{port}")).map_err(|e| format!("connect to port {port}: {e}"))?;
    stream.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
        .map_err(|e| format!("DevTools WebSocket handshake failed: {e}"))?;
    Ok(ws)
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.send(Message::text(json!({"id": 0, "method": "Browser.close"}).to_string()));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
