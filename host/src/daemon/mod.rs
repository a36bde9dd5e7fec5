//! `crisis daemon`: the long-running process. It owns the journal, serves the
//! API on loopback, fires timers and runs side effects.

pub mod api;
pub mod auth;
pub mod drills;
pub mod worker;

use crate::config::{self, Config};
use crate::diag::Diagnostic;
use crate::generation;
use crate::incident::clock::{fmt_ms, Clock, SystemClock};
use crate::incident::effects::{Executor, LogExecutor};
use crate::incident::Engine;
use crate::store::{SqliteStore, Store};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    pub engine: Arc<Engine>,
    pub token: String,
    pub started_at: i64,
    ready: AtomicBool,
    /// Diagnostics of the last rejected load, if any.
    pub load_errors: Mutex<Vec<Diagnostic>>,
    pub config_path: Option<PathBuf>,
}

impl AppState {
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// What `crisis status` shows.
    pub fn status_json(&self, open_incidents: usize) -> Value {
        let g = self.engine.generation();
        let errors: Vec<String> = self.load_errors.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|d| d.to_string()).collect();
        json!({
            "ready": self.ready(),
            "version": env!("CARGO_PKG_VERSION"),
            "started_at": fmt_ms(self.started_at),
            "config": self.config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<embedded defaults>".into()),
            "state_dir": g.config.state_dir,
            "listen": g.config.listen.to_string(),
            "generation": {
                "number": g.number,
                "set_hash": g.set_hash,
                "loaded_at": fmt_ms(g.loaded_at),
                "playbooks": g.playbooks.values().map(|p| json!({"id": p.id, "path": p.path, "hash": p.hash})).collect::<Vec<_>>(),
            },
            "errors": errors,
            "open_incidents": open_incidents,
        })
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

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run(config_path: Option<PathBuf>, log_format: LogFormat) -> Result<(), StartError> {
    init_logging(log_format);
    let cfg = config::discover(config_path.as_deref()).map_err(StartError::Config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("crisis")
        .build()
        .map_err(|e| StartError::Other(e.into()))?;
    rt.block_on(serve(cfg, config_path)).map_err(StartError::Other)
}

async fn serve(cfg: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&cfg.state_dir)?);
    let token = auth::ensure_token(&cfg.state_dir)?;
    let listen = cfg.listen;
    let now = clock.now_ms();
    let loaded = generation::load(cfg.clone(), 1, now);
    let ready = loaded.generation.is_some();
    for d in &loaded.diagnostics {
        tracing::error!("{d}");
    }
    if !ready {
        tracing::error!("the playbook set is invalid; serving without playbooks (not ready) until it is fixed");
    }
    let generation = loaded.generation.unwrap_or_else(|| generation::empty(cfg.clone(), now));
    let engine = Arc::new(Engine::new(store, clock.clone(), generation));
    let state = Arc::new(AppState {
        engine: engine.clone(),
        token,
        started_at: now,
        ready: AtomicBool::new(ready),
        load_errors: Mutex::new(loaded.diagnostics),
        config_path,
    });

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e} (is another crisis daemon running? change `listen` in crisis.toml)"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let executor: Arc<dyn Executor> = Arc::new(LogExecutor);
    let worker = tokio::spawn(worker::run(engine.clone(), executor, stop_rx.clone()));
    tokio::spawn(drills::scheduler(state.clone(), stop_rx));
    let g = engine.generation();
    tracing::info!(
        "crisis daemon listening on http://{addr} (state {}, generation {}, {} playbooks{})",
        g.config.state_dir.display(),
        g.number,
        g.playbooks.len(),
        if ready { "" } else { ", NOT READY" }
    );
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
        })
        .await?;
    let _ = stop_tx.send(true);
    let _ = worker.await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
