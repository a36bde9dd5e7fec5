//! `{{name}}`: a crisis notifier that POSTs each notification as one JSON
//! document to the configured `url`, with the invocation id as
//! Idempotency-Key. Credentials never reach the plugin: the operator's grant
//! makes the host inject them as headers.
//!
//! Errors: a refused request is `denied`, a transport failure or a
//! 408/429/5xx answer is `transient` (retried), any other 4xx is `permanent`,
//! a missing or bad `url` is `config`.

use crisis_plugin_sdk::notifier::http::{self, HttpError};
use crisis_plugin_sdk::notifier::*;
use serde_json::json;

const NAME: &str = "{{name}}";

struct Plugin;

/// The generic `crisis.notification` document.
fn document(ctx: &Invocation, note: &Notification) -> serde_json::Value {
    let inc = &note.incident;
    let labels: serde_json::Map<String, serde_json::Value> =
        inc.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let params: serde_json::Map<String, serde_json::Value> =
        note.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "kind": "crisis.notification",
        "version": 1,
        "source": NAME,
        "invocation_id": ctx.invocation_id,
        "mode": match ctx.mode { RunMode::Live => "live", RunMode::Drill => "drill" },
        "sent_at_unix_ms": ctx.now_unix_ms,
        "target": note.target,
        "subject": note.subject,
        "text": note.body_text,
        "incident": {
            "id": inc.id,
            "title": inc.title,
            "playbook": inc.playbook_id,
            "severity": inc.severity.as_str(),
            "category": inc.category.as_str(),
            "phase": inc.phase,
            "summary": inc.summary,
            "labels": labels,
        },
        "params": params,
    })
}

impl Notifier for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "POST notifications as JSON to a configured URL".into(),
            // The URL is operator configuration: the effective allow-list is `*` ∩ the operator's grant.
            allowed_hosts: vec!["*".into()],
            config_keys: vec!["url".into()],
        }
    }

    fn send(ctx: Invocation, note: Notification) -> Result<Receipt, PluginError> {
        let url = require_config("url")?;
        let body = document(&ctx, &note).to_string();
        let agent = format!("crisis-{NAME}/{}", env!("CARGO_PKG_VERSION"));
        let resp = http::post_json(&url, &[("idempotency-key", &ctx.invocation_id), ("user-agent", &agent)], &body)
            .map_err(|e| match e {
                HttpError::InvalidUrl(m) => PluginError::Config(format!("config `url`: {m}")),
                HttpError::Denied(m) => PluginError::Denied(m),
                HttpError::Transport(m) => PluginError::Transient(m),
            })?;
        let snippet: String = String::from_utf8_lossy(&resp.body).chars().take(200).collect();
        match resp.status {
            200..=299 => {
                log(Level::Info, &format!("delivered {} bytes, upstream answered {}", body.len(), resp.status));
                Ok(Receipt {
                    provider_id: resp.header("x-request-id").or_else(|| resp.header("x-message-id")),
                    http_status: Some(resp.status),
                    detail: format!("delivered as json ({} bytes)", body.len()),
                })
            }
            408 | 429 | 500..=599 => Err(PluginError::Transient(format!("upstream answered {}: {snippet}", resp.status))),
            _ => Err(PluginError::Permanent(format!("upstream answered {}: {snippet}", resp.status))),
        }
    }
}

crisis_plugin_sdk::export_notifier!(Plugin);
