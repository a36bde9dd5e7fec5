//! `drill-sim`: a drill scenario of timed injects, and extra scoring.
//!
//! The scenario exercises what goes wrong in real incidents: the triggering
//! alert, bursts of customer complaints, a duplicate alert that must be
//! deduplicated, an owner who does not acknowledge (so escalation must
//! fire), a step that fails and is then completed, and a scripted outcome.
//!
//! Plan params (all optional): `owner_role` (default `commander`),
//! `failing_step` (default `dispatch`), `complaints` (base burst size,
//! default 20), `pace` (multiplier for all offsets, default 1.0; `0.5`
//! halves the timeline).
//!
//! Scoring reads the host's journal (a JSON array of events with a `kind`
//! or `type` field) and rates dedup and escalation handling. Each criterion
//! is named `ID: title`, ID being the host criterion it judges too (`dedup`,
//! `escalation`), so the host merges the two into one row. A criterion whose
//! condition never arose (no duplicate alert, an acknowledgement before any
//! escalation was due) has `max_points = 0`: not applicable, never a failure.
//!
//! The host times the `no-ack` and `ack` injects against the playbook's own
//! escalation ladder and the step failure against the step's deadline; the
//! offsets below are what the plugin proposes.

use crisis_plugin_sdk::drill::*;
use serde_json::{Value, json};

struct DrillSim;

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn kinds(journal: &[Value]) -> Vec<String> {
    journal
        .iter()
        .filter_map(|e| e.get("kind").or_else(|| e.get("type")).and_then(Value::as_str))
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

impl Drill for DrillSim {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "drill-sim".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Scenario injects (alert, complaints, duplicate alert, no-ack, step failure) and dedup/escalation scoring".into(),
            allowed_hosts: Vec::new(),
            config_keys: Vec::new(),
        }
    }

    fn plan(_ctx: Invocation, inc: Incident, params: Vec<(String, String)>) -> Result<Scenario, PluginError> {
        let owner = param(&params, "owner_role").unwrap_or("commander").to_string();
        let step = param(&params, "failing_step").unwrap_or("dispatch").to_string();
        let complaints: u32 = match param(&params, "complaints") {
            None => 20,
            Some(v) => v.parse().map_err(|_| {
                PluginError::Config(format!("param `complaints` must be a whole number, got `{v}`"))
            })?,
        };
        let pace: f64 = match param(&params, "pace") {
            None => 1.0,
            Some(v) => match v.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => p,
                _ => return Err(PluginError::Config(format!("param `pace` must be a number in (0, 100], got `{v}`"))),
            },
        };
        let at = |secs: u64| -> u64 { ((secs as f64) * 1000.0 * pace).round() as u64 };
        let labels: serde_json::Map<String, Value> =
            inc.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let alert = json!({ "title": inc.title, "labels": labels, "summary": inc.summary });
        let severe = inc.severity.rank() <= 2;

        let mut injects = vec![
            Inject { at_offset_ms: 0, kind: InjectKind::Alert, target: None, payload_json: alert.to_string() },
            Inject {
                at_offset_ms: at(30),
                kind: InjectKind::ComplaintBurst,
                target: None,
                payload_json: json!({ "count": complaints, "channel": "social", "category": inc.category.as_str() }).to_string(),
            },
            Inject {
                at_offset_ms: at(45),
                kind: InjectKind::DuplicateAlert,
                target: None,
                payload_json: alert.to_string(),
            },
        ];
        if severe {
            injects.push(Inject {
                at_offset_ms: at(60),
                kind: InjectKind::ComplaintBurst,
                target: None,
                payload_json: json!({ "count": complaints * 3, "channel": "phone", "category": inc.category.as_str() }).to_string(),
            });
        }
        injects.extend([
            Inject {
                at_offset_ms: at(90),
                kind: InjectKind::NoAck,
                target: Some(owner.clone()),
                payload_json: json!({ "reason": "owner does not answer the page" }).to_string(),
            },
            Inject {
                at_offset_ms: at(420),
                kind: InjectKind::Ack,
                target: Some("escalation".into()),
                payload_json: json!({ "note": "escalation target acknowledges" }).to_string(),
            },
            Inject {
                at_offset_ms: at(600),
                kind: InjectKind::StepFailure,
                target: Some(step.clone()),
                payload_json: json!({ "error": "first attempt failed: vendor unreachable" }).to_string(),
            },
            Inject {
                at_offset_ms: at(840),
                kind: InjectKind::StepDone,
                target: Some(step),
                payload_json: json!({ "note": "retried successfully" }).to_string(),
            },
            Inject {
                at_offset_ms: at(1200),
                kind: InjectKind::Outcome,
                target: None,
                payload_json: json!({
                    "cause": "simulated: upstream dependency failure",
                    "process": "alert, complaints, escalation after missed ack, step retried",
                    "aftermath": "follow up with affected customers; review paging of the owner role"
                })
                .to_string(),
            },
        ]);
        Ok(Scenario {
            title: format!("Drill: {}", inc.title),
            severity: inc.severity,
            injects,
        })
    }

    fn score(_ctx: Invocation, journal_json: String) -> Result<Vec<Criterion>, PluginError> {
        let journal: Vec<Value> = serde_json::from_str(&journal_json).map_err(|e| {
            PluginError::Config(format!("journal is not a JSON array of events: {e}"))
        })?;
        let k = kinds(&journal);
        Ok(vec![dedup(&journal, &k), escalation(&journal, &k)])
    }
}

