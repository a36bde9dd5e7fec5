//! Cost curves: how the cost of the everyday operations grows with the
//! journal. A journal of N incidents (about ten events each, most resolved,
//! one in a hundred still open) is built with the library, in one
//! transaction per batch of 250, then the release daemon is started on it and
//! measured: trigger ingest, the first page of the list, one incident,
//! a metrics scrape, `verify` per million events, RSS and cold start.
//!
//! Each curve's figure is the ratio between its value at the largest and
//! the smallest size. Written as one Markdown table per curve (returned for
//! the summary) and as a line chart, target/bench/curves.svg.

use super::*;
use crisis::incident::effects::EffectOutcome;
use crisis::incident::{Engine, IntakeOp, ManualClock, TriggerRequest};
use crisis::store::SqliteStore;
use std::collections::BTreeMap;

/// A playbook that journals its phases and sends nothing but the
/// commander's page, which the seed journals as sent, so the daemon
/// measured on the journal has no backlog to run.
const CURVE_PLAYBOOK: &str = r#"
[playbook]
id = "curve"
name = "Cost-curve filler"
category = "other"
severity = "sev4"
summary = "A quiet incident that journals events and sends nothing."

[report]
require = ["nature"]
notify = []

[activate]
channels = []

[assign]
commander = "rota:cs-duty"

[[act]]
id = "look"
kind = "manual"
owner = "role:commander"
tasks = ["Look"]

[track]
notify = []

[outcome]
require = ["cause"]
notify = []
"#;

/// Triggers that attach to each incident after the one that opened it.
const ATTACHES: usize = 6;
/// Incidents journaled per transaction while seeding.
const BATCH: usize = 250;

/// What was measured at one journal size.
struct Point {
    incidents: usize,
    events: i64,
    values: Vec<f64>,
}

/// One curve: its name, unit, whether smaller is better, and the goal on
/// the ratio between the largest and the smallest size.
struct Curve {
    name: &'static str,
    unit: &'static str,
    lower_is_better: bool,
    goal: Option<f64>,
}

const CURVES: [Curve; 8] = [
    Curve {
        name: "trigger ingest over HTTP (durable, half dedup)",
        unit: "/s",
        lower_is_better: false,
        goal: Some(1.5),
    },
    Curve { name: "`incident list` first page (100)", unit: "ms", lower_is_better: true, goal: Some(1.5) },
    Curve { name: "`incident show`", unit: "ms", lower_is_better: true, goal: Some(1.5) },
    Curve { name: "`/metrics` scrape", unit: "ms", lower_is_better: true, goal: Some(1.5) },
    Curve { name: "`crisis verify` per million events", unit: "s", lower_is_better: true, goal: Some(1.5) },
    Curve { name: "daemon RSS before verify", unit: "MB", lower_is_better: true, goal: None },
    Curve { name: "daemon RSS after verify", unit: "MB", lower_is_better: true, goal: None },
    Curve { name: "cold start to /readyz", unit: "ms", lower_is_better: true, goal: Some(1.5) },
];

/// Measures every curve at each size, adds one row per curve (its ratio),
/// writes the chart (full runs), and returns the tables for the summary.
pub(super) fn curve_rows(rows: &mut Vec<Row>, full: bool) -> String {
    // `CRISIS_CURVE_SIZES=100,10000` measures only those sizes (the first is the baseline).
    let chosen: Option<Vec<usize>> = std::env::var("CRISIS_CURVE_SIZES")
        .ok()
        .map(|v| v.split(',').map(|n| n.trim().parse().expect("CRISIS_CURVE_SIZES: numbers like 100,10000")).collect());
    let sizes: Vec<usize> =
        chosen.unwrap_or_else(|| if full { vec![100, 1_000, 10_000, 100_000] } else { vec![10, 100] });
    let points: Vec<Point> = sizes.iter().map(|&n| measure(n, full)).collect();
    let (first, last) = (&points[0], &points[points.len() - 1]);
    let mut md = String::from("\n### Cost curves (value at each journal size)\n");
    for (i, c) in CURVES.iter().enumerate() {
        let (small, large) = (first.values[i], last.values[i]);
        // For a rate the cost is its inverse: a ratio above 1 means slower.
        let growth = if c.lower_is_better { large / small } else { small / large };
        let goal = c.goal.map_or("(informational)".to_string(), |g| {
            format!("≤ {g}× from {} to {}", first.incidents, last.incidents)
        });
        rows.push(row(
            &format!("curve: {} at {} incidents", c.name, last.incidents),
            large,
            c.unit,
            &format!("the same at {} incidents", first.incidents),
            small,
            &goal,
            c.goal.is_none_or(|g| growth <= g),
        ));
        md.push_str(&format!(
            "\n{} (cost growth {growth:.2}×)\n\n| incidents | events | {} |\n|---|---|---|\n",
            c.name, c.unit
        ));
        for p in &points {
            md.push_str(&format!("| {} | {} | {:.3} |\n", p.incidents, p.events, p.values[i]));
        }
    }
    if full {
        let out = repo().join("target/bench");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("curves.svg"), svg(&points)).unwrap();
    }
    md
}

