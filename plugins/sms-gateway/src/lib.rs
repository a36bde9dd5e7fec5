//! `sms-gateway`: text messages and voice calls through a Twilio-compatible
//! REST API.
//!
//! - SMS: `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`
//!   with the form fields `To`, `From` and `Body`.
//! - Voice: `POST {base_url}/2010-04-01/Accounts/{account_sid}/Calls.json`
//!   with `To`, `From` and `Twiml=<Response><Say>…</Say></Response>`, the
//!   spoken text XML-escaped.
//!
//! Config keys (target `config` over the grant's `config`):
//! - `account_sid` (required): the account the paths name.
//! - `from` (required): the sending number (E.164), registered with the provider.
//! - `to` (required, normally per target): the recipient's number (E.164).
//! - `channel`: `sms` (default), `voice`, or `auto`: a voice call for
//!   sev1 pages and escalations, a text message for everything else.
//! - `base_url`: default `https://api.twilio.com`; set it for a compatible provider.
//! - `voice_language`: optional `language` of `<Say>`, e.g. `en-US`.
//!
//! Credentials are never seen here: the operator's grant injects
//! `Authorization: Basic base64(account_sid:auth_token)` (`inject` with
//! `basic_user`). The invocation id is sent as `I-Twilio-Idempotency-Token`,
//! so a retried intent is not sent twice. Response mapping: 2xx ok (the
//! message or call `sid` is the provider id), 429 and 5xx transient, other
//! 4xx permanent with the provider's `code` and `message`. The recipient's
//! number never appears in what this plugin returns or logs.

use crisis_plugin_sdk::encode;
use crisis_plugin_sdk::notifier::http::{self, HttpError};
use crisis_plugin_sdk::notifier::*;

struct SmsGateway;

const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Twilio's limit for a message body, in characters.
const MAX_SMS_CHARS: usize = 1600;
/// Twilio's limit for the `Twiml` parameter, in characters.
const MAX_TWIML_CHARS: usize = 4000;

/// How the recipient is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Sms,
    Voice,
}

