//! End to end: `crisis drill report --format html` from a real drill, opened
//! as a file in headless Chromium, and the score trend in `crisis drill list`.
use crate::common::browser::Browser;
use crate::common::*;
use serde_json::Value;
use std::path::Path;

const TARGETS: &str = "[targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n[targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n";

const PLAYBOOK: &str = "playbooks/checkout-drill.toml";

/// A daemon on the drill fixture whose first scheduled drill has finished; further scheduled drills are suspended.
fn daemon() -> Daemon {
    let d = Daemon::start("drill/inline", TARGETS);
    d.wait_for("the scheduled drill", || {
        d.json(&["drill", "list"])["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["origin"] == "schedule" && r["status"] == "completed")
    });
    d.ok(&["drill", "suspend", "checkout-drill"]);
    d
}

/// Runs a manual drill to its end and returns its id.
fn manual_drill(d: &Daemon, seed: &str) -> String {
    let md = d.ok(&["drill", "run", "checkout-drill", "--seed", seed]);
    let id = md.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    assert!(id.starts_with("checkout-drill.m"), "{md}");
    id
}

/// Writes the run's HTML report into the daemon's directory and returns its path.
fn html_report(d: &Daemon, id: &str) -> std::path::PathBuf {
    let file = d.dir.path().join(format!("{id}.html"));
    let r = d.cli(&["drill", "report", id, "--format", "html", "--out", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("wrote the after-action report"), "{}", r.stderr);
    file
}

fn open(b: &mut Browser, file: &Path) {
    b.navigate(&format!("file://{}", file.display()));
    assert_eq!(b.errors(), Vec::<String>::new(), "console errors or exceptions; Chromium log:\n{}", b.log());
    for url in b.requests() {
        assert!(url.starts_with("file://") || url.starts_with("data:"), "the report loaded {url}");
    }
}

const DOM: &str = r#"(() => {
  const svg = document.querySelector('svg#timeline');
  const links = [...document.querySelectorAll('#criteria a.evidence')];
  return {
    svg_width: svg ? svg.getBoundingClientRect().width : 0,
    injects: svg ? svg.querySelectorAll('.mark.inject').length : -1,
    phases: svg ? svg.querySelectorAll('.mark.phase').length : -1,
    deadlines: svg ? svg.querySelectorAll('.mark.due').length : -1,
    outcomes: svg ? svg.querySelectorAll('.mark.met, .mark.missed').length : -1,
    overdue: svg ? svg.querySelectorAll('.mark.overdue').length : -1,
    criteria: [...document.querySelectorAll('#criteria tr.criterion')].map(r => r.dataset.criterion),
    links: links.length,
    dangling: links.filter(a => !document.getElementById(a.hash.slice(1))).map(a => a.getAttribute('href')),
    cited_rows: [...document.querySelectorAll('#journal-events tr[id^="ev-"]')].map(r => r.id),
    bars: document.querySelectorAll('#trend rect.bar').length,
    current: document.querySelectorAll('#trend rect.bar.current').length,
    edits: document.querySelectorAll('#trend rect.bar-edit').length,
    scripts: document.scripts.length,
    images: document.images.length,
    summary: document.querySelector('#summary').textContent,
    score: document.querySelector('#score').textContent,
  };
})()"#;