/// Builds a journal of `n` incidents, starts the daemon on it and measures.
fn measure(n: usize, full: bool) -> Point {
    let (dir, config, port) = setup_dir();
    std::fs::write(dir.path().join("playbooks/curve.toml"), CURVE_PLAYBOOK).unwrap();
    let events = seed(&config, n);
    // The first start fills the plugin compile cache; the second is measured.
    drop(start(&config, dir.path(), port).0);
    let (d, cold) = start(&config, dir.path(), port);
    let token = std::fs::read_to_string(d.dir.join("state/api.token")).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |path: &str, auth: bool| -> f64 {
        let t = Instant::now();
        let mut req = agent.get(&format!("http://127.0.0.1:{port}{path}"));
        if auth {
            req = req.header("Authorization", &format!("Bearer {}", token.trim()));
        }
        let mut r = req.call().unwrap();
        let body = r.body_mut().read_to_string().unwrap();
        assert_eq!(r.status(), 200, "{path}: {body}");
        t.elapsed().as_secs_f64() * 1000.0
    };
    let reps = if full { 25 } else { 3 };
    let list = median((0..reps).map(|_| get("/v1/incidents?limit=100", true)).collect());
    let show_id = format!("INC-{}", n / 2 + 1);
    let show = median((0..reps).map(|_| get(&format!("/v1/incidents/{show_id}"), true)).collect());
    let scrape = median((0..reps).map(|_| get("/metrics", false)).collect());
    let rss_before = rss_kb(d.child.id()) / 1024.0;
    let verify_ms = median((0..if full { 3 } else { 1 }).map(|_| get("/v1/verify", true)).collect());
    let verify = verify_ms / 1000.0 / (events as f64 / 1e6);
    let rss = rss_kb(d.child.id()) / 1024.0;
    let ingest = ingest_rate(port, token.trim(), if full { 2_000 } else { 100 });
    drop(d);
    // `CRISIS_CURVE_KEEP=1` keeps each seeded state directory for a closer look.
    if std::env::var_os("CRISIS_CURVE_KEEP").is_some() {
        eprintln!("curves: kept the {n}-incident journal in {}", dir.keep().display());
    } else {
        drop(dir);
    }
    Point {
        incidents: n,
        events,
        values: vec![ingest, list, show, scrape, verify, rss_before, rss, cold.as_secs_f64() * 1000.0],
    }
}

/// Journals `n` incidents through the engine, `BATCH` per transaction: each
/// opened, attached to `ATTACHES` times and (all but one in a hundred)
/// resolved. Returns the number of events in the journal.
fn seed(config: &Path, n: usize) -> i64 {
    let cfg = crisis::config::load(config).unwrap_or_else(|d| panic!("bench config: {d:?}"));
    let state = cfg.state_dir.clone();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // One millisecond per batch, ending now: the seeded incidents' timers
    // fall due as they would for incidents opened just now, not during the run.
    let batches = n.div_ceil(BATCH) as i64;
    let clock = Arc::new(ManualClock::new(now - batches));
    let loaded = crisis::incident::loader::load(cfg, 1, now);
    let generation = loaded.generation.unwrap_or_else(|| panic!("bench playbooks: {:?}", loaded.diagnostics));
    let store: Arc<dyn crisis::store::Store> = Arc::new(SqliteStore::open(&state).unwrap());
    let engine = Engine::new(store.clone(), clock.clone(), generation);
    let trigger = |i: usize| IntakeOp::Trigger {
        req: TriggerRequest {
            playbook: "curve".into(),
            title: None,
            severity: None,
            scope: None,
            fields: BTreeMap::from([("nature".to_string(), "bench".to_string())]),
            labels: BTreeMap::new(),
            dedup_key: Some(i.to_string()),
            source: "bench".into(),
            by: "bench".into(),
        },
        fallback: None,
    };
    for start in (0..n).step_by(BATCH) {
        let mut ops = Vec::new();
        for i in start..(start + BATCH).min(n) {
            ops.extend((0..=ATTACHES).map(|_| trigger(i)));
            if i % 100 != 99 {
                ops.push(IntakeOp::Resolve { playbook: "curve".into(), key: i.to_string(), source: "bench".into() });
            }
        }
        for r in engine.intake_batch(ops).unwrap() {
            r.unwrap();
        }
        // A journal a year old has run its past pages: journal each one's
        // result, or the daemon measured on it would be draining them.
        let pending = store.pending_intents(i64::MAX, usize::MAX >> 1).unwrap();
        let sent = EffectOutcome::sent("seeded");
        let results: Vec<(&str, &EffectOutcome)> = pending.iter().map(|i| (i.invocation_id.as_str(), &sent)).collect();
        engine.record_effects(&results).unwrap();
        clock.advance(1);
    }
    drop(engine);
    drop(store);
    let conn = rusqlite::Connection::open(state.join("journal.db")).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM incidents"), n as i64, "every trigger of an incident attached to it");
    assert_eq!(count("SELECT COUNT(*) FROM incidents WHERE status = 'open'"), (n / 100) as i64, "resolved as seeded");
    assert_eq!(
        count("SELECT COUNT(*) FROM intents WHERE result IS NULL"),
        0,
        "every seeded page was journaled as sent"
    );
    count("SELECT COUNT(*) FROM events")
}

