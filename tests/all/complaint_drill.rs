//! Complaints in drills and on PostgreSQL: a drill's complaint burst takes
//! its complaints through the real path (classified, answered by the
//! appeasement plugin, the answer captured, never sent) and the drill is
//! scored on their first-response times; the complaint intake and first
//! response on a daemon whose journal is in PostgreSQL, verified afterwards.
use crate::common::*;
use crate::complaints::{add, event, wait_delivered};
use crate::postgres_store::testdb;
use serde_json::Value;

#[test]
fn a_complaint_surge_drill_answers_its_complaints_and_is_scored_on_first_response_times() {
    let r = crisis(&["--json", "drill", "run", "quality-complaint-surge", "--standalone", "--seed", "3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rep: Value = serde_json::from_str(&r.stdout).unwrap();
    // Every burst's complaints were recorded and attached; the shipped appeasement plugin composed the answers.
    let mut n = 0;
    for burst in rep["controller"].as_array().unwrap().iter().filter(|c| c["kind"] == "complaint-burst") {
        let result = burst["result"].as_str().unwrap();
        let k: usize = result.split(" of ").next().unwrap().parse().unwrap_or_else(|_| panic!("{result}"));
        let range = format!("; {k} drill complaints recorded (CMP-{}..CMP-{})", n + 1, n + k);
        assert!(k > 1 && result.contains(&range), "{result}");
        assert!(
            result.contains(&format!("{k} first responses composed by the appeasement plugin and 0 by")),
            "{result}"
        );
        n += k;
    }
    assert!(n > 0, "no complaint burst: {rep:#}");
    let criteria = rep["score"]["criteria"].as_array().unwrap();
    let fr = criteria.iter().find(|c| c["id"] == "first-response").unwrap_or_else(|| panic!("{criteria:#?}"));
    assert_eq!(fr["rating"], "performed", "{fr}");
    assert_eq!(fr["section"], "[complaints] first_response");
    assert_eq!(fr["measured"], format!("p95 0s, {n}/{n} within 2m"), "{fr}");
    assert!(fr["finding"].as_str().unwrap().contains(&format!("{n} first responses captured, never sent")), "{fr}");
    // The Markdown report shows it like every other criterion.
    let md = crisis(&["drill", "run", "quality-complaint-surge", "--standalone", "--seed", "3"]).stdout;
    assert!(md.contains("Complaints answered within the first-response time"), "{md}");
}

#[test]
fn complaints_are_taken_in_and_answered_on_postgresql_and_the_journal_verifies() {
    let Some(db) = testdb::database() else { return };
    let store = "[store]\nurl = \"secret:pg\"\n[secrets.pg]\nenv = \"CRISIS_TEST_PG_URL\"\n";
    let d = Daemon::start_with_env("engine", &format!("{LOG_TARGETS}{store}"), &[("CRISIS_TEST_PG_URL", &db)]);
    let c = add(&d, "C-003", "sms", "The kettle arrived cracked, call me at +1 555 0100.");
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        (c["category"].as_str(), c["composer"]["by"].as_str()),
        (Some("product-quality"), Some("plugin")),
        "{c}"
    );
    let evs = wait_delivered(&d, id);
    let received = event(&evs, "complaint_received").unwrap();
    assert!(received["data"]["text"].as_str().unwrap().contains("[contact detail withheld]"), "{received}");
    let due = event(&evs, "first_response_recorded").unwrap()["data"]["due_at"].as_i64().unwrap();
    assert_eq!(due - received["at"].as_i64().unwrap(), 120_000, "the default deadline is 2 minutes");
    assert_eq!(d.json(&["complaint", "list"]).as_array().unwrap().len(), 1);
    assert!(d.ok(&["verify"]).contains("journal intact"));
}