#[test]
fn the_html_report_of_a_real_drill_renders_in_chromium_with_its_timeline_criteria_and_trend() {
    let Some(mut b) = Browser::launch("drill_html::the_html_report_of_a_real_drill_renders") else { return };
    let d = daemon();
    let first = manual_drill(&d, "5");
    let id = manual_drill(&d, "7");
    let rep = d.json(&["drill", "report", &id, "--format", "json"]);
    let file = html_report(&d, &id);
    open(&mut b, &file);
    let dom = b.eval(DOM);

    assert!(dom["svg_width"].as_f64().unwrap() > 500.0, "{dom}");
    assert_eq!(dom["injects"], rep["controller"].as_array().unwrap().len(), "{dom}");
    assert!(dom["injects"].as_u64().unwrap() >= 4, "{dom}");
    let phases = rep["timeline"].as_array().unwrap().iter().filter(|t| t["kind"] == "phase_entered").count();
    assert!(phases >= 3);
    assert_eq!(dom["phases"], phases);
    let timed = rep["score"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["measured"].is_string() && c["limit"].is_string())
        .count();
    assert!(timed >= 2);
    assert_eq!(dom["deadlines"], timed);
    assert_eq!(dom["outcomes"], timed);
    let missed = rep["timeline"].as_array().unwrap().iter().filter(|t| t["kind"] == "deadline_missed").count();
    assert!(missed >= 1, "the fixture's owner stays silent past ack_within");
    assert_eq!(dom["overdue"], missed);
    let ids: Vec<Value> = rep["score"]["criteria"].as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
    assert_eq!(dom["criteria"], Value::Array(ids));
    // Every evidence link lands on a journal event row, and every cited seq has its row.
    assert!(dom["links"].as_u64().unwrap() >= 5, "{dom}");
    assert_eq!(dom["dangling"], serde_json::json!([]), "{dom}");
    let mut cited: Vec<i64> = rep["score"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["evidence"].as_array().unwrap().iter().map(|s| s.as_i64().unwrap()))
        .collect();
    cited.sort();
    cited.dedup();
    let rows: Vec<String> = cited.iter().map(|s| format!("ev-{s}")).collect();
    assert_eq!(dom["cited_rows"], serde_json::json!(rows));
    // The trend: the scheduled drill and both manual drills, this one last and highlighted, no edit between them.
    assert_eq!(dom["bars"], 3, "{dom}");
    assert_eq!(dom["current"], 1);
    assert_eq!(dom["edits"], 0);
    assert_eq!(dom["scripts"], 0);
    assert_eq!(dom["score"], rep["score"]["total"].to_string().as_str());
    let shot = d.dir.path().join("report.png");
    b.screenshot(&shot);
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"), "not a PNG screenshot");

    // The list shows the last scores, oldest first, and that the playbook is drilled as is.
    let list = d.json(&["drill", "list"]);
    let pb = &list["playbooks"][0];
    let recent: Vec<&str> =
        pb["recent_scores"].as_array().unwrap().iter().map(|p| p["run_id"].as_str().unwrap()).collect();
    assert_eq!(recent.len(), 3, "{pb}");
    assert_eq!(&recent[1..], [first.as_str(), id.as_str()]);
    let line: Vec<String> = pb["recent_scores"].as_array().unwrap().iter().map(|p| p["score"].to_string()).collect();
    let text = d.ok(&["drill", "list"]);
    assert!(text.contains("LAST 5 SCORES"), "{text}");
    assert!(text.contains(&line.join(" ")), "{text}");
    assert!(text.contains("drilled as is"), "{text}");

    // Five more runs: the list keeps the newest five.
    for seed in ["11", "12", "13"] {
        manual_drill(&d, seed);
    }
    let pb = &d.json(&["drill", "list"])["playbooks"][0];
    assert_eq!(pb["recent_scores"].as_array().unwrap().len(), 5, "{pb}");
    assert_ne!(pb["recent_scores"][0]["run_id"], recent[0]);

    // A bad format or an unwritable path says what to do.
    let bad = d.cli(&["drill", "report", &id, "--format", "pdf"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("html"), "{}", bad.stderr);
    let nowhere = d.cli(&["drill", "report", &id, "--format", "html", "--out", "/nonexistent-dir/r.html"]);
    assert_ne!(nowhere.code, 0);
    assert!(nowhere.stderr.contains("cannot write the report to /nonexistent-dir/r.html"), "{}", nowhere.stderr);
}

#[test]
fn a_script_in_the_playbook_title_is_shown_as_text_and_never_runs() {
    let Some(mut b) = Browser::launch("drill_html::a_script_in_the_playbook_title_is_shown_as_text") else { return };
    let mut d = daemon();
    let title = "<script>window.pwned = 1</script><img src=x onerror=\\\"window.pwned = 2\\\">";
    let file = d.dir.path().join(PLAYBOOK);
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace("name = \"Checkout outage (drill fixture)\"", &format!("name = \"{title}\""));
    assert_ne!(edited, text);
    std::fs::write(&file, edited).unwrap();
    d.restart();
    let id = manual_drill(&d, "5");
    let html = html_report(&d, &id);
    open(&mut b, &html);
    let dom = b.eval(DOM);
    assert_eq!(dom["scripts"], 0, "{dom}");
    assert_eq!(dom["images"], 0, "{dom}");
    assert_eq!(b.eval("typeof window.pwned"), "undefined");
    let shown = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">";
    assert!(dom["summary"].as_str().unwrap().contains(shown), "{}", dom["summary"]);
    assert_eq!(b.eval("document.title"), format!("After-action report: checkout-drill drill {id}").as_str());
    // The edit between the scheduled drill and this one is marked on the trend.
    assert_eq!(dom["bars"], 2, "{dom}");
    assert_eq!(dom["edits"], 1, "{dom}");
}
