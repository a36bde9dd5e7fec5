//! `crisis-load`: drives a running crisis daemon over loopback with a bounded
//! number of trigger requests at a target rate, and reports throughput and
//! latency percentiles. It always stops by itself: after `--count` requests
//! or `--max-seconds`, whichever comes first.

use clap::Parser;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "crisis-load", version, about = "Bounded load generator for a crisis daemon (loopback only).")]
struct Args {
    /// Daemon base URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8707")]
    url: String,
    /// API token (default: read from --token-file).
    #[arg(long, env = "CRISIS_TOKEN")]
    token: Option<String>,
    /// File holding the token (state_dir/api.token).
    #[arg(long, default_value = ".crisis/api.token")]
    token_file: std::path::PathBuf,
    /// Playbook to trigger.
    #[arg(long)]
    playbook: String,
    /// Total requests to send.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Target requests per second across all connections (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Fraction of requests that repeat an earlier dedup key (attach instead of open).
    #[arg(long, default_value_t = 0.5)]
    dedup_ratio: f64,
    /// Hard stop.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// Report fields to send (KEY=VALUE), e.g. nature=... scope=...
    #[arg(long = "field", value_parser = parse_kv)]
    fields: Vec<(String, String)>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Dedup keys are PREFIX-N; a second run on the same daemon needs another
    /// prefix, or its triggers attach to the first run's open incidents.
    #[arg(long, default_value = "load")]
    key_prefix: String,
    /// Also write each answered request as CSV `sent_ms,latency_ms` (sent_ms
    /// counted from the start of the run) to this file, to find when stalls happened.
    #[arg(long)]
    latencies: Option<std::path::PathBuf>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// What one run measured.
#[derive(Debug, Serialize)]
struct Report {
    sent: u64,
    ok: u64,
    errors: u64,
    seconds: f64,
    per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn main() {
    let a = Args::parse();
    let host = a.url.trim_start_matches("http://").split(['/', ':']).next().unwrap_or("");
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        eprintln!("error: crisis-load only drives loopback daemons; {} is not loopback", a.url);
        std::process::exit(2);
    }
    let token = a
        .token
        .clone()
        .or_else(|| std::fs::read_to_string(&a.token_file).ok().map(|t| t.trim().to_string()))
        .unwrap_or_else(|| {
            eprintln!("error: no token: pass --token or --token-file (state_dir/api.token)");
            std::process::exit(2);
        });
    let next = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.count as usize)));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.max_seconds);
    let fields: serde_json::Map<String, serde_json::Value> =
        a.fields.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    let threads: Vec<_> = (0..a.concurrency.max(1))
        .map(|_| {
            let (next, latencies, errors) = (next.clone(), latencies.clone(), errors.clone());
            let (url, token, playbook, fields) = (
                format!("{}/v1/incidents", a.url.trim_end_matches('/')),
                token.clone(),
                a.playbook.clone(),
                fields.clone(),
            );
            let (count, rate, dedup, prefix) = (a.count, a.rate, a.dedup_ratio, a.key_prefix.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                let auth = format!("Bearer {token}");
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count || Instant::now() >= deadline {
                        break;
                    }
                    if rate > 0 {
                        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    // Deterministic key choice: request i repeats an earlier key with probability `dedup`.
                    let repeat = i > 0 && ((i.wrapping_mul(2_654_435_761) % 1000) as f64) < dedup * 1000.0;
                    let key = if repeat { format!("{prefix}-{}", i / 2) } else { format!("{prefix}-{i}") };
                    let body =
                        serde_json::json!({"playbook": playbook, "dedup_key": key, "fields": fields, "source": "load"});
                    let t = Instant::now();
                    match agent.post(&url).header("Authorization", &auth).send_json(&body) {
                        Ok(r) if r.status().is_success() => mine.push((t - start, t.elapsed())),
                        _ => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                latencies.lock().unwrap_or_else(|p| p.into_inner()).extend(mine);
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut timeline = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(path) = &a.latencies {
        timeline.sort();
        let csv: String = timeline
            .iter()
            .map(|(sent, took)| format!("{:.3},{:.3}\n", sent.as_secs_f64() * 1000.0, took.as_secs_f64() * 1000.0))
            .collect();
        if let Err(e) = std::fs::write(path, format!("sent_ms,latency_ms\n{csv}")) {
            eprintln!("error: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let mut l: Vec<Duration> = timeline.into_iter().map(|(_, took)| took).collect();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let ok = l.len() as u64;
    let r = Report {
        sent: ok + errors.load(Ordering::SeqCst),
        ok,
        errors: errors.load(Ordering::SeqCst),
        seconds,
        per_second: ok as f64 / seconds,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: l.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    } else {
        println!(
            "{} ok, {} errors in {:.2}s: {:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            r.ok, r.errors, r.seconds, r.per_second, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
        );
    }
    if r.ok == 0 {
        std::process::exit(1);
    }
}
