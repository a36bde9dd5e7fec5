//! `{{name}}`: a crisis drill simulator. `plan` turns the incident into a
//! scenario of timed injects; `score` reads the finished drill's journal
//! (a JSON array of events with a `kind`) and adds criteria to the host's
//! own score. No network.

use crisis_plugin_sdk::drill::*;
use serde_json::{Value, json};

struct Plugin;

impl Drill for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "alert, complaints, outcome; scores whether an outcome was recorded".into(),
            allowed_hosts: Vec::new(),
            config_keys: Vec::new(),
        }
    }

    fn plan(_ctx: Invocation, inc: Incident, _params: Vec<(String, String)>) -> Result<Scenario, PluginError> {
        let alert = json!({ "title": inc.title, "summary": inc.summary }).to_string();
        let injects = vec![
            Inject { at_offset_ms: 0, kind: InjectKind::Alert, target: None, payload_json: alert },
            Inject {
                at_offset_ms: 60_000,
                kind: InjectKind::ComplaintBurst,
                target: None,
                payload_json: json!({ "count": 10, "channel": "social" }).to_string(),
            },
            Inject {
                at_offset_ms: 600_000,
                kind: InjectKind::Outcome,
                target: None,
                payload_json: json!({ "cause": "simulated", "process": "drill", "aftermath": "review" }).to_string(),
            },
        ];
        Ok(Scenario { title: format!("Drill: {}", inc.title), severity: inc.severity, injects })
    }

    fn score(_ctx: Invocation, journal_json: String) -> Result<Vec<Criterion>, PluginError> {
        let journal: Vec<Value> = serde_json::from_str(&journal_json)
            .map_err(|e| PluginError::Config(format!("the journal is not a JSON array of events: {e}")))?;
        let kinds: Vec<&str> = journal.iter().filter_map(|e| e.get("kind").and_then(Value::as_str)).collect();
        let outcome = kinds.iter().any(|k| k.contains("outcome"));
        Ok(vec![Criterion {
            name: "outcome-recorded".into(),
            points: if outcome { 10 } else { 0 },
            max_points: 10,
            note: format!("{} journal events; outcome {}", kinds.len(), if outcome { "recorded" } else { "missing" }),
        }])
    }
}

crisis_plugin_sdk::export_drill!(Plugin);
