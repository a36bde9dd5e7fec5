//! `PluginHost`: load, check, swap and call plugins.
//!
//! Threading: every method is blocking. Call them from a plain thread or
//! from `tokio::task::spawn_blocking`, never directly from an async task
//! (they drive wasmtime on a small runtime the host owns, with
//! `Runtime::block_on`, which would panic inside another runtime's worker).
//! The guest runs on the calling thread; the host's runtime only runs
//! timers and outbound HTTP. Why async wasmtime under a blocking API: an
//! outer `tokio::time::timeout` stops guests parked in host waits (sleeps,
//! slow HTTP) that epoch interruption alone cannot stop.

use super::api::*;
use super::cache::{CacheStats, CompileCache, sha256_hex};
use super::call::{CallEnv, CallKind, CallSlots, CallValue, RunOutput};
use super::capabilities::{self, Linkers};
use super::engine::{self, EngineOptions};
use super::error::{LoadError, PluginCallError};
use super::grant::{GrantError, PluginGrant, ResolvedGrant, SecretRef, SecretValue};
use super::limits::{LimitCaps, Limits};
use super::pattern::{HostPattern, effective_hosts};
use super::quarantine::{Breaker, BreakerState, DEFAULT_QUARANTINE_BASE};
use super::registry::{PluginManifest, PluginVersion, Registry, ScanError, ScanReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// How a `PluginHost` is set up. Why a struct with defaults: the daemon
/// fills it from `crisis.toml`; tests change one field at a time.
#[derive(Debug, Clone)]
pub struct PluginHostConfig {
    /// Compiled-component cache, normally `<state_dir>/plugin-cache`. `None`
    /// compiles in memory on every load.
    pub cache_dir: Option<PathBuf>,
    /// Directory of operator plugins (`*.wasm` + optional `*.toml`), scanned by
    /// [`PluginHost::scan_dir`].
    pub plugin_dir: Option<PathBuf>,
    /// `[plugins.NAME]` grants from the daemon config.
    pub grants: BTreeMap<String, PluginGrant>,
    /// Load the built-ins: `webhook-notify`, `sms-gateway`, `appease-script`, `drill-sim` and `keyword-classifier`.
    pub load_builtins: bool,
    /// wasmtime engine settings: pooling allocator sizes and related knobs.
    pub engine: EngineOptions,
    /// Upper bounds that grant `limits` overrides are clamped to.
    pub caps: LimitCaps,
    /// Faults (trap, timeout, out-of-memory) within `quarantine_window` that
    /// quarantine a plugin version.
    pub quarantine_after: u32,
    /// Sliding window in which faults are counted toward `quarantine_after`.
    pub quarantine_window: Duration,
    /// How long a version's first quarantine lasts; each further one lasts
    /// twice as long, up to an hour.
    pub quarantine_base: Duration,
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        PluginHostConfig {
            cache_dir: None,
            plugin_dir: None,
            grants: BTreeMap::new(),
            load_builtins: true,
            engine: EngineOptions::default(),
            caps: LimitCaps::default(),
            quarantine_after: 3,
            quarantine_window: Duration::from_secs(300),
            quarantine_base: DEFAULT_QUARANTINE_BASE,
        }
    }
}

/// Error creating a `PluginHost`. Why separate: it is fatal at daemon start
/// and names which part failed.
#[derive(Debug, thiserror::Error)]
pub enum HostInitError {
    /// wasmtime (or the host's I/O runtime) could not be started, e.g. the
    /// machine refused the memory reservation.
    #[error("could not start the WebAssembly engine: {0}")]
    Engine(String),
    /// A `[plugins.NAME]` grant is invalid or names a secret that cannot be read.
    #[error("plugin grant: {0}")]
    Grant(#[from] GrantError),
    /// A built-in plugin was refused at load; a grant for it may be too restrictive.
    #[error("built-in plugin `{name}` failed to load: {source}")]
    Builtin {
        /// Name of the built-in, e.g. `webhook-notify`.
        name: String,
        /// Why it was refused (usually a grant limit too tight for `describe`).
        source: LoadError,
    },
    /// The compiled-component cache directory could not be created or used.
    #[error("plugin cache: {0}")]
    Cache(LoadError),
}

/// Why [`PluginHost::unquarantine`] changed nothing. Why typed: the API
/// answers 404 (with nearby names) or 409 from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnquarantineError {
    /// No plugin of that name is loaded.
    #[error("no plugin named `{plugin}` is loaded{}; `crisis plugin list` shows the loaded ones", did_you_mean(nearby))]
    NotFound {
        /// The name asked for.
        plugin: String,
        /// Loaded plugins with similar names.
        nearby: Vec<String>,
    },
    /// The running version is not quarantined (never was, or it expired).
    #[error("plugin `{plugin}` is not quarantined")]
    NotQuarantined {
        /// The name asked for.
        plugin: String,
    },
}

