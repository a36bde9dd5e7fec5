//! End-to-end: `POST /v2/enqueue` takes PagerDuty Events API v2 events as
//! PagerDuty documents them. The routing key is an intake token's secret and
//! appears nowhere the daemon writes; trigger, acknowledge and resolve drive
//! the incident of the routed playbook; bad events get PagerDuty's 400 with
//! every reason; bad keys are refused alike; the intake rate limit applies.
use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;

/// `[intake.pagerduty]` routing the `monitoring` intake token to `gate`.
fn config(extra: &str) -> String {
    format!("{LOG_TARGETS}{extra}\n[intake.pagerduty]\nroutes = [{{ token = \"monitoring\", playbook = \"gate\" }}]\n")
}

/// POSTs `body` (raw text) to `/v2/enqueue` without any header but the type: the status and the JSON reply.
fn enqueue(d: &Daemon, body: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.post(&d.url("/v2/enqueue")).header("Content-Type", "application/json").send(body).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {text}")))
}

/// A new intake token named `name`: its secret.
fn intake_token(d: &Daemon, name: &str) -> String {
    let v = d.json(&["token", "create", "--intake", name]);
    v["secret"].as_str().unwrap().to_string()
}

/// The trigger of PagerDuty's Events API v2 documentation, verbatim but for the routing key.
fn documented_trigger(routing_key: &str) -> String {
    r#"{
  "payload": {
    "summary": "Example alert on host1.example.com",
    "timestamp": "2015-07-17T08:42:58.315+0000",
    "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
    "severity": "info",
    "component": "postgres",
    "group": "prod-datapipe",
    "class": "deploy",
    "custom_details": {
      "ping time": "1500ms",
      "load avg": 0.75
    }
  },
  "routing_key": "ROUTING_KEY",
  "dedup_key": "samplekeyhere",
  "images": [{
    "src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
    "href": "https://example.com/",
    "alt": "Example text"
  }],
  "links": [{
    "href": "https://example.com/",
    "text": "Link text"
  }],
  "event_action": "trigger",
  "client": "Example Monitoring Client",
  "client_url": "https://monitoring.example.com"
}"#
    .replace("ROUTING_KEY", routing_key)
}

fn success(dedup_key: &str) -> Value {
    json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files(&p, out) } else { out.push(p) }
    }
}

/// The open incidents of the daemon, by CLI.
fn open_incidents(d: &Daemon) -> Vec<Value> {
    d.json(&["incident", "list"])["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "open")
        .cloned()
        .collect()
}

#[test]
fn the_documented_trigger_then_acknowledge_then_resolve_drive_one_incident() {
    let d = Daemon::start("tokens", &config(""));
    let key = intake_token(&d, "monitoring");

    let (code, v) = enqueue(&d, &documented_trigger(&key));
    assert_eq!((code, &v), (202, &success("samplekeyhere")));
    let open = open_incidents(&d);
    assert_eq!(open.len(), 1, "{open:?}");
    let id = open[0]["id"].as_str().unwrap().to_string();
    let inc = d.json(&["incident", "show", &id]);
    assert_eq!(inc["playbook_id"], "gate", "{inc}");
    assert_eq!(inc["severity"], "sev4", "info maps to sev4 by default: {inc}");
    assert_eq!(inc["title"], "Example alert on host1.example.com");
    assert_eq!(inc["dedup_key"], "samplekeyhere");
    let opened = d.events(&id).into_iter().find(|e| e["kind"] == "opened").unwrap();
    let labels = &opened["data"]["labels"];
    assert_eq!(labels["component"], "postgres", "{opened}");
    assert_eq!(labels["group"], "prod-datapipe");
    assert_eq!(labels["class"], "deploy");
    assert_eq!(labels["custom.ping time"], "1500ms");
    assert_eq!(labels["custom.load avg"], "0.75");
    assert_eq!(opened["data"]["by"], "pagerduty intake token monitoring");
    assert_eq!(opened["data"]["fields"]["nature"], "Example alert on host1.example.com");

    // The same dedup key again attaches to the open incident.
    let (code, v) = enqueue(&d, &documented_trigger(&key));
    assert_eq!((code, &v), (202, &success("samplekeyhere")));
    assert_eq!(open_incidents(&d).len(), 1);
    assert!(d.events(&id).iter().any(|e| e["kind"] == "attached" && e["data"]["source"] == "pagerduty"));

    let ack = json!({"routing_key": key, "dedup_key": "samplekeyhere", "event_action": "acknowledge"});
    let (code, v) = enqueue(&d, &ack.to_string());
    assert_eq!((code, &v), (202, &success("samplekeyhere")));
    let inc = d.json(&["incident", "show", &id]);
    assert_eq!(inc["acked_by"], "pagerduty intake token monitoring", "{inc}");
    // The intake is no person: it takes no incident role.
    assert!(!inc["roles"].to_string().contains("pagerduty"), "{inc}");
    // A repeated acknowledge is answered alike and changes nothing.
    let before = d.events(&id).len();
    assert_eq!(enqueue(&d, &ack.to_string()).0, 202);
    assert_eq!(d.events(&id).len(), before);

    let resolve = json!({"routing_key": key, "dedup_key": "samplekeyhere", "event_action": "resolve"});
    let (code, v) = enqueue(&d, &resolve.to_string());
    assert_eq!((code, &v), (202, &success("samplekeyhere")));
    let inc = d.json(&["incident", "show", &id]);
    assert_ne!(inc["status"], "open", "{inc}");
    let resolved = d.events(&id).into_iter().find(|e| e["kind"] == "resolved").unwrap();
    assert_eq!(resolved["data"]["by"], "pagerduty intake token monitoring", "{resolved}");

    // Without a dedup key a trigger gets a fresh one, returned; acknowledge works with it.
    let mut t: Value = serde_json::from_str(&documented_trigger(&key)).unwrap();
    t.as_object_mut().unwrap().remove("dedup_key");
    let (code, v) = enqueue(&d, &t.to_string());
    assert_eq!((code, v["status"].as_str()), (202, Some("success")), "{v}");
    let fresh = v["dedup_key"].as_str().unwrap().to_string();
    assert_eq!(fresh.len(), 32, "{v}");
    let open = open_incidents(&d);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["dedup_key"], fresh.as_str());

    // The routing key is nowhere: not in the journal, the log or any state file.
    for ev in d.events(&id).iter().chain(d.events(open[0]["id"].as_str().unwrap()).iter()) {
        assert!(!ev.to_string().contains(&key), "journaled: {ev}");
    }
    assert!(!d.log().contains(&key), "logged");
    assert!(d.log().contains("pagerduty trigger from pagerduty intake token monitoring"), "{}", d.log());
    let mut all = Vec::new();
    files(d.dir.path(), &mut all);
    for f in all.iter().filter(|f| f.file_name().is_some_and(|n| n != "crisis.toml")) {
        let bytes = std::fs::read(f).unwrap();
        assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "the routing key is in {}", f.display());
    }
}

