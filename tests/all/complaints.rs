//! Customer complaints with the real daemon: intake over HTTP and the CLI,
//! classification by the shipped rules in both locales, the first response
//! recorded within its deadline for every complaint (none lost across a
//! kill -9), the plain-template fallback (no plugin, or one that traps), the
//! first-response percentiles on /metrics, a first response that can never be
//! delivered dead-lettered on the complaint, a retry under its idempotency key
//! recording nothing new, and no contact detail in the journal, the log or the
//! report.
use crate::common::*;
use crisis::plugin::test_fixtures as fx;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Contact details of the engine fixture's customers and the ones the test texts carry.
const CONTACTS: &[&str] = &[
    "555-0101",
    "555-0102",
    "555-0103",
    "lin.wei@example.com",
    "anna@example.org",
    "tom@example.com",
    "555 0100",
    "5550100",
    "me@example.net",
    "138 0013 8000",
];

fn rules() -> String {
    std::fs::read_to_string(repo().join("examples/complaints/rules.toml")).unwrap()
}

/// POSTs a complaint with the bootstrap token; returns the status and the reply.
fn post(d: &Daemon, body: &Value) -> Result<(u16, Value), String> {
    post_keyed(d, body, None).map(|(status, v, _)| (status, v))
}

/// POSTs a complaint under an idempotency key, if given; returns the status,
/// the reply and whether the reply says it was replayed.
fn post_keyed(d: &Daemon, body: &Value, key: Option<&str>) -> Result<(u16, Value, bool), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = agent.post(&d.url("/v1/intake/complaints")).header("Authorization", &format!("Bearer {}", d.token()));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let mut r = req.send_json(body).map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let v = serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null);
    Ok((status, v, replayed))
}

fn complaint(customer: &str, i: usize) -> Value {
    json!({
        "customer": customer,
        "channel": "sms",
        "text": format!("complaint {i}: I was charged twice (被多收了), call me at +1 555 0100 or mail me@example.net"),
        "labels": { "n": i.to_string() },
    })
}

/// A daemon on the engine fixture with log targets and `extra` configuration.
pub(crate) fn daemon(extra: &str) -> Daemon {
    Daemon::start("engine", &format!("{LOG_TARGETS}{extra}"))
}

/// The same, with the shipped classification rules after `extra`.
fn daemon_with_rules(extra: &str) -> Daemon {
    daemon(&format!("{extra}{}", rules()))
}

/// `crisis complaint add` for a customer on a channel.
pub(crate) fn add(d: &Daemon, customer: &str, channel: &str, text: &str) -> Value {
    d.json(&["complaint", "add", "--customer", customer, "--channel", channel, "--text", text])
}

/// A complaint's journal events, oldest first.
pub(crate) fn events(d: &Daemon, id: &str) -> Vec<Value> {
    d.json(&["complaint", "show", id])["events"].as_array().cloned().unwrap()
}

/// The first event of `kind` in a complaint's journal.
pub(crate) fn event(evs: &[Value], kind: &str) -> Option<Value> {
    evs.iter().find(|e| e["kind"] == kind).cloned()
}

/// The delivered first response's result in a complaint's journal.
pub(crate) fn delivered(evs: &[Value]) -> Option<Value> {
    evs.iter()
        .find(|e| {
            e["kind"] == "complaint_effect" && e["data"]["purpose"] == "first-response" && e["data"]["ok"] == true
        })
        .cloned()
}

/// Waits until complaint `id`'s first response was delivered; returns its journal.
pub(crate) fn wait_delivered(d: &Daemon, id: &str) -> Vec<Value> {
    d.wait_for("the first response delivered", || delivered(&events(d, id)).is_some());
    events(d, id)
}

/// The value of an unlabelled gauge in a `/metrics` page.
pub(crate) fn gauge(metrics: &str, name: &str) -> f64 {
    let line =
        metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} in {metrics}"));
    line[name.len()..].trim().parse().unwrap()
}

/// The daemon's `/metrics` page.
pub(crate) fn metrics(d: &Daemon) -> String {
    ureq::get(&d.url("/metrics")).call().unwrap().body_mut().read_to_string().unwrap()
}

fn assert_no_contacts(what: &str, text: &str) {
    for c in CONTACTS {
        assert!(!text.contains(c), "{what} shows the contact detail {c}");
    }
}

