//! `webhook-notify`: POST a notification as JSON to a configured URL.
//!
//! Config keys (from the target's `config` or the plugin grant's `config`):
//! - `url` (required): where to POST, e.g. `https://hooks.slack.com/services/...`.
//! - `format`: `json` (default, a generic document), `slack` (a
//!   Slack-compatible `{"text": ..., "blocks": [...]}` payload), or a chat
//!   robot: `feishu` (Feishu/Lark interactive card), `dingtalk` and `wecom`
//!   (markdown messages), `teams` (an incoming-webhook MessageCard).
//! - `channel`: optional Slack channel override.
//! - `link`: incident URL for robot messages; `{incident}` becomes the id.
//! - `sign_with`: for `dingtalk` and `feishu` robots with signing on, the
//!   name of the signing secret granted in `sign_secrets`; the host computes
//!   the HMAC, so the secret never reaches this plugin.
//!
//! The invocation id is sent as `Idempotency-Key`, so a retried intent is
//! recognisable by providers that honour it. Credentials are never seen
//! here: the operator's grant makes the host inject them as headers.
//! Response mapping: 2xx ok, 408/429/5xx transient, other 4xx permanent.

use crisis_plugin_sdk::notifier::http::{self, HttpError};
use crisis_plugin_sdk::notifier::*;
use serde_json::json;

mod robots;

struct WebhookNotify;

fn generic_payload(ctx: &Invocation, note: &Notification) -> serde_json::Value {
    let inc = &note.incident;
    let labels: serde_json::Map<String, serde_json::Value> =
        inc.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let params: serde_json::Map<String, serde_json::Value> =
        note.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "kind": "crisis.notification",
        "version": 1,
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

fn slack_payload(ctx: &Invocation, note: &Notification) -> serde_json::Value {
    let inc = &note.incident;
    let drill = matches!(ctx.mode, RunMode::Drill);
    let prefix = if drill { "[DRILL] " } else { "" };
    let header = format!("{prefix}[{}] {}", inc.severity.as_str().to_uppercase(), note.subject);
    let mut v = json!({
        "text": format!("{header}\n{}", note.body_text),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": header } },
            { "type": "section", "text": { "type": "mrkdwn", "text": note.body_text } },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!(
                    "incident `{}` · playbook `{}` · {} · phase {}",
                    inc.id, inc.playbook_id, inc.category.as_str(), inc.phase) }
            ]}
        ]
    });
    if let Some(ch) = config("channel") {
        v["channel"] = json!(ch);
    }
    v
}

impl Notifier for WebhookNotify {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "webhook-notify".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "POST notifications as generic JSON, Slack, Feishu, DingTalk, WeCom or Teams payloads".into(),
            // The URL is operator configuration, so the plugin defers to the grant.
            allowed_hosts: vec!["*".into()],
            config_keys: ["url", "format", "channel", "link", "sign_with"].map(String::from).to_vec(),
        }
    }

    fn send(ctx: Invocation, note: Notification) -> Result<Receipt, PluginError> {
        let mut url = require_config("url")?;
        let format = config("format").unwrap_or_else(|| "json".into());
        let signer = robots::Signer::from_config();
        if signer.is_some() && !matches!(format.as_str(), "dingtalk" | "feishu") {
            return Err(PluginError::Config(format!(
                "config `sign_with` is set but format `{format}` is not signed: only `dingtalk` and `feishu` robots sign"
            )));
        }
        let facts = || robots::Facts::new(&ctx, &note);
        let payload = match format.as_str() {
            "json" => generic_payload(&ctx, &note),
            "slack" => slack_payload(&ctx, &note),
            "feishu" => {
                let sig = signer.as_ref().map(|s| s.feishu(ctx.now_unix_ms)).transpose()?;
                robots::feishu(&facts(), sig)
            }
            "dingtalk" => {
                if let Some(s) = &signer {
                    url = robots::dingtalk_url(&url, &s.dingtalk(ctx.now_unix_ms)?);
                }
                robots::dingtalk(&facts())
            }
            "wecom" => robots::wecom(&facts()),
            "teams" => robots::teams(&facts(), &note.incident),
            other => {
                return Err(PluginError::Config(format!(
                    "unknown format `{other}`: use `json`, `slack`, `feishu`, `dingtalk`, `wecom` or `teams`"
                )));
            }
        };
        let body = payload.to_string();
        let resp = http::post_json(
            &url,
            &[("idempotency-key", &ctx.invocation_id), ("user-agent", "crisis-webhook-notify/0.1")],
            &body,
        )
        .map_err(|e| match e {
            HttpError::InvalidUrl(m) => PluginError::Config(format!("config `url`: {m}")),
            HttpError::Denied(m) => PluginError::Denied(m),
            HttpError::Transport(m) => PluginError::Transient(m),
        })?;
        let snippet: String = String::from_utf8_lossy(&resp.body).chars().take(200).collect();
        if (200..=299).contains(&resp.status)
            && let Some(e) = robots::body_error(&format, &resp.body)
        {
            return Err(e);
        }
        match resp.status {
            200..=299 => Ok(Receipt {
                provider_id: resp.header("x-request-id").or_else(|| resp.header("x-message-id")),
                http_status: Some(resp.status),
                detail: format!("delivered as {format} ({} bytes)", body.len()),
            }),
            408 | 429 | 500..=599 => Err(PluginError::Transient(format!(
                "webhook answered {}: {snippet}",
                resp.status
            ))),
            _ => Err(PluginError::Permanent(format!("webhook answered {}: {snippet}", resp.status))),
        }
    }
}

crisis_plugin_sdk::export_notifier!(WebhookNotify);
