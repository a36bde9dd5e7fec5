//! `crisis plugin list|inspect|call` through the real binary, on the built-in
//! components and the host's test fixtures: output, JSON shapes and exit codes
//! (0 ok, 1 call failed, 2 invalid input / refused component, 3 not found).

use crate::common::{crisis_in, one_shot_server, plugin_cli};
use crisis::plugin::test_fixtures;
use serde_json::Value;

fn fixture(stem: &str) -> String {
    test_fixtures::path(stem).display().to_string()
}

fn header<'a>(req: &'a Value, name: &str) -> Option<&'a str> {
    req["headers"].as_array()?.iter().find(|h| h[0].as_str() == Some(name)).and_then(|h| h[1].as_str())
}

#[test]
fn inspect_builtin_shows_world_imports_and_describe() {
    let dir = tempfile::tempdir().unwrap();
    let r = plugin_cli(dir.path(), &["plugin", "inspect", "--builtin", "webhook-notify", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["world"], "notifier");
    assert_eq!(v["api_version"], "0.1.2");
    assert_eq!(v["describe"]["name"], "webhook-notify");
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    let imports: Vec<&str> = v["imports"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(imports.iter().any(|i| i.starts_with("wasi:http/outgoing-handler@")), "{imports:?}");
    assert!(v["exports"].as_array().unwrap().iter().any(|e| e == "crisis:plugin/notify@0.1.2"), "{v}");
    assert!(v["capabilities"].to_string().contains("outbound-http"), "{v}");

    let r = plugin_cli(dir.path(), &["plugin", "inspect", "--builtin", "appease-script"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("world:         appeasement"), "{}", r.stdout);
    assert!(!r.stdout.contains("wasi:http"), "appeasement has no network: {}", r.stdout);
}

#[test]
fn inspect_refuses_a_component_importing_a_capability_its_world_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let r = plugin_cli(dir.path(), &["plugin", "inspect", &fixture(test_fixtures::APPEASE_HTTP)]);
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("was refused"), "{}", r.stderr);
    assert!(r.stderr.contains("`appeasement` world may not import `wasi:http/"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    let r = plugin_cli(dir.path(), &["plugin", "inspect", &fixture(test_fixtures::APPEASE_HTTP), "--json"]);
    assert_eq!(r.code, 2);
    assert!(r.json()["error"].as_str().unwrap().contains("wasi:http/"), "{}", r.stdout);
}

#[test]
fn inspect_and_call_exit_codes_for_missing_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = plugin_cli(dir.path(), &["plugin", "inspect", "nope.wasm"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nope.wasm: no such file"), "{}", r.stderr);

    std::fs::write(dir.path().join("garbage.wasm"), b"not wasm at all").unwrap();
    let r = plugin_cli(dir.path(), &["plugin", "inspect", "garbage.wasm"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    let r = plugin_cli(dir.path(), &["plugin", "inspect", "--builtin", "no-such-plugin"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("webhook-notify"), "lists the built-ins: {}", r.stderr);

    let r = plugin_cli(dir.path(), &["plugin", "call", "nope.wasm", "--world", "notifier"]);
    assert_eq!(r.code, 3, "{}", r.stderr);

    let r = plugin_cli(
        dir.path(),
        &["plugin", "call", "--builtin", "drill-sim", "--world", "drill", "--input", "@missing.json"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);

    let r = plugin_cli(
        dir.path(),
        &["plugin", "call", "--builtin", "drill-sim", "--world", "drill", "--input", "{not json"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not valid JSON"), "{}", r.stderr);

    let r = plugin_cli(
        dir.path(),
        &["plugin", "call", "--builtin", "drill-sim", "--world", "drill", "--input", r#"{"bogus": 1}"#],
    );
    assert_eq!(r.code, 2, "unknown input fields are refused: {}", r.stderr);

    // A component of another world than asked for is refused (2).
    let r = plugin_cli(dir.path(), &["plugin", "call", "--builtin", "drill-sim", "--world", "notifier"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("expected a `notifier` plugin but the component implements `drill`"), "{}", r.stderr);

    // clap refuses an unknown world as a usage error (2).
    let r = plugin_cli(dir.path(), &["plugin", "call", "--builtin", "drill-sim", "--world", "pager"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn call_notifier_in_drill_mode_captures_the_post() {
    let dir = tempfile::tempdir().unwrap();
    let input = r#"{"invocation": {"invocation_id": "inv-cli-1"},
                    "config": {"url": "https://hooks.example.com/incidents"},
                    "notification": {"subject": "Payments down"}}"#;
    let r = plugin_cli(
        dir.path(),
        &["plugin", "call", "--builtin", "webhook-notify", "--world", "notifier", "--input", input, "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["mode"], "drill");
    assert_eq!(v["world"], "notifier");
    assert_eq!(v["value"]["http_status"], 200);
    let http = v["http"].as_array().unwrap();
    assert_eq!(http.len(), 1, "{v}");
    assert_eq!(http[0]["method"], "POST");
    assert_eq!(http[0]["url"], "https://hooks.example.com/incidents");
    assert_eq!(http[0]["disposition"]["result"], "captured");
    assert_eq!(header(&http[0], "idempotency-key"), Some("inv-cli-1"));
    assert!(
        http[0]["body_preview"].as_str().unwrap().contains(r#""id":"inc-fixture-0001""#),
        "the fixture incident: {v}"
    );

    // Text output names the capture.
    let r = plugin_cli(
        dir.path(),
        &["plugin", "call", "--builtin", "webhook-notify", "--world", "notifier", "--input", input],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("POST https://hooks.example.com/incidents -> captured"), "{}", r.stdout);
    assert!(r.stdout.contains("idempotency-key: inv-cli-1"), "{}", r.stdout);
}

#[test]
fn call_failures_exit_1_with_the_plugin_error() {
    let dir = tempfile::tempdir().unwrap();
    // No url configured: the plugin's own `config` error.
    let r = plugin_cli(dir.path(), &["plugin", "call", "--builtin", "webhook-notify", "--world", "notifier", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["kind"], "plugin");
    assert_eq!(v["plugin_error"]["kind"], "config");

    // Live without a grant: the host's egress policy denies the request.
    let r = plugin_cli(
        dir.path(),
        &[
            "plugin",
            "call",
            "--builtin",
            "webhook-notify",
            "--world",
            "notifier",
            "--live",
            "--input",
            r#"{"config": {"url": "https://hooks.example.com/x"}}"#,
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("denied"), "{}", r.stderr);
}

#[test]
fn call_appeasement_and_drill_builtins() {
    let dir = tempfile::tempdir().unwrap();
    let r = plugin_cli(
        dir.path(),
        &[
            "plugin",
            "call",
            "--builtin",
            "appease-script",
            "--world",
            "appeasement",
            "--json",
            "--input",
            r#"{"customer": {"tier": "standard", "locale": "en", "channel": "sms"}}"#,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let msgs = v["value"].as_array().unwrap();
    assert!(!msgs.is_empty());
    assert_eq!(msgs[0]["channel"], "sms");
    assert!(v["http"].as_array().unwrap().is_empty());

    let r = plugin_cli(dir.path(), &["plugin", "call", "--builtin", "drill-sim", "--world", "drill", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert!(!v["value"]["injects"].as_array().unwrap().is_empty(), "{v}");

    let r = plugin_cli(
        dir.path(),
        &[
            "plugin",
            "call",
            "--builtin",
            "drill-sim",
            "--world",
            "drill",
            "--json",
            "--input",
            r#"{"op": "score", "journal": []}"#,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json()["value"].is_array());
}

#[test]
fn list_shows_builtins_and_declared_plugins_with_grants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(test_fixtures::path(test_fixtures::PROBE), dir.path().join("probe.wasm")).unwrap();
    std::fs::copy(test_fixtures::path(test_fixtures::APPEASE_HTTP), dir.path().join("greedy.wasm")).unwrap();
    let good = r#"state_dir = "state"

[plugins.probe]
file = "probe.wasm"
world = "notifier"
allowed_hosts = ["hooks.example.com"]
"#;
    std::fs::write(dir.path().join("crisis.toml"), good).unwrap();
    let r = crisis_in(dir.path(), &["plugin", "list", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = r.json();
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    for n in ["webhook-notify", "appease-script", "drill-sim", "probe"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let probe = rows.iter().find(|r| r["name"] == "probe").unwrap();
    assert_eq!(probe["world"], "notifier");
    assert!(probe["source"].as_str().unwrap().ends_with("probe.wasm"), "{probe}");
    assert_eq!(probe["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(probe["quarantined"], false);
    assert!(probe["error"].is_null(), "{probe}");
    let builtin = rows.iter().find(|r| r["name"] == "webhook-notify").unwrap();
    assert_eq!(builtin["source"], "builtin");
    // The compile cache lives under the configured state_dir.
    assert!(dir.path().join("state/plugin-cache").is_dir());

    let r = crisis_in(dir.path(), &["plugin", "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("NAME"), "{}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("probe ") && l.contains("notifier") && l.contains(" ok")),
        "{}",
        r.stdout
    );

    // A declared component the host refuses is listed with the reason; exit 1.
    let bad = format!("{good}\n[plugins.greedy]\nfile = \"greedy.wasm\"\nworld = \"appeasement\"\n");
    std::fs::write(dir.path().join("crisis.toml"), bad).unwrap();
    let r = crisis_in(dir.path(), &["plugin", "list", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let rows = r.json();
    let greedy = rows.as_array().unwrap().iter().find(|r| r["name"] == "greedy").unwrap().clone();
    assert!(greedy["error"].as_str().unwrap().contains("may not import `wasi:http/"), "{greedy}");
    assert_eq!(greedy["world"], "appeasement");

    // An invalid configuration is invalid input (2).
    std::fs::write(dir.path().join("crisis.toml"), "[plugins.x]\nfile = \"x.wasm\"\n").unwrap();
    let r = crisis_in(dir.path(), &["plugin", "list"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("needs `world`"), "{}", r.stderr);
}

#[test]
fn live_call_with_a_grant_from_the_config_reaches_a_loopback_server() {
    let dir = tempfile::tempdir().unwrap();
    let (port, rx) = one_shot_server(200);
    let cfg = format!(
        "state_dir = \"state\"\n\n[plugins.webhook-notify]\nallowed_hosts = [\"http://127.0.0.1:{port}\"]\nallow_private = [\"http://127.0.0.1:{port}\"]\n"
    );
    std::fs::write(dir.path().join("crisis.toml"), cfg).unwrap();
    let input = format!(
        r#"{{"invocation": {{"invocation_id": "inv-live-7"}}, "config": {{"url": "http://127.0.0.1:{port}/hook"}}}}"#
    );
    let r = crisis_in(
        dir.path(),
        &[
            "plugin",
            "call",
            "--builtin",
            "webhook-notify",
            "--world",
            "notifier",
            "--live",
            "--grant",
            "webhook-notify",
            "--input",
            &input,
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["mode"], "live");
    assert_eq!(v["value"]["provider_id"], "srv-9");
    assert_eq!(v["http"][0]["disposition"], serde_json::json!({"result": "sent", "status": 200}));
    let (head, body) = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the server got the request");
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert!(head.to_ascii_lowercase().contains("idempotency-key: inv-live-7"), "{head}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["invocation_id"], "inv-live-7");

    // --grant naming an undeclared plugin is "not found".
    let r = crisis_in(
        dir.path(),
        &["plugin", "call", "--builtin", "webhook-notify", "--world", "notifier", "--grant", "nope"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
}