/// Journal position (`seq`, else the index) of the first event whose kind contains `needle`.
fn first_seq(journal: &[Value], k: &[String], needle: &str) -> Option<i64> {
    k.iter().position(|s| s.contains(needle)).map(|i| journal[i].get("seq").and_then(Value::as_i64).unwrap_or(i as i64))
}

/// A criterion whose condition never arose: `max_points = 0` (the host shows `n/a`).
fn not_applicable(name: &str, note: &str) -> Criterion {
    Criterion { name: name.into(), points: 0, max_points: 0, note: note.into() }
}

/// `dedup`: a duplicate of the alert (attached with source `drill`) was folded
/// into the open incident. No duplicate reached the incident: n/a.
fn dedup(journal: &[Value], k: &[String]) -> Criterion {
    let name = "dedup: duplicate alert deduplicated";
    let opened = k.iter().filter(|s| s.contains("opened") || s.contains("incident.created")).count();
    let duplicates = k
        .iter()
        .zip(journal)
        // crisis journals a deduplicated trigger as `attached`; complaints attach too, with source `complaint`.
        .filter(|(s, e)| {
            s.contains("dedup") || (s.contains("attached") && e["data"]["source"].as_str().is_none_or(|src| src == "drill"))
        })
        .count();
    if opened > 1 {
        return Criterion {
            name: name.into(),
            points: 0,
            max_points: 10,
            note: format!("{opened} incidents were opened for one alert; check the playbook's dedup_key"),
        };
    }
    if duplicates == 0 {
        return not_applicable(name, "no duplicate alert reached the incident");
    }
    Criterion {
        name: name.into(),
        points: 10,
        max_points: 10,
        note: format!("{duplicates} duplicate alert(s) folded into the open incident"),
    }
}

/// `escalation`: judged only when the owner's acknowledgement was missed. An
/// acknowledgement before any escalation fired means none was due: n/a.
fn escalation(journal: &[Value], k: &[String]) -> Criterion {
    let name = "escalation: escalation after missed acknowledgement";
    let escalated = first_seq(journal, k, "escalat");
    let acked = first_seq(journal, k, "ack");
    let (points, note) = match (escalated, acked) {
        (None, Some(_)) => return not_applicable(name, "acknowledged before any escalation was due"),
        (Some(e), Some(a)) if e < a => (10, "the missed ack escalated and the escalation target acknowledged"),
        (Some(_), Some(_)) => return not_applicable(name, "acknowledged before any escalation fired"),
        (Some(_), None) => (5, "escalation fired but nobody acknowledged"),
        (None, None) => (0, "nobody acknowledged and nothing escalated; check `assign.escalate`"),
    };
    Criterion { name: name.into(), points, max_points: 10, note: note.into() }
}

crisis_plugin_sdk::export_drill!(DrillSim);