#[test]
fn two_hundred_complaints_each_get_their_first_response_in_time_and_survive_kill9() {
    let mut d = daemon_with_rules("[complaints]\nfirst_response = \"2m\"\nrepeat_count = 0\n");
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let customers = ["C-001", "C-002", "C-003", "C-004"];
    // The sender posts until the daemon goes away; the kill lands mid-stream.
    let sender = {
        let (acked, count) = (acked.clone(), count.clone());
        let (url, token) = (d.url("/v1/intake/complaints"), d.token());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            for i in 0..200 {
                let Ok(mut r) = agent
                    .post(&url)
                    .header("Authorization", &format!("Bearer {token}"))
                    .header("Idempotency-Key", &format!("ticket-{i}"))
                    .send_json(complaint(customers[i % 4], i))
                else {
                    return i;
                };
                if r.status().as_u16() != 202 {
                    return i;
                }
                let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                acked.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                count.fetch_add(1, Ordering::SeqCst);
            }
            200
        })
    };
    d.wait_for("half of the complaints acknowledged", || count.load(Ordering::SeqCst) >= 100);
    d.kill9();
    let sent = sender.join().unwrap();
    d.restart();
    // The sender retries from the complaint whose answer it lost, under the
    // same keys: one the daemon committed before the kill is not recorded twice.
    for i in sent..200 {
        let (status, v, replayed) =
            post_keyed(&d, &complaint(customers[i % 4], i), Some(&format!("ticket-{i}"))).unwrap();
        assert!(status == 202 || (status == 200 && replayed), "{status} {v}");
        acked.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 200, "every complaint acknowledged once");
    // Every acknowledged complaint is there, and its first response was recorded within the deadline.
    d.wait_for("every first response delivered", || {
        let all = d.json(&["complaint", "list"]);
        let all = all.as_array().unwrap();
        acked.iter().all(|id| all.iter().any(|c| c["id"] == id.as_str() && c["first_response_at"].is_i64()))
    });
    for id in &acked {
        let evs = events(&d, id);
        let received = event(&evs, "complaint_received").expect("received");
        let recorded = event(&evs, "first_response_recorded").expect("first response recorded");
        let due = recorded["data"]["due_at"].as_i64().unwrap();
        assert!(recorded["at"].as_i64().unwrap() <= due, "{id}: recorded after its deadline");
        assert_eq!(due - received["at"].as_i64().unwrap(), 120_000, "{id}: the deadline is 2 minutes");
        let delivered = delivered(&evs).unwrap_or_else(|| panic!("{id}: first response not delivered"));
        assert!(delivered["at"].as_i64().unwrap() <= due, "{id}: delivered after its deadline");
        assert_eq!(evs.iter().filter(|e| e["kind"] == "complaint_received").count(), 1);
        let all = serde_json::to_string(&evs).unwrap();
        assert_no_contacts(&format!("the journal of {id}"), &all);
        assert!(all.contains("[contact detail withheld]"), "{id}: the text's contacts are masked, not dropped");
    }
    assert_no_contacts("the log", &d.log());
    let report = d.ok(&["--json", "complaint", "report", "--since", "1h"]);
    assert_no_contacts("the report", &report);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["total"].as_u64().unwrap(), 200, "exactly one complaint per key");
    assert_eq!(report["by_category"]["price"].as_u64().unwrap() as usize, acked.len(), "the rules classified them");
    assert!(report["first_response_p95_ms"].as_i64().unwrap() <= 120_000);
    let metrics = metrics(&d);
    assert!(metrics.contains("crisis_complaints_total{category=\"price\",channel=\"sms\"}"), "{metrics}");
    assert!(metrics.contains("crisis_complaint_first_response_seconds_count"), "{metrics}");
    // The percentiles of the recent first responses (those delivered since the restart) are gauges.
    let (p50, p95) = (
        gauge(&metrics, "crisis_complaint_first_response_p50_seconds"),
        gauge(&metrics, "crisis_complaint_first_response_p95_seconds"),
    );
    assert!(p50 <= p95 && p95 <= 120.0, "p50 {p50} p95 {p95}");
    assert!(d.ok(&["verify"]).contains("journal intact"));
}

