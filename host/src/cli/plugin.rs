//! `crisis plugin list|inspect|call|test|new|unquarantine`: plugin tools for
//! operators and plugin authors; `new` writes a project (see [`scaffold`]). `inspect`, `call` and `test` are offline: they start
//! their own [`PluginHost`] (the same engine, checks and sandbox the daemon
//! uses) and drop it on exit. `list` does too, then overlays the quarantine
//! state of a running daemon when one answers; `unquarantine` asks the daemon.
//!
//! Exit codes: 0 ok, 1 the call failed (plugin error, trap, timeout), 2
//! invalid input or a refused component, 3 file not found.

mod cases;
mod help;
mod runner;
mod scaffold;

use super::Cli;
use super::fixture::{fixture, merge};
use super::output::{Failure, print_json, table};
use crate::config::{self, Config, PluginSpec};
use crate::plugin::{
    EngineOptions, Inspection, LoadError, PluginCallError, PluginGrant, PluginHost, PluginHostConfig, PluginSource,
    PluginStatus, RunMode, World, builtin_component,
};
use clap::Subcommand;
use help::{CALL_LONG_ABOUT, TEST_LONG_ABOUT};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum PluginCmd {
    /// List built-in plugins and those the configuration declares ([plugins.NAME] with file, and plugin_dir).
    ///
    /// Offline: builds a plugin host from the configuration's grants, loads
    /// every plugin (compiling it, or reading it from <state_dir>/plugin-cache)
    /// and shows name, world, version, sha256, source and state. A plugin that
    /// fails to load is listed with its error (exit 1). Quarantine state and
    /// crash counts come from the running daemon when it answers (`live` is
    /// then true), else they are those of this process.
    List {
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Lift the quarantine of a plugin's running version in the daemon; its next call runs.
    ///
    /// A version that faults (trap, out of memory, computing past its
    /// deadline) repeatedly is quarantined for `plugin_quarantine_base`, then
    /// twice as long each time; this ends it now. Exit 3 for an unknown
    /// plugin, 1 if it is not quarantined.
    Unquarantine {
        /// The plugin name (as in `crisis plugin list`).
        name: String,
    },
    /// Show what a component is: world, API version, imports, exports, capabilities, sha256 and describe().
    ///
    /// The component is checked exactly as the daemon would check it; a
    /// refused component (wrong imports for its world, not a component,
    /// precompiled artifact, describe() failing) exits 2 with the reason.
    Inspect {
        /// The component (.wasm).
        #[arg(value_name = "FILE", required_unless_present = "builtin")]
        file: Option<PathBuf>,
        /// Inspect a built-in plugin instead of a file (webhook-notify, sms-gateway, appease-script, drill-sim, keyword-classifier).
        #[arg(long, value_name = "NAME", conflicts_with = "file")]
        builtin: Option<String>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Run one call of a component with fixture input (drill mode unless --live).
    #[command(long_about = CALL_LONG_ABOUT)]
    Call {
        /// The component (.wasm).
        #[arg(value_name = "FILE", required_unless_present = "builtin")]
        file: Option<PathBuf>,
        /// Call a built-in plugin instead of a file (webhook-notify, sms-gateway, appease-script, drill-sim, keyword-classifier).
        #[arg(long, value_name = "NAME", conflicts_with = "file")]
        builtin: Option<String>,
        /// The world to call: notifier (notify.send), appeasement (appease.compose), drill (simulate.plan/score)
        /// or classifier (classify.classify).
        #[arg(long, value_parser = ["notifier", "appeasement", "drill", "classifier"])]
        world: String,
        /// Input JSON, @FILE or @- (stdin); merged over the world's fixture. See --help.
        #[arg(long, value_name = "JSON|@FILE", default_value = "{}")]
        input: String,
        /// Really send outbound HTTP (within the grant) instead of capturing it.
        #[arg(long)]
        live: bool,
        /// Use the grant of [plugins.NAME] from the configuration (unless the input has `grant`).
        #[arg(long, value_name = "NAME")]
        grant: Option<String>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Run recorded cases against a component; outgoing HTTP is answered by a stub inside the host.
    #[command(long_about = TEST_LONG_ABOUT)]
    Test {
        /// The component (.wasm).
        #[arg(value_name = "FILE", required_unless_present = "builtin")]
        file: Option<PathBuf>,
        /// Test a built-in plugin instead of a file (webhook-notify, sms-gateway, appease-script, drill-sim, keyword-classifier).
        #[arg(long, value_name = "NAME", conflicts_with = "file")]
        builtin: Option<String>,
        /// A case file, or a directory of them (repeatable). Default: `cases/` beside FILE.
        #[arg(long = "case", value_name = "PATH")]
        cases: Vec<PathBuf>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Create a plugin project (source on the SDK, build.sh, recorded cases, README) that passes `plugin test`.
    New(scaffold::NewArgs),
}

/// Where compiled components are cached between runs.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Compiled-component cache. Default: <state_dir>/plugin-cache when a
    /// configuration is in use, else $XDG_CACHE_HOME/crisis/plugin-cache
    /// (~/.cache/crisis/plugin-cache).
    #[arg(long, value_name = "DIR", env = "CRISIS_PLUGIN_CACHE")]
    cache_dir: Option<PathBuf>,
    /// Compile in memory only; read and write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

pub(crate) fn run(cli: &Cli, cmd: &PluginCmd) -> Result<(), Failure> {
    match cmd {
        PluginCmd::List { cache } => list(cli, cache),
        PluginCmd::Unquarantine { name } => unquarantine(cli, name),
        PluginCmd::Inspect { file, builtin, cache } => inspect(cli, file.as_deref(), builtin.as_deref(), cache),
        PluginCmd::Call { file, builtin, world, input, live, grant, cache } => {
            let world: World = world.parse().map_err(Failure::invalid)?;
            call(cli, file.as_deref(), builtin.as_deref(), world, input, *live, grant.as_deref(), cache)
        }
        PluginCmd::Test { file, builtin, cases, cache } => {
            runner::test(cli, file.as_deref(), builtin.as_deref(), cases, cache)
        }
        PluginCmd::New(args) => scaffold::new(cli.json, args),
    }
}

// ------------------------------------------------------------------ shared

fn load_config(cli: &Cli) -> Result<Config, Failure> {
    config::discover(cli.config.as_deref())
        .map_err(|d| Failure::diagnostics("the configuration is invalid; fix the errors above", d))
}

/// Whether a configuration file (not the embedded defaults) is in use.
fn config_in_use(cli: &Cli) -> bool {
    cli.config.is_some() || Path::new("crisis.toml").exists()
}

fn cache_dir(cli: &Cli, args: &CacheArgs, cfg: Option<&Config>) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(d) = &args.cache_dir {
        return Some(d.clone());
    }
    if let Some(cfg) = cfg.filter(|_| config_in_use(cli)) {
        return Some(config::state_dir::StateDir::new(&cfg.state_dir).plugin_cache());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("crisis").join("plugin-cache"))
}

fn new_host(
    cache_dir: Option<PathBuf>,
    grants: BTreeMap<String, PluginGrant>,
    load_builtins: bool,
) -> Result<PluginHost, Failure> {
    PluginHost::new(PluginHostConfig {
        cache_dir,
        grants,
        load_builtins,
        // One process, a handful of calls: no pooling reservation needed.
        engine: EngineOptions { pooling: false, ..EngineOptions::default() },
        ..PluginHostConfig::default()
    })
    .map_err(|e| Failure::failed(format!("could not start the plugin host: {e}")))
}

/// The component bytes of FILE or a built-in, with a printable origin.
fn read_component(file: Option<&Path>, builtin: Option<&str>) -> Result<(Vec<u8>, String), Failure> {
    if let Some(name) = builtin {
        return builtin_component(name).map(|b| (b.to_vec(), format!("builtin:{name}"))).ok_or_else(|| {
            Failure::not_found(format!(
                "no built-in plugin named `{name}`; built-ins are webhook-notify, sms-gateway, appease-script, drill-sim and keyword-classifier"
            ))
        });
    }
    let file = file.expect("clap requires FILE or --builtin");
    match std::fs::read(file) {
        Ok(b) => Ok((b, file.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Failure::not_found(format!("{}: no such file", file.display())))
        }
        Err(e) => Err(Failure::failed(format!("cannot read {}: {e}", file.display()))),
    }
}

/// Exit code for a component the host refused to load.
fn load_failure(origin: &str, e: &LoadError) -> Failure {
    match e {
        LoadError::Io { .. } => Failure::failed(format!("{origin}: {e}")),
        _ => Failure::invalid(format!("{origin} was refused: {e}")),
    }
}

/// A `[plugins.NAME]` declaration as the JSON `plugin call` accepts as `grant`.
fn grant_json(name: &str, spec: &PluginSpec, cfg: &Config) -> Result<Value, String> {
    serde_json::to_value(crate::daemon::plugins::grant(spec, cfg)).map_err(|e| format!("[plugins.{name}]: {e}"))
}

/// The grant for `name`, with its secrets checked now so one missing
/// variable is reported for its plugin instead of failing the whole host.
fn grant_for(name: &str, spec: &PluginSpec, cfg: &Config) -> Result<PluginGrant, String> {
    let g = crate::daemon::plugins::grant(spec, cfg);
    for rule in &g.inject {
        rule.secret.resolve().map_err(|e| format!("[plugins.{name}] inject {}: {e}", rule.header))?;
    }
    Ok(g)
}

// -------------------------------------------------------------------- list

#[derive(Debug, Serialize)]
struct ListRow {
    name: String,
    world: Option<World>,
    version: Option<String>,
    sha256: Option<String>,
    /// `builtin`, or the component file.
    source: String,
    quarantined: bool,
    /// When the quarantine ends by itself.
    quarantine_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    crashes: u32,
    /// Whether quarantine and crashes are the running daemon's.
    live: bool,
    /// Outbound allow-list in effect (declared ∩ granted).
    effective_hosts: Vec<String>,
    /// Why the plugin (or its grant) could not be loaded.
    error: Option<String>,
}

fn list(cli: &Cli, cache: &CacheArgs) -> Result<(), Failure> {
    let cfg = load_config(cli)?;
    let mut grants = BTreeMap::new();
    let mut grant_errors: BTreeMap<String, String> = BTreeMap::new();
    for (name, spec) in &cfg.plugins {
        match grant_for(name, spec, &cfg) {
            Ok(g) => {
                grants.insert(name.clone(), g);
            }
            Err(e) => {
                grant_errors.insert(name.clone(), e);
            }
        }
    }
    let host = new_host(cache_dir(cli, cache, Some(&cfg)), grants, true)?;

    let mut rows: BTreeMap<String, ListRow> = BTreeMap::new();
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for (name, spec) in &cfg.plugins {
        let Some(file) = &spec.file else { continue };
        sources.insert(name.clone(), file.display().to_string());
        let refused = |msg: String| ListRow {
            name: name.clone(),
            world: spec.world.and_then(|w| w.as_str().parse().ok()),
            version: None,
            sha256: None,
            source: file.display().to_string(),
            quarantined: false,
            quarantine_ends_at: None,
            crashes: 0,
            live: false,
            effective_hosts: Vec::new(),
            error: Some(msg),
        };
        if let Some(e) = grant_errors.get(name) {
            rows.insert(name.clone(), refused(e.clone()));
            continue;
        }
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                rows.insert(name.clone(), refused(format!("cannot read {}: {e}", file.display())));
                continue;
            }
        };
        if let Err(e) = host.reload(name, &bytes) {
            rows.insert(name.clone(), refused(e.to_string()));
        }
    }
    let mut scan_errors = Vec::new();
    if let Some(dir) = &cfg.plugin_dir
        && dir.is_dir()
    {
        let report = host.scan_dir(Some(dir));
        for e in report.errors {
            scan_errors.push(ListRow {
                name: e.plugin.clone(),
                world: None,
                version: None,
                sha256: None,
                source: e.path.display().to_string(),
                quarantined: false,
                quarantine_ends_at: None,
                crashes: 0,
                live: false,
                effective_hosts: Vec::new(),
                error: Some(e.message),
            });
        }
    }
    for s in host.list() {
        let PluginStatus {
            name,
            version,
            sha256,
            world,
            source,
            quarantined,
            quarantine_ends_at,
            crashes,
            effective_hosts,
            last_error,
            ..
        } = s;
        let source = match source {
            PluginSource::Builtin => "builtin".to_string(),
            PluginSource::File(p) => p.display().to_string(),
            PluginSource::Bytes => sources.get(&name).cloned().unwrap_or_else(|| "bytes".into()),
        };
        let mut error = last_error.or_else(|| grant_errors.get(&name).cloned());
        if let Some(declared) = cfg.plugins.get(&name).and_then(|p| p.world)
            && declared.as_str() != world.as_str()
        {
            error = Some(format!("crisis.toml declares world `{declared}` but the component implements `{world}`"));
        }
        rows.insert(
            name.clone(),
            ListRow {
                name,
                world: Some(world),
                version: Some(version),
                sha256: Some(sha256),
                source,
                quarantined,
                quarantine_ends_at,
                crashes,
                live: false,
                effective_hosts,
                error,
            },
        );
    }
    // The daemon's view of the same versions, when one is running.
    for d in daemon_plugins(cli) {
        if let Some(r) = rows.get_mut(&d.name).filter(|r| r.sha256.as_deref() == Some(d.sha256.as_str())) {
            r.quarantined = d.quarantined;
            r.quarantine_ends_at = d.quarantine_ends_at;
            r.crashes = d.crashes;
            r.live = true;
        }
    }
    let mut rows: Vec<ListRow> = rows.into_values().collect();
    rows.extend(scan_errors);
    let failed = rows.iter().filter(|r| r.error.is_some()).count();

    if cli.json {
        print_json(&rows);
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.world.map(|w| w.to_string()).unwrap_or_else(|| "-".into()),
                    r.version.clone().unwrap_or_else(|| "-".into()),
                    r.sha256.as_deref().map(|s| s[..12.min(s.len())].to_string()).unwrap_or_else(|| "-".into()),
                    r.source.clone(),
                    match (&r.error, r.quarantined) {
                        (Some(_), _) => "error".into(),
                        (None, true) => match r.quarantine_ends_at {
                            Some(end) => format!(
                                "quarantined until {} ({} crashes)",
                                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                r.crashes
                            ),
                            None => format!("quarantined ({} crashes)", r.crashes),
                        },
                        (None, false) => "ok".into(),
                    },
                    if r.effective_hosts.is_empty() { "-".into() } else { r.effective_hosts.join(",") },
                ]
            })
            .collect();
        print!("{}", table(&["NAME", "WORLD", "VERSION", "SHA256", "SOURCE", "STATE", "EGRESS"], &cells));
        for r in rows.iter().filter(|r| r.error.is_some()) {
            eprintln!("{}: {}", r.name, r.error.as_deref().unwrap_or_default());
        }
    }
    if failed > 0 {
        // Already printed; only the exit code is left to give.
        return Err(Failure::new(1, ""));
    }
    Ok(())
}

