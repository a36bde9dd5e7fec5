//! Fixtures for `crisis plugin call`: the input each world gets when none is
//! given, and how a given partial input is merged over it.

use crate::plugin::World;
use serde_json::{Value, json};

/// A plausible input for each world, so a bare `plugin call` exercises the plugin.
pub(super) fn fixture(world: World) -> Value {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let incident = json!({
        "id": "inc-fixture-0001",
        "title": "Checkout payments failing",
        "playbook_id": "payment-outage",
        "severity": "sev2",
        "category": "service-process",
        "phase": "activate",
        "summary": "Card payments fail for about 30% of checkouts since 09:12.",
        "labels": [["service", "checkout"], ["region", "eu-west"]],
    });
    let mut v = json!({
        "invocation": { "incident_id": "inc-fixture-0001", "now_unix_ms": now },
        "config": {},
    });
    match world {
        World::Notifier => {
            v["notification"] = json!({
                "incident": incident,
                "target": "superiors",
                "subject": "[SEV2] Checkout payments failing",
                "body_text": "Card payments fail for about 30% of checkouts. Incident commander: on-call duty manager.",
                "params": [],
            });
        }
        World::Appeasement => {
            v["incident"] = incident;
            v["customer"] = json!({ "id": "cust-fixture-1", "segment": "affected", "tier": "vip", "locale": "en", "channel": "email" });
        }
        World::Drill => {
            v["incident"] = incident;
            v["op"] = json!("plan");
        }
        World::Classifier => {
            v["complaint"] = json!({
                "text": "I was charged twice for the same order and want a refund.",
                "channel": "email",
                "locale": "en",
            });
        }
    }
    v
}

/// Deep-merge `over` into `base`: objects key by key, anything else replaced.
pub(super) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}
