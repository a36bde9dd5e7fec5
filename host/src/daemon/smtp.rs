//! E-mail delivery for `plugin = "smtp"` targets, done by the host: a
//! notifier plugin cannot open sockets, so it could not speak SMTP.
//!
//! Rules:
//! - Addresses are looked up at the last moment (people in the roster,
//!   customers in the customer source) and leave this module only towards
//!   the relay; the journal and the log name recipients by roster or
//!   customer id. The relay's password and every address are scrubbed from
//!   every error text.
//! - The `Message-ID` is `<INVOCATION-ID@DOMAIN>`, so a retried intent is
//!   the same message to the relay and to the reader's mail client.
//! - A 5xx answer (or a message the relay can never take) is permanent;
//!   a 4xx answer, a timeout or a connection or TLS failure is transient and
//!   retried by the outbox.

use crate::config::smtp::{SmtpSettings, SmtpTls};
use crate::config::{Config, roster::Roster};
use crate::incident::effects::{EffectOutcome, IntentPayload};
use crate::plugin::Scrubber;
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use std::collections::BTreeSet;

/// The HTML part: the plain text, escaped, one paragraph per blank-line block.
const HTML: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif">
<h2>{{ subject }}</h2>
{% for p in paragraphs %}<p>{% for line in p %}{{ line }}{% if not loop.last %}<br>{% endif %}{% endfor %}</p>
{% endfor %}</body></html>
"#;

/// One recipient: who the journal names, and the address only the relay sees.
pub(crate) struct Recipient {
    /// Roster id of a person, or `customer ID`.
    pub(crate) who: String,
    /// The e-mail address.
    pub(crate) address: String,
}

/// The people a notice to an SMTP target goes to: the paged people, or the
/// target's `to` list (teams expanded), each with their roster e-mail.
pub(crate) fn people(p: &IntentPayload, settings: &SmtpSettings, roster: &Roster) -> Result<Vec<Recipient>, String> {
    let named: Vec<&String> =
        if p.recipients.is_empty() { settings.to.iter().collect() } else { p.recipients.iter().collect() };
    let mut ids = BTreeSet::new();
    for id in named {
        match roster.teams.get(id) {
            Some(members) => ids.extend(members.iter().cloned()),
            None => {
                ids.insert(id.clone());
            }
        }
    }
    if ids.is_empty() {
        return Err(format!(
            "target `{}` has no one to e-mail: give [targets.{}.smtp] to = [\"PERSON-OR-TEAM\"]",
            p.target, p.target
        ));
    }
    ids.into_iter()
        .map(|id| match roster.people.get(&id).and_then(|x| x.email.clone()).filter(|e| !e.trim().is_empty()) {
            Some(address) => Ok(Recipient { who: id, address }),
            None => {
                Err(format!("person `{id}` has no e-mail address: add email = \"...\" to [people.{id}] in the roster"))
            }
        })
        .collect()
}

/// The Message-ID of an intent's e-mail: the same for every try of it.
pub(crate) fn message_id(invocation_id: &str, domain: &str) -> String {
    let local: String = invocation_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' })
        .collect();
    format!("<{local}@{domain}>")
}

fn html(subject: &str, body: &str) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    // The `.html` name turns on HTML auto-escaping of every value.
    env.add_template("mail.html", HTML).map_err(|e| e.to_string())?;
    let paragraphs: Vec<Vec<&str>> =
        body.split("\n\n").map(|p| p.lines().collect::<Vec<_>>()).filter(|p: &Vec<&str>| !p.is_empty()).collect();
    env.get_template("mail.html")
        .and_then(|t| t.render(minijinja::context! { subject, paragraphs }))
        .map_err(|e| format!("cannot render the HTML part: {e}"))
}

/// What an error says, with its causes, for the journal (scrubbed by the caller).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}

