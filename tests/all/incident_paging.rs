//! The incident list a page at a time (`--limit`, `--after`, the API's
//! `next` cursor), and `crisis verify` walking its own snapshot of the
//! journal while triggers go on being accepted.

use crate::common::*;
use serde_json::{Value, json};

fn open_one(d: &Daemon, n: usize) -> String {
    d.post_incident(&json!({
        "playbook": "outage",
        "fields": { "nature": "n", "scope": "s" },
        "labels": { "service": "checkout", "region": format!("r{n}") },
    }))
}

fn ids(page: &Value) -> Vec<&str> {
    page["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect()
}

fn api(d: &Daemon, path: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(&d.url(path)).header("Authorization", &format!("Bearer {}", d.token())).call().unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
}

#[test]
fn the_list_pages_newest_first_and_a_page_stays_put_as_incidents_open() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let opened: Vec<String> = (1..=5).map(|n| open_one(&d, n)).collect();
    assert_eq!(opened, ["INC-1", "INC-2", "INC-3", "INC-4", "INC-5"]);

    let first = d.json(&["incident", "list", "--limit", "2"]);
    assert_eq!(ids(&first), ["INC-5", "INC-4"], "{first}");
    assert_eq!(first["next"], "INC-4");
    // An incident opened between two pages does not shift the next one.
    assert_eq!(open_one(&d, 6), "INC-6");
    let second = d.json(&["incident", "list", "--limit", "2", "--after", "INC-4"]);
    assert_eq!(ids(&second), ["INC-3", "INC-2"], "{second}");
    assert_eq!(second["next"], "INC-2");
    let last = d.json(&["incident", "list", "--limit", "2", "--after", "INC-2"]);
    assert_eq!(ids(&last), ["INC-1"], "{last}");
    assert_eq!(last["next"], Value::Null, "the last page has no next");
    let all = d.json(&["incident", "list"]);
    assert_eq!(ids(&all), ["INC-6", "INC-5", "INC-4", "INC-3", "INC-2", "INC-1"], "the default page holds them all");

    // The table says how to go on.
    let text = d.ok(&["incident", "list", "--limit", "3"]);
    assert!(text.contains("INC-6") && text.contains("INC-4") && !text.contains("INC-3 "), "{text}");
    assert!(text.contains("more: crisis incident list --limit 3 --after INC-4"), "{text}");

    // The API carries the same cursor.
    let (status, page) = api(&d, "/v1/incidents?limit=2&after=INC-5");
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), ["INC-4", "INC-3"]);
    assert_eq!(page["next"], "INC-3");

    // A bad limit is refused, saying what is allowed.
    for bad in ["0", "1001", "ten"] {
        let (status, body) = api(&d, &format!("/v1/incidents?limit={bad}"));
        assert_eq!(status, 400, "limit={bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("between 1 and 1000"), "limit={bad}: {body}");
    }
    let r = d.cli(&["incident", "list", "--limit", "5000"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("between 1 and 1000"), "{}", r.stderr);
    // An unknown cursor is named, not taken for an empty page.
    let r = d.cli(&["incident", "list", "--after", "INC-99"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no incident `INC-99` to list after"), "{}", r.stderr);
}

#[test]
fn a_trigger_is_accepted_while_verify_walks_the_journal() {
    // The failpoint holds the verify, its snapshot taken, until an incident
    // is opened beside it: had the verify held the journal's lock, the
    // trigger below could not commit and the verify would never finish.
    let d = Daemon::start_with_env("engine", LOG_TARGETS, &[("CRISIS_FAILPOINT", "verify-hold")]);
    open_one(&d, 1);
    let (config, dir) = (d.config.clone(), d.dir.path().to_path_buf());
    let verify =
        std::thread::spawn(move || crisis_in(&dir, &["--config", config.to_str().unwrap(), "--json", "verify"]));
    d.wait_for("the verify to take its snapshot", || d.log().contains("failpoint verify-hold reached"));
    let log = d.log();
    let held_at: i64 = log
        .split("failpoint verify-hold reached at event ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the failpoint names its event: {log}"));
    assert!(!verify.is_finished(), "the verify waits for a writer");
    assert_eq!(open_one(&d, 2), "INC-2", "the trigger was accepted while the verify ran");
    let r = verify.join().unwrap();
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["problems"], json!([]), "{report}");
    assert_eq!(report["events"], held_at, "the chain walk saw exactly its snapshot: {report}");
}
