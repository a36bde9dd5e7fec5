//! `make bench`: each crisis operation next to its floor, measured in the same run.
//!
//! In-process figures use criterion (reports under target/criterion); the
//! daemon figures drive the real release binary over loopback. The summary
//! (Markdown and JSON) is written to target/bench/summary.{md,json}.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), every
//! measurement runs once on small inputs as a smoke test.

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crisis::drill::run::{self as drill_run, DrillOptions, Extensions};
use crisis::incident::effects::LogExecutor;
use crisis::plugin::api::{Invocation, RunMode};
use crisis::plugin::{PluginGrant, PluginHost, PluginHostConfig};
use criterion::Criterion;
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "suite/console.rs"]
mod console;
#[path = "suite/curves.rs"]
mod curves;
#[path = "suite/guests.rs"]
mod guests;
#[path = "suite/outbox.rs"]
mod outbox;
#[path = "suite/pg_ingest.rs"]
mod pg_ingest;
#[path = "suite/plugin.rs"]
mod plugin;

#[derive(Serialize)]
struct Row {
    name: String,
    value: f64,
    unit: String,
    baseline: String,
    baseline_value: f64,
    /// value / baseline_value (for rates: crisis / baseline).
    ratio: f64,
    goal: String,
    met: bool,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Median nanoseconds per iteration, measured by criterion (or one run in smoke mode).
fn time(c: &mut Option<Criterion>, name: &str, mut f: impl FnMut()) -> f64 {
    let Some(c) = c else {
        let t = Instant::now();
        f();
        return t.elapsed().as_nanos() as f64;
    };
    let samples = Rc::new(RefCell::new(Vec::new()));
    let s = samples.clone();
    c.bench_function(name, move |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            let d = t.elapsed();
            s.borrow_mut().push(d.as_nanos() as f64 / iters as f64);
            d
        })
    });
    let mut v = samples.borrow().clone();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn row(name: &str, value: f64, unit: &str, baseline: &str, baseline_value: f64, goal: &str, met: bool) -> Row {
    Row {
        name: name.into(),
        value,
        unit: unit.into(),
        baseline: baseline.into(),
        baseline_value,
        ratio: value / baseline_value,
        goal: goal.into(),
        met,
    }
}

// ----------------------------------------------------------- validation, drill

fn validate_rows(c: &mut Option<Criterion>, rows: &mut Vec<Row>, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(repo().join("playbooks/service-outage.toml")).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.path().join(format!("pb-{i:04}.toml")),
            template.replace("id = \"service-outage\"", &format!("id = \"pb-{i:04}\"")),
        )
        .unwrap();
    }
    let cfg = crisis::config::load(&repo().join("examples/crisis.toml")).unwrap();
    let ctx = cfg.ref_context();
    let paths = vec![dir.path().to_path_buf()];
    let v_ns = time(c, "reload/validate_1000_playbooks", || {
        let snap = crisis::playbook::Snapshot::read(&paths);
        let v = crisis::playbook::validate(&snap, &ctx);
        assert!(v.is_ok(), "{:?}", v.diagnostics.first());
    });
    let p_ns = time(c, "reload/raw_toml_parse_1000", || {
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let t = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let _: toml::Table = toml::from_str(&t).unwrap();
        }
    });
    rows.push(row(
        &format!("validate {n} generated playbooks"),
        v_ns / 1e6,
        "ms",
        "read + toml::from_str of the same files",
        p_ns / 1e6,
        "< 100 ms",
        v_ns / 1e6 < 100.0,
    ));
}

