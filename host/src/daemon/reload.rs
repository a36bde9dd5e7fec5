//! Hot reload: one task, fed by a debounced file watcher, SIGHUP,
//! `crisis reload` and a periodic checksum poll. Each attempt reads every
//! file, hashes the set (unchanged: no swap), validates everything, and swaps
//! the whole generation atomically. Any error rejects the whole generation
//! and the last good one keeps serving.

use super::cluster_gen::ClusterGen;
use super::metrics::Metrics;
use crate::config::{self, Config};
use crate::diag::Diagnostic;
use crate::incident::clock::{Clock, fmt_ms};
use crate::incident::loader;
use crate::incident::{Engine, Generation};
use crate::playbook::{Playbook, Snapshot};
use crate::plugin::PluginHost;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Quiet period after the last file event before a reload.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(300);
/// After the watcher's debounce, further events this close together join the same reload.
pub(crate) const COALESCE_QUIET: Duration = Duration::from_millis(100);
/// Longest a burst of file events may delay a reload.
pub(crate) const MAX_COALESCE: Duration = Duration::from_secs(2);
/// Fallback checksum poll for filesystems without events.
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(5);

/// How an attempt ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Applied,
    Unchanged,
    Rejected,
}

/// What one reload attempt did; `crisis reload` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub trigger: String,
    pub at: String,
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// The generation serving after the attempt.
    pub generation: u64,
    /// The set hash serving after the attempt.
    pub set_hash: String,
    /// The set hash of the files on disk at the attempt.
    pub disk_hash: Option<String>,
    pub errors: Vec<String>,
}

