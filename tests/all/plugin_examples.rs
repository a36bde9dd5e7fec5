//! The Python (componentize-py) and JavaScript (componentize-js) example
//! notifiers, loaded and called through the real `crisis` binary.
//!
//! This test builds nothing: `examples/build.sh` builds
//! `target/examples/{python,js}_notifier.wasm` first (`make test` runs it
//! before `cargo test`; it rebuilds only when the example sources or the WIT
//! changed). A missing component fails the test with the command to run.

use crate::common::{one_shot_server, plugin_cli, repo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const EXAMPLES: &[(&str, &str)] = &[("python_notifier", "python-notifier"), ("js_notifier", "js-notifier")];

/// The built example component; panics (never skips) when it is missing.
/// `CRISIS_EXAMPLES_OUT` wins when set (as in `examples/build.sh`); otherwise
/// the component is looked for in `target/examples` of the repository, then
/// in `examples/` of the cargo target directory (a shared `CARGO_TARGET_DIR`).
pub(crate) fn example(stem: &str) -> PathBuf {
    let file = format!("{stem}.wasm");
    let dirs: Vec<PathBuf> = match std::env::var_os("CRISIS_EXAMPLES_OUT") {
        Some(out) => vec![PathBuf::from(out)],
        None => {
            let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("examples");
            vec![repo().join("target/examples"), target_dir]
        }
    };
    let found = dirs.iter().map(|d| d.join(&file)).find(|p| p.is_file());
    found.unwrap_or_else(|| {
        let tried: Vec<String> = dirs.iter().map(|d| d.join(&file).display().to_string()).collect();
        panic!(
            "{file} is missing (looked at {}): build the example plugins first with `examples/build.sh` \
             (from the repository root; `make test` runs it before `cargo test`)",
            tried.join(", ")
        )
    })
}

fn header<'a>(req: &'a Value, name: &str) -> Option<&'a str> {
    req["headers"].as_array()?.iter().find(|h| h[0].as_str() == Some(name)).and_then(|h| h[1].as_str())
}

fn note_input(invocation_id: &str, url: &str, grant: Option<u16>) -> String {
    let mut v = serde_json::json!({
        "invocation": { "invocation_id": invocation_id, "incident_id": "inc-42" },
        "config": { "url": url },
        "notification": {
            "target": "superiors",
            "subject": "Checkout down",
            "body_text": "Card payments fail for 30% of checkouts.",
            "params": [["bridge", "https://meet.example.com/war-room"]],
            "incident": { "id": "inc-42", "title": "Payments", "playbook_id": "payment-outage",
                          "severity": "sev1", "category": "product-quality", "phase": "act",
                          "summary": "s", "labels": [["service", "checkout"]] }
        }
    });
    if let Some(port) = grant {
        let hp = format!("http://127.0.0.1:{port}");
        v["grant"] = serde_json::json!({ "allowed_hosts": [hp], "allow_private": [hp] });
    }
    v.to_string()
}