#[test]
fn a_retry_under_its_idempotency_key_gets_the_recorded_complaint_and_nothing_is_sent_twice() {
    let d = daemon_with_rules("");
    let body = complaint("C-002", 1);
    let (status, first, replayed) = post_keyed(&d, &body, Some("zendesk-81723")).unwrap();
    assert_eq!((status, replayed), (202, false), "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    let (status, again, replayed) = post_keyed(&d, &body, Some("zendesk-81723")).unwrap();
    assert_eq!((status, replayed), (200, true), "{again}");
    assert_eq!(again["id"], first["id"]);
    // The same key for another complaint is refused, naming the one it holds.
    let (status, v, _) = post_keyed(&d, &complaint("C-002", 2), Some("zendesk-81723")).unwrap();
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains(&id), "{v}");
    for bad in ["", &"k".repeat(256), "two words"] {
        let (status, v, _) = post_keyed(&d, &body, Some(bad)).unwrap();
        assert_eq!(status, 400, "key {bad:?}: {v}");
        assert!(v["error"].as_str().unwrap().contains("Idempotency-Key"), "{v}");
    }
    // The CLI sends the key too, and says when nothing new was recorded.
    let args = ["complaint", "add", "--customer", "C-001", "--channel", "sms", "--text", "billed twice"];
    let cli = d.json(&[&args[..], &["--idempotency-key", "zendesk-81724"]].concat());
    let again = d.ok(&[&args[..], &["--idempotency-key", "zendesk-81724"]].concat());
    assert!(again.contains("already recorded"), "{again}");
    assert!(again.starts_with(cli["id"].as_str().unwrap()), "{again}");
    // Without a key, the same complaint sent twice is two complaints.
    let (_, unkeyed, _) = post_keyed(&d, &body, None).unwrap();
    assert_ne!(unkeyed["id"], first["id"]);
    let all = d.json(&["complaint", "list"]);
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    // The customer of the keyed complaint gets one first response.
    let evs = wait_delivered(&d, &id);
    assert_eq!(evs.iter().filter(|e| e["kind"] == "first_response_recorded").count(), 1);
    assert!(metrics(&d).contains("crisis_intake_total{source=\"complaints\",result=\"replayed\"} 2"));
    // Only the key's digest is kept: the sender's ticket id is in neither journal nor log.
    let journal = serde_json::to_string(&evs).unwrap();
    assert!(!journal.contains("zendesk-81723") && !d.log().contains("zendesk-81723"));
    assert!(d.ok(&["verify"]).contains("journal intact"));
}

#[test]
fn the_shipped_rules_classify_the_shipped_examples_in_both_locales() {
    let mut d = daemon_with_rules("");
    // The shipped samples name the shipped customers.
    std::fs::copy(repo().join("examples/customers.csv"), d.dir.path().join("customers.csv")).unwrap();
    d.restart();
    let samples: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("examples/complaints/samples.json")).unwrap())
            .unwrap();
    let mut locales = std::collections::BTreeSet::new();
    for s in samples.as_array().unwrap() {
        let (status, v) = post(&d, &s["complaint"]).unwrap();
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["category"], s["expect"], "{}", s["complaint"]["text"]);
        locales.insert(v["locale"].as_str().unwrap().to_string());
    }
    assert!(locales.contains("en") && locales.contains("zh-CN"), "{locales:?}");
    // The one-command sample for `make run` users goes through the CLI.
    let file = repo().join("examples/complaints/complaint.json");
    let c = d.json(&["complaint", "add", "--file", file.to_str().unwrap()]);
    assert_eq!(c["category"], "product-quality");
    assert!(!c["text"].as_str().unwrap().contains("138 0013 8000"), "{c}");
    // A category given wins over the rules.
    let c = d.json(&[
        "complaint",
        "add",
        "--customer",
        "c0012",
        "--channel",
        "email",
        "--text",
        "I want a refund",
        "--category",
        "service-process",
        "--label",
        "product=router",
    ]);
    assert_eq!(c["category"], "service-process");
    assert_eq!(c["classified_by"]["step"], "given");
}