fn drill_rows(c: &mut Option<Criterion>, rows: &mut Vec<Row>) {
    let mut cfg = crisis::config::load(&repo().join("examples/crisis.toml")).unwrap();
    cfg.state_dir = std::env::temp_dir().join("crisis-bench-unused");
    let g = crisis::incident::loader::load(cfg, 1, 0).generation.expect("shipped playbooks are valid");
    // The longest shipped scenario.
    let (pb, span, events) = g
        .playbooks
        .keys()
        .map(|id| {
            let out = drill_run::run(
                &g,
                id,
                DrillOptions::virtual_in_memory("bench", 1),
                Arc::new(LogExecutor),
                &Extensions::default(),
            )
            .unwrap();
            let span = out.events.last().map(|e| e.at).unwrap_or(0) - out.events.first().map(|e| e.at).unwrap_or(0);
            (id.clone(), span, out.events.len())
        })
        .max_by_key(|(_, span, _)| *span)
        .unwrap();
    let d_ns = time(c, "drill/virtual_longest_shipped", || {
        drill_run::run(
            &g,
            &pb,
            DrillOptions::virtual_in_memory("bench", 1),
            Arc::new(LogExecutor),
            &Extensions::default(),
        )
        .unwrap();
    });
    let a_ns = time(c, "drill/raw_journal_appends", || {
        let s = crisis::store::SqliteStore::in_memory().unwrap();
        for i in 0..events {
            crisis::store::Store::transaction(&s, &mut |tx| {
                tx.append("DRL-1", i as i64, "note", &serde_json::json!({"i": i})).map(|_| ())
            })
            .unwrap();
        }
    });
    let hours = span as f64 / 3.6e6;
    rows.push(row(
        &format!("drill `{pb}` on the virtual clock ({hours:.1} h of drill time, {events} events)"),
        d_ns / 1e6,
        "ms",
        "the same number of journal appends",
        a_ns / 1e6,
        "< 1 s",
        d_ns < 1e9,
    ));
}

// ------------------------------------------------------------------- daemon

struct Daemon {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn setup_dir() -> (tempfile::TempDir, PathBuf, u16) {
    setup_dir_with("")
}

/// `setup_dir` with `webhook_port` serving the report notices (`superiors`
/// and `oncall`) through the built-in webhook notifier, when given.
fn setup_dir_webhooks(webhook_port: u16) -> (tempfile::TempDir, PathBuf, u16) {
    let lo = format!("http://127.0.0.1:{webhook_port}");
    let mut extra =
        format!("[plugins.webhook-notify]\nallowed_hosts = [\"{lo}\"]\nallow_private = [\"{lo}\"]\ntimeout = \"5s\"\n");
    for t in ["superiors", "oncall"] {
        extra.push_str(&format!(
            "[targets.{t}]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"{lo}/{t}\" }}\nconcurrency = 8\nbreaker_failures = 1\nbreaker_cooldown = \"1h\"\n"
        ));
    }
    setup_dir_with(&extra)
}

fn setup_dir_with(targets: &str) -> (tempfile::TempDir, PathBuf, u16) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("playbooks")).unwrap();
    for e in std::fs::read_dir(repo().join("playbooks")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join("playbooks").join(e.file_name())).unwrap();
    }
    for f in ["roster.toml", "customers.csv"] {
        std::fs::copy(repo().join("examples").join(f), dir.path().join(f)).unwrap();
    }
    let port = free_port();
    let mut cfg = format!(
        "state_dir = \"state\"\nlisten = \"127.0.0.1:{port}\"\nplaybooks = \"playbooks\"\nroster = \"roster.toml\"\ncustomers = \"customers.csv\"\n[limits]\nintake_per_minute = 10000000\n"
    );
    cfg.push_str(targets);
    for t in ["superiors", "departments", "customers", "regulator", "pr", "oncall"] {
        if !targets.contains(&format!("[targets.{t}]")) {
            cfg.push_str(&format!("[targets.{t}]\nplugin = \"log\"\n"));
        }
    }
    // The shipped outage playbook publishes to the public status page.
    cfg.push_str(
        "[targets.status-page]\nplugin = \"status\"\n[status_page]\n\
         components = [{ id = \"login\" }, { id = \"checkout\" }, { id = \"payments\" }]\n",
    );
    let path = dir.path().join("crisis.toml");
    std::fs::write(&path, cfg).unwrap();
    (dir, path, port)
}

fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = write!(s, "GET {path} HTTP/1.0\r\n\r\n");
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    n >= 12 && &buf[9..12] == b"200"
}