fn did_you_mean(nearby: &[String]) -> String {
    if nearby.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", nearby.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
    }
}

fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// Result of [`PluginHost::reload`]. Why: the reload task reports whether
/// anything changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum ReloadOutcome {
    /// A new version now serves calls.
    Swapped(PluginRef),
    /// The bytes equal the running version; nothing changed.
    Unchanged(PluginRef),
}

/// The plugin subsystem: one engine, the compiled-component cache, grants and
/// the registry. `Send + Sync`; share it with `Arc`.
pub struct PluginHost {
    engine: Engine,
    pooling: bool,
    linkers: Linkers,
    cache: CompileCache,
    rt: Option<tokio::runtime::Runtime>,
    pub(super) grants: RwLock<BTreeMap<String, Arc<ResolvedGrant>>>,
    pub(super) registry: Registry,
    pub(super) caps: LimitCaps,
    pub(super) plugin_dir: Option<PathBuf>,
    quarantine_after: u32,
    quarantine_window: Duration,
    /// `quarantine_base` in milliseconds; changed by config reloads.
    quarantine_base_ms: AtomicU64,
    /// Bounds concurrent calls to what the instance pool holds, so a burst
    /// waits instead of failing (and never counts as a plugin crash).
    slots: CallSlots,
    /// Connections to notifier receivers, kept open between calls.
    transport: Arc<super::transport::Transport>,
}

// The daemon shares one host across threads; keep that a compile-time fact.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PluginHost>();
};

impl PluginHost {
    /// Start the engine (pooling, or on-demand if the reservation fails) and
    /// its epoch ticker, resolve grants, and load the built-ins.
    pub fn new(config: PluginHostConfig) -> Result<PluginHost, HostInitError> {
        let (engine, pooling) =
            engine::build_engine(&config.engine).map_err(|e| HostInitError::Engine(format!("{e:#}")))?;
        engine::start_epoch_ticker(&engine);
        let linkers = Linkers::new(&engine).map_err(|e| HostInitError::Engine(format!("{e:#}")))?;
        let cache = CompileCache::new(config.cache_dir.clone(), engine::compatibility_digest(&engine))
            .map_err(HostInitError::Cache)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("crisis-plugin-io")
            .enable_all()
            .build()
            .map_err(|e| HostInitError::Engine(format!("plugin I/O runtime: {e}")))?;
        let mut grants = BTreeMap::new();
        for (name, g) in &config.grants {
            grants.insert(name.clone(), Arc::new(g.resolve(name)?));
        }
        let host = PluginHost {
            engine,
            pooling,
            linkers,
            cache,
            rt: Some(rt),
            grants: RwLock::new(grants),
            registry: Registry::default(),
            caps: config.caps.clone(),
            plugin_dir: config.plugin_dir.clone(),
            quarantine_after: config.quarantine_after.max(1),
            quarantine_window: config.quarantine_window,
            quarantine_base_ms: AtomicU64::new(duration_ms(config.quarantine_base)),
            // Interpreted guests have several memories per instance.
            slots: CallSlots::new(
                (config.engine.pool_instances as usize).min(config.engine.pool_memories as usize / 2),
            ),
            transport: Arc::default(),
        };
        if config.load_builtins {
            for (name, bytes) in super::builtin::BUILTINS {
                let v = host
                    .prepare(name, bytes, PluginSource::Builtin, None, None)
                    .map_err(|source| HostInitError::Builtin { name: name.to_string(), source })?;
                host.registry.install(Arc::new(v));
            }
        }
        Ok(host)
    }

