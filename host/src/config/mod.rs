//! Daemon configuration (`crisis.toml`) and the roster it names.
//!
//! Paths in a config file resolve against the file's directory. With no
//! config file, crisis runs on embedded defaults whose paths resolve against
//! the current directory: `./playbooks`, `./examples/roster.toml`,
//! `./examples/customers.csv`, and `log` targets for every channel.

pub mod budget;
pub mod complaints;
pub mod customers;
pub(crate) mod model;
pub mod pagerduty;
pub mod roster;
pub mod smtp;
pub(crate) mod state_dir;
pub mod status_page;
mod store;

use crate::diag::{Diagnostic, Source};
use crate::playbook::refs::{BUILTIN_PLUGINS, RefContext};
use crate::playbook::types::World;
use crate::tomlfile;
use chrono::{DateTime, Utc};
pub use model::DigestRule;
use model::{ConfigFile, Str, looks_secret};
use roster::Roster;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where the API listens unless `listen` says otherwise: loopback only.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8707);
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded default configuration, used when no `crisis.toml` is found.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Settings that only take effect on restart; a reload that changes one is refused.
pub const RESTART_ONLY: &[&str] =
    &["state_dir", "listen", "tls", "insecure_listen", "metrics_token", "journal_key", "store"];

/// `shutdown_grace` when crisis.toml does not set it.
pub(crate) const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `plugin_quarantine_base` when crisis.toml does not set it.
pub(crate) const DEFAULT_PLUGIN_QUARANTINE_BASE: Duration = Duration::from_secs(60);

/// A notification target: where `notify = ["superiors"]` goes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Target {
    /// `log` or a notifier plugin.
    pub plugin: String,
    /// Whether drills may really deliver to this target; otherwise drill messages only go to the log.
    pub drill_safe: bool,
    /// Non-secret settings passed to the plugin; `secret:NAME` values are resolved by the host.
    pub config: BTreeMap<String, String>,
    /// How the outbox delivers to it.
    pub delivery: Delivery,
    /// Storm control; `None` sends every notice on its own.
    pub digest: Option<DigestRule>,
    /// The relay of a `plugin = "smtp"` target.
    pub smtp: Option<smtp::SmtpSettings>,
}

/// Per-target delivery limits: a slow or failing target is isolated from the others.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Delivery {
    /// Calls running at once (per channel for customer messages).
    pub concurrency: usize,
    /// Consecutive failures that open the circuit.
    pub breaker_failures: u32,
    /// How long an open circuit waits before one probe call.
    pub breaker_cooldown: Duration,
    /// How long after an effect was recorded its transient failures are still
    /// retried: an outage shorter than this delays a message but never loses it.
    pub retry_for: Duration,
    /// How many messages it may send per window and per day; over it they wait.
    pub budget: budget::Budget,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            concurrency: 4,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            retry_for: Duration::from_secs(3600),
            budget: budget::Budget::default(),
        }
    }
}

/// Where a secret's value comes from. Values are never written in config files.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum SecretRef {
    /// Read from this environment variable of the daemon.
    Env(String),
    /// Read from this file (trailing newline stripped); resolved against the config file's directory.
    File(PathBuf),
}

impl SecretRef {
    /// Reads the secret's value now; errors name the source, never the value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretRef::Env(v) => std::env::var(v).map_err(|_| format!("environment variable {v} is not set")),
            SecretRef::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read secret file {}: {e}", p.display())),
        }
    }
}

/// Header injection: the host adds `header: prefix + secret` for requests to `host`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Inject {
    /// The host name whose outgoing requests get the header.
    pub host: String,
    /// The header name to set, e.g. `Authorization`.
    pub header: String,
    /// The name of the `[secrets]` entry whose value goes in the header.
    pub secret: String,
    /// Text put before the secret value, e.g. `Bearer `; `None` sends the bare value.
    pub prefix: Option<String>,
    /// HTTP Basic user: the header becomes `Basic base64(user:secret)`; `None` uses `prefix`.
    pub basic_user: Option<String>,
}