#[test]
fn a_failing_appeasement_plugin_falls_back_to_the_plain_template_journaled() {
    let d = daemon("[complaints]\ncomposer = \"no-such-plugin\"\n");
    let c = add(&d, "C-002", "email", "It broke.");
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["composer"]["by"], "template", "{c}");
    assert!(c["composer"]["reason"].as_str().unwrap().contains("no-such-plugin"), "{c}");
    d.wait_for("the template delivered", || {
        events(&d, id).iter().any(|e| {
            e["kind"] == "complaint_effect"
                && e["data"]["ok"] == true
                && e["data"]["detail"].as_str().unwrap_or("").contains("we received your complaint (reference")
        })
    });
    let recorded = event(&events(&d, id), "first_response_recorded").unwrap();
    assert_eq!(recorded["data"]["composer"]["by"], "template");
}

#[test]
fn an_appeasement_plugin_that_runs_and_traps_falls_back_to_the_template_with_the_reason() {
    // The chaos fixture composes normally, and traps for the customer `trap`.
    let mut d = daemon("");
    std::fs::create_dir_all(d.dir.path().join("plugins.d")).unwrap();
    std::fs::write(d.dir.path().join("plugins.d/chaos.wasm"), fx::bytes(fx::CHAOS)).unwrap();
    let csv = d.dir.path().join("customers.csv");
    let rows = std::fs::read_to_string(&csv).unwrap()
        + "trap,Trap Test,affected,standard,en,sms,+1-555-0199,trap@example.com\n";
    std::fs::write(&csv, rows).unwrap();
    let extra = format!("plugin_dir = \"plugins.d\"\n{LOG_TARGETS}[complaints]\ncomposer = \"chaos\"\n");
    write_config(d.dir.path(), d.port, &extra);
    d.restart();
    // The plugin runs: an ordinary customer's answer is its own.
    let ok = add(&d, "C-002", "email", "It broke.");
    assert_eq!(
        (ok["composer"]["by"].as_str(), ok["composer"]["plugin"].as_str()),
        (Some("plugin"), Some("chaos")),
        "{ok}"
    );
    // It traps for this one: the plain template answers, and the journal says why.
    let c = add(&d, "trap", "sms", "It broke.");
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["composer"]["by"], "template", "{c}");
    let evs = wait_delivered(&d, id);
    let recorded = event(&evs, "first_response_recorded").unwrap();
    let reason = recorded["data"]["composer"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("chaos failed: "), "{recorded}");
    assert!(
        delivered(&evs).unwrap()["data"]["detail"].as_str().unwrap().contains("we received your complaint (reference")
    );
    assert!(!serde_json::to_string(&evs).unwrap().contains("555-0199"), "no contact detail in the journal");
    let m = metrics(&d);
    assert!(gauge(&m, "crisis_complaint_first_response_fallbacks_total") >= 1.0, "{m}");
}