fn start(config: &Path, dir: &Path, port: u16) -> (Daemon, Duration) {
    let t = Instant::now();
    // `CRISIS_BIN` runs a copy of the daemon another build cannot overwrite mid-run.
    let bin = std::env::var_os("CRISIS_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_crisis")), PathBuf::from);
    let child = Command::new(bin)
        .args(["--config", config.to_str().unwrap(), "daemon"])
        .current_dir(dir)
        .env("CRISIS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !http_ok(port, "/readyz") {
        assert!(t.elapsed() < Duration::from_secs(60), "daemon did not become ready");
        std::thread::sleep(Duration::from_millis(1));
    }
    (Daemon { child, port, dir: dir.to_path_buf() }, t.elapsed())
}

fn rss_kb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn daemon_rows(rows: &mut Vec<Row>, full: bool) {
    if !wanted("daemon") {
        return;
    }
    let (dir, config, port) = setup_dir();
    // Warm the compile cache, then measure cold starts.
    drop(start(&config, dir.path(), port).0);
    let mut starts = Vec::new();
    for _ in 0..if full { 5 } else { 1 } {
        let (d, t) = start(&config, dir.path(), port);
        starts.push(t.as_secs_f64() * 1000.0);
        drop(d);
    }
    starts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let t = Instant::now();
    Command::new(env!("CARGO_BIN_EXE_crisis")).arg("--version").stdout(Stdio::null()).status().unwrap();
    let version_ms = t.elapsed().as_secs_f64() * 1000.0;
    let cold = starts[starts.len() / 2];
    rows.push(row(
        "cold start to /readyz (3 built-in plugins, warm compile cache)",
        cold,
        "ms",
        "process start to exit of `crisis --version`",
        version_ms,
        "< 150 ms",
        cold < 150.0,
    ));

    let (d, _) = start(&config, dir.path(), port);
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_kb(d.child.id()) / 1024.0;
    rows.push(row("idle daemon RSS (shipped playbooks)", rss, "MB", "the 40 MB goal", 40.0, "< 40 MB", rss < 40.0));

    // Reload: from a file write to the new generation serving.
    let token = std::fs::read_to_string(d.dir.join("state/api.token")).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let generation = || -> u64 {
        let mut r = agent
            .get(&format!("http://127.0.0.1:{}/v1/playbooks", d.port))
            .header("Authorization", &format!("Bearer {}", token.trim()))
            .call()
            .unwrap();
        let v: serde_json::Value = r.body_mut().read_json().unwrap();
        v["generation"].as_u64().unwrap()
    };
    let mut reloads = Vec::new();
    let pb = d.dir.join("playbooks/service-outage.toml");
    let original = std::fs::read_to_string(&pb).unwrap();
    for i in 0..if full { 5 } else { 1 } {
        let g0 = generation();
        let t = Instant::now();
        std::fs::write(
            &pb,
            original.replace("Customer-facing service outage", &format!("Customer-facing service outage ({i})")),
        )
        .unwrap();
        while generation() == g0 {
            assert!(t.elapsed() < Duration::from_secs(20), "reload never applied");
            std::thread::sleep(Duration::from_millis(2));
        }
        reloads.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(500));
    }
    reloads.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let reload = reloads[reloads.len() / 2];
    rows.push(row(
        "file write to new generation serving (incl. debounce)",
        reload,
        "ms",
        "the configured 300 ms watcher debounce",
        300.0,
        "< 500 ms",
        reload < 500.0,
    ));
}

