//! End-to-end: an Alertmanager group is journaled whole with its refused
//! alerts named, empty dedup templates fall back to the fingerprint, and
//! `[limits]` changes apply on reload.
use crate::common::*;
use serde_json::{Value, json};

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r =
        agent.post(&d.url(path)).header("Authorization", &format!("Bearer {}", d.token())).send_json(body).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn alert(status: &str, labels: Value, fingerprint: &str) -> Value {
    json!({
        "status": status,
        "labels": labels,
        "annotations": {"summary": "Checkout error rate above 20%"},
        "startsAt": "2026-11-23T10:00:00Z",
        "endsAt": if status == "resolved" { "2026-11-23T10:30:00Z" } else { "0001-01-01T00:00:00Z" },
        "fingerprint": fingerprint
    })
}

fn group(status: &str, alerts: Vec<Value>) -> Value {
    json!({"version": "4", "groupKey": "{}:{alertname=\"CheckoutDown\"}", "status": status, "receiver": "crisis", "alerts": alerts})
}

#[test]
fn a_group_with_one_invalid_alert_journals_the_others_and_names_it() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let long = "x".repeat(300);
    let body = group(
        "firing",
        vec![
            alert("firing", json!({"alertname": "CheckoutDown", "service": "checkout", "region": "eu"}), "aaa0"),
            alert("firing", json!({"alertname": "CheckoutDown", "service": long, "region": "eu"}), "aaa1"),
            alert("firing", json!({"alertname": "CheckoutDown", "service": "search", "region": "eu"}), "aaa2"),
        ],
    );
    let (code, v) = post(&d, "/v1/intake/alertmanager", &body);
    assert_eq!(code, 202, "{v}");
    let accepted = v["accepted"].as_array().unwrap();
    assert_eq!(accepted.len(), 2, "{v}");
    assert!(accepted.iter().all(|a| a["result"] == "opened"), "{v}");
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{v}");
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[0]["fingerprint"], "aaa1");
    assert!(rejected[0]["reason"].as_str().unwrap().contains("dedup key is"), "{v}");
    let listed = d.json(&["incident", "list"]);
    let ids: Vec<&str> = listed["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    for a in accepted {
        assert!(ids.contains(&a["incident"].as_str().unwrap()), "{listed}");
    }
    assert!(d.log().contains("intake refused one alert"), "{}", d.log());
}

#[test]
fn alerts_lacking_the_dedup_labels_dedup_by_fingerprint_and_resolve() {
    let d = Daemon::start("engine", LOG_TARGETS);
    // The fixture's template is "{{ labels.service }}:{{ labels.region }}"; these alerts carry neither.
    let labels = json!({"alertname": "CheckoutDown", "severity": "sev2"});
    let (code, v) =
        post(&d, "/v1/intake/alertmanager", &group("firing", vec![alert("firing", labels.clone(), "fp-billing")]));
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["accepted"][0]["result"], "opened", "{v}");
    let id = v["accepted"][0]["incident"].as_str().unwrap().to_string();
    let (_, v) =
        post(&d, "/v1/intake/alertmanager", &group("firing", vec![alert("firing", labels.clone(), "fp-billing")]));
    assert_eq!(v["accepted"][0]["result"], "deduped", "{v}");
    assert_eq!(v["accepted"][0]["incident"], id.as_str());
    let inc = d.json(&["incident", "show", &id]);
    assert_eq!(inc["dedup_key"], "am:fp-billing", "{inc}");
    let tl = d.ok(&["timeline", &id]);
    assert!(tl.contains("rendered empty") && tl.contains("Alertmanager fingerprint"), "{tl}");

    let (code, v) =
        post(&d, "/v1/intake/alertmanager", &group("resolved", vec![alert("resolved", labels, "fp-billing")]));
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["accepted"][0]["result"], "resolved", "{v}");
    assert_eq!(d.json(&["incident", "show", &id])["status"], "resolved");
}

#[test]
fn a_lower_intake_rate_applies_on_reload() {
    let d = Daemon::start("engine", &format!("{LOG_TARGETS}\n[limits]\nintake_per_minute = 1000\n"));
    let event = |i: usize| json!({"playbook": "outage", "summary": "s", "scope": "x", "dedup_key": format!("k{i}")});
    let before: Vec<u16> = (0..4).map(|i| post(&d, "/v1/intake/events", &event(i)).0).collect();
    assert_eq!(before, [202, 202, 202, 202]);
    write_config(d.dir.path(), d.port, &format!("{LOG_TARGETS}\n[limits]\nintake_per_minute = 2\n"));
    let r = d.cli(&["reload"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let after: Vec<u16> = (10..14).map(|i| post(&d, "/v1/intake/events", &event(i)).0).collect();
    assert_eq!(&after[..2], &[202, 202], "{after:?}");
    assert!(after[2..].contains(&429), "the reloaded limit of 2 a minute applies: {after:?}");
}

#[test]
fn a_lower_body_limit_applies_on_reload() {
    let d = Daemon::start("engine", LOG_TARGETS);
    let big = json!({"playbook": "outage", "summary": "s".repeat(3000), "scope": "x", "dedup_key": "big"});
    let (code, v) = post(&d, "/v1/intake/events", &big);
    assert_eq!(code, 202, "{v}");
    write_config(d.dir.path(), d.port, &format!("{LOG_TARGETS}\n[limits]\nmax_body_kb = 2\n"));
    let r = d.cli(&["reload"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let (code, v) = post(&d, "/v1/intake/events", &big);
    assert_eq!(code, 413, "{v}");
    let small = json!({"playbook": "outage", "summary": "s", "scope": "x", "dedup_key": "small"});
    assert_eq!(post(&d, "/v1/intake/events", &small).0, 202);
}

#[test]
fn validate_warns_when_the_dedup_template_names_a_label_match_does_not_guarantee() {
    let r = crisis(&["playbook", "validate", "playbooks/billing-error.toml"]);
    assert_eq!(r.code, 0, "a warning does not fail validation: {}", r.stderr);
    assert_eq!(r.stdout.trim(), "ok: 1 playbook valid");
    let warning =
        r.stderr.lines().find(|l| l.contains("warning:")).unwrap_or_else(|| panic!("no warning: {}", r.stderr));
    assert!(
        warning.starts_with("playbooks/billing-error.toml:17:13: warning: dedup_key uses labels.billing_run"),
        "{warning}"
    );

    // Once match requires the label, every matching alert carries it: no warning.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("playbooks/billing-error.toml")).unwrap();
    let fixed = text.replace(
        "match = { alertname = \"BillingAnomaly\" }",
        "match = { alertname = \"BillingAnomaly\", billing_run = \"nightly\" }",
    );
    assert_ne!(fixed, text);
    std::fs::write(dir.path().join("billing.toml"), fixed).unwrap();
    let r = crisis(&["playbook", "validate", dir.path().join("billing.toml").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("warning:"), "{}", r.stderr);
}