#[test]
fn examples_inspect_as_notifiers() {
    let dir = tempfile::tempdir().unwrap();
    for (stem, name) in EXAMPLES {
        let file = example(stem);
        let r = plugin_cli(dir.path(), &["plugin", "inspect", file.to_str().unwrap(), "--json"]);
        assert_eq!(r.code, 0, "{stem}: {}", r.stderr);
        let v = r.json();
        assert_eq!(v["world"], "notifier", "{stem}");
        assert_eq!(v["describe"]["name"], *name);
        assert_eq!(v["describe"]["config_keys"], serde_json::json!(["url"]));
        assert!(
            v["imports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i.as_str().unwrap().starts_with("wasi:http/outgoing-handler@")),
            "{stem} imports wasi:http: {v}"
        );

        let r = plugin_cli(dir.path(), &["plugin", "inspect", file.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{stem}: {}", r.stderr);
        assert!(r.stdout.contains("world:         notifier"), "{}", r.stdout);
    }
}

#[test]
fn examples_in_drill_mode_return_a_receipt_and_the_captured_post() {
    let dir = tempfile::tempdir().unwrap();
    for (stem, name) in EXAMPLES {
        let file = example(stem);
        let inv = format!("inv-drill-{stem}");
        let input = note_input(&inv, "https://hooks.example.com/crisis?team=ops", None);
        let r = plugin_cli(
            dir.path(),
            &["plugin", "call", file.to_str().unwrap(), "--world", "notifier", "--input", &input, "--json"],
        );
        assert_eq!(r.code, 0, "{stem}: {}\n{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!(v["mode"], "drill");
        assert_eq!(v["plugin"], *name);
        assert_eq!(v["value"]["http_status"], 200, "{stem}: {v}");
        assert!(v["value"]["detail"].as_str().unwrap().starts_with("delivered as json"), "{v}");
        let http = v["http"].as_array().unwrap();
        assert_eq!(http.len(), 1, "{stem}: {v}");
        let req = &http[0];
        assert_eq!(req["method"], "POST");
        assert_eq!(req["url"], "https://hooks.example.com/crisis?team=ops");
        assert_eq!(req["disposition"]["result"], "captured", "{stem}: nothing left the machine");
        assert_eq!(header(req, "idempotency-key"), Some(inv.as_str()), "{stem}: {req}");
        assert_eq!(header(req, "content-type"), Some("application/json"));
        let preview = req["body_preview"].as_str().unwrap();
        assert!(preview.starts_with(r#"{"kind":"crisis.notification""#), "{stem}: {preview}");
        assert!(preview.contains(&format!(r#""invocation_id":"{inv}""#)), "{stem}: {preview}");
        assert!(preview.contains(r#""mode":"drill""#), "{stem}: {preview}");
        assert!(req["body_bytes"].as_u64().unwrap() > 256);
        assert!(
            v["logs"].as_array().unwrap().iter().any(|l| l["message"].as_str().unwrap().contains("delivered")),
            "{v}"
        );

        // Text output shows the captured request and its header.
        let r = plugin_cli(
            dir.path(),
            &["plugin", "call", file.to_str().unwrap(), "--world", "notifier", "--input", &input],
        );
        assert_eq!(r.code, 0, "{stem}: {}", r.stderr);
        assert!(r.stdout.contains("POST https://hooks.example.com/crisis?team=ops -> captured"), "{}", r.stdout);
        assert!(r.stdout.contains(&format!("idempotency-key: {inv}")), "{}", r.stdout);
    }
}

#[test]
fn examples_live_deliver_to_a_granted_loopback_server() {
    let dir = tempfile::tempdir().unwrap();
    for (stem, name) in EXAMPLES {
        let file = example(stem);
        let (port, rx) = one_shot_server(200);
        let inv = format!("inv-live-{stem}");
        let input = note_input(&inv, &format!("http://127.0.0.1:{port}/hooks/incidents?x=1"), Some(port));
        let r = plugin_cli(
            dir.path(),
            &["plugin", "call", file.to_str().unwrap(), "--world", "notifier", "--live", "--input", &input, "--json"],
        );
        assert_eq!(r.code, 0, "{stem}: {}\n{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!(v["mode"], "live");
        assert_eq!(v["value"]["http_status"], 200);
        assert_eq!(v["value"]["provider_id"], "srv-9", "{stem}: x-request-id becomes the provider id");
        assert_eq!(v["http"][0]["disposition"], serde_json::json!({"result": "sent", "status": 200}));

        let (head, body) = rx.recv_timeout(Duration::from_secs(10)).expect("the loopback server got the request");
        assert!(head.starts_with("POST /hooks/incidents?x=1 HTTP/1.1\r\n"), "{stem}: {head}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains(&format!("\r\nidempotency-key: {}\r\n", inv.to_ascii_lowercase())), "{stem}: {head}");
        assert!(lower.contains("\r\ncontent-type: application/json\r\n"), "{stem}: {head}");
        let body: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{stem}: body is not JSON: {e}"));
        assert_eq!(body["kind"], "crisis.notification");
        assert_eq!(body["source"], *name);
        assert_eq!(body["invocation_id"], inv.as_str());
        assert_eq!(body["mode"], "live");
        assert_eq!(body["target"], "superiors");
        assert_eq!(body["subject"], "Checkout down");
        assert_eq!(body["text"], "Card payments fail for 30% of checkouts.");
        assert_eq!(body["incident"]["id"], "inc-42");
        assert_eq!(body["incident"]["severity"], "sev1");
        assert_eq!(body["incident"]["category"], "product-quality");
        assert_eq!(body["incident"]["labels"]["service"], "checkout");
        assert_eq!(body["params"]["bridge"], "https://meet.example.com/war-room");
    }
}

#[test]
fn examples_map_upstream_failures_and_missing_config() {
    let dir = tempfile::tempdir().unwrap();
    for (stem, _) in EXAMPLES {
        let file = example(stem);
        for (status, kind) in [(503, "transient"), (422, "permanent")] {
            let (port, rx) = one_shot_server(status);
            let input = note_input("inv-fail", &format!("http://127.0.0.1:{port}/"), Some(port));
            let r = plugin_cli(
                dir.path(),
                &[
                    "plugin",
                    "call",
                    file.to_str().unwrap(),
                    "--world",
                    "notifier",
                    "--live",
                    "--input",
                    &input,
                    "--json",
                ],
            );
            assert_eq!(r.code, 1, "{stem} {status}: {}\n{}", r.stdout, r.stderr);
            let v = r.json();
            assert_eq!(v["plugin_error"]["kind"], kind, "{stem} {status}: {v}");
            assert!(
                v["plugin_error"]["message"].as_str().unwrap().contains(&format!("answered {status}: answer!")),
                "{v}"
            );
            rx.recv_timeout(Duration::from_secs(10)).expect("the request was delivered");
        }

        // Live without a grant: the host denies the request; nothing is sent.
        // (The host drains the request body before refusing, so JS's fetch
        // gets an error rather than aborting the guest.)
        {
            let input = note_input("inv-nogrant", "https://hooks.example.com/x", None);
            let r = plugin_cli(
                dir.path(),
                &[
                    "plugin",
                    "call",
                    file.to_str().unwrap(),
                    "--world",
                    "notifier",
                    "--live",
                    "--input",
                    &input,
                    "--json",
                ],
            );
            assert_eq!(r.code, 1, "{stem}: {}", r.stdout);
            // Both SDKs see the host's refusal as such (the JS SDK uses
            // wasi:http, not fetch, which could not tell it from an outage).
            assert_eq!(r.json()["plugin_error"]["kind"], "denied", "{stem}: {}", r.stdout);
        }

        // No url: a configuration error.
        let r = plugin_cli(
            dir.path(),
            &[
                "plugin",
                "call",
                file.to_str().unwrap(),
                "--world",
                "notifier",
                "--input",
                r#"{"config": {}}"#,
                "--json",
            ],
        );
        assert_eq!(r.code, 1, "{stem}: {}", r.stdout);
        let v = r.json();
        assert_eq!(v["plugin_error"]["kind"], "config", "{stem}: {v}");
        assert!(v["plugin_error"]["message"].as_str().unwrap().contains("url"), "{v}");

        let r = plugin_cli(
            dir.path(),
            &[
                "plugin",
                "call",
                file.to_str().unwrap(),
                "--world",
                "notifier",
                "--input",
                r#"{"config": {"url": "ftp://x"}}"#,
                "--json",
            ],
        );
        assert_eq!(r.code, 1, "{stem}: {}", r.stdout);
        assert_eq!(r.json()["plugin_error"]["kind"], "config", "{stem}: {}", r.stdout);
    }
}