/// The running daemon's plugin list, or nothing when no daemon answers
/// (`list` is an offline tool first).
fn daemon_plugins(cli: &Cli) -> Vec<PluginStatus> {
    let Ok(client) = super::client::Client::from_cli(cli) else { return Vec::new() };
    match client.get::<crate::daemon::api_types::StatusReply>("/v1/status") {
        Ok(s) => s.plugins,
        Err(_) => Vec::new(),
    }
}

// ------------------------------------------------------------ unquarantine

fn unquarantine(cli: &Cli, name: &str) -> Result<(), Failure> {
    let client = super::client::Client::from_cli(cli)?;
    let path = format!("/v1/plugins/{}/unquarantine", urlencoding_segment(name));
    let v: crate::plugin::PluginRef = client.post(&path, &json!({}))?;
    if cli.json {
        print_json(&v);
    } else {
        println!(
            "plugin `{}` ({} {}) is no longer quarantined; its next call runs",
            v.name,
            v.version,
            &v.sha256[..12.min(v.sha256.len())]
        );
    }
    Ok(())
}

/// A plugin name as one URL path segment.
fn urlencoding_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ----------------------------------------------------------------- inspect

fn inspect(cli: &Cli, file: Option<&Path>, builtin: Option<&str>, cache: &CacheArgs) -> Result<(), Failure> {
    let (bytes, origin) = read_component(file, builtin)?;
    let cfg = if config_in_use(cli) { Some(load_config(cli)?) } else { None };
    let host = new_host(cache_dir(cli, cache, cfg.as_ref()), BTreeMap::new(), false)?;
    let i = host.inspect(&bytes).map_err(|e| load_failure(&origin, &e))?;
    if cli.json {
        #[derive(Serialize)]
        struct Out<'a> {
            file: &'a str,
            #[serde(flatten)]
            inspection: &'a Inspection,
        }
        print_json(&Out { file: &origin, inspection: &i });
        return Ok(());
    }
    let d = &i.describe;
    let list = |v: &[String]| if v.is_empty() { "(none)".to_string() } else { v.join(", ") };
    println!("file:          {origin}");
    println!("world:         {} ({})", i.world, i.api_version);
    println!("plugin:        {} {}", d.name, d.version);
    println!("description:   {}", d.description);
    println!("sha256:        {}", i.sha256);
    println!("size:          {} bytes", i.size_bytes);
    println!("capabilities:  {}", list(&i.capabilities));
    println!("allowed hosts: {}  (declared; effective = declared ∩ the operator's grant)", list(&d.allowed_hosts));
    println!("config keys:   {}", list(&d.config_keys));
    println!("exports:");
    for e in &i.exports {
        println!("  {e}");
    }
    println!("imports:");
    for im in &i.imports {
        println!("  {im}");
    }
    Ok(())
}

