//! How fast notices follow triggers: trigger-to-notice latency with `log`
//! and webhook targets, the drain rate against the intake rate, and intake
//! latency while a backlog drains after a restart.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Runs `crisis-load` against `d` and returns its JSON report.
fn load(d: &Daemon, token: &str, count: u64, rate: u64, key_prefix: &str) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crisis-load"));
    // `CRISIS_BENCH_TRACE=DIR` keeps each run's per-request latencies as DIR/PREFIX.csv.
    if let Some(dir) = std::env::var_os("CRISIS_BENCH_TRACE") {
        cmd.arg("--latencies").arg(std::path::Path::new(&dir).join(format!("{key_prefix}.csv")));
    }
    let out = cmd
        .args(["--url", &format!("http://127.0.0.1:{}", d.port), "--token", token, "--playbook", "service-outage"])
        .args(["--count", &count.to_string(), "--rate", &rate.to_string(), "--concurrency", "16"])
        .args(["--dedup-ratio", "0", "--max-seconds", "300", "--json", "--key-prefix", key_prefix])
        .args(["--field", "nature=bench", "--field", "scope=bench", "--field", "consequences=bench"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn status(d: &Daemon, token: &str) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent
        .get(&format!("http://127.0.0.1:{}/v1/status", d.port))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    r.body_mut().read_json().unwrap()
}

/// Pending side effects over every target.
fn pending(d: &Daemon, token: &str) -> i64 {
    let v = status(d, token);
    v["outbox"]["depth"].as_object().map(|m| m.values().filter_map(|n| n.as_i64()).sum()).unwrap_or(0)
}

pub(crate) fn wait_drained(d: &Daemon, token: &str) {
    let t = Instant::now();
    while pending(d, token) > 0 {
        assert!(t.elapsed() < Duration::from_secs(900), "the outbox never drained");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// (opened, executed) journal timestamps of every executed notice.
fn notice_times(d: &Daemon) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open_with_flags(
        d.dir.join("state/journal.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT o.at, e.at FROM events e JOIN events o ON o.incident_id = e.incident_id AND o.kind = 'opened' \
             WHERE e.kind = 'effect_result'",
        )
        .unwrap();
    let pairs: Vec<(i64, i64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert!(!pairs.is_empty(), "no notice was executed");
    pairs
}

/// (p50, p99) of the trigger-to-notice delays in ms.
fn percentiles(pairs: &[(i64, i64)]) -> (f64, f64) {
    let mut delays: Vec<f64> = pairs.iter().map(|(o, e)| (e - o) as f64).collect();
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| delays[((delays.len() - 1) as f64 * p).round() as usize];
    (pct(0.5), pct(0.99))
}

/// Trigger-to-notice latency and drain rate of the burst just sent to `d`.
pub(crate) fn notice_rows(rows: &mut Vec<Row>, d: &Daemon, token: &str, intake_p99_ms: f64) {
    wait_drained(d, token);
    let pairs = notice_times(d);
    let (p50, p99) = percentiles(&pairs);
    rows.push(row(
        &format!(
            "trigger to notice executed p99, `log` targets, during the burst (p50 {p50:.0} ms, {} notices)",
            pairs.len()
        ),
        p99,
        "ms",
        "trigger ingest p99 in the same burst",
        intake_p99_ms,
        "≤ 2,000 ms",
        p99 <= 2000.0,
    ));
    // Each rate over its own window: an outbox that keeps up runs its notices
    // over the same span as intake created them, shifted by the latency above;
    // one that falls behind needs a longer one. Each window is bounded by
    // single events, so 1% is allowed for where they fall.
    let span = |v: Vec<i64>| (v.iter().max().unwrap() - v.iter().min().unwrap()).max(1) as f64 / 1000.0;
    let n = pairs.len() as f64;
    let created = n / span(pairs.iter().map(|p| p.0).collect());
    let drained = n / span(pairs.iter().map(|p| p.1).collect());
    rows.push(row(
        "notices executed per second, first to last notice executed",
        drained,
        "/s",
        "notices created per second by intake, first to last trigger",
        created,
        "≥ 1.0× intake (within 1%)",
        drained >= 0.99 * created,
    ));
}

/// A loopback webhook receiver: 200 (or 500 while `failing`) to every request.
pub(crate) struct Receiver {
    pub(crate) port: u16,
    failing: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let failing = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let (f, a) = (failing.clone(), answered.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (f, a) = (f.clone(), a.clone());
                std::thread::spawn(move || serve(stream, &f, &a));
            }
        });
        Receiver { port, failing, answered }
    }
}

/// Answers the requests on one connection until it closes.
fn serve(stream: std::net::TcpStream, failing: &AtomicBool, answered: &AtomicU64) {
    let mut out = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let status = if failing.load(Ordering::SeqCst) { "500 Internal Server Error" } else { "200 OK" };
        answered.fetch_add(1, Ordering::SeqCst);
        // One write per response, as a real server buffers it: written in
        // pieces, Nagle's algorithm and the client's delayed ACK would hold
        // each answer on a kept connection for 40 ms.
        if out.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok").as_bytes()).is_err() {
            return;
        }
    }
}

