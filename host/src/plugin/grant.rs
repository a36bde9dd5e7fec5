//! Operator grants: what each plugin may reach and which secrets the host
//! injects for it.
//!
//! Why here: the daemon config (owned by the config module) embeds one
//! `[plugins.NAME]` table per plugin with this exact type, so the schema and
//! its validation live next to the code that enforces it.

use super::limits::LimitOverrides;
use super::pattern::HostPattern;
use super::scrub::Scrubber;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Default for `[plugins.X] max_in_flight`: concurrent outgoing requests per call.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Default for `[plugins.X] max_buffered_bytes`: body bytes the host holds per call.
pub(crate) const DEFAULT_MAX_BUFFERED_BYTES: usize = 4 << 20;

/// `[plugins.NAME]` in `crisis.toml`.
///
/// ```toml
/// [plugins.webhook-notify]
/// allowed_hosts = ["hooks.slack.com", "https://*.example.com:8443", "http://127.0.0.1:8080"]
/// allow_private = []          # hosts allowed to resolve to private/loopback addresses
/// drill_allow = []            # hosts really contacted even in drills
/// config = { format = "slack" }
/// inject = [{ host = "hooks.slack.com", header = "Authorization", secret = { env = "SLACK_TOKEN" }, prefix = "Bearer " }]
/// sign_secrets = { dingtalk-ops = { env = "DINGTALK_SECRET" } }  # for host.hmac-sha256
/// limits = { timeout_ms = 5000, memory_mb = 32 }
/// max_in_flight = 4           # concurrent outgoing requests per call
/// max_buffered_bytes = 4194304 # request + response bytes the host holds per call
/// ```
///
/// Why `deny_unknown_fields`: a misspelt `alowed_hosts` must be an error,
/// not a silently empty allow-list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginGrant {
    /// Hosts the plugin may call (`host`, `host:port`, `*.domain`,
    /// optionally with `http://` or `https://`; without a scheme only https,
    /// without a port only the scheme's default port). Intersected with the
    /// plugin's own declared hosts. Empty = no outbound HTTP at all.
    pub allowed_hosts: Vec<String>,
    /// Hosts that may resolve to loopback/private/link-local addresses.
    /// Everything else is refused after DNS if it resolves there.
    pub allow_private: Vec<String>,
    /// Hosts contacted for real even in drill mode (e.g. a drill chat room).
    pub drill_allow: Vec<String>,
    /// Headers the host adds to requests for a host, with secret values the
    /// plugin never sees.
    pub inject: Vec<InjectRule>,
    /// Signing secrets by name, used only inside the host by
    /// `host.hmac-sha256`: the plugin gets signatures, never the value.
    pub sign_secrets: BTreeMap<String, SecretRef>,
    /// Plain configuration visible to the plugin through `host.config`.
    pub config: BTreeMap<String, String>,
    /// Configuration values the host reads from a secret source and passes
    /// to the plugin through `host.config`; every such value is scrubbed from
    /// whatever the plugin's calls return.
    pub secret_config: BTreeMap<String, SecretRef>,
    /// Limit overrides, clamped to the host's caps.
    pub limits: LimitOverrides,
    /// Outgoing requests one call may have in flight (default 4); more wait.
    pub max_in_flight: Option<u32>,
    /// Request and response body bytes the host holds for one call at once
    /// (default 4 MiB).
    pub max_buffered_bytes: Option<u64>,
}

/// One injected header.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InjectRule {
    /// Host pattern the header is added for (same syntax as `allowed_hosts`).
    pub host: String,
    /// Header name, e.g. `Authorization`.
    pub header: String,
    /// Where the value comes from.
    pub secret: SecretRef,
    /// Text put before the secret, e.g. `Bearer `.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Name the plugin can ask for with `host.get-secret` (default: the header name, lowercased).
    #[serde(default)]
    pub name: Option<String>,
    /// HTTP Basic authentication: the header value becomes
    /// `Basic base64(basic_user:secret)` (e.g. a Twilio account SID and its
    /// auth token). Cannot be combined with `prefix`.
    #[serde(default)]
    pub basic_user: Option<String>,
}

/// A secret's source. Never inline: `{ env = "NAME" }` or `{ file = "path" }`.
/// Why: secrets in config files end up in backups and diffs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SecretRef {
    /// Read from this environment variable of the daemon process; must be non-empty.
    Env(String),
    /// Read from this file (trailing newlines trimmed); must be non-empty and
    /// readable by the daemon user.
    File(PathBuf),
}

impl SecretRef {
    /// Read the secret now. Why: the daemon resolves grants at startup and
    /// reload, so a missing variable is reported then, not mid-incident.
    pub fn resolve(&self) -> Result<SecretValue, GrantError> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(SecretValue::new(v)),
                _ => Err(GrantError(format!(
                    "secret environment variable `{name}` is not set or empty; export it before starting the daemon"
                ))),
            },
            SecretRef::File(path) => match std::fs::read_to_string(path) {
                Ok(v) => {
                    let v = v.trim_end_matches(['\n', '\r']).to_string();
                    if v.is_empty() {
                        Err(GrantError(format!("secret file {} is empty", path.display())))
                    } else {
                        Ok(SecretValue::new(v))
                    }
                }
                Err(e) => Err(GrantError(format!(
                    "cannot read secret file {}: {e}; check the path and that the daemon user can read it",
                    path.display()
                ))),
            },
        }
    }

    /// Where the secret comes from, safe to print.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(n) => format!("env:{n}"),
            SecretRef::File(p) => format!("file:{}", p.display()),
        }
    }
}

