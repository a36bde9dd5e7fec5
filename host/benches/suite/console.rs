//! The web console's budgets on the release daemon: the incident board with
//! many open incidents, how soon an open page hears of a journaled event over
//! Server-Sent Events, and the bytes the console embeds in the binary.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;

/// Open incidents on the board in a measured run.
const BOARD_INCIDENTS: u64 = 500;

fn agent() -> ureq::Agent {
    // Redirects are the sign-in's answer, not something to follow.
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

/// The value `name` is set to by the `Set-Cookie` headers of `r`.
fn set_cookie(r: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no `{name}` cookie set"))
}

/// Signs in as the console's form does (its CSRF cookie and field, then the
/// API token); returns the `Cookie` header of the session.
fn sign_in(a: &ureq::Agent, d: &Daemon, token: &str) -> String {
    let url = format!("http://127.0.0.1:{}/console/login", d.port);
    let page = a.get(&url).call().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let nonce = set_cookie(&page, "crisis_console_login");
    let r = a
        .post(&url)
        .header("Cookie", &format!("crisis_console_login={nonce}"))
        .send_form([("token", token), ("csrf", nonce.as_str())])
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "sign-in refused");
    format!("crisis_console={}", set_cookie(&r, "crisis_console"))
}

/// Median and 99th percentile of `v` (ms).
fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (pct(0.5), pct(0.99))
}

/// Round trips of `n` GETs of `path` with `cookie`, in ms; each answer must be `status`.
fn gets(a: &ureq::Agent, d: &Daemon, path: &str, cookie: &str, status: u16, n: usize) -> Vec<f64> {
    let url = format!("http://127.0.0.1:{}{path}", d.port);
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut r = a.get(&url).header("Cookie", cookie).call().unwrap();
            let body = r.body_mut().read_to_string().unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(r.status().as_u16(), status, "GET {path}: {body}");
            ms
        })
        .collect()
}

/// One `change` frame of the console's event stream, stamped when its line arrived.
struct Frame {
    incident: String,
    kind: String,
    at: Instant,
}

/// Opens `/console/events` as the console page does and forwards every
/// `change` frame; returns once the stream said it is live.
fn open_stream(d: &Daemon, cookie: &str) -> mpsc::Receiver<Frame> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.set_nodelay(true).unwrap();
    write!(
        s,
        "GET /console/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Chunk-size lines of the HTTP/1.1 framing match neither prefix and are skipped.
        let mut event = String::new();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let at = Instant::now();
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                if event == "ready" {
                    let _ = ready_tx.send(());
                } else if event == "change" {
                    let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                    let f = Frame {
                        incident: v["incident"].as_str().unwrap_or_default().to_string(),
                        kind: v["kind"].as_str().unwrap_or_default().to_string(),
                        at,
                    };
                    if tx.send(f).is_err() {
                        return;
                    }
                }
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("the console stream never said it is live");
    rx
}

/// Sends one API request; returns its answer's body and (sent, answered) instants.
fn api(
    a: &ureq::Agent,
    d: &Daemon,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (serde_json::Value, Instant, Instant) {
    let sent = Instant::now();
    let mut r = a
        .post(&format!("http://127.0.0.1:{}{path}", d.port))
        .header("Authorization", &format!("Bearer {token}"))
        .send_json(&body)
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    let answered = Instant::now();
    assert!(r.status().is_success(), "POST {path}: {} {text}", r.status());
    (serde_json::from_str(&text).unwrap(), sent, answered)
}

/// Waits for the frame of `kind` about `incident`; returns when it arrived.
fn frame(rx: &mpsc::Receiver<Frame>, incident: &str, kind: &str) -> Instant {
    loop {
        let f = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("no `{kind}` frame for {incident}"));
        if f.incident == incident && f.kind == kind {
            return f.at;
        }
    }
}

