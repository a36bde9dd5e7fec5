//! The `crisis.toml` and roster file formats, as written by operators.

use crate::diag::{Diagnostic, Source};
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

pub(crate) type Str = Spanned<String>;

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct ConfigFile {
    /// Where the journal, token and caches live. Restart required to change.
    pub state_dir: Option<Str>,
    /// API listen address. Restart required to change.
    pub listen: Option<Str>,
    pub playbooks: Option<Str>,
    pub roster: Option<Str>,
    pub customers: Option<Str>,
    /// Extra Wasm plugins (hot-reloaded).
    pub plugin_dir: Option<Str>,
    /// How long a crashing plugin version's first quarantine lasts.
    pub plugin_quarantine_base: Option<Str>,
    #[serde(default)]
    pub targets: BTreeMap<String, Spanned<TargetDecl>>,
    #[serde(default)]
    pub plugins: BTreeMap<String, Spanned<PluginDecl>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Spanned<SecretDecl>>,
    pub limits: Option<LimitsDecl>,
    pub drills: Option<DrillsDecl>,
    /// How long side effects already running may finish after SIGTERM.
    pub shutdown_grace: Option<Str>,
    /// `secret:NAME`: the bearer token non-loopback peers must send to read
    /// `/metrics`, `/healthz` and `/readyz`. Restart required to change.
    pub metrics_token: Option<Str>,
    /// `secret:NAME`: the journal's chain key (64 hex characters) instead of
    /// `state_dir/journal.key`. Restart required to change.
    pub journal_key: Option<Str>,
    /// HTTPS for the API; required for a non-loopback `listen` unless
    /// `insecure_listen` is set. Restart required to change.
    pub tls: Option<TlsDecl>,
    /// Accept a non-loopback `listen` without TLS (warned at every start).
    pub insecure_listen: Option<bool>,
    /// `[store]`: where the journal lives; absent means SQLite in `state_dir`.
    /// Restart required to change.
    pub store: Option<StoreDecl>,
    /// `[intake]`: how third-party alert formats map onto playbooks.
    pub intake: Option<super::pagerduty::IntakeDecl>,
    /// `[status_page]`: the public status page (off unless `listen` is set).
    pub status_page: Option<StatusPageDecl>,
    /// `[complaints]` and its `[[complaints.rule]]` classification rules.
    pub complaints: Option<super::complaints::ComplaintsDecl>,
    /// `[budgets.channel.NAME]`: send budgets per customer channel. Not an
    /// `Option`: inside one, the spans of its tables would be lost.
    #[serde(default)]
    pub budgets: BudgetsDecl,
}

/// `[store]`: the journal database.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StoreDecl {
    /// `secret:NAME`: a PostgreSQL connection URL (it holds a password, so
    /// it is never written inline).
    pub url: Option<Str>,
    /// How long a node's claim on shared work lasts without renewal (`10s`).
    pub lease: Option<Str>,
}

/// `[tls]`: the daemon's certificate and key, and the CA the CLI trusts.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TlsDecl {
    /// PEM certificate chain the daemon serves.
    pub cert: Str,
    /// PEM private key of the certificate.
    pub key: Str,
    /// PEM CA certificate the CLI trusts for this daemon (for a self-signed
    /// or private-CA certificate; the CLI trusts public roots otherwise).
    pub ca: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TargetDecl {
    /// `log` (journal + tracing only) or a notifier plugin name.
    pub plugin: Str,
    /// Whether drills may notify this target for real (participants, not customers).
    #[serde(default)]
    pub drill_safe: bool,
    #[serde(default)]
    pub config: BTreeMap<String, Str>,
    /// Calls to this target (per channel for customer messages) run at once.
    pub concurrency: Option<u32>,
    /// Consecutive failures that open the target's circuit.
    pub breaker_failures: Option<u32>,
    /// How long an open circuit waits before one probe call.
    pub breaker_cooldown: Option<Str>,
    /// How long a transient failure keeps being retried before it is dead-lettered.
    pub retry_for: Option<Str>,
    /// Storm control: fold notices past `after` within `within` into one digest.
    pub digest: Option<Spanned<DigestDecl>>,
    /// Send budget: at most this many messages per window, e.g. `100/min`.
    pub rate: Option<Str>,
    /// Send budget: at most this many messages per UTC day.
    pub daily: Option<Spanned<i64>>,
    /// `[targets.X.smtp]`: the relay of a `plugin = "smtp"` target.
    pub smtp: Option<Spanned<SmtpDecl>>,
}

/// `[targets.X.smtp]` as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SmtpDecl {
    pub host: Str,
    pub port: Option<Spanned<i64>>,
    /// `starttls` (default), `implicit` or `none` (loopback relays only).
    pub tls: Option<Str>,
    pub username: Option<Str>,
    /// `secret:NAME`.
    pub password: Option<Str>,
    pub from: Str,
    pub reply_to: Option<Str>,
    /// Extra PEM CA certificate to trust (a private relay or a test server).
    pub ca_file: Option<Str>,
    /// Roster people or teams that notices to this target go to (pages go to the paged people).
    #[serde(default)]
    pub to: Vec<Str>,
    /// Right-hand side of Message-IDs and the EHLO name (default `crisis.local`).
    pub domain: Option<Str>,
    /// How long one SMTP conversation may take (default 30s).
    pub timeout: Option<Str>,
}