/// An operator's declaration of a plugin: its file (if not built in) and grants.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct PluginSpec {
    /// The plugin's compiled component file; `None` for a built-in plugin or one found in `plugin_dir`.
    pub file: Option<PathBuf>,
    /// Which interface the plugin implements (notifier, appeasement or drill); `None` only for built-ins, whose world is known.
    pub world: Option<World>,
    /// Host patterns the plugin may make HTTP requests to; anything else is refused.
    pub allowed_hosts: Vec<String>,
    /// Host patterns allowed to resolve to private or loopback addresses (refused by default).
    pub allow_private: Vec<String>,
    /// Host patterns really contacted even in drills; other egress is faked during drills.
    pub drill_allow: Vec<String>,
    /// Headers carrying secrets that the host adds to the plugin's requests, so the plugin never sees them.
    pub inject: Vec<Inject>,
    /// `[secrets]` names the plugin may sign with (`host.hmac-sha256`) without seeing them.
    pub sign_secrets: Vec<String>,
    /// Non-secret settings passed to the plugin; `secret:NAME` values are resolved by the host.
    pub config: BTreeMap<String, String>,
    /// Wall-clock budget for one plugin call; `None` uses the host default.
    pub timeout: Option<Duration>,
    /// Memory cap for the plugin instance in MiB; `None` uses the host default.
    pub memory_mb: Option<u32>,
    /// How many live calls may reuse one warm instance before it is recycled; `None` uses the host default, 0 disables reuse.
    pub warm_calls: Option<u32>,
    /// Outgoing requests one plugin call may have in flight.
    pub max_in_flight: Option<u32>,
    /// Body bytes the host holds for one plugin call at once.
    pub max_buffered_bytes: Option<u64>,
}

/// Which database holds the journal. Why a type: the daemon opens a
/// different store for each, and a URL is never carried in the config itself.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StoreBackend {
    /// `state_dir/journal.db` (the default).
    #[default]
    Sqlite,
    /// PostgreSQL; the connection URL is the value of this `[secrets]` entry.
    Postgres {
        /// The `[secrets]` name holding `postgres://USER:PASSWORD@HOST/DB`.
        url_secret: String,
    },
}

/// `[tls]`: HTTPS for the API. Why: a `listen` beyond loopback carries the
/// API token and incident data over the network.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TlsConfig {
    /// PEM certificate chain the daemon serves.
    pub cert: PathBuf,
    /// PEM private key of the certificate.
    pub key: PathBuf,
    /// PEM CA certificate the CLI trusts in addition to the public roots.
    pub ca: Option<PathBuf>,
}

/// Protection limits for the HTTP intake.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Limits {
    /// Triggers accepted per minute before intake answers 429 (default 600).
    pub intake_per_minute: u32,
    /// Largest accepted request body in KiB (default 1024).
    pub max_body_kb: u32,
    /// Side-effect calls running at once across every target.
    pub effects_concurrency: usize,
    /// How long a notice may wait in the outbox before the daemon warns (in
    /// the log and on the late notice's incident) that delivery lags.
    pub first_response: Duration,
}

/// A window in which no scheduled drill starts and running drills are halted.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Blackout {
    /// When the window begins (UTC).
    pub start: DateTime<Utc>,
    /// When the window ends (UTC); never before `start`.
    pub end: DateTime<Utc>,
    /// Why drills are paused, shown to operators; `None` if not given.
    pub reason: Option<String>,
}

/// The `[drills]` section: when scheduled drills may run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrillsConfig {
    /// Windows in which drills are not allowed, e.g. release freezes.
    pub blackout: Vec<Blackout>,
    /// How far back a scheduled drill missed while the daemon was down is still started (default 1 hour).
    pub grace: Duration,
    /// While a live incident of one of these severities is open, running drills
    /// pause and scheduled ones wait (default sev1 and sev2; empty: never).
    pub pause_during: Vec<crate::playbook::types::Severity>,
}