/// Trigger-to-notice latency with both report notices going to a loopback webhook.
pub(crate) fn webhook_rows(rows: &mut Vec<Row>, full: bool) {
    let server = Receiver::start();
    let (dir, config, port) = setup_dir_webhooks(server.port);
    let (d, _) = start(&config, dir.path(), port);
    let token = std::fs::read_to_string(d.dir.join("state/api.token")).unwrap();
    let (count, rate) = if full { (10_000, 1_000) } else { (100, 100) };
    let report = load(&d, token.trim(), count, rate, "wh");
    wait_drained(&d, token.trim());
    let pairs = notice_times(&d);
    let (p50, p99) = percentiles(&pairs);
    rows.push(row(
        &format!(
            "trigger to webhook notice p99 at {rate} triggers/s, 2 webhook targets (p50 {p50:.0} ms, {} notices)",
            pairs.len()
        ),
        p99,
        "ms",
        "trigger ingest p99 in the same run",
        report["p99_ms"].as_f64().unwrap(),
        "≤ 2,000 ms",
        p99 <= 2000.0,
    ));
    drop(d);
    drop(dir);
}

/// Intake latency while a backlog of webhook notices drains after a restart,
/// next to the same daemon's idle intake latency.
pub(crate) fn backlog_rows(rows: &mut Vec<Row>, full: bool) {
    let server = Receiver::start();
    server.failing.store(true, Ordering::SeqCst);
    let (dir, config, port) = setup_dir_webhooks(server.port);
    let (d, _) = start(&config, dir.path(), port);
    let token = std::fs::read_to_string(d.dir.join("state/api.token")).unwrap().trim().to_string();
    // Two report notices per trigger: 20,000 triggers leave 40,000 pending
    // (the open circuits hold them without sending).
    let backlog_triggers = if full { 20_000 } else { 100 };
    load(&d, &token, backlog_triggers, 0, "backlog");
    let t = Instant::now();
    while pending(&d, &token) < 2 * backlog_triggers as i64 {
        assert!(t.elapsed() < Duration::from_secs(120), "the backlog was never recorded");
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(d);
    server.failing.store(false, Ordering::SeqCst);
    let (d, _) = start(&config, dir.path(), port);
    let probe = if full { 2_000 } else { 50 };
    let busy = load(&d, &token, probe, 500, "during");
    let left = pending(&d, &token);
    wait_drained(&d, &token);
    let idle = load(&d, &token, probe, 500, "idle");
    let (busy_p99, idle_p99) = (busy["p99_ms"].as_f64().unwrap(), idle["p99_ms"].as_f64().unwrap());
    rows.push(row(
        &format!(
            "intake p99 while {} pending notices drain after a restart ({left} still pending when it ended)",
            2 * backlog_triggers
        ),
        busy_p99,
        "ms",
        "intake p99 of the same daemon once the outbox is empty",
        idle_p99,
        "≤ 2× idle",
        busy_p99 <= 2.0 * idle_p99,
    ));
    assert!(server.answered.load(Ordering::SeqCst) > 0);
    drop(d);
    drop(dir);
}
