//! `crisis plugin test`: the recorded cases of the built-ins and of both
//! example notifiers pass, and a failing or malformed case is reported as
//! such. The notifier cases in `plugins/cases/notifier` are one set shared by
//! webhook-notify (Rust), python-notifier and js-notifier.

use crate::common::{plugin_cli, repo};
use crate::plugin_examples::{EXAMPLES, example};
use std::path::Path;

fn case_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count()
}

/// Runs `plugin test` with `target` args and `--case DIR`, and checks every case passed.
fn all_pass(target: &[&str], cases: &str) {
    let dir = tempfile::tempdir().unwrap();
    let case_dir = repo().join(cases);
    let mut args = vec!["plugin", "test"];
    args.extend_from_slice(target);
    args.extend(["--case", case_dir.to_str().unwrap(), "--json"]);
    let r = plugin_cli(dir.path(), &args);
    assert_eq!(r.code, 0, "{target:?}: {}\n{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["passed"], case_count(&case_dir), "{target:?}: every case ran: {v}");
}

#[test]
fn builtin_webhook_notify_passes_the_shared_notifier_cases() {
    all_pass(&["--builtin", "webhook-notify"], "plugins/cases/notifier");
}

#[test]
fn both_examples_pass_the_same_notifier_cases_as_webhook_notify() {
    for (stem, _) in EXAMPLES {
        let file = example(stem);
        all_pass(&[file.to_str().unwrap()], "plugins/cases/notifier");
    }
}

#[test]
fn builtin_appease_script_and_drill_sim_pass_their_cases() {
    all_pass(&["--builtin", "appease-script"], "plugins/cases/appease-script");
    all_pass(&["--builtin", "drill-sim"], "plugins/cases/drill-sim");
}

const WRONG_CASE: &str = r#"{
  "description": "expects what the plugin does not do",
  "world": "notifier",
  "export": "send",
  "input": {"config": {"url": "https://hooks.example.com/crisis"},
            "notification": {"subject": "Checkout down"}},
  "requests": [
    {"method": "POST", "host": "hooks.example.com", "path": "/other",
     "json": {"subject": "Something else"}, "respond": {"status": 503, "body": "busy"}},
    {"method": "POST", "host": "hooks.example.com"}
  ],
  "expect": {"ok": {"http_status": 200}}
}"#;

#[test]
fn a_failing_case_prints_each_difference_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("wrong.json");
    std::fs::write(&case, WRONG_CASE).unwrap();
    let r =
        plugin_cli(dir.path(), &["plugin", "test", "--builtin", "webhook-notify", "--case", case.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(out.contains("FAIL ") && out.contains("wrong.json — expects what the plugin does not do"), "{out}");
    assert!(out.contains("request 1: path: expected `/other`, got `/crisis`"), "{out}");
    assert!(out.contains(r#"request 1: body $.subject: expected "Something else", got "Checkout down""#), "{out}");
    assert!(out.contains("request 2: expected `POST hooks.example.com`, but the plugin made no such request"), "{out}");
    assert!(out.contains("result: expected ok, got error `transient`: webhook answered 503: busy"), "{out}");
    assert!(out.contains("1 cases, 0 passed, 1 failed"), "{out}");

    let r = plugin_cli(
        dir.path(),
        &["plugin", "test", "--builtin", "webhook-notify", "--case", case.to_str().unwrap(), "--json"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["failed"], 1);
    let c = &v["cases"][0];
    assert_eq!(c["passed"], false);
    assert_eq!(c["failures"].as_array().unwrap().len(), 4, "{c}");
    assert_eq!(c["requests"], serde_json::json!(["POST https://hooks.example.com/crisis"]));
    assert_eq!(c["result"]["err"], "transient", "{c}");
}

#[test]
fn malformed_cases_exit_2_and_missing_paths_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("bad.json");
    std::fs::write(&case, r#"{"world": "notifier", "expect": {"ok": {}}, "reqests": []}"#).unwrap();
    let r =
        plugin_cli(dir.path(), &["plugin", "test", "--builtin", "webhook-notify", "--case", case.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("bad.json") && r.stderr.contains("reqests"), "{}", r.stderr);

    std::fs::write(&case, r#"{"world": "drill", "export": "send", "expect": {"ok": {}}}"#).unwrap();
    let r = plugin_cli(dir.path(), &["plugin", "test", "--builtin", "drill-sim", "--case", case.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("export `send` is not one of world drill: use plan or score"), "{}", r.stderr);

    std::fs::write(&case, r#"{"world": "notifier", "expect": {"err": "flaky"}}"#).unwrap();
    let r =
        plugin_cli(dir.path(), &["plugin", "test", "--builtin", "webhook-notify", "--case", case.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown variant `flaky`"), "{}", r.stderr);

    let missing = dir.path().join("no-such-cases");
    let r =
        plugin_cli(dir.path(), &["plugin", "test", "--builtin", "webhook-notify", "--case", missing.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no-such-cases: no such case file or directory"), "{}", r.stderr);
}