impl Attempt {
    /// An attempt starting at `now` with `current` serving, rejected until it
    /// succeeds; file and cluster reloads both start from this.
    pub(crate) fn starting(trigger: String, now: i64, current: &Generation) -> Self {
        Attempt {
            trigger,
            at: fmt_ms(now),
            duration_ms: 0,
            outcome: Outcome::Rejected,
            generation: current.number,
            set_hash: current.set_hash.clone(),
            disk_hash: None,
            errors: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileHash {
    pub path: PathBuf,
    pub sha256: String,
}

/// Reload state shown by `crisis status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReloadState {
    pub ready: bool,
    pub files: Vec<FileHash>,
    pub last_attempt: Option<Attempt>,
    pub errors: Vec<String>,
    pub watcher: String,
    pub watcher_healthy: bool,
}

struct Request {
    trigger: String,
    respond: Option<oneshot::Sender<Attempt>>,
}

/// Persisted record of the last good generation, so a restart on a broken
/// directory can serve it.
#[derive(Debug, Serialize, Deserialize)]
struct Persisted {
    number: u64,
    set_hash: String,
    loaded_at: i64,
    playbooks: Vec<String>,
}

const PERSIST_KEY: &str = "last_good_generation";

/// The reload task's handle.
pub struct Reloader {
    engine: Arc<Engine>,
    plugins: Arc<PluginHost>,
    config_path: Option<PathBuf>,
    state_dir: PathBuf,
    listen: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    state: Mutex<ReloadState>,
    tx: mpsc::UnboundedSender<Request>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Request>>>,
    /// The cluster generation this node follows; `None` on a store only this daemon uses.
    pub(super) cluster: Option<ClusterGen>,
    /// Held while a generation is applied, so a local reload and an adopted one never interleave.
    pub(super) apply: Mutex<()>,
    /// With a cluster: the disk hash last seen, so the poll reloads only
    /// after this node's files changed, not because they differ from a
    /// generation another node published.
    seen_disk: Mutex<Option<String>>,
}

impl Reloader {
    /// Loads the first generation (or the persisted last good one) into a new engine.
    pub fn start(
        config: Config,
        config_path: Option<PathBuf>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        plugins: Arc<PluginHost>,
    ) -> Arc<Reloader> {
        let now = clock.now_ms();
        let persisted: Option<Persisted> =
            store.kv_get(PERSIST_KEY).ok().flatten().and_then(|t| serde_json::from_str(&t).ok());
        let next = persisted.as_ref().map(|p| p.number + 1).unwrap_or(1);
        let state_dir = config.state_dir.clone();
        let listen = config.listen;
        let cluster = ClusterGen::new(&store, listen.to_string());
        let loaded = loader::load(config.clone(), next, now);
        let seen_disk = loader::combined_hash(&loaded.snapshot, &config);
        let mut errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        let files = file_hashes(&loaded.snapshot);
        let mut loaded = loaded;
        let published = cluster
            .as_ref()
            .and_then(|c| super::cluster_gen::start(c, &config, &mut loaded, now))
            .map(|(g, snapshot)| (g, file_hashes(&snapshot)));
        let (generation, ready, files) = match (published.or(loaded.generation.map(|g| (g, files))), &persisted) {
            (Some((g, files)), _) => {
                errors.clear();
                (g, true, files)
            }
            (None, Some(p)) => match restore(&*store, p, config.clone()) {
                Some(g) => {
                    tracing::warn!(
                        "the playbook set on disk is invalid; serving the last good generation {} from the journal",
                        g.number
                    );
                    let files = g
                        .playbooks
                        .values()
                        .map(|p| FileHash { path: p.path.clone(), sha256: p.hash.clone() })
                        .collect();
                    (g, true, files)
                }
                None => (loader::empty(config.clone(), now), false, Vec::new()),
            },
            (None, None) => (loader::empty(config.clone(), now), false, Vec::new()),
        };
        let engine = Arc::new(Engine::new(store, clock, generation));
        let (tx, rx) = mpsc::unbounded_channel();
        let r = Arc::new(Reloader {
            engine,
            plugins,
            config_path,
            state_dir,
            listen,
            metrics,
            state: Mutex::new(ReloadState {
                ready,
                files,
                last_attempt: None,
                errors,
                watcher: "starting".into(),
                watcher_healthy: false,
            }),
            tx,
            rx: Mutex::new(Some(rx)),
            cluster,
            apply: Mutex::new(()),
            seen_disk: Mutex::new(Some(seen_disk)),
        });
        if ready {
            r.persist();
        }
        r.update_gauges(ready);
        r
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn ready(&self) -> bool {
        self.lock().ready
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, ReloadState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the state for `crisis status`, with the on-disk hash checked now.
    pub fn status(&self) -> serde_json::Value {
        let st = self.lock().clone();
        let g = self.engine.generation();
        let disk = self.disk_hash();
        let differs = match &disk {
            Ok(h) => h != &g.set_hash,
            Err(_) => true,
        };
        self.metrics.out_of_sync.set(differs as i64);
        serde_json::json!({
            "ready": st.ready,
            "applied": {
                "generation": g.number,
                "set_hash": g.set_hash,
                "loaded_at": fmt_ms(g.loaded_at),
                "files": st.files,
            },
            "on_disk": {
                "set_hash": disk.as_ref().ok(),
                "error": disk.as_ref().err(),
                "differs": differs,
            },
            "last_attempt": st.last_attempt,
            "errors": st.errors,
            "watcher": { "mode": st.watcher, "healthy": st.watcher_healthy },
            "cluster": self.cluster.as_ref().map(|c| c.status(&g.config.playbooks)),
        })
    }

    /// The hash of what is on disk now (config, roster, playbooks).
    fn disk_hash(&self) -> Result<String, String> {
        let cfg = config::discover(self.config_path.as_deref())
            .map_err(|d| format!("configuration invalid: {}", d.first().map(|d| d.to_string()).unwrap_or_default()))?;
        let snapshot = Snapshot::read(std::slice::from_ref(&cfg.playbooks));
        Ok(loader::combined_hash(&snapshot, &cfg))
    }

    /// Asks for a reload and waits for its outcome (`crisis reload`).
    pub async fn request(&self, trigger: &str) -> Attempt {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Request { trigger: trigger.to_string(), respond: Some(tx) });
        rx.await.unwrap_or_else(|_| Attempt {
            trigger: trigger.into(),
            at: fmt_ms(self.engine.now()),
            duration_ms: 0,
            outcome: Outcome::Rejected,
            generation: self.engine.generation().number,
            set_hash: self.engine.generation().set_hash.clone(),
            disk_hash: None,
            errors: vec!["the reload task is not running".into()],
        })
    }

    /// Asks for a reload without waiting (watcher, poll, SIGHUP).
    pub fn nudge(&self, trigger: &str) {
        let _ = self.tx.send(Request { trigger: trigger.to_string(), respond: None });
    }

    /// Runs the reload task, the watcher, the poll and the SIGHUP listener.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(mut rx) = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        self.clone().start_watcher();
        self.follow_cluster();
        let poller = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let p = poller.clone();
                let changed = tokio::task::spawn_blocking(move || p.poll_changed()).await.unwrap_or(false);
                if changed {
                    poller.nudge("poll");
                }
            }
        });
        let hup = self.clone();
        tokio::spawn(async move {
            let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                return;
            };
            while sig.recv().await.is_some() {
                hup.nudge("sighup");
            }
        });
        loop {
            let first = tokio::select! {
                r = rx.recv() => r,
                _ = shutdown.changed() => None,
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            // File events come in bursts (editors, scripts): wait for a quiet
            // period before reading, but never longer than MAX_COALESCE in all.
            // A synchronous `crisis reload` in the batch goes at once.
            let started = Instant::now();
            while batch.iter().all(|r| r.respond.is_none()) && started.elapsed() < MAX_COALESCE {
                match tokio::time::timeout(COALESCE_QUIET, rx.recv()).await {
                    Ok(Some(r)) => batch.push(r),
                    Ok(None) | Err(_) => break,
                }
            }
            while let Ok(r) = rx.try_recv() {
                batch.push(r);
            }
            let mut triggers: Vec<String> = batch.iter().map(|r| r.trigger.clone()).collect();
            triggers.dedup();
            let me = self.clone();
            let trigger = triggers.join("+");
            let attempt = tokio::task::spawn_blocking(move || me.reload_now(&trigger)).await;
            let Ok(attempt) = attempt else { continue };
            for r in batch {
                if let Some(tx) = r.respond {
                    let _ = tx.send(attempt.clone());
                }
            }
        }
    }

    /// True if the disk differs from both the applied set and the last rejected one.
    /// Also keeps `crisis_config_out_of_sync` current between status queries.
    fn poll_changed(&self) -> bool {
        let Ok(disk) = self.disk_hash() else {
            self.metrics.out_of_sync.set(1);
            return false;
        };
        let applied = self.engine.generation().set_hash.clone();
        self.metrics.out_of_sync.set((disk != applied) as i64);
        if self.cluster.is_some() {
            let seen = self.seen_disk.lock().unwrap_or_else(|p| p.into_inner()).replace(disk.clone());
            if seen.as_ref() == Some(&disk) {
                return false;
            }
        }
        let last_rejected = self
            .lock()
            .last_attempt
            .as_ref()
            .filter(|a| a.outcome == Outcome::Rejected)
            .and_then(|a| a.disk_hash.clone());
        disk != applied && Some(&disk) != last_rejected.as_ref()
    }

    /// One reload attempt, synchronously.
    pub fn reload_now(&self, trigger: &str) -> Attempt {
        let _one = self.apply.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let now = self.engine.now();
        let current = self.engine.generation();
        let mut attempt = Attempt::starting(trigger.to_string(), now, &current);
        let mut new_files = None;
        match config::discover(self.config_path.as_deref()) {
            Err(diags) => attempt.errors = diags.iter().map(Diagnostic::to_string).collect(),
            Ok(cfg) => {
                let restart = self.restart_only_changes(&cfg);
                let snapshot_hash = loader::combined_hash(&Snapshot::read(std::slice::from_ref(&cfg.playbooks)), &cfg);
                attempt.disk_hash = Some(snapshot_hash.clone());
                // With a cluster, the watcher and the poll act only on a change to this
                // node's own files: files that merely differ from a generation another
                // node published are drift, and only `crisis reload` or SIGHUP publish them.
                let automatic = trigger.split('+').all(|t| t == "watcher" || t == "poll");
                let seen = match &self.cluster {
                    Some(_) => self.seen_disk.lock().unwrap_or_else(|p| p.into_inner()).replace(snapshot_hash.clone()),
                    None => None,
                };
                if !restart.is_empty() {
                    attempt.errors = restart;
                } else if (snapshot_hash == current.set_hash || (automatic && seen.as_ref() == Some(&snapshot_hash)))
                    && self.ready()
                {
                    attempt.outcome = Outcome::Unchanged;
                } else {
                    // Grants and plugins are staged first and committed only
                    // together with the new generation: a refused plugin, an
                    // unreadable secret or an invalid playbook rejects the
                    // whole attempt and grants, plugins and targets stay as
                    // they were.
                    let (staged, plugin_errors) = super::plugins::stage(&self.plugins, &cfg);
                    let loaded = loader::load(cfg, current.number + 1, now);
                    // With a cluster the set is published before it is applied
                    // here: what cannot be published is applied nowhere.
                    let published = match (&loaded.generation, &self.cluster) {
                        (Some(g), Some(c)) if plugin_errors.is_empty() => {
                            Some(c.publish(&loaded.snapshot, &g.config.playbooks, now).map_err(|e| {
                                format!("cannot publish the new generation to the other nodes ({e:#}); generation {} keeps serving on every node", current.number)
                            }))
                        }
                        _ => None,
                    };
                    match loaded.generation {
                        Some(_) if !plugin_errors.is_empty() => attempt.errors = plugin_errors,
                        Some(_) if matches!(published, Some(Err(_))) => {
                            attempt.errors = published.and_then(Result::err).into_iter().collect();
                        }
                        Some(mut g) => {
                            if let Some(Ok(n)) = published {
                                g.number = n;
                            }
                            self.plugins.set_quarantine_base(g.config.plugin_quarantine_base);
                            self.plugins.commit(staged);
                            attempt.outcome = Outcome::Applied;
                            attempt.generation = g.number;
                            attempt.set_hash = g.set_hash.clone();
                            attempt.disk_hash = Some(g.set_hash.clone());
                            new_files = Some(file_hashes(&loaded.snapshot));
                            self.engine.swap_generation(g);
                            self.persist();
                        }
                        None => {
                            attempt.errors = plugin_errors;
                            attempt.errors.extend(loaded.diagnostics.iter().map(Diagnostic::to_string));
                        }
                    }
                }
            }
        }
        attempt.duration_ms = started.elapsed().as_millis() as u64;
        let result = match attempt.outcome {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Rejected => "rejected",
        };
        self.metrics.reloads.get_or_create(&super::metrics::ResultLabels { result: result.into() }).inc();
        {
            let mut st = self.lock();
            match attempt.outcome {
                Outcome::Applied => {
                    st.ready = true;
                    st.errors.clear();
                    if let Some(f) = new_files {
                        st.files = f;
                    }
                }
                Outcome::Unchanged => st.errors.clear(),
                Outcome::Rejected => st.errors = attempt.errors.clone(),
            }
            st.last_attempt = Some(attempt.clone());
        }
        let ok = attempt.outcome != Outcome::Rejected;
        self.metrics.last_reload_successful.set(ok as i64);
        if ok {
            self.metrics.last_reload_success_time.set(now / 1000);
        }
        self.update_gauges(self.ready());
        match attempt.outcome {
            Outcome::Applied => tracing::info!(
                trigger,
                generation = attempt.generation,
                "reload applied: generation {} ({})",
                attempt.generation,
                &attempt.set_hash[..12]
            ),
            Outcome::Unchanged => tracing::debug!(trigger, "reload: nothing changed"),
            Outcome::Rejected => {
                tracing::error!(trigger, "reload rejected; generation {} keeps serving", attempt.generation);
                for e in &attempt.errors {
                    tracing::error!("{e}");
                }
            }
        }
        attempt
    }

    pub(super) fn update_gauges(&self, ready: bool) {
        self.metrics.ready.set(ready as i64);
        self.metrics.generation.set(self.engine.generation().number as i64);
    }

    /// Refuses changes to settings that need a restart, naming where they are written.
    fn restart_only_changes(&self, cfg: &Config) -> Vec<String> {
        let mut out = Vec::new();
        let where_ = |key: &str| -> String {
            let Some(p) = &self.config_path else { return "<embedded defaults>".into() };
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let line = text.lines().position(|l| l.trim_start().starts_with(key)).map(|i| i + 1).unwrap_or(1);
            format!("{}:{line}:1", p.display())
        };
        if cfg.listen != self.listen {
            out.push(format!("{}: restart required: `listen` changed from {} to {}; the running daemon keeps {}; restart it to apply", where_("listen"), self.listen, cfg.listen, self.listen));
        }
        if cfg.state_dir != self.state_dir {
            out.push(format!(
                "{}: restart required: `state_dir` changed from {} to {}; restart the daemon to apply",
                where_("state_dir"),
                self.state_dir.display(),
                cfg.state_dir.display()
            ));
        }
        out
    }

    /// Records the serving generation so a restart on a broken directory can use it.
    pub(super) fn persist(&self) {
        let g = self.engine.generation();
        let p = Persisted {
            number: g.number,
            set_hash: g.set_hash.clone(),
            loaded_at: g.loaded_at,
            playbooks: g.playbooks.values().map(|p| p.hash.clone()).collect(),
        };
        let store = self.engine.store().clone();
        let res = store.transaction(&mut |tx| {
            for pb in g.playbooks.values() {
                tx.put_playbook_version(&pb.hash, &pb.id, &serde_json::to_value(&**pb)?)?;
            }
            tx.kv_set(PERSIST_KEY, &serde_json::to_string(&p)?)
        });
        if let Err(e) = res {
            tracing::error!("cannot persist the applied generation: {e:#}");
        }
    }

    /// Watches the playbook directory and the config, roster and customer files.
    fn start_watcher(self: Arc<Self>) {
        let me = self.clone();
        std::thread::Builder::new()
            .name("crisis-watch".into())
            .spawn(move || {
                if let Err(e) = me.watch_loop() {
                    tracing::error!(
                        "file watcher failed ({e}); falling back to the {}s checksum poll",
                        POLL_EVERY.as_secs()
                    );
                    let mut st = me.lock();
                    st.watcher = format!("poll only (watcher failed: {e})");
                    st.watcher_healthy = false;
                }
            })
            .expect("spawn watcher thread");
    }

    fn watch_loop(&self) -> anyhow::Result<()> {
        use notify_debouncer_full::notify::RecursiveMode;
        let cfg = self.engine.generation().config.clone();
        let abs = |p: &Path| -> PathBuf {
            let p = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
            match (p.parent().and_then(|d| d.canonicalize().ok()), p.file_name()) {
                (Some(d), Some(n)) => d.join(n),
                _ => p,
            }
        };
        let playbooks = abs(&cfg.playbooks);
        let plugin_dir = cfg.plugin_dir.as_deref().map(abs);
        let mut files: Vec<PathBuf> = Vec::new();
        files.extend(cfg.plugins.values().filter_map(|p| p.file.as_deref()).map(abs));
        if let Some(p) = &self.config_path {
            files.push(abs(p));
        }
        files.extend(cfg.roster_path.as_deref().map(abs));
        files.extend(cfg.customers.as_deref().map(abs));
        let mut parents: Vec<PathBuf> =
            files.iter().chain(std::iter::once(&playbooks)).filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
        parents.sort();
        parents.dedup();

        let (tx, rx) = std::sync::mpsc::channel();
        let mut debouncer = notify_debouncer_full::new_debouncer(DEBOUNCE, None, tx)?;
        for p in &parents {
            debouncer.watch(p, RecursiveMode::NonRecursive)?;
        }
        let mut watching_dir = playbooks.is_dir() && debouncer.watch(&playbooks, RecursiveMode::Recursive).is_ok();
        if let Some(d) = plugin_dir.as_ref().filter(|d| d.is_dir()) {
            debouncer.watch(d, RecursiveMode::NonRecursive)?;
        }
        {
            let mut st = self.lock();
            st.watcher = format!(
                "notify ({} directories, {}ms debounce)",
                parents.len() + watching_dir as usize,
                DEBOUNCE.as_millis()
            );
            st.watcher_healthy = true;
        }
        for res in rx {
            let events = match res {
                Ok(ev) => ev,
                Err(errs) => {
                    for e in errs {
                        tracing::warn!("file watcher error: {e}");
                    }
                    continue;
                }
            };
            let relevant = events.iter().flat_map(|e| e.paths.iter()).any(|p| {
                p.starts_with(&playbooks) || files.contains(p) || plugin_dir.as_ref().is_some_and(|d| p.starts_with(d))
            });
            // A playbook directory created (or recreated) after start: watch it.
            // Files written before the new watch took hold are caught by the reload it triggers.
            if !watching_dir && playbooks.is_dir() {
                watching_dir = debouncer.watch(&playbooks, RecursiveMode::Recursive).is_ok();
                self.nudge("watcher");
            } else if watching_dir && !playbooks.is_dir() {
                watching_dir = false;
            }
            if relevant {
                self.nudge("watcher");
            }
        }
        anyhow::bail!("watcher channel closed")
    }
}

fn restore(store: &dyn Store, p: &Persisted, config: Config) -> Option<Generation> {
    let mut playbooks = BTreeMap::new();
    for h in &p.playbooks {
        let spec = store.playbook_version(h).ok()??;
        let pb: Playbook = serde_json::from_value(spec).ok()?;
        playbooks.insert(pb.id.clone(), Arc::new(pb));
    }
    let customers =
        config.customers.as_deref().and_then(|c| crate::config::customers::load(c).ok()).unwrap_or_default();
    Some(Generation {
        number: p.number,
        set_hash: p.set_hash.clone(),
        loaded_at: p.loaded_at,
        playbooks,
        config: Arc::new(config),
        customers: Arc::new(customers),
    })
}

pub(super) fn file_hashes(s: &Snapshot) -> Vec<FileHash> {
    s.files
        .iter()
        .map(|f| FileHash { path: f.path.clone(), sha256: hex::encode(Sha256::digest(f.text.as_bytes())) })
        .collect()
}