pub(crate) fn console_rows(rows: &mut Vec<Row>, full: bool) {
    let (dir, config, port) = setup_dir();
    let (d, _) = start(&config, dir.path(), port);
    let token = std::fs::read_to_string(d.dir.join("state/api.token")).unwrap();
    let token = token.trim();
    let open = if full { BOARD_INCIDENTS } else { 20 };
    let out = Command::new(env!("CARGO_BIN_EXE_crisis-load"))
        .args(["--url", &format!("http://127.0.0.1:{}", d.port), "--token", token, "--playbook", "service-outage"])
        .args(["--count", &open.to_string(), "--concurrency", "8", "--dedup-ratio", "0", "--key-prefix", "board"])
        .args(["--max-seconds", "120", "--json"])
        .args(["--field", "nature=bench", "--field", "scope=bench", "--field", "consequences=bench"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Measure a settled daemon: the notices of those incidents are sent first.
    outbox::wait_drained(&d, token);

    let a = agent();
    let cookie = sign_in(&a, &d, token);
    let board = a.get(&format!("http://127.0.0.1:{}/console", d.port)).header("Cookie", &cookie).call();
    let page = board.unwrap().body_mut().read_to_string().unwrap();
    let shown = page.matches("<a href=\"/console/incidents/").count() as u64;
    assert!(shown >= open, "the board shows {shown} incidents, {open} are open");
    let n = if full { 200 } else { 3 };
    let (board_ms, board_p99) = p50_p99(gets(&a, &d, "/console", &cookie, 200, n));
    // The same session check and connection, answered without rendering: a signed-in
    // person asking for the sign-in page is sent to the board.
    let (trivial_ms, _) = p50_p99(gets(&a, &d, "/console/login", &cookie, 303, n));
    rows.push(row(
        &format!("console board GET with {open} open incidents, p50 round trip (p99 {board_p99:.1} ms)"),
        board_ms,
        "ms",
        "a signed-in console request answered without rendering (sign-in page → redirect)",
        trivial_ms,
        "< 50 ms",
        board_ms < 50.0,
    ));

    let rx = open_stream(&d, &cookie);
    let events = if full { 100 } else { 4 };
    let (mut delays, mut trips) = (Vec::new(), Vec::new());
    for i in 0..events / 2 {
        let body = serde_json::json!({"playbook": "service-outage", "dedup_key": format!("sse-{i}"), "source": "bench",
            "fields": {"nature": "bench", "scope": "bench", "consequences": "bench"}});
        let (v, sent, answered) = api(&a, &d, token, "/v1/incidents", body);
        let id = v["incident"]["id"].as_str().expect("the trigger answer names the incident").to_string();
        // A frame that beat the answer to the client counts as no delay.
        delays.push(frame(&rx, &id, "opened").saturating_duration_since(answered).as_secs_f64() * 1000.0);
        trips.push((answered - sent).as_secs_f64() * 1000.0);
        let (_, sent, answered) =
            api(&a, &d, token, &format!("/v1/incidents/{id}/ack"), serde_json::json!({"as": "li-wei"}));
        delays.push(frame(&rx, &id, "acknowledged").saturating_duration_since(answered).as_secs_f64() * 1000.0);
        trips.push((answered - sent).as_secs_f64() * 1000.0);
    }
    let count = delays.len();
    let (p50, p99) = p50_p99(delays);
    let (trip, _) = p50_p99(trips);
    rows.push(row(
        &format!("journaled event to SSE frame at an open console, after the API answer, p99 (p50 {p50:.2} ms, {count} triggers and acks)"),
        p99,
        "ms",
        "HTTP round trip of the triggering request (p50)",
        trip,
        "< 100 ms",
        p99 < 100.0,
    ));
    drop(rx);
    drop(d);
    drop(dir);

    let kb = crisis::daemon::console_assets_size() as f64 / 1024.0;
    rows.push(row(
        "console assets and templates embedded in the binary",
        kb,
        "KB",
        "the 300 KB goal",
        300.0,
        "< 300 KB",
        kb < 300.0,
    ));
}
