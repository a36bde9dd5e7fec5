//! Complaint surges with the real daemon and the shipped
//! `quality-complaint-surge` playbook: 20 product-quality complaints about
//! one product within 10 minutes open exactly one incident (also across a
//! kill -9 in the middle of the surge), later ones attach, complaints about
//! another product stay apart, and closing the incident sends every attached
//! customer the outcome message, counted at a loopback notifier.
use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const PLAYBOOK: &str = "quality-complaint-surge";

/// A daemon with the shipped surge playbook, the example roster and
/// customers, and customer messages going to `customers` (a loopback webhook).
fn start(customers: &TestServer) -> Daemon {
    let lo = format!("http://localhost:{}", customers.port);
    let extra = format!(
        "[plugins.webhook-notify]\nallowed_hosts = [\"{lo}\"]\nallow_private = [\"{lo}\"]\ntimeout = \"5s\"\n\
         [targets.customers]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"{lo}/customers\" }}\n\
         [targets.superiors]\nplugin = \"log\"\n[targets.departments]\nplugin = \"log\"\n\
         [targets.oncall]\nplugin = \"log\"\n\
         [complaints]\ntarget = \"customers\"\nrepeat_count = 0\nfollow_up = \"1h\"\n"
    );
    let mut d = Daemon::start("engine", &extra);
    d.stop();
    let dir = d.dir.path().to_path_buf();
    std::fs::remove_file(dir.join("playbooks/outage.toml")).unwrap();
    std::fs::copy(repo().join("playbooks").join(format!("{PLAYBOOK}.toml")), dir.join("playbooks/surge.toml")).unwrap();
    std::fs::copy(repo().join("examples/roster.toml"), dir.join("roster.toml")).unwrap();
    std::fs::copy(repo().join("examples/customers.csv"), dir.join("customers.csv")).unwrap();
    d.restart();
    d
}

/// Posts one product-quality complaint from customer `c00NN`; returns the journaled complaint.
fn complain(d: &Daemon, n: usize, product: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let body = json!({
        "customer": format!("c{n:04}"),
        "channel": "sms",
        "category": "product-quality",
        "text": format!("complaint {n}: the {product} leaks"),
        "labels": { "product": product },
    });
    let mut r = agent
        .post(&d.url("/v1/intake/complaints"))
        .header("Authorization", &format!("Bearer {}", d.token()))
        .send_json(&body)
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status, 202, "{v}");
    v
}

fn surge_incidents(d: &Daemon) -> Vec<Value> {
    let all = d.json(&["incident", "list"]);
    all["incidents"].as_array().unwrap().iter().filter(|i| i["playbook"] == PLAYBOOK).cloned().collect()
}