#[test]
fn bad_complaints_are_refused_with_the_reason_and_the_flow_is_journaled() {
    let d = daemon("[complaints]\nmax_text = 50\n");
    let cases = [
        (json!({ "customer": "C-999", "channel": "sms", "text": "x" }), "unknown customer id `C-999`"),
        (json!({ "customer": "C-002", "channel": "fax", "text": "x" }), "channel"),
        (json!({ "customer": "C-002", "channel": "sms", "text": "x", "category": "pricing" }), "category"),
        (json!({ "customer": "C-002", "channel": "sms", "text": "  " }), "text is empty"),
        (json!({ "customer": "C-002", "channel": "sms", "text": "y".repeat(51) }), "limit is 50"),
    ];
    for (body, want) in cases {
        let (status, v) = post(&d, &body).unwrap();
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
    assert_eq!(d.json(&["complaint", "list"]).as_array().unwrap().len(), 0, "nothing refused was journaled");
    // A VIP's complaint is escalated at once; it is then resolved with a note, all journaled.
    let c = add(&d, "C-001", "sms", "太贵了");
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["escalation"], "tier", "{c}");
    assert_eq!(c["state"], "escalated");
    let r = d.cli(&["complaint", "resolve", &id, "--note", ""]);
    assert_ne!(r.code, 0, "a resolution needs a note");
    // The bootstrap admin resolves it for alice: that is journaled on the complaint before the resolve.
    let c = d.json(&["complaint", "resolve", &id, "--note", "refunded the difference", "--as", "alice"]);
    assert_eq!(c["state"], "resolved");
    let evs = events(&d, &id);
    let acting = event(&evs, "acting_for").expect("acting_for journaled");
    assert_eq!(
        (acting["data"]["by"].as_str(), acting["data"]["person"].as_str()),
        (Some("bootstrap-admin"), Some("alice"))
    );
    assert_eq!(event(&evs, "complaint_resolved").unwrap()["data"]["by"], "alice");
    let r = d.cli(&["complaint", "escalate", &id]);
    assert_ne!(r.code, 0, "a resolved complaint is not escalated again");
    assert!(r.stderr.contains("resolved"), "{}", r.stderr);
    let kinds: Vec<String> = events(&d, &id).iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    for k in [
        "complaint_received",
        "complaint_classified",
        "first_response_recorded",
        "complaint_escalated",
        "complaint_resolved",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    assert!(d.ok(&["verify"]).contains("journal intact"));
}

#[test]
fn the_classifier_plugin_decides_when_no_rule_matches_and_can_be_turned_off() {
    // No rules: the built-in keyword classifier is the step that decides.
    let mut d = daemon("");
    let c = add(&d, "C-002", "email", "The kettle arrived cracked.");
    assert_eq!(c["category"], "product-quality", "{c}");
    assert_eq!(c["classified_by"]["step"], "plugin", "{c}");
    assert_eq!(c["classified_by"]["plugin"], "keyword-classifier", "{c}");
    let id = c["id"].as_str().unwrap();
    let classified = event(&events(&d, id), "complaint_classified").unwrap();
    assert_eq!(classified["data"]["by"]["step"], "plugin", "the plugin's decision is journaled: {classified}");
    // A rule, when one matches, wins over the plugin.
    std::fs::write(
        d.dir.path().join("crisis.toml"),
        std::fs::read_to_string(d.dir.path().join("crisis.toml")).unwrap()
            + "[[complaints.rule]]\ncategory = \"service-attitude\"\nkeywords = [\"kettle\"]\n",
    )
    .unwrap();
    d.restart();
    let c = add(&d, "C-002", "sms", "The kettle arrived cracked.");
    assert_eq!(
        (c["category"].as_str(), c["classified_by"]["step"].as_str()),
        (Some("service-attitude"), Some("rule")),
        "{c}"
    );
    // Turned off, nothing matched is `other`.
    let off = daemon("[complaints]\nclassifier = \"\"\n");
    let c = add(&off, "C-002", "email", "The kettle arrived cracked.");
    assert_eq!((c["category"].as_str(), c["classified_by"]["step"].as_str()), (Some("other"), Some("default")), "{c}");
}

#[test]
fn a_first_response_that_can_never_be_delivered_is_dead_lettered_on_the_complaint() {
    // Every delivery to the customers' target fails, and the target retries for a second only.
    let server = TestServer::start(500);
    let lo = format!("http://127.0.0.1:{}", server.port);
    let extra = format!(
        "[plugins.webhook-notify]\nallowed_hosts = [\"{lo}\"]\nallow_private = [\"{lo}\"]\n\
         [targets.superiors]\nplugin = \"log\"\n[targets.departments]\nplugin = \"log\"\n\
         [targets.oncall]\nplugin = \"log\"\n\
         [targets.customers]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"{lo}/hook\" }}\nretry_for = \"1s\"\n"
    );
    let d = Daemon::start("engine", &extra);
    let c = add(&d, "C-002", "email", "It broke.");
    let id = c["id"].as_str().unwrap().to_string();
    let dead = |evs: &[Value]| {
        evs.iter()
            .find(|e| {
                e["kind"] == "complaint_effect"
                    && e["data"]["ok"] == false
                    && e["data"]["detail"].as_str().unwrap_or("").starts_with("dead-lettered: ")
            })
            .cloned()
    };
    d.wait_for("the first response dead-lettered on the complaint", || dead(&events(&d, &id)).is_some());
    let ev = dead(&events(&d, &id)).unwrap();
    assert_eq!(ev["data"]["purpose"], "first-response", "{ev}");
    assert!(!server.requests().is_empty(), "the delivery was tried before it was set aside");
    assert!(delivered(&events(&d, &id)).is_none(), "nothing was delivered");
    assert!(d.ok(&["verify"]).contains("journal intact"));
}