/// Triggers per second through the HTTP API, measured by `crisis-load`.
fn ingest_rate(port: u16, token: &str, count: usize) -> f64 {
    let out = Command::new(env!("CARGO_BIN_EXE_crisis-load"))
        .args(["--url", &format!("http://127.0.0.1:{port}"), "--token", token, "--playbook", "curve"])
        .args(["--count", &count.to_string(), "--concurrency", "16", "--dedup-ratio", "0.5", "--max-seconds", "120"])
        .args(["--json", "--field", "nature=bench"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let load: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    load["per_second"].as_f64().unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A line chart: journal size on a log x axis, each curve's cost relative
/// to its value at the smallest size on y (a rate is inverted, so up is
/// always dearer), with the 1.5× goal dashed.
fn svg(points: &[Point]) -> String {
    const COLORS: [&str; CURVES.len()] =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f", "#e377c2"];
    let (w, h, left, right, top, bottom) = (760.0, 420.0, 60.0, 250.0, 30.0, 50.0);
    let growth = |i: usize, p: &Point| {
        let (base, v) = (points[0].values[i], p.values[i]);
        if CURVES[i].lower_is_better { v / base } else { base / v }
    };
    let y_max = points
        .iter()
        .flat_map(|p| (0..CURVES.len()).map(move |i| (i, p)))
        .map(|(i, p)| growth(i, p))
        .fold(2.0_f64, f64::max)
        .ceil();
    let (lx0, lx1) = ((points[0].incidents as f64).log10(), (points[points.len() - 1].incidents as f64).log10());
    let x = |n: usize| left + ((n as f64).log10() - lx0) / (lx1 - lx0).max(1e-9) * (w - left - right);
    let y = |g: f64| top + (1.0 - g / y_max) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"18\">cost relative to {} incidents (log x: incidents in the journal)</text>\n",
        points[0].incidents
    );
    let (x0, x1, y0) = (left, w - right, h - bottom);
    s.push_str(&format!("<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"black\"/>\n"));
    s.push_str(&format!("<line x1=\"{x0}\" y1=\"{top}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"black\"/>\n"));
    for p in points {
        let px = x(p.incidents);
        s.push_str(&format!(
            "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            y0 + 18.0,
            p.incidents
        ));
    }
    for g in (0..=y_max as usize).map(|g| g as f64) {
        s.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{g}×</text>\n", x0 - 6.0, y(g) + 4.0));
    }
    s.push_str(&format!(
        "<line x1=\"{x0}\" y1=\"{0:.1}\" x2=\"{x1}\" y2=\"{0:.1}\" stroke=\"grey\" stroke-dasharray=\"4 4\"/>\n",
        y(1.5)
    ));
    for (i, c) in CURVES.iter().enumerate() {
        let pts: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", x(p.incidents), y(growth(i, p)))).collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
            COLORS[i],
            pts.join(" ")
        ));
        let ly = top + 18.0 * i as f64;
        s.push_str(&format!(
            "<line x1=\"{0:.1}\" y1=\"{ly:.1}\" x2=\"{1:.1}\" y2=\"{ly:.1}\" stroke=\"{2}\" stroke-width=\"2\"/>\
             <text x=\"{3:.1}\" y=\"{4:.1}\">{5}</text>\n",
            x1 + 10.0,
            x1 + 30.0,
            COLORS[i],
            x1 + 36.0,
            ly + 4.0,
            c.name.replace('`', "")
        ));
    }
    s.push_str("</svg>\n");
    s
}
