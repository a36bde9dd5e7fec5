//! End-to-end: notify and appease steps run through the real Wasm plugins,
//! sending real HTTP to a loopback server, with everything journaled.
use crate::common::*;

fn config(port: u16) -> String {
    format!(
        r#"
[secrets.hook]
env = "CRISIS_TEST_HOOK_TOKEN"

[plugins.webhook-notify]
allowed_hosts = ["http://localhost:{port}"]
allow_private = ["http://localhost:{port}"]
inject = [{{ host = "http://localhost:{port}", header = "Authorization", secret = "hook", prefix = "Bearer " }}]

[targets.superiors]
plugin = "webhook-notify"
config = {{ url = "http://localhost:{port}/superiors" }}
[targets.departments]
plugin = "webhook-notify"
config = {{ url = "http://localhost:{port}/departments", format = "slack" }}
[targets.customers]
plugin = "webhook-notify"
config = {{ url = "http://localhost:{port}/sms-gateway" }}
[targets.oncall]
plugin = "log"
"#
    )
}

#[test]
fn notify_and_appease_steps_send_real_requests_through_plugins() {
    let server = TestServer::start(200);
    let d = Daemon::start_with_env("engine", &config(server.port), &[("CRISIS_TEST_HOOK_TOKEN", "s3cret-hook-token")]);
    let v = d.json(&[
        "trigger",
        "outage",
        "--scope",
        "EU shoppers",
        "--field",
        "nature=checkout 500s",
        "--label",
        "service=checkout",
        "--label",
        "region=eu",
    ]);
    let id = v["incident"]["id"].as_str().unwrap().to_string();
    d.wait_for("the report notice", || server.requests().iter().any(|r| r.path == "/superiors"));
    let first = server.requests().into_iter().find(|r| r.path == "/superiors").unwrap();
    assert_eq!(first.method, "POST");
    assert_eq!(first.header("idempotency-key"), Some(format!("{id}.1").as_str()));
    assert_eq!(first.header("authorization"), Some("Bearer s3cret-hook-token"), "the host injects the secret");
    let doc: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(doc["incident"]["id"], id.as_str());

    d.wait_for("assign", || d.json(&["incident", "show", &id])["phase"] == "assign");
    d.ok(&["ack", &id, "--as", "alice"]);
    d.ok(&["step", &id, "dispatch", "done", "--as", "alice"]);
    d.wait_for("three customer messages", || {
        server.requests().iter().filter(|r| r.path == "/sms-gateway").count() == 3
    });
    d.wait_for("the slack status page", || {
        server.requests().iter().any(|r| r.path == "/departments" && r.body.contains("\"text\""))
    });
    let sms: Vec<Received> = server.requests().into_iter().filter(|r| r.path == "/sms-gateway").collect();
    let bodies: Vec<serde_json::Value> = sms.iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect();
    let to: Vec<&str> = bodies.iter().map(|b| b["params"]["to"].as_str().unwrap()).collect();
    for phone in ["+86-555-0101", "+49-555-0102", "+1-555-0103"] {
        assert!(to.contains(&phone), "the gateway gets each affected customer's phone: {to:?}");
    }
    // C-001 is a zh-CN VIP: the appease-script plugin writes Chinese for them.
    let lin = bodies.iter().find(|b| b["params"]["customer"] == "C-001").unwrap();
    assert_eq!(lin["params"]["locale"], "zh-CN");
    assert!(lin["text"].as_str().unwrap_or_default().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{lin}");

    d.wait_for("act complete", || d.json(&["incident", "show", &id])["phase"] == "outcome");
    let report = d.json(&["report", &id, "--format", "json"]);
    assert_eq!(report["customer_messages"]["sms"]["sent"], 3, "{report}");
    assert!(report["notifications"]["superiors"]["sent"].as_u64().unwrap() >= 2);
    // Everything is journaled, and neither contact details nor the secret appear there or in the log.
    let timeline = d.ok(&["--json", "timeline", &id]);
    assert!(timeline.contains("webhook-notify"), "plugin results are journaled");
    for leak in ["+86-555-0101", "+1-555-0103", "lin.wei@example.com", "s3cret-hook-token"] {
        assert!(!timeline.contains(leak), "{leak} in the journal");
        assert!(!d.log().contains(leak), "{leak} in the log");
    }
    let metrics = ureq::get(&d.url("/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(metrics.contains("crisis_plugin_calls_total{plugin=\"webhook-notify\",result=\"ok\"}"), "{metrics}");
    assert!(metrics.contains("crisis_plugin_calls_total{plugin=\"appease-script\",result=\"ok\"} 3"), "{metrics}");
    let status = d.json(&["status"]);
    let names: Vec<&str> = status["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"webhook-notify") && names.contains(&"appease-script") && names.contains(&"drill-sim"),
        "{names:?}"
    );
}
