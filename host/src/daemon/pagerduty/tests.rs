use super::*;
use serde_json::json;

const KEY: &str = "crisis_0011aabb_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The trigger of PagerDuty's Events API v2 documentation, with a crisis key.
fn documented() -> Value {
    json!({
        "payload": {
            "summary": "Example alert on host1.example.com",
            "timestamp": "2015-07-17T08:42:58.315+0000",
            "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
            "severity": "info",
            "component": "postgres",
            "group": "prod-datapipe",
            "class": "deploy",
            "custom_details": { "ping time": "1500ms", "load avg": 0.75 }
        },
        "routing_key": KEY,
        "dedup_key": "samplekeyhere",
        "images": [{ "src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png", "href": "https://example.com/", "alt": "Example text" }],
        "links": [{ "href": "https://example.com/", "text": "Link text" }],
        "event_action": "trigger",
        "client": "Example Monitoring Client",
        "client_url": "https://monitoring.example.com"
    })
}

#[test]
fn the_documented_trigger_is_read_whole() {
    let ev = parse(&documented()).unwrap();
    assert_eq!(
        (ev.action, ev.dedup_key.as_deref(), ev.routing_key.as_str()),
        (PdAction::Trigger, Some("samplekeyhere"), KEY)
    );
    let p = ev.payload.clone().unwrap();
    assert_eq!(p.severity, PdSeverity::Info);
    assert_eq!(p.custom_details["ping time"], "1500ms");
    assert_eq!(p.custom_details["load avg"], "0.75");
    let l = labels(&ev, &p);
    assert_eq!(l["component"], "postgres");
    assert_eq!(l["group"], "prod-datapipe");
    assert_eq!(l["class"], "deploy");
    assert_eq!(l["source"], p.source);
    assert_eq!(l["link.1"], "Link text <https://example.com/>");
    assert_eq!(l["custom.ping time"], "1500ms");
    assert_eq!(l["client"], "Example Monitoring Client");
}

#[test]
fn every_problem_is_named() {
    let errs = parse(&json!({ "event_action": "page", "payload": {} })).unwrap_err();
    assert!(errs.iter().any(|e| e.contains("'routing_key' is missing")), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("'event_action' is `page`")), "{errs:?}");
    let mut ev = documented();
    ev["payload"] = json!({ "severity": "fatal" });
    let errs = parse(&ev).unwrap_err();
    for want in ["'payload.summary' is missing", "'payload.source' is missing", "unknown PagerDuty severity `fatal`"] {
        assert!(errs.iter().any(|e| e.contains(want)), "{want}: {errs:?}");
    }
    assert_eq!(errs.len(), 3, "{errs:?}");
    let mut ev = documented();
    ev["payload"]["summary"] = json!("x".repeat(1025));
    assert_eq!(parse(&ev).unwrap_err(), ["'payload.summary' is 1025 characters: the limit is 1024"]);
    let mut ev = documented();
    ev["payload"]["timestamp"] = json!("yesterday");
    assert!(parse(&ev).unwrap_err()[0].contains("'payload.timestamp' is `yesterday`"));
    let ack = json!({ "routing_key": KEY, "event_action": "acknowledge" });
    assert!(parse(&ack).unwrap_err()[0].contains("'dedup_key' is required"));
    assert!(parse(&json!([1])).unwrap_err()[0].contains("JSON object"));
    // Acknowledge and resolve need no payload.
    let ok = parse(&json!({ "routing_key": KEY, "event_action": "resolve", "dedup_key": "k" })).unwrap();
    assert_eq!((ok.action, ok.payload), (PdAction::Resolve, None));
}

#[test]
fn the_routing_key_and_contact_details_are_withheld_from_everything_journaled() {
    let mut ev = documented();
    ev["payload"]["summary"] = json!(format!("call +15550100 or bob@example.com; key {KEY}"));
    ev["payload"]["custom_details"] = json!({ "phone": "555-0100", "note": format!("echo {KEY}"), "api_token": "t0p", "owner": "mailto:ann@example.org" });
    ev["event_action"] = json!(format!("x{KEY}"));
    let errs = parse(&ev).unwrap_err();
    assert!(errs.iter().all(|e| !e.contains(KEY)), "{errs:?}");
    ev["event_action"] = json!("trigger");
    let ev = parse(&ev).unwrap();
    let p = ev.payload.clone().unwrap();
    let journaled = format!("{:?} {:?}", p, labels(&ev, &p));
    assert!(!journaled.contains(KEY), "{journaled}");
    assert!(!journaled.contains("bob@example.com") && !journaled.contains("ann@example.org"), "{journaled}");
    assert!(
        !journaled.contains("555-0100") && !journaled.contains("5550100") && !journaled.contains("t0p"),
        "{journaled}"
    );
    assert_eq!(p.custom_details["phone"], CONTACT_WITHHELD);
    assert_eq!(p.custom_details["api_token"], SECRET_WITHHELD);
    assert_eq!(p.custom_details["note"], format!("echo {SECRET_WITHHELD}"));
    assert_eq!(p.summary, format!("call {CONTACT_WITHHELD} or {CONTACT_WITHHELD} key {SECRET_WITHHELD}"));
    // Ordinary words, hosts, versions and times stay.
    for word in ["host1.example.com", "2015-07-17T08:42:58.315+0000", "v1.2.3", "1500ms", "10.0.0.1", "+5"] {
        assert!(!is_contact(word), "{word}");
    }
    for word in ["bob@example.com", "<bob@example.com>", "+15550100", "tel:+44-20-7946-0958"] {
        assert!(is_contact(word), "{word}");
    }
}

#[test]
fn generated_keys_look_like_pagerdutys() {
    let (a, b) = (generated_key(), generated_key());
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}