/// A loaded, validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it came from; `None` for the embedded defaults.
    pub path: Option<PathBuf>,
    /// Directory holding the journal database, API token and lock file; restart-only.
    pub state_dir: PathBuf,
    /// Address the HTTP API and intake listen on; restart-only.
    pub listen: SocketAddr,
    /// Directory the playbooks are loaded from.
    pub playbooks: PathBuf,
    /// The roster file the roster was read from; `None` when no roster is configured.
    pub roster_path: Option<PathBuf>,
    /// People, teams and rotas that playbooks page and assign roles to.
    pub roster: Roster,
    /// The customer source (CSV) for appeasement steps; `None` means no customers are messaged.
    pub customers: Option<PathBuf>,
    /// Directory searched for plugins that are not built in and have no `file`; `None` if not set.
    pub plugin_dir: Option<PathBuf>,
    /// How long a plugin version that keeps crashing is first quarantined;
    /// each further quarantine lasts twice as long, up to an hour.
    pub plugin_quarantine_base: Duration,
    /// Notification targets by the name playbooks use in `notify`.
    pub targets: BTreeMap<String, Target>,
    /// Plugin declarations and grants, by plugin name.
    pub plugins: BTreeMap<String, PluginSpec>,
    /// Where each named secret is read from; referenced as `secret:NAME`.
    pub secrets: BTreeMap<String, SecretRef>,
    /// Rate and size limits of the HTTP intake.
    pub limits: Limits,
    /// Scheduled-drill settings: blackout windows and catch-up grace.
    pub drills: DrillsConfig,
    /// How long side-effect calls already running may finish after SIGTERM
    /// or SIGINT before the daemon exits without them (they run again on the
    /// next start, with the same invocation id).
    pub shutdown_grace: Duration,
    /// The `[secrets]` name of the token that non-loopback peers must send
    /// to read `/metrics` and the health probes; `None`: loopback only.
    pub metrics_token: Option<String>,
    /// The `[secrets]` name of the journal's chain key; `None`: `state_dir/journal.key`.
    pub journal_key: Option<String>,
    /// Which database holds the journal.
    pub store: StoreBackend,
    /// How long a node's claim on an intent or timer lasts unless its
    /// heartbeat renews it (`[store] lease`; only PostgreSQL shares work).
    pub store_lease: Duration,
    /// HTTPS for the API.
    pub tls: Option<TlsConfig>,
    /// A non-loopback `listen` without TLS was explicitly accepted.
    pub insecure_listen: bool,
    /// `[intake.pagerduty]`: playbook by routing-key token name, severity map.
    pub pagerduty: pagerduty::PagerDutyConfig,
    /// `[status_page]`: the public status page's listener and components.
    pub status_page: status_page::StatusPageConfig,
    /// `[complaints]`: first response, escalation, follow-up and classification rules.
    pub complaints: complaints::ComplaintsConfig,
    /// `[budgets.channel.NAME]`: what customer messages on each channel may send, over every target.
    pub channel_budgets: BTreeMap<crate::playbook::types::Channel, budget::Budget>,
    /// sha256 over the config and roster texts, to notice changes.
    pub hash: String,
}

impl Config {
    /// What playbooks may reference under this configuration.
    pub fn ref_context(&self) -> RefContext {
        let mut ctx = RefContext::builtins_only();
        ctx.targets = self.targets.keys().cloned().collect();
        for (name, p) in &self.plugins {
            if let Some(w) = p.world {
                ctx.plugins.insert(name.clone(), w);
            }
        }
        ctx.rotas = self.roster.rotas.keys().cloned().collect();
        ctx.teams = self.roster.teams.keys().cloned().collect();
        ctx.people = self.roster.people.keys().cloned().collect();
        ctx.roles = self.roster.people.values().flat_map(|p| p.roles.iter().cloned()).collect();
        status_page::add_refs(self, &mut ctx);
        ctx
    }
}