/// The customers the outcome message reached at the loopback notifier.
fn outcome_customers(server: &TestServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .filter(|v| v["invocation_id"].as_str().is_some_and(|i| i.ends_with(".outcome")))
        .map(|v| v["params"]["customer"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn twenty_complaints_about_one_product_open_one_incident_and_its_close_answers_all() {
    let server = TestServer::start(200);
    let mut d = start(&server);
    let mut ids = Vec::new();
    for n in 1..=19 {
        let c = complain(&d, n, "kettle-k2");
        assert!(c.get("incident").is_none(), "complaint {n} of 20 opens nothing: {c}");
        ids.push(c["id"].as_str().unwrap().to_string());
        if n % 6 == 0 {
            complain(&d, 30 + n / 6, "toaster-t1");
        }
    }
    assert!(surge_incidents(&d).is_empty(), "19 complaints are below the threshold");
    let twentieth = complain(&d, 20, "kettle-k2");
    let inc = twentieth["incident"].as_str().expect("the 20th complaint opens the incident").to_string();
    ids.push(twentieth["id"].as_str().unwrap().to_string());
    let twenty_first = complain(&d, 21, "kettle-k2");
    assert_eq!(twenty_first["incident"], inc.as_str(), "the 21st attaches");
    ids.push(twenty_first["id"].as_str().unwrap().to_string());
    let other = complain(&d, 35, "toaster-t1");
    assert!(other.get("incident").is_none(), "another product does not attach: {other}");

    let open = surge_incidents(&d);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], inc.as_str());
    let shown = d.json(&["incident", "show", &inc]);
    assert_eq!(shown["labels"]["product"], "kettle-k2", "{shown}");
    // Every complaint of the surge, the first included, is attached on both streams.
    let first = d.json(&["complaint", "show", &ids[0]]);
    assert_eq!(first["complaint"]["incident"], inc.as_str(), "{first}");
    let attached = first["events"].as_array().unwrap().iter().find(|e| e["kind"] == "attached_to").cloned();
    assert_eq!(attached.expect("attached_to journaled")["data"]["incident"], inc.as_str());
    assert!(d.ok(&["complaint", "show", &ids[0]]).contains(&format!("incident: {inc}")));
    let on_incident: BTreeSet<String> = d
        .events(&inc)
        .iter()
        .filter(|e| e["kind"] == "attached")
        .filter_map(|e| e["data"]["complaint"].as_str().map(String::from))
        .collect();
    assert_eq!(on_incident, ids.iter().cloned().collect::<BTreeSet<_>>());
    let timeline = d.ok(&["timeline", &inc]);
    assert!(timeline.contains(&format!("complaint {} attached", ids[0])), "{timeline}");
    for secret in ["+1-555-0101", "wang.xiaoming@example.com", "Wang Xiaoming"] {
        assert!(!timeline.contains(secret), "{secret} in the incident's timeline");
    }

    d.ok(&["resolve", &inc]);
    d.ok(&[
        "outcome",
        &inc,
        "--cause",
        "a faulty seal batch",
        "--process",
        "sales hold, lab test",
        "--aftermath",
        "free replacement",
    ]);
    assert_eq!(d.json(&["incident", "show", &inc])["status"], "closed");
    wait_until(&d, "the outcome message delivered to 21 customers", 60, || outcome_customers(&server).len() >= 21);
    let reached: BTreeSet<String> = outcome_customers(&server).into_iter().collect();
    let want: BTreeSet<String> = (1..=21).map(|n| format!("c{n:04}")).collect();
    assert_eq!(reached, want, "every attached customer, once, and nobody else");
    assert_eq!(outcome_customers(&server).len(), 21, "one outcome message each");

    let c = d.json(&["complaint", "show", &ids[20]]);
    assert_eq!(c["complaint"]["state"], "resolved", "{c}");
    assert!(c["complaint"]["resolution"].as_str().unwrap().contains("a faulty seal batch"), "{c}");
    assert!(c["events"].as_array().unwrap().iter().any(|e| e["kind"] == "outcome_message_recorded"), "{c}");
    let toaster = d.json(&["complaint", "show", other["id"].as_str().unwrap()]);
    assert_ne!(toaster["complaint"]["state"], "resolved", "{toaster}");

    let report = d.json(&["report", &inc, "--format", "json"]);
    assert_eq!(report["complaints"]["total"], 21, "{report}");
    assert_eq!(report["complaints"]["by_category"]["product-quality"], 21, "{report}");
    assert_eq!(report["complaints"]["by_channel"]["sms"], 21, "{report}");
    assert_eq!(report["duplicate_triggers"], 0, "complaints are no duplicate triggers: {report}");
    let md = d.ok(&["report", &inc]);
    assert!(md.contains("## Customer complaints") && md.contains("- Attached: 21"), "{md}");

    // Closing is settled once, in the close's own transaction: after a kill -9
    // each complaint still has exactly one outcome message recorded.
    d.kill9();
    d.restart();
    for id in &ids {
        let evs = d.json(&["complaint", "show", id])["events"].as_array().unwrap().clone();
        assert_eq!(evs.iter().filter(|e| e["kind"] == "outcome_message_recorded").count(), 1, "{id}");
    }
    let fresh = complain(&d, 22, "kettle-k2");
    assert!(fresh.get("incident").is_none(), "a closed incident takes no complaints: {fresh}");
    assert!(d.ok(&["verify"]).contains("journal intact"));
}

#[test]
fn a_kill9_in_the_middle_of_a_surge_still_opens_exactly_one_incident_at_twenty() {
    let server = TestServer::start(200);
    let mut d = start(&server);
    for n in 1..=10 {
        complain(&d, n, "router-r7");
    }
    d.kill9();
    d.restart();
    for n in 11..=19 {
        let c = complain(&d, n, "router-r7");
        assert!(c.get("incident").is_none(), "complaint {n}: {c}");
    }
    assert!(surge_incidents(&d).is_empty());
    let c = complain(&d, 20, "router-r7");
    let inc = c["incident"].as_str().expect("the 20th opens it").to_string();
    assert_eq!(surge_incidents(&d).len(), 1);
    let all = d.json(&["complaint", "list"]);
    let attached = all.as_array().unwrap().iter().filter(|c| c["incident"] == inc.as_str()).count();
    assert_eq!(attached, 20, "the ten complaints from before the crash count and attach");
    assert!(d.ok(&["verify"]).contains("journal intact"));
}