    /// Whether the pooling allocator is in use (false after a fallback).
    /// Why: shown in `crisis status` so a slow box can be diagnosed.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compile counters. Why: proves cache hits in tests and feeds metrics.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Replace one plugin's grant (secrets are read now). Why: config reloads
    /// change grants without reloading plugins; the next call uses the new one.
    pub fn set_grant(&self, name: &str, grant: &PluginGrant) -> Result<(), GrantError> {
        let resolved = Arc::new(grant.resolve(name)?);
        self.grants.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), resolved);
        Ok(())
    }

    /// Replace one plugin's grant with secrets supplied by the caller. Why:
    /// the daemon may resolve `SecretRef`s itself (one place that reads
    /// secrets, one error report) and hand the values in.
    pub fn set_grant_with_secrets(
        &self,
        name: &str,
        grant: &PluginGrant,
        secrets: &dyn Fn(&SecretRef) -> Result<SecretValue, GrantError>,
    ) -> Result<(), GrantError> {
        let resolved = Arc::new(grant.resolve_with(name, secrets)?);
        self.grants.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), resolved);
        Ok(())
    }

    pub(super) fn grant(&self, name: &str) -> Arc<ResolvedGrant> {
        self.grants.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned().unwrap_or_default()
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime lives until drop")
    }

    /// What one call needs from the host: the engine, the runtime and the call slots.
    pub(super) fn call_env(&self) -> CallEnv<'_> {
        CallEnv { engine: &self.engine, rt: self.rt(), slots: &self.slots, stub: None, transport: &self.transport }
    }

    // ----------------------------------------------------------------- load

    /// Compile (or load from cache), check world and imports, link, and run
    /// `describe` under the init budget.
    pub(super) fn prepare(
        &self,
        name: &str,
        bytes: &[u8],
        source: PluginSource,
        expected: Option<World>,
        manifest: Option<&PluginManifest>,
    ) -> Result<PluginVersion, LoadError> {
        let grant = self.grant(name);
        self.prepare_with(name, bytes, source, expected, manifest, grant)
    }

    pub(super) fn prepare_with(
        &self,
        name: &str,
        bytes: &[u8],
        source: PluginSource,
        expected: Option<World>,
        manifest: Option<&PluginManifest>,
        grant: Arc<ResolvedGrant>,
    ) -> Result<PluginVersion, LoadError> {
        let sha = sha256_hex(bytes);
        if let Some(pin) = manifest.and_then(|m| m.plugin.sha256.as_ref())
            && !pin.eq_ignore_ascii_case(&sha)
        {
            return Err(LoadError::ShaMismatch { expected: pin.clone(), actual: sha });
        }
        let component = self.cache.load(&self.engine, bytes, &sha)?;
        let shape = capabilities::analyze(&self.engine, &component)?;
        let expected = expected.or_else(|| manifest.and_then(|m| m.plugin.world));
        if let Some(exp) = expected
            && exp != shape.world
        {
            return Err(LoadError::WrongWorld { expected: exp, found: shape.world });
        }
        let pre = self
            .linkers
            .for_world(shape.world)
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let indices =
            super::indices::WorldIndices::resolve(shape.world, &pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut version = PluginVersion {
            name: name.to_string(),
            world: shape.world,
            api_version: shape.api_version,
            sha256: sha,
            size: bytes.len(),
            source,
            pre,
            indices,
            describe: PluginDescription::default(),
            declared: Vec::new(),
            imports: shape.imports,
            exports: shape.exports,
            breaker: Mutex::new(Breaker::default()),
            calls: AtomicU64::new(0),
            warm: Mutex::new(Vec::new()),
        };
        let limits = Limits::for_world(version.world).with_overrides(&grant.limits, &self.caps);
        let out = self
            .call_env()
            .run(
                &version,
                grant.clone(),
                &limits,
                limits.init_budget,
                RunMode::Live,
                "describe",
                grant.config.clone(),
                CallKind::Describe,
            )
            .map_err(|e| LoadError::Describe(e.to_string()))?;
        let CallValue::Describe(desc) = out.value else { unreachable!("describe returns a description") };
        let declared_src =
            manifest.and_then(|m| m.plugin.allowed_hosts.clone()).unwrap_or_else(|| desc.allowed_hosts.clone());
        version.declared = declared_src
            .iter()
            .map(|h| HostPattern::parse(h).map_err(|e| LoadError::Describe(format!("declared host `{h}`: {e}"))))
            .collect::<Result<_, _>>()?;
        version.describe = desc;
        Ok(version)
    }

    /// Load `bytes` as plugin `name` and swap it in atomically. Calls already
    /// running finish on the version they started with; on any error the
    /// running version stays and the error is remembered for `list()`.
    /// Blocking (compiles); call from the reload task's blocking thread.
    pub fn reload(&self, name: &str, bytes: &[u8]) -> Result<ReloadOutcome, LoadError> {
        self.reload_from(name, bytes, PluginSource::Bytes, None)
    }

    pub(super) fn reload_from(
        &self,
        name: &str,
        bytes: &[u8],
        source: PluginSource,
        manifest: Option<&PluginManifest>,
    ) -> Result<ReloadOutcome, LoadError> {
        let _serial = self.registry.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = self.registry.get(name) {
            let cur = slot.current.load_full();
            if cur.sha256 == sha256_hex(bytes) && cur.source == source {
                return Ok(ReloadOutcome::Unchanged(plugin_ref(&cur)));
            }
        }
        match self.prepare(name, bytes, source, None, manifest) {
            Ok(v) => {
                let v = Arc::new(v);
                let r = plugin_ref(&v);
                let old = self.registry.install(v);
                tracing::info!(plugin = name, sha256 = %r.sha256, previous = ?old.map(|o| o.short_sha()), "plugin loaded");
                Ok(ReloadOutcome::Swapped(r))
            }
            Err(e) => {
                tracing::warn!(plugin = name, error = %e, "plugin load refused; the running version (if any) stays");
                self.registry.set_error(name, e.to_string());
                Err(e)
            }
        }
    }

    /// Scan a plugin directory (default: the configured one): every
    /// `NAME.wasm`, with optional `NAME.toml` manifest, is loaded if new or
    /// changed; file plugins whose file is gone are unloaded. Errors are
    /// collected per file; the last good version keeps running. Why one
    /// function: the daemon's watcher, SIGHUP and `crisis reload` all call it.
    pub fn scan_dir(&self, dir: Option<&Path>) -> ScanReport {
        let mut report = ScanReport::default();
        let Some(dir) = dir.or(self.plugin_dir.as_deref()) else { return report };
        let found = self.read_plugin_dir(dir);
        report.errors = found.errors;
        for c in found.candidates {
            match self.reload_from(&c.name, &c.bytes, PluginSource::File(c.path.clone()), c.manifest.as_ref()) {
                Ok(ReloadOutcome::Swapped(_)) => report.loaded.push(c.name),
                Ok(ReloadOutcome::Unchanged(_)) => report.unchanged.push(c.name),
                Err(e) => report.errors.push(ScanError { path: c.path, plugin: c.name, message: e.to_string() }),
            }
        }
        for name in found.gone {
            self.registry.remove(&name);
            report.removed.push(name);
        }
        report
    }

    /// Lift the quarantine of a plugin's running version; the next call runs.
    /// Why: after an operator fixed what the plugin depends on (e.g. an
    /// upstream that made it crash) without new bytes, waiting out the
    /// backoff would keep paging stopped for nothing.
    pub fn unquarantine(&self, name: &str) -> Result<PluginRef, UnquarantineError> {
        let Some(slot) = self.registry.get(name) else {
            let names = self.registry.names();
            let nearby = crate::diag::nearby(name, names.iter().map(String::as_str));
            return Err(UnquarantineError::NotFound { plugin: name.into(), nearby });
        };
        let v = slot.current.load_full();
        if !v.breaker().lift(Instant::now()) {
            return Err(UnquarantineError::NotQuarantined { plugin: name.into() });
        }
        tracing::warn!(plugin = name, sha256 = %v.short_sha(), "plugin quarantine lifted by an operator");
        Ok(plugin_ref(&v))
    }

    /// Change how long a first quarantine lasts (later ones double it). Why:
    /// `crisis.toml` sets it and a reload may change it without a restart.
    pub fn set_quarantine_base(&self, base: Duration) {
        self.quarantine_base_ms.store(duration_ms(base.max(Duration::from_millis(1))), Ordering::Relaxed);
    }

    fn quarantine_base(&self) -> Duration {
        Duration::from_millis(self.quarantine_base_ms.load(Ordering::Relaxed))
    }

    /// Every loaded plugin with its state. Why: `crisis plugin list` and status.
    pub fn list(&self) -> Vec<PluginStatus> {
        let mut out = Vec::new();
        for name in self.registry.names() {
            let Some(slot) = self.registry.get(&name) else { continue };
            let v = slot.current.load_full();
            let grant = self.grant(&name);
            let effective_hosts = effective_hosts(&v.declared, &grant.allowed_hosts);
            let now = Instant::now();
            let (state, crashes) = {
                let b = v.breaker();
                (b.state(now), b.fault_count(now, self.quarantine_window))
            };
            let quarantine_ends_at = match state {
                BreakerState::Open { until_wall, .. } => Some(chrono::DateTime::<chrono::Utc>::from(until_wall)),
                _ => None,
            };
            out.push(PluginStatus {
                name: v.name.clone(),
                version: v.describe.version.clone(),
                sha256: v.sha256.clone(),
                world: v.world,
                source: v.source.clone(),
                quarantined: quarantine_ends_at.is_some(),
                quarantine_ends_at,
                crashes,
                calls: v.calls.load(Ordering::Relaxed),
                effective_hosts,
                last_error: slot.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            });
        }
        out
    }

    /// The world of a loaded plugin. Why: playbook validation checks that a
    /// step's plugin fits its kind (`notify` → notifier, `appease` → appeasement).
    pub fn world_of(&self, name: &str) -> Option<World> {
        self.registry.get(name).map(|s| s.current.load().world)
    }

    // ---------------------------------------------------------------- calls

    /// Send a notification with a notifier plugin. `target.config` is merged
    /// over the grant's config. The outcome carries every HTTP request (sent,
    /// denied or, in drills, captured) for the journal.
    pub fn notify(
        &self,
        plugin: &str,
        inv: &Invocation,
        note: &Notification,
        target: &NotifyTarget,
    ) -> Result<CallOutcome<Receipt>, PluginCallError> {
        let mut config = target.config.clone();
        config.extend(target.secrets.iter().map(|(k, v)| (k.clone(), v.expose().to_string())));
        let extra = target_scrubber(target);
        let (v, out) =
            self.invoke(plugin, World::Notifier, inv, &config, &extra, CallKind::Send(inv.clone(), note.clone()))?;
        let CallValue::Send(mut r) = out.value else { unreachable!() };
        let scrub = self.scrubber(plugin, target);
        r.detail = scrub.scrub(&r.detail);
        r.provider_id = r.provider_id.map(|p| scrub.scrub(&p));
        Ok(CallOutcome { value: r, plugin: v, http: out.http, logs: out.logs })
    }

    /// Everything a notify call to `plugin` for `target` must keep out of
    /// logs and journals: the grant's secrets, the target's resolved
    /// secrets and its contact details. Why public to the crate: the daemon
    /// scrubs the error texts and summaries it journals with the same values.
    pub(crate) fn scrubber(&self, plugin: &str, target: &NotifyTarget) -> super::Scrubber {
        let mut s = self.grant(plugin).scrub.clone();
        s.extend(&target_scrubber(target));
        s
    }

    /// Compose the messages for one customer with an appeasement plugin. The
    /// plugin never sees contact details; the host delivers the messages.
    pub fn compose(
        &self,
        plugin: &str,
        inv: &Invocation,
        incident: &IncidentInfo,
        customer: &CustomerRef,
    ) -> Result<CallOutcome<Vec<ComposedMessage>>, PluginCallError> {
        let (v, out) = self.invoke(
            plugin,
            World::Appeasement,
            inv,
            &BTreeMap::new(),
            &super::Scrubber::default(),
            CallKind::Compose(inv.clone(), incident.clone(), customer.clone()),
        )?;
        let CallValue::Compose(m) = out.value else { unreachable!() };
        Ok(CallOutcome { value: m, plugin: v, http: out.http, logs: out.logs })
    }

    /// Ask a drill simulator for a scenario of timed injects.
    pub fn drill_plan(
        &self,
        plugin: &str,
        inv: &Invocation,
        incident: &IncidentInfo,
        params: &[(String, String)],
    ) -> Result<CallOutcome<Scenario>, PluginCallError> {
        let (v, out) = self.invoke(
            plugin,
            World::Drill,
            inv,
            &BTreeMap::new(),
            &super::Scrubber::default(),
            CallKind::Plan(inv.clone(), incident.clone(), params.to_vec()),
        )?;
        let CallValue::Plan(s) = out.value else { unreachable!() };
        Ok(CallOutcome { value: s, plugin: v, http: out.http, logs: out.logs })
    }

    /// Let a drill simulator add criteria from the finished drill's journal (JSON).
    pub fn drill_score(
        &self,
        plugin: &str,
        inv: &Invocation,
        journal_json: &str,
    ) -> Result<CallOutcome<Vec<Criterion>>, PluginCallError> {
        let (v, out) = self.invoke(
            plugin,
            World::Drill,
            inv,
            &BTreeMap::new(),
            &super::Scrubber::default(),
            CallKind::Score(inv.clone(), journal_json.to_string()),
        )?;
        let CallValue::Score(c) = out.value else { unreachable!() };
        Ok(CallOutcome { value: c, plugin: v, http: out.http, logs: out.logs })
    }

    pub(super) fn invoke(
        &self,
        name: &str,
        world: World,
        inv: &Invocation,
        extra_config: &BTreeMap<String, String>,
        extra_scrub: &super::Scrubber,
        kind: CallKind,
    ) -> Result<(PluginRef, RunOutput), PluginCallError> {
        let slot = self.registry.get(name).ok_or_else(|| PluginCallError::NotFound { plugin: name.into() })?;
        // Hold this version for the whole call, whatever reloads happen.
        let v = slot.current.load_full();
        if v.world != world {
            return Err(PluginCallError::Denied {
                plugin: name.into(),
                reason: format!("it is a {} plugin and cannot be used as {world}", v.world),
            });
        }
        {
            let now = Instant::now();
            let mut b = v.breaker();
            if let Err(BreakerState::Open { until, .. }) = b.admit(now) {
                return Err(PluginCallError::Quarantined {
                    plugin: name.into(),
                    sha256_short: v.short_sha(),
                    crashes: b.fault_count(now, self.quarantine_window),
                    remaining: until.saturating_duration_since(now),
                });
            }
        }
        let mut grant = self.grant(name);
        if !extra_scrub.is_empty() {
            // This call's own secrets and contacts join the grant's, so the
            // log sink and the egress hook scrub them at the source.
            let mut g = (*grant).clone();
            g.scrub.extend(extra_scrub);
            grant = Arc::new(g);
        }
        let scrub = grant.scrub.clone();
        let limits = Limits::for_world(world).with_overrides(&grant.limits, &self.caps);
        let mut budget = limits.call_budget;
        if let Some(ms) = inv.budget_ms {
            budget = budget.min(Duration::from_millis(ms as u64));
        }
        let mut config = grant.config.clone();
        config.extend(extra_config.iter().map(|(k, v)| (k.clone(), v.clone())));
        v.calls.fetch_add(1, Ordering::Relaxed);
        let result = self.call_env().run(&v, grant, &limits, budget, inv.mode, &inv.invocation_id, config, kind);
        let now = Instant::now();
        match &result {
            Err(e) if e.is_fault() => {
                let r = v.breaker().record_fault(
                    now,
                    self.quarantine_after,
                    self.quarantine_window,
                    self.quarantine_base(),
                );
                let error = scrub.scrub(&e.to_string());
                tracing::error!(plugin = name, sha256 = %v.short_sha(), faults = r.count, error = %error, "plugin call failed");
                if let Some(d) = r.quarantined_for {
                    tracing::error!(plugin = name, sha256 = %v.short_sha(), faults = r.count, quarantine_ms = d.as_millis() as u64, "plugin version quarantined after repeated crashes");
                }
            }
            Ok(_) => v.breaker().record_success(now),
            Err(e) if e.guest_ran_cleanly() => v.breaker().record_success(now),
            Err(_) => {}
        }
        result.map(|out| (plugin_ref(&v), out))
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        // Never block (the host may be dropped inside an async context).
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The per-call secrets and contact details of a notify target.
fn target_scrubber(target: &NotifyTarget) -> super::Scrubber {
    let mut s = super::Scrubber::default();
    for v in target.secrets.values() {
        s.add_secret(v.expose());
    }
    for c in &target.contacts {
        s.add_contact(c);
    }
    s
}

pub(super) fn plugin_ref(v: &PluginVersion) -> PluginRef {
    PluginRef { name: v.name.clone(), version: v.describe.version.clone(), sha256: v.sha256.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_plugin_holds_its_worlds_export_indices_and_no_other() {
        let host = PluginHost::new(PluginHostConfig::default()).unwrap();
        let v = host.registry.get("drill-sim").unwrap().current.load_full();
        assert!(v.indices.drill().is_ok());
        let err = v.indices.notifier().err().unwrap().to_string();
        assert!(err.contains("drill") && err.contains("not a notifier"), "{err}");
    }
}