fn transport(s: &SmtpSettings, password: Option<String>) -> Result<SmtpTransport, String> {
    let params = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("cannot read ca_file {}: {e}", ca.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|e| format!("TLS setup: {e}"))
    };
    let tls = match s.tls {
        SmtpTls::Starttls => Tls::Required(params()?),
        SmtpTls::Implicit => Tls::Wrapper(params()?),
        SmtpTls::None => Tls::None,
    };
    let mut b = SmtpTransport::builder_dangerous(s.host.clone())
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout))
        .hello_name(ClientId::Domain(s.domain.clone()));
    if let (Some(user), Some(pass)) = (&s.username, password) {
        b = b.credentials(Credentials::new(user.clone(), pass));
    }
    Ok(b.build())
}

/// Sends one e-mail for intent `id` through target `p.target`.
pub(crate) fn send(
    id: &str,
    p: &IntentPayload,
    config: &Config,
    settings: &SmtpSettings,
    subject: &str,
    body: &str,
    to: &[Recipient],
) -> EffectOutcome {
    let mut scrub = Scrubber::default();
    for r in to {
        scrub.add_contact(&r.address);
    }
    let password = match &settings.password_secret {
        None => None,
        Some(name) => match config.secrets.get(name).map(|s| s.read()) {
            Some(Ok(v)) => {
                scrub.add_secret(&v);
                Some(v)
            }
            Some(Err(e)) => {
                return EffectOutcome::failed(format!("target `{}`: secret `{name}`: {e}", p.target), false);
            }
            None => {
                return EffectOutcome::failed(format!("target `{}`: secret `{name}` is not declared", p.target), false);
            }
        },
    };
    let who = to.iter().map(|r| r.who.as_str()).collect::<Vec<_>>().join(", ");
    let mid = message_id(id, &settings.domain);
    let built = (|| -> Result<Message, String> {
        let from: Mailbox = settings.from.parse().map_err(|e| format!("`from`: {e}"))?;
        let mut b = Message::builder().from(from).subject(subject).message_id(Some(mid.clone()));
        if let Some(r) = &settings.reply_to {
            b = b.reply_to(r.parse().map_err(|e| format!("`reply_to`: {e}"))?);
        }
        for r in to {
            let mbox: Mailbox =
                r.address.trim().parse().map_err(|_| format!("the e-mail address of {} is not valid", r.who))?;
            b = b.to(mbox);
        }
        let html = html(subject, body)?;
        b.multipart(MultiPart::alternative_plain_html(body.to_string(), html)).map_err(|e| e.to_string())
    })();
    let message = match built {
        Ok(m) => m,
        Err(e) => return EffectOutcome::failed(scrub.scrub(&format!("e-mail to {who} not built: {e}")), false),
    };
    let via = format!("{}:{} ({})", settings.host, settings.port, settings.tls);
    let mailer = match transport(settings, password) {
        Ok(t) => t,
        Err(e) => return EffectOutcome::failed(scrub.scrub(&format!("smtp {via}: {e}")), true),
    };
    match mailer.send(&message) {
        Ok(_) => {
            tracing::info!(invocation_id = id, target = %p.target, to = %who, message_id = %mid, "e-mail sent via {via}");
            EffectOutcome::sent(format!("smtp: e-mail {mid} to {who} accepted by {via}"))
        }
        Err(e) => {
            let permanent = e.is_permanent() || e.is_client();
            let detail = scrub.scrub(&format!("smtp: e-mail {mid} to {who} via {via} failed: {}", chain(&e)));
            tracing::warn!(invocation_id = id, target = %p.target, permanent, "{detail}");
            EffectOutcome::failed(detail, !permanent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_is_the_invocation_id_and_stays_a_valid_msg_id() {
        assert_eq!(message_id("INC-7.3", "crisis.local"), "<INC-7.3@crisis.local>");
        assert_eq!(message_id("DRL m1/2", "mail.example.com"), "<DRL-m1-2@mail.example.com>");
    }

    #[test]
    fn the_html_part_escapes_the_text_and_keeps_its_paragraphs() {
        let h = html("[sev1] INC-1 <Checkout> & co", "line one\nline <two>\n\nsecond").unwrap();
        assert!(h.contains("<h2>[sev1] INC-1 &lt;Checkout&gt; &amp; co</h2>"), "{h}");
        assert!(h.contains("<p>line one<br>line &lt;two&gt;</p>"), "{h}");
        assert!(h.contains("<p>second</p>"), "{h}");
    }
}
