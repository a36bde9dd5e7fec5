//! Chat-robot payloads: Feishu/Lark, DingTalk, WeCom and Microsoft Teams,
//! each in the message shape its provider documents for incoming webhooks.
//!
//! Every robot message carries the same facts: a title with the severity,
//! the text, the incident (with a link when `link` is configured) and the
//! command that acknowledges it. Signing (DingTalk, Feishu) happens in the
//! host with a secret the plugin never sees; see [`Signer`].

use crisis_plugin_sdk::encode;
use crisis_plugin_sdk::notifier::*;
use serde_json::{Value, json};

/// What every robot message says, computed once.
pub(crate) struct Facts {
    pub title: String,
    pub text: String,
    pub severity: Severity,
    pub incident_line: String,
    pub ack_command: String,
    pub link: Option<String>,
}

impl Facts {
    pub(crate) fn new(ctx: &Invocation, note: &Notification) -> Facts {
        let inc = &note.incident;
        let prefix = if matches!(ctx.mode, RunMode::Drill) { "[DRILL] " } else { "" };
        Facts {
            title: format!("{prefix}[{}] {}", inc.severity.as_str().to_uppercase(), note.subject),
            text: note.body_text.clone(),
            severity: inc.severity,
            incident_line: format!(
                "{} · {} · playbook {} · {} · phase {}",
                inc.id,
                inc.title,
                inc.playbook_id,
                inc.category.as_str(),
                inc.phase
            ),
            ack_command: format!("crisis ack {}", inc.id),
            // `link = "https://crisis.example.com/incidents/{incident}"`.
            link: config("link").filter(|l| !l.trim().is_empty()).map(|l| l.replace("{incident}", &inc.id)),
        }
    }
}

/// Colours per severity: sev1 red, sev2 orange, sev3 yellow, sev4 blue, sev5 grey.
fn hex_colour(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => "D13438",
        Severity::Sev2 => "F7630C",
        Severity::Sev3 => "FFB900",
        Severity::Sev4 => "0078D4",
        Severity::Sev5 => "8A8886",
    }
}

/// Feishu card header templates (the names its card builder documents).
fn feishu_template(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 => "red",
        Severity::Sev2 => "orange",
        Severity::Sev3 => "yellow",
        Severity::Sev4 => "blue",
        Severity::Sev5 => "grey",
    }
}

/// WeCom markdown has three documented font colours: `warning` (red),
/// `info` (green) and `comment` (grey).
fn wecom_colour(s: Severity) -> &'static str {
    match s {
        Severity::Sev1 | Severity::Sev2 => "warning",
        Severity::Sev3 => "info",
        Severity::Sev4 | Severity::Sev5 => "comment",
    }
}

/// A robot's signature, computed by the host: the timestamp the signature
/// covers and the base64 signature itself.
pub(crate) struct Signature {
    pub timestamp: String,
    pub sign: String,
}

/// Signs with the secret granted under a name (`sign_with` config).
pub(crate) struct Signer {
    pub secret_name: String,
}

impl Signer {
    /// From `sign_with`, when the target signs its requests.
    pub(crate) fn from_config() -> Option<Signer> {
        config("sign_with").filter(|s| !s.trim().is_empty()).map(|secret_name| Signer { secret_name })
    }

    /// DingTalk: timestamp in milliseconds; sign = base64(HMAC-SHA256(key =
    /// secret, message = "{timestamp}\n{secret}")), url-encoded in the query.
    pub(crate) fn dingtalk(&self, now_unix_ms: u64) -> Result<Signature, PluginError> {
        let timestamp = now_unix_ms.to_string();
        let mac = hmac_sha256(&self.secret_name, "{secret}", &format!("{timestamp}\n{{secret}}"))?;
        Ok(Signature { timestamp, sign: encode::base64(&mac) })
    }

    /// Feishu/Lark: timestamp in seconds; sign = base64(HMAC-SHA256(key =
    /// "{timestamp}\n{secret}", message = empty)), in the body.
    pub(crate) fn feishu(&self, now_unix_ms: u64) -> Result<Signature, PluginError> {
        let timestamp = (now_unix_ms / 1000).to_string();
        let mac = hmac_sha256(&self.secret_name, &format!("{timestamp}\n{{secret}}"), "")?;
        Ok(Signature { timestamp, sign: encode::base64(&mac) })
    }
}