/// Finds the config to use: an explicit path, else `./crisis.toml`, else the embedded defaults.
pub fn discover(explicit: Option<&Path>) -> Result<Config, Vec<Diagnostic>> {
    match explicit {
        Some(p) => load(p),
        None if Path::new("crisis.toml").exists() => load(Path::new("crisis.toml")),
        None => load_source(Source::new("<embedded default crisis.toml>", DEFAULT_CONFIG), None, Path::new(".")),
    }
}

/// Loads and validates a config file and the roster it names.
pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let src = tomlfile::read_source(path).map_err(|d| vec![d])?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
    load_source(src, Some(path.to_path_buf()), &base)
}

fn load_source(src: Source, path: Option<PathBuf>, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let doc = tomlfile::parse(&src)?;
    let file: ConfigFile = {
        // The whole file is one section; wrap it so unknown keys are positioned.
        let value = serde_spanned::Spanned::new(0..src.text.len(), toml::de::DeValue::Table(doc.root.clone()));
        doc.section(&value, "crisis.toml", &mut diags).unwrap_or_default()
    };
    let resolve = |s: &Str| base.join(s.get_ref());
    let state_dir = file.state_dir.as_ref().map(resolve).unwrap_or_else(|| base.join(".crisis"));
    let listen = match &file.listen {
        None => DEFAULT_LISTEN,
        Some(l) => l.get_ref().parse::<SocketAddr>().unwrap_or_else(|_| {
            diags.push(
                src.at(l.span(), format!("bad listen address `{}`: write IP:PORT like 127.0.0.1:8707", l.get_ref())),
            );
            DEFAULT_LISTEN
        }),
    };
    let playbooks = file.playbooks.as_ref().map(resolve).unwrap_or_else(|| base.join("playbooks"));

    // Secrets first: targets and grants refer to them.
    let mut secrets = BTreeMap::new();
    for (name, s) in &file.secrets {
        let decl = s.get_ref();
        if let Some(v) = &decl.value {
            diags.push(src.at(v.span(), format!("inline secret `{name}`: secrets are never written in crisis.toml; use env = \"VAR\" or file = \"PATH\"")));
            continue;
        }
        match (&decl.env, &decl.file) {
            (Some(e), None) => {
                secrets.insert(name.clone(), SecretRef::Env(e.get_ref().clone()));
            }
            (None, Some(f)) => {
                secrets.insert(name.clone(), SecretRef::File(resolve(f)));
            }
            _ => diags.push(
                src.at(s.span(), format!("secret `{name}` needs exactly one of env = \"VAR\" or file = \"PATH\"")),
            ),
        }
    }
    let check_secret_values = |config: &BTreeMap<String, Str>,
                               diags: &mut Vec<Diagnostic>|
     -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in config {
            if let Some(name) = v.get_ref().strip_prefix("secret:") {
                if !secrets.contains_key(name) {
                    diags.push(
                        src.at(v.span(), format!("unknown secret `{name}`: declare [secrets.{name}] with env or file")),
                    );
                }
            } else if looks_secret(k) && !v.get_ref().is_empty() {
                diags.push(src.at(v.span(), format!("inline secret in `{k}`: reference a secret with \"secret:NAME\" and declare [secrets.NAME] with env or file")));
            }
            out.insert(k.clone(), v.get_ref().clone());
        }
        out
    };

    let mut plugins = BTreeMap::new();
    let builtins: BTreeMap<&str, World> = BUILTIN_PLUGINS.iter().copied().collect();
    for (name, p) in &file.plugins {
        let d = p.get_ref();
        let world = match (&d.world, builtins.get(name.as_str())) {
            (Some(w), _) => match w.get_ref().parse::<World>() {
                Ok(w) => Some(w),
                Err(e) => {
                    diags.push(src.at(w.span(), e));
                    None
                }
            },
            (None, Some(w)) => Some(*w),
            (None, None) => {
                diags.push(src.at(p.span(), format!("plugin `{name}` needs `world` (notifier, appeasement or drill)")));
                None
            }
        };
        if d.file.is_none() && !builtins.contains_key(name.as_str()) && file.plugin_dir.is_none() {
            diags.push(src.at(p.span(), format!("plugin `{name}` is not built in: give its component with file = \"PATH.wasm\" or put it in plugin_dir")));
        }
        if let Some(f) = &d.file
            && f.get_ref().ends_with(".cwasm")
        {
            diags.push(src.at(f.span(), "precompiled .cwasm artifacts are never loaded: give the .wasm component; crisis compiles and caches it"));
        }
        let mut inject = Vec::new();
        for i in &d.inject {
            if !secrets.contains_key(i.secret.get_ref()) {
                diags.push(src.at(
                    i.secret.span(),
                    format!(
                        "unknown secret `{}`: declare [secrets.{}] with env or file",
                        i.secret.get_ref(),
                        i.secret.get_ref()
                    ),
                ));
            }
            inject.push(Inject {
                host: i.host.get_ref().clone(),
                header: i.header.get_ref().clone(),
                secret: i.secret.get_ref().clone(),
                prefix: i.prefix.clone(),
                basic_user: i.basic_user.clone(),
            });
        }
        for s in &d.sign_secrets {
            if !secrets.contains_key(s.get_ref()) {
                diags.push(src.at(
                    s.span(),
                    format!("unknown secret `{}`: declare [secrets.{}] with env or file", s.get_ref(), s.get_ref()),
                ));
            }
        }
        let timeout = d.timeout.as_ref().and_then(|t| match crate::playbook::types::parse_duration(t.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                diags.push(src.at(t.span(), e));
                None
            }
        });
        let strs = |v: &[Str]| v.iter().map(|s| s.get_ref().clone()).collect::<Vec<_>>();
        plugins.insert(
            name.clone(),
            PluginSpec {
                file: d.file.as_ref().map(resolve),
                world,
                allowed_hosts: strs(&d.allowed_hosts),
                allow_private: strs(&d.allow_private),
                drill_allow: strs(&d.drill_allow),
                inject,
                sign_secrets: strs(&d.sign_secrets),
                config: check_secret_values(&d.config, &mut diags),
                timeout,
                memory_mb: d.memory_mb,
                warm_calls: d.warm_calls,
                max_in_flight: d.max_in_flight,
                max_buffered_bytes: d.max_buffered_bytes,
            },
        );
    }

    let mut targets = BTreeMap::new();
    for (name, t) in &file.targets {
        let d = t.get_ref();
        let plugin = d.plugin.get_ref();
        smtp::check_presence(name, &d.plugin, d.smtp.as_ref(), &src, &mut diags);
        if plugin != "log" && plugin != smtp::SMTP && !status_page::is_status_target(name, d, &src, &mut diags) {
            let world = plugins.get(plugin).and_then(|p| p.world).or_else(|| builtins.get(plugin.as_str()).copied());
            match world {
                Some(World::Notifier) => {}
                Some(w) => diags.push(src.at(d.plugin.span(), format!("target `{name}` uses plugin `{plugin}`, which implements the {w} world; targets need a notifier"))),
                None => diags.push(src.at(d.plugin.span(), format!("target `{name}` uses unknown plugin `{plugin}`: use `log`, `smtp`, `status`, `webhook-notify`, `sms-gateway` or declare [plugins.{plugin}]"))),
            }
        }
        let delivery = budget::delivery(name, d, &src, &mut diags);
        let smtp = d.smtp.as_ref().and_then(|m| smtp::settings(name, m, &secrets, base, &src, &mut diags));
        targets.insert(
            name.clone(),
            Target {
                plugin: plugin.clone(),
                drill_safe: d.drill_safe,
                config: check_secret_values(&d.config, &mut diags),
                delivery,
                digest: d.digest.as_ref().and_then(|g| g.get_ref().rule(name, g.span(), &src, &mut diags)),
                smtp,
            },
        );
    }

    let limits = file.limits.clone().unwrap_or_default();
    let limits = Limits {
        intake_per_minute: limits.intake_per_minute.unwrap_or(600),
        max_body_kb: limits.max_body_kb.unwrap_or(1024),
        effects_concurrency: limits.effects_concurrency.map_or(16, |n| n.max(1) as usize),
        first_response: match &limits.first_response {
            None => Duration::from_secs(120),
            Some(s) => crate::playbook::types::parse_duration(s.get_ref()).unwrap_or_else(|e| {
                diags.push(src.at(s.span(), format!("[limits] first_response: {e}")));
                Duration::from_secs(120)
            }),
        },
    };
    let drills_decl = file.drills.clone().unwrap_or_default();
    let mut blackout = Vec::new();
    for b in &drills_decl.blackout {
        let parse = |s: &Str, diags: &mut Vec<Diagnostic>| {
            DateTime::parse_from_rfc3339(s.get_ref()).map(|d| d.with_timezone(&Utc)).map_err(|_| {
                diags.push(src.at(
                    s.span(),
                    format!("bad time `{}`: write RFC 3339 like 2026-12-24T00:00:00+08:00", s.get_ref()),
                ));
            })
        };
        if let (Ok(start), Ok(end)) = (parse(&b.start, &mut diags), parse(&b.end, &mut diags)) {
            if end <= start {
                diags.push(src.at(b.end.span(), "blackout ends before it starts"));
            }
            blackout.push(Blackout { start, end, reason: b.reason.clone() });
        }
    }
    let grace = match &drills_decl.grace {
        None => Duration::from_secs(3600),
        Some(g) => crate::playbook::types::parse_duration(g.get_ref()).unwrap_or_else(|e| {
            diags.push(src.at(g.span(), e));
            Duration::from_secs(3600)
        }),
    };
    let pause_during = match &drills_decl.pause_during {
        None => vec![crate::playbook::types::Severity::Sev1, crate::playbook::types::Severity::Sev2],
        Some(list) => list
            .iter()
            .filter_map(|s| {
                s.get_ref()
                    .parse()
                    .map_err(|e: String| diags.push(src.at(s.span(), format!("[drills] pause_during: {e}"))))
                    .ok()
            })
            .collect(),
    };
    let shutdown_grace = match &file.shutdown_grace {
        None => DEFAULT_SHUTDOWN_GRACE,
        Some(g) => crate::playbook::types::parse_duration(g.get_ref()).unwrap_or_else(|e| {
            diags.push(src.at(g.span(), e));
            DEFAULT_SHUTDOWN_GRACE
        }),
    };
    let plugin_quarantine_base = match &file.plugin_quarantine_base {
        None => DEFAULT_PLUGIN_QUARANTINE_BASE,
        Some(g) => match crate::playbook::types::parse_duration(g.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                diags.push(src.at(g.span(), "plugin_quarantine_base must be longer than zero".to_string()));
                DEFAULT_PLUGIN_QUARANTINE_BASE
            }
            Err(e) => {
                diags.push(src.at(g.span(), e));
                DEFAULT_PLUGIN_QUARANTINE_BASE
            }
        },
    };

    let metrics_token = file.metrics_token.as_ref().and_then(|t| match t.get_ref().strip_prefix("secret:") {
        Some(name) if secrets.contains_key(name) => Some(name.to_string()),
        Some(name) => {
            diags.push(src.at(t.span(), format!("unknown secret `{name}`: declare [secrets.{name}] with env or file")));
            None
        }
        None => {
            diags.push(src.at(t.span(), "inline secret in `metrics_token`: write metrics_token = \"secret:NAME\" and declare [secrets.NAME] with env or file"));
            None
        }
    });
    let journal_key = file.journal_key.as_ref().and_then(|t| match t.get_ref().strip_prefix("secret:") {
        Some(name) if secrets.contains_key(name) => Some(name.to_string()),
        Some(name) => {
            diags.push(src.at(t.span(), format!("unknown secret `{name}`: declare [secrets.{name}] with env or file")));
            None
        }
        None => {
            diags.push(src.at(t.span(), "inline secret in `journal_key`: write journal_key = \"secret:NAME\" and declare [secrets.NAME] with env or file"));
            None
        }
    });
    let (store, store_lease) = store::build(file.store.as_ref(), &secrets, &src, &mut diags);
    let tls = file.tls.as_ref().map(|t| TlsConfig {
        cert: resolve(&t.cert),
        key: resolve(&t.key),
        ca: t.ca.as_ref().map(resolve),
    });
    let insecure_listen = file.insecure_listen.unwrap_or(false);
    let pagerduty = pagerduty::build(file.intake.as_ref(), &src, &mut diags);
    let status_page = status_page::build(file.status_page.as_ref(), tls.is_some(), &src, &mut diags);
    let channel_budgets = budget::channels(&file.budgets, &src, &mut diags);
    if !listen.ip().is_loopback() && tls.is_none() && !insecure_listen {
        let at = file.listen.as_ref().map(|l| l.span()).unwrap_or(0..0);
        diags.push(src.at(
            at,
            format!("listen = \"{listen}\" is not a loopback address, so the API token and incident data would cross the network in clear: add [tls] with cert = \"PATH\" and key = \"PATH\", or set insecure_listen = true to accept plain HTTP"),
        ));
    }

    let mut hasher = Sha256::new();
    hasher.update(src.text.as_bytes());
    let (roster_path, roster) = match &file.roster {
        None => (None, Roster::default()),
        Some(r) => {
            let p = resolve(r);
            match tomlfile::read_source(&p) {
                Err(mut d) => {
                    d.message = format!(
                        "{} (named by roster = at {}:{}:{})",
                        d.message,
                        src.path.display(),
                        src.position(r.span().start).0,
                        src.position(r.span().start).1
                    );
                    diags.push(d);
                    (Some(p), Roster::default())
                }
                Ok(rsrc) => {
                    hasher.update(rsrc.text.as_bytes());
                    let roster = roster::load(&rsrc, &targets.keys().cloned().collect::<Vec<_>>(), &mut diags);
                    smtp::check_recipients(&file.targets, &roster, &src, &mut diags);
                    (Some(p), roster)
                }
            }
        }
    };
    let (rotas, names): (Vec<&str>, Vec<&str>) =
        (roster.rotas.keys().map(String::as_str).collect(), targets.keys().map(String::as_str).collect());
    let complaints = complaints::build(file.complaints.as_ref(), &rotas, &names, &src, &mut diags);
    let customers = file.customers.as_ref().map(resolve);
    if let (Some(c), Some(decl)) = (&customers, &file.customers)
        && !c.exists()
    {
        diags.push(src.at(decl.span(), format!("customers file {} does not exist", c.display())));
    }
    if !diags.is_empty() {
        crate::diag::sort(&mut diags);
        return Err(diags);
    }
    Ok(Config {
        path,
        state_dir,
        listen,
        playbooks,
        roster_path,
        roster,
        customers,
        plugin_dir: file.plugin_dir.as_ref().map(resolve),
        plugin_quarantine_base,
        targets,
        plugins,
        secrets,
        limits,
        drills: DrillsConfig { blackout, grace, pause_during },
        shutdown_grace,
        metrics_token,
        journal_key,
        store,
        store_lease,
        tls,
        insecure_listen,
        pagerduty,
        status_page,
        complaints,
        channel_budgets,
        hash: hex::encode(hasher.finalize()),
    })
}

#[cfg(test)]
mod tests;