// -------------------------------------------------------------------- call

#[allow(clippy::too_many_arguments)]
fn call(
    cli: &Cli,
    file: Option<&Path>,
    builtin: Option<&str>,
    world: World,
    input: &str,
    live: bool,
    grant_name: Option<&str>,
    cache: &CacheArgs,
) -> Result<(), Failure> {
    let (bytes, origin) = read_component(file, builtin)?;
    let text = read_input(input)?;
    let user: Value =
        serde_json::from_str(&text).map_err(|e| Failure::invalid(format!("--input is not valid JSON: {e}")))?;
    if !user.is_object() {
        return Err(Failure::invalid("--input must be a JSON object (see `crisis plugin call --help`)"));
    }
    let mut merged = fixture(world);
    merge(&mut merged, user);

    let cfg = if config_in_use(cli) || grant_name.is_some() { Some(load_config(cli)?) } else { None };
    if let Some(name) = grant_name
        && merged.get("grant").is_none()
    {
        let cfg = cfg.as_ref().expect("loaded above");
        let spec = cfg
            .plugins
            .get(name)
            .ok_or_else(|| Failure::not_found(format!("--grant {name}: the configuration has no [plugins.{name}]")))?;
        merged["grant"] = grant_json(name, spec, cfg).map_err(Failure::invalid)?;
    }

    // A drill call without a grant may "reach" any host: the host captures
    // every request, so nothing leaves the machine. A live call without a
    // grant has no egress at all.
    if !live && merged.get("grant").is_none() {
        merged["grant"] = json!({ "allowed_hosts": ["*"] });
    }

    let host = new_host(cache_dir(cli, cache, cfg.as_ref()), BTreeMap::new(), false)?;
    let mode = if live { RunMode::Live } else { RunMode::Drill };
    match host.call_json(&bytes, world, &merged.to_string(), mode) {
        Ok(out) => {
            if cli.json {
                let mut out = out;
                out["file"] = json!(origin);
                print_json(&out);
            } else {
                print_call(&origin, &out);
            }
            Ok(())
        }
        Err(e) => Err(call_failure(cli, &origin, &e)),
    }
}

