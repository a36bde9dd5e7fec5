use super::*;
use crate::drill::{DrillOptions, Extensions};
use crate::incident::effects::LogExecutor;
use std::sync::Arc;

/// A real drill of the shipped `service-outage` playbook, on virtual time in memory.
fn report() -> AfterActionReport {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let cfg = crate::config::load(&repo.join("examples/crisis.toml")).unwrap();
    let loaded = crate::incident::loader::load(cfg, 1, 1_767_600_000_000);
    let g = loaded.generation.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    let opts = DrillOptions::virtual_in_memory("service-outage.t1", 3);
    crate::drill::run(&g, "service-outage", opts, Arc::new(LogExecutor), &Extensions::default()).unwrap().report
}

fn point(run_id: &str, score: u32, hash: &str) -> TrendPoint {
    TrendPoint { run_id: run_id.into(), score, verdict: "pass".into(), playbook_hash: hash.into(), started_at: 0 }
}

#[test]
fn run_data_is_escaped_as_text_everywhere() {
    let mut r = report();
    r.playbook_name = "<script>alert(1)</script>".into();
    r.scenario.title = "\"><svg onload=alert(2)>".into();
    r.score.criteria[0].finding = "<img src=x onerror=alert(3)> & more".into();
    r.score.criteria[0].title = "</title></circle><script>x()</script>".into();
    r.timeline[0].text = "it's <b>bold</b>".into();
    let html = render(&r, &[]).unwrap();
    assert!(!html.contains("<script"), "an injected script element survived");
    assert!(!html.contains("<img") && !html.contains("<svg onload") && !html.contains("<b>bold"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "the title is shown as text");
    assert!(html.contains("&lt;img src=x onerror=alert(3)&gt; &amp; more"));
    assert!(html.contains("&quot;&gt;&lt;svg onload=alert(2)&gt;"));
}

#[test]
fn the_page_references_nothing_outside_itself() {
    let r = report();
    let html = render(&r, &[point("a", 50, "h1"), point(&r.run_id, r.score.total, "h2")]).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "an external reference");
    assert!(!html.contains("src=") && !html.contains("url(") && !html.contains("@import"));
    assert!(!html.contains("<script") && !html.contains("<link"));
    assert!(html.contains("default-src 'none'"), "the page forbids loading anything");
    // Every link is an anchor within the page, and every anchor it names exists.
    let hrefs: Vec<&str> = html.split("href=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert!(!hrefs.is_empty());
    for h in hrefs {
        let id = h.strip_prefix('#').unwrap_or_else(|| panic!("non-local link {h}"));
        assert!(html.contains(&format!("id=\"{id}\"")), "link {h} has no target");
    }
}

#[test]
fn the_timeline_has_injects_phases_and_deadlines_and_the_trend_its_bars() {
    let r = report();
    let html =
        render(&r, &[point("a", 40, "h1"), point("b", 55, "h2"), point(&r.run_id, r.score.total, "h2")]).unwrap();
    let svg = &html[html.find("<svg id=\"timeline\"").unwrap()..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    assert_eq!(svg.matches("class=\"mark inject\"").count(), r.controller.len());
    let phases = r.timeline.iter().filter(|t| t.kind == "phase_entered").count();
    assert!(phases >= 3);
    assert_eq!(svg.matches("class=\"mark phase\"").count(), phases);
    let timed = r.score.criteria.iter().filter(|c| c.measured.is_some() && c.limit.is_some()).count();
    assert!(timed >= 2);
    assert_eq!(svg.matches("class=\"mark due\"").count(), timed);
    assert!(svg.contains("class=\"mark met\"") || svg.contains("class=\"mark missed\""));
    assert_eq!(html.matches("<tr class=\"criterion\"").count(), r.score.criteria.len());
    let trend = &html[html.find("<svg id=\"trend\"").unwrap()..];
    let trend = &trend[..trend.find("</svg>").unwrap()];
    assert_eq!(trend.matches("<rect class=\"bar\"").count() + trend.matches("<rect class=\"bar current\"").count(), 3);
    assert_eq!(trend.matches("class=\"bar current\"").count(), 1);
    assert_eq!(trend.matches("class=\"bar-edit\"").count(), 1, "one edit between a and b");
}

#[test]
fn every_rating_has_its_own_label() {
    let all = [Rating::Performed, Rating::SomeChallenges, Rating::MajorChallenges, Rating::Unable];
    let labels: BTreeSet<_> = all.iter().map(|r| rating_view(*r)).collect();
    assert_eq!(labels.len(), all.len());
}

#[test]
fn deadlines_count_from_the_clock_start_or_from_the_moment_a_limit_names() {
    assert_eq!(deadline_of("5m", 1_000), Some(301_000));
    assert_eq!(deadline_of("5m after escalation level 1 at +6m 15s", 1_000), Some(675_000));
    assert_eq!(deadline_of("soon", 0), None);
}