/// Feishu/Lark custom bot: an interactive card (`msg_type: interactive`).
pub(crate) fn feishu(f: &Facts, sig: Option<Signature>) -> Value {
    let mut md = format!("{}\n\n**Incident** {}\n**Acknowledge** `{}`", f.text, f.incident_line, f.ack_command);
    if let Some(link) = &f.link {
        md.push_str(&format!("\n[Open the incident]({link})"));
    }
    let mut elements = vec![json!({ "tag": "div", "text": { "tag": "lark_md", "content": md } })];
    if let Some(link) = &f.link {
        elements.push(json!({ "tag": "action", "actions": [{
            "tag": "button",
            "text": { "tag": "plain_text", "content": "Open incident" },
            "url": link,
            "type": "primary",
        }]}));
    }
    let mut v = json!({
        "msg_type": "interactive",
        "card": {
            "config": { "wide_screen_mode": true },
            "header": {
                "title": { "tag": "plain_text", "content": f.title },
                "template": feishu_template(f.severity),
            },
            "elements": elements,
        }
    });
    if let Some(s) = sig {
        v["timestamp"] = json!(s.timestamp);
        v["sign"] = json!(s.sign);
    }
    v
}

/// DingTalk custom robot: `msgtype: markdown` with a title and text.
pub(crate) fn dingtalk(f: &Facts) -> Value {
    let mut text = format!(
        "### <font color=\"#{}\">{}</font>\n\n{}\n\n**Incident** {}\n\n**Acknowledge** `{}`",
        hex_colour(f.severity),
        f.title,
        f.text,
        f.incident_line,
        f.ack_command
    );
    if let Some(link) = &f.link {
        text.push_str(&format!("\n\n[Open the incident]({link})"));
    }
    json!({ "msgtype": "markdown", "markdown": { "title": f.title, "text": text } })
}

/// WeCom group robot: `msgtype: markdown` with `content`.
pub(crate) fn wecom(f: &Facts) -> Value {
    let mut content = format!(
        "## <font color=\"{}\">{}</font>\n{}\n>Incident: <font color=\"comment\">{}</font>\n>Acknowledge: `{}`",
        wecom_colour(f.severity),
        f.title,
        f.text,
        f.incident_line,
        f.ack_command
    );
    if let Some(link) = &f.link {
        content.push_str(&format!("\n[Open the incident]({link})"));
    }
    json!({ "msgtype": "markdown", "markdown": { "content": content } })
}

/// Microsoft Teams incoming webhook: a legacy actionable `MessageCard`.
pub(crate) fn teams(f: &Facts, inc: &Incident) -> Value {
    let mut v = json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": hex_colour(f.severity),
        "summary": f.title,
        "sections": [{
            "activityTitle": f.title,
            "activitySubtitle": f.incident_line,
            "text": f.text,
            "facts": [
                { "name": "Incident", "value": inc.id },
                { "name": "Severity", "value": inc.severity.as_str() },
                { "name": "Phase", "value": inc.phase },
                { "name": "Acknowledge", "value": f.ack_command },
            ],
            "markdown": true,
        }],
    });
    if let Some(link) = &f.link {
        v["potentialAction"] = json!([{
            "@type": "OpenUri",
            "name": "Open incident",
            "targets": [{ "os": "default", "uri": link }],
        }]);
    }
    v
}

/// The URL with DingTalk's `timestamp` and `sign` appended to its query.
pub(crate) fn dingtalk_url(url: &str, sig: &Signature) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timestamp={}&sign={}", sig.timestamp, encode::percent(&sig.sign))
}

/// Chat robots answer HTTP 200 with an error code in the body. Returns the
/// error for a non-zero code: rate limits are transient, the rest permanent.
pub(crate) fn body_error(format: &str, body: &[u8]) -> Option<PluginError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let (code, msg) = match format {
        "feishu" => {
            let code = v.get("code").or_else(|| v.get("StatusCode")).and_then(Value::as_i64)?;
            let msg = v.get("msg").or_else(|| v.get("StatusMessage")).and_then(Value::as_str);
            (code, msg.unwrap_or("").to_string())
        }
        "dingtalk" | "wecom" => {
            let code = v.get("errcode").and_then(Value::as_i64)?;
            (code, v.get("errmsg").and_then(Value::as_str).unwrap_or("").to_string())
        }
        _ => return None,
    };
    if code == 0 {
        return None;
    }
    // Feishu 11232 "frequency limited", DingTalk 130101 "send too fast" and
    // 410100 flow control, WeCom 45009 "api freq out of limit", -1 busy.
    let limited = matches!((format, code), ("feishu", 11232) | ("dingtalk", 130101 | 410100 | -1) | ("wecom", 45009 | -1));
    let m = format!("{format} robot answered code {code}: {}", msg.chars().take(200).collect::<String>());
    Some(if limited { PluginError::Transient(m) } else { PluginError::Permanent(m) })
}
