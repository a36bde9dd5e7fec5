//! `plugin = "smtp"` targets: e-mail delivered by the host over SMTP.
//!
//! A notifier plugin cannot open sockets (its only way out is HTTP through
//! the host), so e-mail is the host's job. Rules checked here: the password
//! comes only from `[secrets]`; a relay is spoken to over TLS (STARTTLS or
//! implicit) unless it is on this machine; every address is a valid mailbox.

use super::model::{SmtpDecl, Str};
use super::roster::Roster;
use crate::diag::{Diagnostic, Source};
use serde::Serialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The notifier name of host-delivered e-mail targets.
pub const SMTP: &str = "smtp";

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; refused if the relay does not offer it.
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: only for a relay on this machine.
    None,
}

impl std::fmt::Display for SmtpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Implicit => "implicit TLS",
            SmtpTls::None => "no TLS",
        })
    }
}

/// A checked SMTP target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SmtpSettings {
    /// Relay host name or IP address.
    pub host: String,
    /// Relay port (default 587 for STARTTLS, 465 for implicit TLS, 25 without TLS).
    pub port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// SMTP AUTH user, if the relay needs one.
    pub username: Option<String>,
    /// Name of the `[secrets]` entry holding the AUTH password.
    pub password_secret: Option<String>,
    /// The `From:` mailbox.
    pub from: String,
    /// The `Reply-To:` mailbox, if replies go elsewhere.
    pub reply_to: Option<String>,
    /// Extra CA certificate (PEM) trusted for the relay.
    pub ca_file: Option<PathBuf>,
    /// Roster ids (people or teams) that notices without recipients go to.
    pub to: Vec<String>,
    /// Message-ID domain and EHLO name.
    pub domain: String,
    /// Limit on one SMTP conversation.
    pub timeout: Duration,
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks `[targets.NAME.smtp]`; `secrets` are the declared secret names.
pub(crate) fn settings(
    name: &str,
    decl: &Spanned<SmtpDecl>,
    secrets: &BTreeMap<String, super::SecretRef>,
    base: &Path,
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) -> Option<SmtpSettings> {
    let d = decl.get_ref();
    let key = format!("targets.{name}.smtp");
    let n = diags.len();
    let tls = match d.tls.as_ref().map(|t| t.get_ref().as_str()) {
        None | Some("starttls") => SmtpTls::Starttls,
        Some("implicit") => SmtpTls::Implicit,
        Some("none") => SmtpTls::None,
        Some(other) => {
            let at = d.tls.as_ref().map(|t| t.span()).unwrap_or_default();
            diags.push(src.at(at, format!("`{key}.tls` is `{other}`: write \"starttls\", \"implicit\" or \"none\"")));
            SmtpTls::Starttls
        }
    };
    let host = d.host.get_ref().trim().to_string();
    if host.is_empty() {
        diags.push(
            src.at(d.host.span(), format!("`{key}.host` is empty: give the relay's host name, e.g. smtp.example.com")),
        );
    }
    if tls == SmtpTls::None && !is_loopback(&host) {
        let at = d.tls.as_ref().map(|t| t.span()).unwrap_or(d.host.span());
        diags.push(src.at(at, format!("`{key}.tls = \"none\"` would send messages and the password in clear to `{host}`: it is allowed only for a relay on this machine (localhost, 127.0.0.1, ::1); use tls = \"starttls\" or \"implicit\"")));
    }
    let default_port = match tls {
        SmtpTls::Starttls => 587,
        SmtpTls::Implicit => 465,
        SmtpTls::None => 25,
    };
    let port = match &d.port {
        None => default_port,
        Some(p) => u16::try_from(*p.get_ref()).ok().filter(|p| *p > 0).unwrap_or_else(|| {
            diags.push(
                src.at(p.span(), format!("`{key}.port` is {}: give a TCP port between 1 and 65535", p.get_ref())),
            );
            default_port
        }),
    };
    let password_secret = d.password.as_ref().and_then(|p| match p.get_ref().strip_prefix("secret:") {
        Some(s) if secrets.contains_key(s) => Some(s.to_string()),
        Some(s) => {
            diags.push(src.at(p.span(), format!("unknown secret `{s}`: declare [secrets.{s}] with env or file")));
            None
        }
        None => {
            diags.push(src.at(p.span(), format!("inline secret in `{key}.password`: write password = \"secret:NAME\" and declare [secrets.NAME] with env or file")));
            None
        }
    });
    match (&d.username, &d.password) {
        (Some(u), None) => diags
            .push(src.at(u.span(), format!("`{key}` has a username but no password: add password = \"secret:NAME\""))),
        (None, Some(p)) => {
            diags.push(src.at(p.span(), format!("`{key}` has a password but no username: add username = \"...\"")))
        }
        _ => {}
    }
    let mailbox = |m: &Str, what: &str, diags: &mut Vec<Diagnostic>| {
        if m.get_ref().parse::<lettre::message::Mailbox>().is_err() {
            diags.push(src.at(m.span(), format!("`{key}.{what}` is not a valid mailbox: write it like \"Crisis <crisis@example.com>\" or crisis@example.com")));
        }
        m.get_ref().clone()
    };
    let from = mailbox(&d.from, "from", diags);
    let reply_to = d.reply_to.as_ref().map(|r| mailbox(r, "reply_to", diags));
    let ca_file = d.ca_file.as_ref().map(|c| {
        let p = base.join(c.get_ref());
        if !p.is_file() {
            diags.push(
                src.at(c.span(), format!("`{key}.ca_file`: {} does not exist: give a PEM CA certificate", p.display())),
            );
        }
        p
    });
    let domain = d.domain.as_ref().map_or_else(|| "crisis.local".to_string(), |s| s.get_ref().clone());
    if !domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') || domain.is_empty() {
        let at = d.domain.as_ref().map(|s| s.span()).unwrap_or_default();
        diags.push(src.at(at, format!("`{key}.domain` is `{domain}`: write a host name like crisis.example.com")));
    }
    let timeout = match &d.timeout {
        None => Duration::from_secs(30),
        Some(t) => crate::playbook::types::parse_duration(t.get_ref()).unwrap_or_else(|e| {
            diags.push(src.at(t.span(), format!("`{key}.timeout`: {e}")));
            Duration::from_secs(30)
        }),
    };
    (diags.len() == n).then(|| SmtpSettings {
        host,
        port,
        tls,
        username: d.username.as_ref().map(|u| u.get_ref().clone()),
        password_secret,
        from,
        reply_to,
        ca_file,
        to: d.to.iter().map(|t| t.get_ref().clone()).collect(),
        domain,
        timeout,
    })
}

