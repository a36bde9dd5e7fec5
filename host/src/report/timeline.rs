//! One line of text per journal event, for `crisis timeline` and reports.

use crate::incident::clock::fmt_span;
use crate::store::EventRecord;

/// A short human description of an event. Never includes contact details:
/// events only ever hold customer ids.
pub fn describe(e: &EventRecord) -> String {
    let d = &e.data;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    match e.kind.as_str() {
        "opened" => format!(
            "opened from {} by {} ({} {}, playbook {} @{}{})",
            s("source"),
            s("by"),
            s("severity"),
            s("category"),
            s("playbook_id"),
            &s("playbook_hash").get(..12).unwrap_or(""),
            if s("mode") == "drill" { ", DRILL" } else { "" }
        ),
        "attached" => format!("duplicate trigger from {} attached (same dedup key)", s("source")),
        "phase_entered" => format!("entered phase {}", s("phase")),
        "phase_completed" => format!("completed phase {}", s("phase")),
        "approved" => format!("{} approved by {}", s("what"), s("by")),
        "activated" => {
            let ch: Vec<String> = d["channels"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
            format!("plan activated ({}); channels opened: {}", s("by"), if ch.is_empty() { "none".into() } else { ch.join(", ") })
        }
        "role_assigned" => format!("{} is {} (by {})", s("person"), s("role"), s("by")),
        "acknowledged" => format!("acknowledged by {}", s("by")),
        "escalated" => {
            let people: Vec<String> = d["people"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
            format!("escalated to level {} ({}: {}), round {}", d["level"], s("to"), people.join(", "), d["round"])
        }
        "deadline_missed" => format!("DEADLINE MISSED: {}", s("what")),
        "step_ready" => format!("step {} ready", s("step")),
        "step_waiting" => format!("step {} {}", s("step"), s("reason")),
        "step_done" => format!(
            "step {} done by {}{}",
            s("step"),
            s("by"),
            d.get("note").and_then(|n| n.as_str()).map(|n| format!(": {n}")).unwrap_or_default()
        ),
        "step_skipped" => format!("step {} skipped: {}", s("step"), s("reason")),
        "step_failed" => format!("step {} FAILED: {}", s("step"), s("reason")),
        "note" => format!("{}: {}", s("by"), s("note")),
        "update_due" => "periodic update sent".to_string(),
        "stale" => format!("STALE: no activity for {}", fmt_span(d["idle_ms"].as_i64().unwrap_or(0))),
        "outcome_recorded" => format!("outcome report written by {}", s("by")),
        "resolved" => format!("resolved by {} ({})", s("by"), s("source")),
        "closed" => "closed".to_string(),
        "intent_recorded" => {
            let who = d.get("customer").and_then(|c| c.as_str()).map(|c| format!(" for customer {c}")).unwrap_or_default();
            format!("{} message {} queued to {}{who}", s("purpose"), s("invocation_id"), s("target"))
        }
        "effect_result" => format!(
            "{} message {} {}: {}",
            s("purpose"),
            s("invocation_id"),
            if d["ok"].as_bool() == Some(true) { "sent" } else { "FAILED" },
            s("detail")
        ),
        other => format!("{other} {d}"),
    }
}