impl Channel {
    fn resource(self) -> &'static str {
        match self {
            Channel::Sms => "Messages.json",
            Channel::Voice => "Calls.json",
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

fn param<'a>(note: &'a Notification, key: &str) -> Option<&'a str> {
    note.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The channel for this call from `channel`: `auto` calls for sev1 pages
/// and escalations, because a text at night is missed and a ringing phone
/// is not.
fn channel(note: &Notification) -> Result<Channel, PluginError> {
    match config("channel").as_deref().map(str::trim).unwrap_or("sms") {
        "sms" | "" => Ok(Channel::Sms),
        "voice" => Ok(Channel::Voice),
        "auto" => {
            let paging = matches!(param(note, "purpose"), Some("page" | "escalate"));
            Ok(if paging && note.incident.severity == Severity::Sev1 { Channel::Voice } else { Channel::Sms })
        }
        other => Err(PluginError::Config(format!("unknown channel `{other}`: use `sms`, `voice` or `auto`"))),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn drill_prefix(ctx: &Invocation) -> &'static str {
    if matches!(ctx.mode, RunMode::Drill) { "[DRILL] " } else { "" }
}

/// The text message: severity, subject, body and the acknowledge command.
fn sms_body(ctx: &Invocation, note: &Notification) -> String {
    let inc = &note.incident;
    let ack = format!("\nAck: crisis ack {}", inc.id);
    let head = format!("{}[{}] {}\n{}", drill_prefix(ctx), inc.severity.as_str().to_uppercase(), note.subject, note.body_text);
    // The acknowledge command always survives truncation.
    format!("{}{ack}", truncate(&head, MAX_SMS_CHARS - ack.chars().count()))
}

/// The TwiML of a voice call: the page said twice, XML-escaped.
fn twiml(ctx: &Invocation, note: &Notification) -> String {
    let inc = &note.incident;
    let drill = if matches!(ctx.mode, RunMode::Drill) { "This is a drill. " } else { "" };
    let sev = inc.severity.rank();
    let say = |text: &str| {
        let lang = config("voice_language").filter(|l| !l.trim().is_empty());
        let attr = lang.map(|l| format!(" language=\"{}\"", encode::xml_text(&l))).unwrap_or_default();
        format!("<Say{attr}>{}</Say>", encode::xml_text(text))
    };
    // Room for the markup around the two `<Say>`s.
    let spoken = truncate(
        &format!(
            "{drill}Crisis page, severity {sev}. {}. {} To acknowledge, run crisis ack {}.",
            note.subject, note.body_text, inc.id
        ),
        MAX_TWIML_CHARS / 2 - 200,
    );
    format!("<Response>{}<Pause length=\"1\"/>{}</Response>", say(&spoken), say(&spoken))
}

/// The provider's error text, with the recipient's number taken out.
fn provider_message(body: &[u8], to: &str) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let code = v.get("code").and_then(|c| c.as_i64()).map(|c| format!("code {c}: ")).unwrap_or_default();
            let msg = v.get("message").and_then(|m| m.as_str()).unwrap_or("");
            format!("{code}{msg}")
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = if to.is_empty() { text } else { text.replace(to, "<recipient>") };
    text.chars().take(300).collect()
}

impl Notifier for SmsGateway {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "sms-gateway".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Text messages and voice calls through a Twilio-compatible API".into(),
            // The provider is operator configuration (`base_url`), so the plugin defers to the grant.
            allowed_hosts: vec!["*".into()],
            config_keys: ["account_sid", "from", "to", "channel", "base_url", "voice_language"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn send(ctx: Invocation, note: Notification) -> Result<Receipt, PluginError> {
        let sid = require_config("account_sid")?;
        let from = require_config("from")?;
        let to = require_config("to")?;
        let ch = channel(&note)?;
        if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(PluginError::Config(
                "config `account_sid` must be letters and digits only (e.g. AC followed by 32 hex digits)".into(),
            ));
        }
        let base = config("base_url").filter(|b| !b.trim().is_empty()).unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let url = format!("{}/2010-04-01/Accounts/{sid}/{}", base.trim_end_matches('/'), ch.resource());
        let content = match ch {
            Channel::Sms => ("Body", sms_body(&ctx, &note)),
            Channel::Voice => ("Twiml", twiml(&ctx, &note)),
        };
        let form = encode::form(&[("To", &to), ("From", &from), (content.0, &content.1)]);
        let resp = http::request(
            "POST",
            &url,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "application/json"),
                ("i-twilio-idempotency-token", &ctx.invocation_id),
                ("user-agent", "crisis-sms-gateway/0.1"),
            ],
            form.as_bytes(),
        )
        .map_err(|e| match e {
            HttpError::InvalidUrl(m) => PluginError::Config(format!("config `base_url`: {m}")),
            HttpError::Denied(m) => PluginError::Denied(m),
            HttpError::Transport(m) => PluginError::Transient(m),
        })?;
        let what = ch.as_str();
        match resp.status {
            200..=299 => {
                let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
                let status = v.get("status").and_then(|s| s.as_str()).unwrap_or("accepted");
                Ok(Receipt {
                    provider_id: v.get("sid").and_then(|s| s.as_str()).map(String::from),
                    http_status: Some(resp.status),
                    detail: format!("{what} {status}"),
                })
            }
            429 | 500..=599 => Err(PluginError::Transient(format!(
                "{what}: provider answered {}: {}",
                resp.status,
                provider_message(&resp.body, &to)
            ))),
            s => Err(PluginError::Permanent(format!(
                "{what}: provider answered {s}: {}",
                provider_message(&resp.body, &to)
            ))),
        }
    }
}

crisis_plugin_sdk::export_notifier!(SmsGateway);