/// The `smtp` table a target needs exactly when its plugin is `smtp`.
pub(crate) fn check_presence(
    name: &str,
    plugin: &Str,
    decl: Option<&Spanned<SmtpDecl>>,
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) {
    match (plugin.get_ref() == SMTP, decl) {
        (true, None) => diags.push(src.at(
            plugin.span(),
            format!(
                "target `{name}` uses plugin \"smtp\" but has no [targets.{name}.smtp] table: add host, from and tls"
            ),
        )),
        (false, Some(d)) => diags.push(src.at(
            d.span(),
            format!("[targets.{name}.smtp] is only read when plugin = \"smtp\": remove it or set the plugin"),
        )),
        _ => {}
    }
}

/// Checks that every `to` entry of an SMTP target names a roster person or team.
pub(crate) fn check_recipients(
    targets: &BTreeMap<String, Spanned<super::model::TargetDecl>>,
    roster: &Roster,
    src: &Source,
    diags: &mut Vec<Diagnostic>,
) {
    for (name, t) in targets {
        for to in t.get_ref().smtp.iter().flat_map(|s| &s.get_ref().to) {
            let id = to.get_ref();
            if !roster.people.contains_key(id) && !roster.teams.contains_key(id) {
                diags.push(src.at(to.span(), format!("`targets.{name}.smtp.to` names `{id}`, which is neither a person nor a team in the roster: add [people.{id}] with an email, or fix the name")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_source;
    use super::*;

    fn load(smtp: &str) -> Result<super::super::Config, Vec<String>> {
        let text = format!(
            "[secrets.relay]\nenv = \"RELAY_PASSWORD\"\n[targets.mail]\nplugin = \"smtp\"\n[targets.mail.smtp]\n{smtp}\n"
        );
        load_source(Source::new("crisis.toml", text), None, Path::new("."))
            .map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn an_smtp_target_is_read_with_its_defaults() {
        let c = load("host = \"smtp.example.com\"\nfrom = \"Crisis <crisis@example.com>\"\nusername = \"crisis\"\npassword = \"secret:relay\"").unwrap();
        let s = c.targets["mail"].smtp.clone().unwrap();
        assert_eq!((s.port, s.tls, s.domain.as_str()), (587, SmtpTls::Starttls, "crisis.local"));
        assert_eq!(s.password_secret.as_deref(), Some("relay"));
        let c = load("host = \"smtp.example.com\"\nfrom = \"crisis@example.com\"\ntls = \"implicit\"").unwrap();
        assert_eq!(c.targets["mail"].smtp.as_ref().unwrap().port, 465);
    }

    #[test]
    fn plain_smtp_is_refused_off_this_machine() {
        let m = load("host = \"smtp.example.com\"\nfrom = \"crisis@example.com\"\ntls = \"none\"").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:8:7: `targets.mail.smtp.tls = \"none\"` would send messages and the password in clear to `smtp.example.com`"), "{m:?}");
        assert!(load("host = \"127.0.0.1\"\nport = 2525\nfrom = \"crisis@example.com\"\ntls = \"none\"").is_ok());
        assert!(load("host = \"localhost\"\nfrom = \"crisis@example.com\"\ntls = \"none\"").is_ok());
    }

    #[test]
    fn bad_smtp_settings_say_what_and_how() {
        let m = load(
            "host = \"smtp.example.com\"\nfrom = \"crisis@example.com\"\nusername = \"u\"\npassword = \"hunter2\"",
        )
        .unwrap_err();
        assert!(m.iter().any(|m| m.contains("inline secret in `targets.mail.smtp.password`")), "{m:?}");
        assert!(m.iter().all(|m| !m.contains("hunter2")), "{m:?}");
        let m = load("host = \"smtp.example.com\"\nfrom = \"not a mailbox\"").unwrap_err();
        assert!(m[0].contains("`targets.mail.smtp.from` is not a valid mailbox"), "{m:?}");
        let m = load("host = \"smtp.example.com\"\nfrom = \"a@example.com\"\ntls = \"ssl\"").unwrap_err();
        assert!(m[0].contains("write \"starttls\", \"implicit\" or \"none\""), "{m:?}");
        let m = load("host = \"smtp.example.com\"\nfrom = \"a@example.com\"\nport = 70000").unwrap_err();
        assert!(m[0].contains("between 1 and 65535"), "{m:?}");
        let m = load("host = \"smtp.example.com\"\nfrom = \"a@example.com\"\nusername = \"u\"").unwrap_err();
        assert!(m[0].contains("has a username but no password"), "{m:?}");
        let text = "[targets.mail]\nplugin = \"smtp\"\n";
        let m = load_source(Source::new("crisis.toml", text.to_string()), None, Path::new(".")).unwrap_err();
        assert!(m[0].to_string().contains("has no [targets.mail.smtp] table"), "{m:?}");
    }
}