/// Durable trigger ingest over HTTP next to raw SQLite inserts, then how fast
/// the notices of that burst followed (on the same daemon).
fn ingest_rows(rows: &mut Vec<Row>, full: bool) {
    if !wanted("ingest") {
        return;
    }
    let (dir, config, port) = setup_dir();
    let (d, _) = start(&config, dir.path(), port);
    let token = std::fs::read_to_string(d.dir.join("state/api.token")).unwrap();
    // Ingest: triggers through the HTTP API vs raw SQLite inserts with the same durability.
    let count = if full { 20_000 } else { 200 };
    let out = Command::new(env!("CARGO_BIN_EXE_crisis-load"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{}", d.port),
            "--token",
            token.trim(),
            "--playbook",
            "service-outage",
            "--count",
            &count.to_string(),
            "--concurrency",
            "16",
            "--dedup-ratio",
            "0.5",
            "--max-seconds",
            "120",
            "--json",
            "--field",
            "nature=bench",
            "--field",
            "scope=bench",
            "--field",
            "consequences=bench",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let load: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let raw = raw_sqlite_rate(count);
    let rate = load["per_second"].as_f64().unwrap();
    rows.push(row(
        "trigger ingest over HTTP (durable, half dedup), per second",
        rate,
        "/s",
        "raw SQLite inserts, WAL + synchronous=FULL, one commit each",
        raw,
        "≥ 5,000/s and ≥ 1.0× raw",
        rate >= 5000.0 && rate >= raw,
    ));
    let p99 = load["p99_ms"].as_f64().unwrap();
    rows.push(row(
        &format!("trigger ingest latency p99 (p50 {:.2} ms)", load["p50_ms"].as_f64().unwrap()),
        p99,
        "ms",
        "the 10 ms goal",
        10.0,
        "< 10 ms",
        p99 < 10.0,
    ));
    outbox::notice_rows(rows, &d, token.trim(), p99);
    drop(d);
    drop(dir);
}

fn raw_sqlite_rate(n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE events (seq INTEGER PRIMARY KEY, incident_id TEXT, at INTEGER, kind TEXT, data TEXT, prev_hash TEXT, hash TEXT)").unwrap();
    let data = serde_json::json!({"kind": "opened", "playbook_id": "service-outage", "fields": {"nature": "bench", "scope": "bench"}}).to_string();
    let t = Instant::now();
    for i in 0..n {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.execute(
            "INSERT INTO events (incident_id, at, kind, data, prev_hash, hash) VALUES (?1, ?2, 'opened', ?3, '', '')",
            rusqlite::params![format!("INC-{i}"), i as i64, data],
        )
        .unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// Whether the row group `group` runs: all of them unless `CRISIS_BENCH_ONLY`
/// names a comma-separated subset (plugin, validate, drill, daemon, ingest,
/// console, outbox, pg, curves; `webhook` and `backlog` are the two halves of
/// outbox), e.g. `CRISIS_BENCH_ONLY=ingest,outbox cargo bench --bench suite`.
fn wanted(group: &str) -> bool {
    match std::env::var("CRISIS_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|g| g.trim() == group),
        _ => true,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut c = full.then(|| {
        Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
    });
    let mut rows = Vec::new();
    if wanted("plugin") {
        plugin::plugin_rows(&mut c, &mut rows);
        guests::guest_rows(&mut c, &mut rows);
    }
    if wanted("validate") {
        validate_rows(&mut c, &mut rows, if full { 1000 } else { 20 });
    }
    if wanted("drill") {
        drill_rows(&mut c, &mut rows);
    }
    daemon_rows(&mut rows, full);
    ingest_rows(&mut rows, full);
    if wanted("console") {
        console::console_rows(&mut rows, full);
    }
    if wanted("outbox") || wanted("webhook") {
        outbox::webhook_rows(&mut rows, full);
    }
    if wanted("outbox") || wanted("backlog") {
        outbox::backlog_rows(&mut rows, full);
    }
    if wanted("pg") || wanted("pg_ingest") {
        pg_ingest::pg_ingest_rows(&mut rows, full);
    }
    let curves_md = if wanted("curves") { curves::curve_rows(&mut rows, full) } else { String::new() };
    if let Some(c) = c {
        c.final_summary();
    }
    let mut md = String::from(
        "| measurement | crisis | baseline (same run) | ratio | goal | met |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {:.2} {} | {}: {:.2} {} | {:.2}× | {} | {} |\n",
            r.name,
            r.value,
            r.unit,
            r.baseline,
            r.baseline_value,
            r.unit,
            r.ratio,
            r.goal,
            if r.met { "yes" } else { "**no**" }
        ));
    }
    md.push_str(&curves_md);
    if !full {
        println!("\n{md}\n(smoke run: one sample each on small inputs; `make bench` measures)");
        return;
    }
    let out = repo().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("summary.md"), &md).unwrap();
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    println!("\n{md}\nwritten to {}", out.display());
}