/// `digest = { after = 5, within = "30s" }` on a target, as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DigestDecl {
    /// Notices sent one by one per window before the rest are folded.
    pub after: Option<Spanned<i64>>,
    /// How long a window lasts from its first notice.
    pub within: Option<Str>,
}

/// A target's storm-control rule: in a window of `within` from its first
/// notice, the first `after` foldable notices go out one by one and the rest
/// are folded into one digest sent when the window ends.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct DigestRule {
    /// Notices sent one by one per window.
    pub after: u32,
    /// Length of a window.
    pub within: Duration,
}

/// The shortest and longest digest window.
const WITHIN_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));

impl DigestDecl {
    /// The rule this declaration sets for target `name`, or diagnostics that
    /// say which key is wrong and how to write it.
    pub(crate) fn rule(
        &self,
        name: &str,
        span: Range<usize>,
        src: &Source,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<DigestRule> {
        let key = format!("targets.{name}.digest");
        let after = match &self.after {
            None => {
                diags.push(src.at(span.clone(), format!("`{key}` needs `after`: how many notices per window go out one by one, e.g. digest = {{ after = 5, within = \"30s\" }}")));
                None
            }
            Some(a) if *a.get_ref() < 1 || *a.get_ref() > i64::from(u32::MAX) => {
                diags.push(src.at(a.span(), format!("`{key}.after` is {}: it must be at least 1 (the notices sent one by one before the rest are folded)", a.get_ref())));
                None
            }
            Some(a) => u32::try_from(*a.get_ref()).ok(),
        };
        let within = match &self.within {
            None => {
                diags.push(src.at(
                    span,
                    format!(
                        "`{key}` needs `within`: how long a window lasts, between 1s and 1h, e.g. within = \"30s\""
                    ),
                ));
                None
            }
            Some(w) => match crate::playbook::types::parse_duration(w.get_ref()) {
                Err(e) => {
                    diags.push(src.at(w.span(), format!("`{key}.within`: {e}")));
                    None
                }
                Ok(d) if d < WITHIN_RANGE.0 || d > WITHIN_RANGE.1 => {
                    diags.push(src.at(
                        w.span(),
                        format!("`{key}.within` is `{}`: a digest window lasts between 1s and 1h", w.get_ref()),
                    ));
                    None
                }
                Ok(d) => Some(d),
            },
        };
        Some(DigestRule { after: after?, within: within? })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InjectDecl {
    pub host: Str,
    pub header: Str,
    pub secret: Str,
    /// Text put before the secret in the header value, e.g. `Bearer `.
    pub prefix: Option<String>,
    /// HTTP Basic user: the header becomes `Basic base64(user:secret)`.
    pub basic_user: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PluginDecl {
    /// Component file, for plugins that are not built in.
    pub file: Option<Str>,
    pub world: Option<Str>,
    #[serde(default)]
    pub allowed_hosts: Vec<Str>,
    #[serde(default)]
    pub allow_private: Vec<Str>,
    #[serde(default)]
    pub drill_allow: Vec<Str>,
    #[serde(default)]
    pub inject: Vec<InjectDecl>,
    /// `[secrets]` names the plugin may sign with through `host.hmac-sha256`.
    #[serde(default)]
    pub sign_secrets: Vec<Str>,
    #[serde(default)]
    pub config: BTreeMap<String, Str>,
    pub timeout: Option<Str>,
    pub memory_mb: Option<u32>,
    /// Reuse one instance for up to this many live calls (interpreted guests).
    pub warm_calls: Option<u32>,
    /// Outgoing requests one call may have in flight (default 4).
    pub max_in_flight: Option<u32>,
    /// Body bytes the host holds for one call at once (default 4 MiB).
    pub max_buffered_bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SecretDecl {
    pub env: Option<Str>,
    pub file: Option<Str>,
    /// Only here to be refused with a clear message.
    pub value: Option<Str>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct LimitsDecl {
    /// Intake requests accepted per source per minute before 429.
    pub intake_per_minute: Option<u32>,
    /// Largest accepted request body.
    pub max_body_kb: Option<u32>,
    /// Side-effect calls running at once across every target.
    pub effects_concurrency: Option<u32>,
    /// How long a notice may wait in the outbox before a warning is raised.
    pub first_response: Option<Str>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct DrillsDecl {
    #[serde(default)]
    pub blackout: Vec<BlackoutDecl>,
    /// How late a missed scheduled drill may still start.
    pub grace: Option<Str>,
    /// Live incident severities that drills yield to (`[]`: never).
    pub pause_during: Option<Vec<Str>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BlackoutDecl {
    /// RFC 3339 start and end.
    pub start: Str,
    pub end: Str,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RosterFile {
    #[serde(default)]
    pub people: BTreeMap<String, Spanned<PersonDecl>>,
    #[serde(default)]
    pub teams: BTreeMap<String, Spanned<TeamDecl>>,
    #[serde(default)]
    pub rotas: BTreeMap<String, Spanned<RotaDecl>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PersonDecl {
    pub name: Option<String>,
    pub timezone: Option<Str>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Notification target used to page this person (default: the rota's or none).
    pub target: Option<Str>,
    /// Where `smtp` targets e-mail this person.
    pub email: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TeamDecl {
    #[serde(default)]
    pub members: Vec<Str>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RotaDecl {
    pub timezone: Str,
    /// Local time of day the shift changes, `HH:MM`.
    pub handoff: Str,
    /// Shift length in whole days (`1d`, `7d`).
    pub shift: Option<Str>,
    /// Local date on which the first member starts a shift, `YYYY-MM-DD`.
    pub start: Str,
    pub members: Vec<Str>,
}

/// Keys whose values are credentials and must come from `[secrets]`.
pub(crate) fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "password", "passwd", "secret", "api_key", "apikey", "api-key", "credential", "authorization"]
        .iter()
        .any(|s| k.contains(s))
}

#[cfg(test)]
mod tests {
    use super::super::load_source;
    use crate::diag::Source;
    use std::path::Path;
    use std::time::Duration;

    fn load(digest: &str) -> Result<super::super::Config, Vec<String>> {
        let text = format!("[targets.superiors]\nplugin = \"log\"\ndigest = {digest}\n");
        load_source(Source::new("crisis.toml", text), None, Path::new("."))
            .map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn a_digest_rule_is_read_and_off_when_absent() {
        let c = load("{ after = 5, within = \"30s\" }").unwrap();
        let rule = c.targets["superiors"].digest.unwrap();
        assert_eq!((rule.after, rule.within), (5, Duration::from_secs(30)));
        let c =
            load_source(Source::new("crisis.toml", "[targets.regulator]\nplugin = \"log\"\n"), None, Path::new("."))
                .unwrap();
        assert_eq!(c.targets["regulator"].digest, None);
    }

    #[test]
    fn bad_digest_rules_name_the_file_key_and_fix() {
        let m = load("{ after = 0, within = \"30s\" }").unwrap_err();
        assert_eq!(
            m,
            [
                "crisis.toml:3:20: `targets.superiors.digest.after` is 0: it must be at least 1 (the notices sent one by one before the rest are folded)"
            ]
        );
        let m = load("{ after = 5, within = \"500ms\" }").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:3:32: `targets.superiors.digest.within` is `500ms`: a digest window lasts between 1s and 1h"), "{m:?}");
        let m = load("{ after = 5, within = \"2h\" }").unwrap_err();
        assert!(m[0].contains("between 1s and 1h"), "{m:?}");
        let m = load("{ after = 5, within = \"soon\" }").unwrap_err();
        assert!(m[0].contains("`targets.superiors.digest.within`: bad duration `soon`"), "{m:?}");
        let m = load("{ after = 5 }").unwrap_err();
        assert!(m[0].starts_with("crisis.toml:3:10: `targets.superiors.digest` needs `within`"), "{m:?}");
        let m = load("{ within = \"30s\" }").unwrap_err();
        assert!(m[0].contains("`targets.superiors.digest` needs `after`"), "{m:?}");
    }
}

/// `[status_page]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct StatusPageDecl {
    /// `IP:PORT` to serve the page on; absent keeps the page off. Restart required to change.
    pub listen: Option<Spanned<String>>,
    /// Accept a non-loopback `listen` without `[tls]`.
    pub insecure_listen: Option<bool>,
    /// Heading of the page and the feed.
    pub title: Option<String>,
    /// Locale of the untranslated texts and of visitors whose language has no translation.
    pub default_locale: Option<Spanned<String>>,
    /// How many days of resolved incidents the page lists.
    pub history_days: Option<Spanned<i64>>,
    #[serde(default)]
    pub components: Vec<Spanned<ComponentDecl>>,
}

/// One `components = [{ id, name, group }]` entry as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ComponentDecl {
    pub id: Spanned<String>,
    pub name: Option<String>,
    pub group: Option<String>,
}

/// `[budgets]` as written: send budgets not tied to one target.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct BudgetsDecl {
    /// `[budgets.channel.NAME]`: a customer channel's budget, shared by every target.
    #[serde(default)]
    pub channel: BTreeMap<String, Spanned<ChannelBudgetDecl>>,
}

/// `[budgets.channel.NAME]` as written.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChannelBudgetDecl {
    /// At most this many messages on the channel per window, e.g. `100/min`.
    pub rate: Option<Str>,
    /// At most this many messages on the channel per UTC day.
    pub daily: Option<Spanned<i64>>,
}