pub use super::secret::SecretValue;

/// An invalid grant. Why: reported at config load with the plugin name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrantError(pub String);

/// A grant with host patterns parsed and secrets read.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedGrant {
    pub allowed_hosts: Vec<HostPattern>,
    pub allow_private: Vec<HostPattern>,
    pub drill_allow: Vec<HostPattern>,
    pub inject: Vec<ResolvedInject>,
    /// Signing secrets for `host.hmac-sha256`, by name.
    pub sign_secrets: BTreeMap<String, SecretValue>,
    /// Plain and secret configuration, as the plugin sees it.
    pub config: BTreeMap<String, String>,
    pub limits: LimitOverrides,
    pub max_in_flight: usize,
    pub max_buffered_bytes: usize,
    /// Every secret value of this grant (injected headers, secret config).
    pub scrub: Scrubber,
}

impl Default for ResolvedGrant {
    fn default() -> Self {
        ResolvedGrant {
            allowed_hosts: Vec::new(),
            allow_private: Vec::new(),
            drill_allow: Vec::new(),
            inject: Vec::new(),
            sign_secrets: BTreeMap::new(),
            config: BTreeMap::new(),
            limits: LimitOverrides::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            scrub: Scrubber::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ResolvedInject {
    pub host: HostPattern,
    pub header: http::HeaderName,
    pub value: SecretValue,
    pub name: String,
}

impl PluginGrant {
    /// Parse patterns and read secrets. Why: fail at config time with the
    /// field named, not at the first notification.
    pub(crate) fn resolve(&self, plugin: &str) -> Result<ResolvedGrant, GrantError> {
        self.resolve_with(plugin, &|r: &SecretRef| r.resolve())
    }

    /// Like `resolve`, with secrets read by the caller (the daemon's own
    /// secret handling).
    pub(crate) fn resolve_with(
        &self,
        plugin: &str,
        secrets: &dyn Fn(&SecretRef) -> Result<SecretValue, GrantError>,
    ) -> Result<ResolvedGrant, GrantError> {
        let parse = |field: &str, list: &[String]| -> Result<Vec<HostPattern>, GrantError> {
            list.iter()
                .map(|s| {
                    HostPattern::parse(s).map_err(|e| GrantError(format!("[plugins.{plugin}] {field}: `{s}`: {e}")))
                })
                .collect()
        };
        let mut scrub = Scrubber::default();
        let mut inject = Vec::new();
        for rule in &self.inject {
            let host = HostPattern::parse(&rule.host)
                .map_err(|e| GrantError(format!("[plugins.{plugin}] inject.host `{}`: {e}", rule.host)))?;
            let header = http::HeaderName::from_bytes(rule.header.as_bytes()).map_err(|_| {
                GrantError(format!("[plugins.{plugin}] inject.header `{}` is not a valid header name", rule.header))
            })?;
            let secret = secrets(&rule.secret)
                .map_err(|e| GrantError(format!("[plugins.{plugin}] inject {} for {}: {e}", rule.header, rule.host)))?;
            scrub.add_secret(secret.expose());
            let value = match (&rule.prefix, &rule.basic_user) {
                (Some(_), Some(_)) => {
                    return Err(GrantError(format!(
                        "[plugins.{plugin}] inject {} for {}: give either `prefix` or `basic_user`, not both",
                        rule.header, rule.host
                    )));
                }
                (None, Some(user)) => {
                    let encoded = data_encoding::BASE64.encode(format!("{user}:{}", secret.expose()).as_bytes());
                    scrub.add_secret(&encoded);
                    SecretValue::new(format!("Basic {encoded}"))
                }
                (Some(p), None) => SecretValue::new(format!("{p}{}", secret.expose())),
                (None, None) => secret,
            };
            if http::HeaderValue::from_str(value.expose()).is_err() {
                return Err(GrantError(format!(
                    "[plugins.{plugin}] inject {}: the secret from {} is not a valid header value (control characters?)",
                    rule.header,
                    rule.secret.describe()
                )));
            }
            inject.push(ResolvedInject {
                host,
                name: rule.name.clone().unwrap_or_else(|| rule.header.to_ascii_lowercase()),
                header,
                value,
            });
        }
        let mut sign_secrets = BTreeMap::new();
        for (name, source) in &self.sign_secrets {
            let value =
                secrets(source).map_err(|e| GrantError(format!("[plugins.{plugin}] sign secret `{name}`: {e}")))?;
            scrub.add_secret(value.expose());
            sign_secrets.insert(name.clone(), value);
        }
        let mut config = self.config.clone();
        for (key, source) in &self.secret_config {
            let value = secrets(source).map_err(|e| GrantError(format!("[plugins.{plugin}] config `{key}`: {e}")))?;
            scrub.add_secret(value.expose());
            config.insert(key.clone(), value.expose().to_string());
        }
        let max_in_flight = self.max_in_flight.map_or(DEFAULT_MAX_IN_FLIGHT, |n| n as usize);
        if max_in_flight == 0 {
            return Err(GrantError(format!("[plugins.{plugin}] max_in_flight must be at least 1")));
        }
        Ok(ResolvedGrant {
            allowed_hosts: parse("allowed_hosts", &self.allowed_hosts)?,
            allow_private: parse("allow_private", &self.allow_private)?,
            drill_allow: parse("drill_allow", &self.drill_allow)?,
            inject,
            sign_secrets,
            config,
            limits: self.limits.clone(),
            max_in_flight,
            max_buffered_bytes: self
                .max_buffered_bytes
                .map_or(DEFAULT_MAX_BUFFERED_BYTES, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            scrub,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_parses_from_toml_and_rejects_unknown_keys() {
        let g: PluginGrant = toml::from_str(
            r#"
            allowed_hosts = ["hooks.slack.com"]
            inject = [{ host = "hooks.slack.com", header = "Authorization", secret = { env = "X" } }]
            config = { format = "slack" }
            limits = { timeout_ms = 100 }
            "#,
        )
        .unwrap();
        assert_eq!(g.allowed_hosts, vec!["hooks.slack.com"]);
        assert_eq!(g.inject[0].secret, SecretRef::Env("X".into()));
        assert_eq!(g.limits.timeout_ms, Some(100));
        let err = toml::from_str::<PluginGrant>("alowed_hosts = []").unwrap_err().to_string();
        assert!(err.contains("alowed_hosts"), "{err}");
        // Inline secrets are not accepted.
        assert!(
            toml::from_str::<PluginGrant>(r#"inject = [{ host = "a", header = "b", secret = "hunter2" }]"#).is_err()
        );
    }

    #[test]
    fn resolved_grant_carries_caps_secret_config_and_its_scrubber() {
        let mut g = PluginGrant { max_in_flight: Some(2), max_buffered_bytes: Some(1024), ..Default::default() };
        g.secret_config.insert("url".into(), SecretRef::Env("UNUSED".into()));
        g.inject.push(InjectRule {
            host: "api.example.com".into(),
            header: "Authorization".into(),
            secret: SecretRef::Env("UNUSED".into()),
            prefix: Some("Bearer ".into()),
            name: None,
            basic_user: None,
        });
        let r = g
            .resolve_with("p", &|s: &SecretRef| {
                Ok(SecretValue::new(if s.describe() == "env:UNUSED" { "https://h/T/B/XSECRET" } else { "" }))
            })
            .unwrap();
        assert_eq!((r.max_in_flight, r.max_buffered_bytes), (2, 1024));
        assert_eq!(r.config["url"], "https://h/T/B/XSECRET");
        assert_eq!(r.scrub.scrub("POST https://h/T/B/XSECRET"), "POST <redacted>");
        let d = PluginGrant::default().resolve("p").unwrap();
        assert_eq!((d.max_in_flight, d.max_buffered_bytes), (4, 4 << 20));
        let zero = PluginGrant { max_in_flight: Some(0), ..Default::default() };
        assert!(zero.resolve("p").unwrap_err().0.contains("max_in_flight"));
    }

    #[test]
    fn basic_user_builds_a_basic_header_and_sign_secrets_are_scrubbed() {
        let mut g = PluginGrant::default();
        g.inject.push(InjectRule {
            host: "api.twilio.com".into(),
            header: "Authorization".into(),
            secret: SecretRef::Env("UNUSED".into()),
            prefix: None,
            name: Some("twilio".into()),
            basic_user: Some("AC123".into()),
        });
        g.sign_secrets.insert("robot".into(), SecretRef::Env("UNUSED".into()));
        let r = g.resolve_with("p", &|_: &SecretRef| Ok(SecretValue::new("tok"))).unwrap();
        // base64("AC123:tok")
        assert_eq!(r.inject[0].value.expose(), "Basic QUMxMjM6dG9r");
        assert_eq!(r.sign_secrets["robot"].expose(), "tok");
        assert_eq!(r.scrub.scrub("a QUMxMjM6dG9r b"), "a <redacted> b");
        g.inject[0].prefix = Some("Basic ".into());
        let err = g.resolve_with("p", &|_: &SecretRef| Ok(SecretValue::new("tok"))).unwrap_err();
        assert!(err.0.contains("not both"), "{err}");
    }

    #[test]
    fn secret_debug_is_redacted_and_missing_env_is_explained() {
        let v = SecretValue::new("hunter2");
        assert!(!format!("{v:?}").contains("hunter2"));
        let err = SecretRef::Env("CRISIS_TEST_DEFINITELY_UNSET_VAR".into()).resolve().unwrap_err();
        assert!(err.0.contains("CRISIS_TEST_DEFINITELY_UNSET_VAR"));
    }
}