fn read_input(input: &str) -> Result<String, Failure> {
    let Some(path) = input.strip_prefix('@') else { return Ok(input.to_string()) };
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::failed(format!("cannot read the input from stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Failure::not_found(format!("--input @{path}: no such file"))
        } else {
            Failure::failed(format!("--input @{path}: {e}"))
        }
    })
}

/// Exit 2 for bad input and refused components, 1 for a call that ran and failed.
fn call_failure(cli: &Cli, origin: &str, e: &PluginCallError) -> Failure {
    let code: u8 = match e {
        PluginCallError::Input { .. } => 2,
        PluginCallError::Load { source, .. } => match source {
            LoadError::Io { .. } => 1,
            _ => 2,
        },
        _ => 1,
    };
    let message = match e {
        PluginCallError::Load { source, .. } => format!("{origin} was refused: {source}"),
        PluginCallError::Input { message, .. } => format!("bad input: {message}"),
        PluginCallError::Plugin { error, .. } => {
            format!("{origin}: the plugin returned an error: {error}")
        }
        other => format!("{origin}: {other}"),
    };
    if cli.json {
        let (kind, plugin_error) = match e {
            PluginCallError::Plugin { error, .. } => ("plugin", serde_json::to_value(error).ok()),
            PluginCallError::Timeout { .. } => ("timeout", None),
            PluginCallError::ResourceExhausted { .. } => ("resource_exhausted", None),
            PluginCallError::Crashed { .. } => ("crashed", None),
            PluginCallError::Denied { .. } => ("denied", None),
            PluginCallError::Load { .. } => ("refused", None),
            PluginCallError::Input { .. } => ("input", None),
            _ => ("other", None),
        };
        print_json(&json!({ "error": message, "code": code, "kind": kind, "plugin_error": plugin_error }));
        return Failure::new(code, "");
    }
    Failure::new(code, message)
}