#[test]
fn malformed_events_get_pagerdutys_400_naming_each_problem() {
    let d = Daemon::start("tokens", &config(""));
    let key = intake_token(&d, "monitoring");
    let invalid = |body: &str, want: &[&str]| {
        let (code, v) = enqueue(&d, body);
        assert_eq!(code, 400, "{body}: {v}");
        assert_eq!(
            (v["status"].as_str(), v["message"].as_str()),
            (Some("invalid event"), Some("Event object is invalid"))
        );
        let errors: Vec<String> =
            v["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
        for w in want {
            assert!(errors.iter().any(|e| e.contains(w)), "{w} not in {errors:?}");
        }
        assert!(!v.to_string().contains(&key), "the key is echoed: {v}");
    };
    let mut t: Value = serde_json::from_str(&documented_trigger(&key)).unwrap();
    t.as_object_mut().unwrap().remove("routing_key");
    invalid(&t.to_string(), &["'routing_key' is missing"]);
    let mut t: Value = serde_json::from_str(&documented_trigger(&key)).unwrap();
    t["event_action"] = json!("escalate");
    invalid(&t.to_string(), &["'event_action' is `escalate`: expected trigger, acknowledge or resolve"]);
    let mut t: Value = serde_json::from_str(&documented_trigger(&key)).unwrap();
    t["payload"].as_object_mut().unwrap().remove("summary");
    invalid(&t.to_string(), &["'payload.summary' is missing"]);
    let mut t: Value = serde_json::from_str(&documented_trigger(&key)).unwrap();
    t["payload"]["severity"] = json!("sev1");
    t["payload"].as_object_mut().unwrap().remove("source");
    invalid(
        &t.to_string(),
        &[
            "unknown PagerDuty severity `sev1`: expected one of critical, error, warning, info",
            "'payload.source' is missing",
        ],
    );
    invalid("this is not json", &["the body is not JSON"]);
    invalid(&json!({"routing_key": key, "event_action": "resolve"}).to_string(), &["'dedup_key' is required"]);
    assert!(open_incidents(&d).is_empty(), "a refused event opened nothing");
}

#[test]
fn bad_routing_keys_are_refused_alike_and_the_intake_rate_limit_applies() {
    let d = Daemon::start("tokens", &config("[limits]\nintake_per_minute = 5\n"));
    let key = intake_token(&d, "monitoring");
    let revoked = intake_token(&d, "old");
    let list = d.json(&["token", "list"]);
    let old =
        list.as_array().unwrap().iter().find(|t| t["subject"] == "old").unwrap()["id"].as_str().unwrap().to_string();
    d.ok(&["token", "revoke", &old]);

    let (code, unknown) = enqueue(&d, &documented_trigger("samplekeyhere"));
    assert_eq!(code, 401, "{unknown}");
    assert_eq!(unknown["status"], "unauthorized");
    let (code, v) = enqueue(&d, &documented_trigger(&revoked));
    assert_eq!((code, &v), (401, &unknown), "a revoked key is answered as an unknown one");
    let (code, v) = enqueue(&d, &documented_trigger(d.token().trim()));
    assert_eq!(code, 403, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("bootstrap admin token is no routing key"), "{v}");
    // A valid key no route names, with no default playbook.
    let (code, v) = enqueue(&d, &documented_trigger(&intake_token(&d, "unrouted")));
    assert_eq!(code, 403, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("no [intake.pagerduty] route for token `unrouted`"), "{v}");
    let (code, _) = enqueue(&d, &documented_trigger(&key));
    assert_eq!(code, 202);
    let (code, v) = enqueue(&d, &documented_trigger(&key));
    assert_eq!(code, 429, "{v}");
    assert_eq!(v["status"], "throttle event");
    assert!(!d.log().contains(&revoked) && !d.log().contains(&key));
}

#[test]
fn a_route_to_an_unknown_playbook_is_refused_at_load_where_it_is_written() {
    let d = Daemon::start("tokens", &config(""));
    let text = std::fs::read_to_string(&d.config).unwrap().replace("playbook = \"gate\"", "playbook = \"gaet\"");
    std::fs::write(&d.config, text).unwrap();
    let r = d.cli(&["reload"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(
        out.contains("[intake.pagerduty] the route of token `monitoring` names playbook `gaet`, which is not loaded (did you mean gate?)"),
        "{out}"
    );
    assert!(out.contains("crisis.toml:"), "{out}");
}
