//! `crisis daemon`: the long-running process. It owns the journal, serves the
//! API (on loopback, or beyond it over TLS or with `insecure_listen`), fires
//! timers and runs side effects. Everything it keeps on disk is private to its
//! user: the state directory is 0700 and its files 0600.

pub(crate) mod api;
pub(crate) mod api_types;
pub(crate) mod auth;
pub(crate) mod background;
pub(crate) mod breaker;
mod cluster_gen;
pub(crate) mod complaints;
pub(crate) mod console;
mod contact_mask;
pub(crate) mod drill_control;
pub mod drills;
mod engine_call;
pub(crate) mod executor;
pub(crate) mod intake;
pub(crate) mod lag;
pub(crate) mod lock;
pub(crate) mod metric_registry;
pub(crate) mod metrics;
pub(crate) mod node;
mod node_status;
mod pagerduty;
pub mod paging;
pub(crate) mod plugins;
mod recorder;
pub(crate) mod reload;
mod reload_follow;
mod smtp;
pub(crate) mod status_page;
pub(crate) mod tls;
mod token_api;
pub(crate) mod tokens;
pub(crate) mod worker;

pub use console::assets_size as console_assets_size;

use crate::config::state_dir::{StateDir, private_umask, restrict_file};
use crate::config::{self, Config};
use crate::diag::Diagnostic;
use crate::incident::Engine;
use crate::incident::clock::{Clock, SystemClock, fmt_ms};
use crate::incident::effects::Executor;
use crate::store::{PgStore, SqliteStore, Store};
use metrics::Metrics;
use reload::Reloader;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Shared state of the running daemon.
pub struct AppState {
    /// The incident engine every API handler works through.
    pub engine: Arc<Engine>,
    /// The Wasm plugin host that runs notifier, appeasement and drill plugins.
    pub plugins: Arc<crate::plugin::PluginHost>,
    /// The bootstrap admin token (the contents of `state_dir/api.token`).
    pub token: String,
    /// Every API token the `/v1` gate accepts, kept in memory so a request
    /// never waits for the journal database.
    pub(crate) tokens: Arc<tokens::TokenRegistry>,
    /// Unix milliseconds when this daemon started, for status output.
    pub started_at: i64,
    /// The config file in use; `None` when running on the embedded defaults.
    pub config_path: Option<PathBuf>,
    /// Counters and gauges served on the metrics endpoint.
    pub metrics: Arc<Metrics>,
    /// Applies config and playbook reloads and remembers whether the last load succeeded.
    pub reload: Arc<Reloader>,
    /// Limits how many triggers intake accepts per minute.
    pub intake_limiter: intake::RateLimiter,
    /// Drill runs, schedules and the engines of drills in progress; one per
    /// daemon, shared by the drill API, the incident API and the scheduler.
    pub drills: Arc<drills::DrillService>,
    /// The outbox's delivery lanes and breakers, for status and metrics.
    pub(crate) dispatch: Arc<worker::Dispatch>,
    /// The resolved `metrics_token`: the bearer token that lets non-loopback
    /// peers read the probes; `None` keeps them loopback-only.
    pub metrics_token: Option<String>,
    /// This daemon as a node of the journal database, for status and metrics.
    pub(crate) node: Arc<node::Node>,
    /// The web console's sign-in sessions and the feed of journal changes its pages follow.
    pub(crate) console: Arc<console::Console>,
}