fn print_call(origin: &str, out: &Value) {
    let s = |k: &str| out.get(k).and_then(Value::as_str).unwrap_or("");
    println!(
        "{} {} ({}) · world {} · mode {} · sha256 {}",
        s("plugin"),
        s("version"),
        origin,
        s("world"),
        s("mode"),
        &s("sha256")[..12.min(s("sha256").len())]
    );
    println!("result:");
    let value = serde_json::to_string_pretty(out.get("value").unwrap_or(&Value::Null)).unwrap_or_default();
    for line in value.lines() {
        println!("  {line}");
    }
    let http = out.get("http").and_then(Value::as_array).cloned().unwrap_or_default();
    println!("http requests: {}", http.len());
    for r in &http {
        let d = &r["disposition"];
        let disposition = match d["result"].as_str().unwrap_or("") {
            "captured" => "captured (drill: not sent, answered 200)".to_string(),
            "sent" => format!("sent, upstream answered {}", d["status"]),
            "denied" => format!("denied: {}", d["reason"].as_str().unwrap_or("")),
            "failed" => format!("failed: {}", d["error"].as_str().unwrap_or("")),
            other => other.to_string(),
        };
        println!("  {} {} -> {}", r["method"].as_str().unwrap_or(""), r["url"].as_str().unwrap_or(""), disposition);
        for h in r["headers"].as_array().into_iter().flatten() {
            println!("    {}: {}", h[0].as_str().unwrap_or(""), h[1].as_str().unwrap_or(""));
        }
        println!("    body ({} bytes): {}", r["body_bytes"], r["body_preview"].as_str().unwrap_or(""));
    }
    let logs = out.get("logs").and_then(Value::as_array).cloned().unwrap_or_default();
    println!("logs: {}", logs.len());
    for l in &logs {
        println!(
            "  [{} {}] {}",
            l["source"].as_str().unwrap_or(""),
            l["level"].as_str().unwrap_or(""),
            l["message"].as_str().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep_for_objects_and_replaces_the_rest() {
        let mut base = json!({"a": {"x": 1, "y": [1, 2]}, "b": 1});
        merge(&mut base, json!({"a": {"y": [3], "z": true}, "c": "new"}));
        assert_eq!(base, json!({"a": {"x": 1, "y": [3], "z": true}, "b": 1, "c": "new"}));
    }

    #[test]
    fn fixtures_parse_as_call_input_for_every_world() {
        for w in [World::Notifier, World::Appeasement, World::Drill] {
            let f = fixture(w);
            assert!(f.get("invocation").is_some(), "{w}");
        }
        assert_eq!(fixture(World::Notifier)["notification"]["incident"]["severity"], "sev2");
    }
}