impl AppState {
    /// True once a valid configuration and playbook set is loaded, for the readiness probe.
    pub fn ready(&self) -> bool {
        self.reload.ready()
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CRISIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Why the daemon could not start.
pub enum StartError {
    /// The configuration itself is invalid (exit 2).
    Config(Vec<Diagnostic>),
    /// Anything else (exit 1).
    Other(anyhow::Error),
}

/// Runs the daemon until SIGINT or SIGTERM, then shuts down in bounded time.
pub fn run(config_path: Option<PathBuf>, log_format: LogFormat) -> Result<(), StartError> {
    init_logging(log_format);
    // Files SQLite and drills create get no group or other bits from the start.
    private_umask();
    let cfg = config::discover(config_path.as_deref()).map_err(StartError::Config)?;
    StateDir::new(&cfg.state_dir).ensure_private().map_err(|e| StartError::Other(e.into()))?;
    let started_at = SystemClock.now_ms();
    // Taken before the journal is opened: a second daemon must not touch it at all.
    let lock =
        lock::StateDirLock::acquire(&cfg.state_dir, &fmt_ms(started_at)).map_err(|e| StartError::Other(e.into()))?;
    tracing::info!("holding {} for pid {}", lock.path().display(), std::process::id());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("crisis")
        .build()
        .map_err(|e| StartError::Other(e.into()))?;
    let result = rt.block_on(serve(cfg, config_path, started_at));
    // A call abandoned after the grace period still occupies a blocking
    // thread: do not wait for it; the process ends and the intent stays pending.
    rt.shutdown_background();
    // The journal was flushed by `serve`; only now may another daemon take over.
    drop(lock);
    result.map_err(StartError::Other)
}

/// Tells systemd about a state change when it started us with `Type=notify`
/// (a no-op without `NOTIFY_SOCKET`).
fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

async fn serve(cfg: Config, config_path: Option<PathBuf>, now: i64) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (key, adopt) = journal_key(&cfg)?;
    let node_id = node::load_or_create_id(&cfg.state_dir)?;
    let store: Arc<dyn Store> = match &cfg.store {
        config::StoreBackend::Sqlite => Arc::new(SqliteStore::open(&cfg.state_dir)?.with_key(key, adopt)?),
        config::StoreBackend::Postgres { url_secret } => {
            let secret = cfg
                .secrets
                .get(url_secret)
                .ok_or_else(|| anyhow::anyhow!("[store] url names undeclared secret `{url_secret}`"))?;
            let url = secret.read().map_err(|e| anyhow::anyhow!("[store] url (secret `{url_secret}`): {e}"))?;
            let lease_ms = cfg.store_lease.as_millis() as i64;
            Arc::new(PgStore::connect(&url)?.with_key(key, adopt)?.with_node(&node_id, lease_ms))
        }
    };
    // SQLite created these itself: their mode is set here, not left to the umask.
    for f in StateDir::new(&cfg.state_dir).database_files() {
        restrict_file(&f).map_err(|e| anyhow::anyhow!("cannot make {} private (mode 0600): {e}", f.display()))?;
    }
    let token = auth::ensure_token(&cfg.state_dir)?;
    let listen = cfg.listen;
    let tls = cfg.tls.as_ref().map(tls::acceptor).transpose()?;
    if tls.is_none() && !listen.ip().is_loopback() {
        // Config validation lets this through only with insecure_listen = true.
        tracing::warn!(
            "insecure_listen = true: serving the API on non-loopback {listen} over plain HTTP, so the API token and incident data cross the network in clear; configure [tls] cert and key instead"
        );
    }
    let metrics_token = match &cfg.metrics_token {
        None => None,
        Some(name) => {
            let secret = cfg
                .secrets
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("metrics_token names undeclared secret `{name}`"))?;
            Some(secret.read().map_err(|e| anyhow::anyhow!("metrics_token (secret `{name}`): {e}"))?)
        }
    };
    let metrics = Arc::new(Metrics::new());
    // Compiling the built-in plugins takes seconds cold and milliseconds from the cache.
    let plugin_cfg = cfg.clone();
    let plugins = Arc::new(
        tokio::task::spawn_blocking(move || {
            let host = crate::plugin::PluginHost::new(crate::plugin::PluginHostConfig {
                cache_dir: Some(config::state_dir::StateDir::new(&plugin_cfg.state_dir).plugin_cache()),
                plugin_dir: plugin_cfg.plugin_dir.clone(),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("cannot start the plugin host: {e}"))?;
            for e in plugins::apply(&host, &plugin_cfg) {
                tracing::error!("{e}");
            }
            anyhow::Ok(host)
        })
        .await??,
    );
    let reload =
        Reloader::start(cfg.clone(), config_path.clone(), store, clock.clone(), metrics.clone(), plugins.clone());
    let engine = reload.engine().clone();
    // Counted once here; from now on the observer moves the open-incident gauge.
    let (m, st) = (metrics.clone(), engine.store().clone());
    tokio::task::spawn_blocking(move || m.init_open(&*st)).await??;
    let console = Arc::new(console::Console::new(tls.is_some()));
    let (m, c) = (metrics.clone(), console.clone());
    engine.set_observer(Arc::new(move |ev, inc| {
        m.observe(ev, inc);
        c.observe(ev, inc);
    }));
    let m = metrics.clone();
    engine.set_complaint_observer(Arc::new(move |ev, c| m.complaints.observe(ev, c)));
    let ready = reload.ready();
    if !ready {
        tracing::error!(
            "the playbook set is invalid and no earlier generation is recorded; serving without playbooks (not ready) until it is fixed"
        );
        for e in reload.status()["errors"].as_array().cloned().unwrap_or_default() {
            tracing::error!("{}", e.as_str().unwrap_or_default());
        }
    }
    let dispatch = Arc::new(worker::Dispatch::new(cfg.limits.effects_concurrency));
    let drills = Arc::new(drills::DrillService::for_daemon(&cfg.state_dir, plugins.clone(), &engine)?);
    let stored_tokens = {
        let store = engine.store().clone();
        tokio::task::spawn_blocking(move || store.tokens()).await??
    };
    let started = worker::release_previous_run(&engine).await;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {listen}: {e} (is another crisis daemon running? change `listen` in crisis.toml)"
        )
    })?;
    let addr = listener.local_addr()?;
    // Advertised to the other nodes sharing the journal: where this one serves its API.
    let node = Arc::new(node::Node {
        id: node_id,
        address: addr.to_string(),
        started_at: now,
        lease_ms: cfg.store_lease.as_millis() as i64,
    });
    let state = Arc::new(AppState {
        engine: engine.clone(),
        plugins: plugins.clone(),
        tokens: Arc::new(tokens::TokenRegistry::new(&token, stored_tokens, clock.clone())),
        token,
        started_at: now,
        config_path,
        metrics: metrics.clone(),
        reload: reload.clone(),
        intake_limiter: intake::RateLimiter::new(cfg.limits.intake_per_minute),
        drills,
        dispatch: dispatch.clone(),
        metrics_token,
        node: node.clone(),
        console,
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Raised first on shutdown: the worker claims no timer or intent after it.
    let stop = Arc::new(AtomicBool::new(false));
    let m = metrics.clone();
    let counter: executor::CallCounter = Arc::new(move |plugin, result| {
        m.plugin_calls.get_or_create(&metrics::PluginLabels { plugin: plugin.into(), result: result.into() }).inc();
    });
    let st = engine.store().clone();
    let board = tokio::task::spawn_blocking(move || status_page::StatusBoard::load(st)).await??;
    let executor: Arc<dyn Executor> = Arc::new(
        executor::PluginExecutor::new(plugins.clone(), &engine, Some(counter)).with_status_board(board.clone()),
    );
    if let Some(addr) = cfg.status_page.listen {
        // Off unless configured; served over HTTPS whenever [tls] is.
        status_page::serve(addr, tls.clone(), board, engine.clone(), stop_rx.clone()).await?;
    }
    tokio::spawn(node::heartbeat(engine.clone(), node.clone(), metrics.clone(), stop_rx.clone()));
    let worker = tokio::spawn(worker::run(engine.clone(), executor, dispatch, started, stop.clone(), stop_rx.clone()));
    tokio::spawn(reload.clone().run(stop_rx.clone()));
    tokio::spawn(lag::watch(engine.clone(), stop_rx.clone()));
    tokio::spawn(drills::scheduler(state.clone(), stop_rx.clone()));
    tokio::spawn(console::close_on_stop(state.console.clone(), stop_rx.clone()));
    let g = engine.generation();
    tracing::info!(
        "crisis daemon listening on {}://{addr} (state {}, generation {}, {} playbooks{})",
        if tls.is_some() { "https" } else { "http" },
        g.config.state_dir.display(),
        g.number,
        g.playbooks.len(),
        if ready { "" } else { ", NOT READY" }
    );
    let mut server_stop = stop_rx;
    let graceful = async move {
        let _ = server_stop.wait_for(|s| *s).await;
    };
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let mut server = match tls {
        Some(acceptor) => {
            use axum::serve::ListenerExt;
            // `tap_io` gives the TLS listener the same `ConnectInfo<SocketAddr>`.
            let listener = tls::TlsListener::spawn(listener, acceptor)?.tap_io(|_| {});
            tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(graceful).into_future())
        }
        None => tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(graceful).into_future()),
    };
    notify_systemd(sd_notify::NotifyState::Ready);
    let server_failed = tokio::select! {
        _ = shutdown_signal() => None,
        r = &mut server => Some(r),
    };

    // Shutdown: no new requests, no new work; running calls get the grace period.
    let grace = engine.generation().config.shutdown_grace;
    stop.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    notify_systemd(sd_notify::NotifyState::Stopping);
    tracing::info!(
        "shutting down: accepting no new requests and claiming no new work; calls already running have {} to finish",
        humantime::format_duration(grace)
    );
    let deadline = tokio::time::Instant::now() + grace;
    let served = match server_failed {
        Some(r) => Some(r),
        None => tokio::time::timeout_at(deadline, &mut server).await.ok(),
    };
    if served.is_none() {
        server.abort();
        tracing::warn!("API requests still open after the grace period are dropped");
    }
    let abandoned = tokio::time::timeout_at(deadline, worker).await.is_err();
    if abandoned {
        tracing::warn!(
            "a side-effect call still running after the grace period is abandoned: its result is not journaled, and it runs again on the next start with the same invocation id"
        );
    }
    let e = engine.clone();
    let pending = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        e.store().sync()?;
        node::leave(&e);
        Ok(e.store().pending_intents(i64::MAX, i64::MAX as usize)?.len())
    })
    .await??;
    tracing::info!(
        pending_intents = pending,
        abandoned_calls = usize::from(abandoned),
        "stopped: journal flushed; {pending} pending side effects are left for the next start"
    );
    match served {
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(e)) if e.is_panic() => Err(anyhow::anyhow!("the API server panicked: {e}")),
        _ => Ok(()),
    }
}

/// The journal's chain key: the `journal_key` secret if configured, else
/// `state_dir/journal.key` (created at the first start). The flag says whether
/// the key may adopt a journal written before it: only a key file created
/// just now, or a configured secret (the operator chose it deliberately).
fn journal_key(cfg: &Config) -> anyhow::Result<(crate::store::JournalKey, bool)> {
    use config::state_dir::journal_key_from_secret;
    match &cfg.journal_key {
        Some(name) => {
            let secret =
                cfg.secrets.get(name).ok_or_else(|| anyhow::anyhow!("journal_key names undeclared secret `{name}`"))?;
            let value = secret.read().map_err(|e| anyhow::anyhow!("journal_key (secret `{name}`): {e}"))?;
            Ok((journal_key_from_secret(name, &value).map_err(anyhow::Error::msg)?, true))
        }
        None => {
            let loaded = StateDir::new(&cfg.state_dir).load_or_create_journal_key().map_err(anyhow::Error::msg)?;
            Ok((loaded.key, loaded.created))
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
