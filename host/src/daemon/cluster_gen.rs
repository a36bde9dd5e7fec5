//! One applied generation for every daemon on a shared database.
//!
//! A reload applied on any node (watcher, SIGHUP, `crisis reload`) publishes
//! that node's playbook files as the next cluster generation; every node
//! listens and swaps to exactly the published files, validated against its
//! own configuration like any reload, never to its own files. At start a
//! node serves the newest published generation even when its own files are
//! newer: the published set wins and the node shows the difference as drift.
//! Only playbook files are shared: configuration, roster, customers and
//! plugins stay each node's own, since they hold its address, state and secrets.

use crate::config::Config;
use crate::diag::{Diagnostic, Source};
use crate::incident::Generation;
use crate::incident::clock::fmt_ms;
use crate::incident::loader::{self, Loaded};
use crate::playbook::Snapshot;
use crate::store::{Cluster, PublishedFile, PublishedGeneration, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// This node's side of the cluster generation: what it applied and why it could not.
pub(crate) struct ClusterGen {
    store: Arc<dyn Store>,
    /// This node in publications and logs: its listen address.
    pub(super) node: String,
    applied: Mutex<Option<PublishedGeneration>>,
    /// Why the newest published generation is not serving here, if it is not.
    error: Mutex<Option<String>>,
}

/// How a file on this node's disk differs from the applied cluster generation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DriftKind {
    /// On disk with other contents than the generation's.
    Differs,
    /// On disk only; the generation has no such file.
    OnlyOnDisk,
    /// In the generation only; missing from disk.
    MissingOnDisk,
}

/// One playbook file that differs between this node's disk and the applied generation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Drift {
    /// The file's path under the playbook directory.
    pub path: String,
    pub kind: DriftKind,
}

/// The cluster part of `crisis status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClusterStatus {
    /// The cluster generation this node serves; `None` before it adopted or published one.
    pub generation: Option<u64>,
    pub published_by: Option<String>,
    pub published_at: Option<String>,
    /// Files on this node's disk that differ from the generation it serves.
    pub drift: Vec<Drift>,
    /// Why the newest published generation does not serve here.
    pub error: Option<String>,
}

impl ClusterGen {
    /// The cluster side of a daemon whose store is shared; `None` for a single-node store.
    pub(super) fn new(store: &Arc<dyn Store>, node: String) -> Option<ClusterGen> {
        store.cluster()?;
        Some(ClusterGen { store: store.clone(), node, applied: Mutex::new(None), error: Mutex::new(None) })
    }

    fn cluster(&self) -> anyhow::Result<&dyn Cluster> {
        self.store.cluster().ok_or_else(|| anyhow::anyhow!("the store is not shared"))
    }

    /// The newest published generation.
    pub(super) fn latest(&self) -> anyhow::Result<Option<PublishedGeneration>> {
        self.cluster()?.latest_generation()
    }

    /// Publishes a validated snapshot read under `root` and records it as applied here.
    pub(super) fn publish(&self, snapshot: &Snapshot, root: &Path, at: i64) -> anyhow::Result<u64> {
        let files = files_of(snapshot, root);
        let number = self.cluster()?.publish_generation(&files, &self.node, at)?;
        self.set_applied(PublishedGeneration { number, files, published_by: self.node.clone(), published_at: at });
        Ok(number)
    }

    /// Starts listening for publications; `wake` gets each published number (0: check the newest).
    pub(super) fn watch(&self, wake: Box<dyn FnMut(u64) -> bool + Send>) -> anyhow::Result<()> {
        self.cluster()?.watch_generations(wake)
    }

    pub(super) fn set_applied(&self, p: PublishedGeneration) {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
        self.set_error(None);
    }

    pub(super) fn set_error(&self, e: Option<String>) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    /// The number of the cluster generation this node serves.
    pub(super) fn applied_number(&self) -> Option<u64> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|p| p.number)
    }

    /// The applied generation and how this node's playbook files under `root` differ from it.
    pub(super) fn status(&self, root: &Path) -> ClusterStatus {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let disk = files_of(&Snapshot::read(&[root.to_path_buf()]), root);
        ClusterStatus {
            generation: applied.as_ref().map(|p| p.number),
            published_by: applied.as_ref().map(|p| p.published_by.clone()),
            published_at: applied.as_ref().map(|p| fmt_ms(p.published_at)),
            drift: applied.as_ref().map(|p| drift(&p.files, &disk)).unwrap_or_default(),
            error: self.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// The snapshot's files with paths relative to the playbook directory `root`.
pub(super) fn files_of(snapshot: &Snapshot, root: &Path) -> Vec<PublishedFile> {
    let mut files: Vec<PublishedFile> = snapshot
        .files
        .iter()
        .map(|f| {
            let rel = f.path.strip_prefix(root).ok().filter(|r| !r.as_os_str().is_empty());
            let rel = rel.or_else(|| f.path.file_name().map(Path::new)).unwrap_or(&f.path);
            PublishedFile {
                path: rel.to_string_lossy().replace('\\', "/"),
                text: f.text.clone(),
                sha256: hex::encode(Sha256::digest(f.text.as_bytes())),
            }
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// A published generation's files as a snapshot placed under this node's playbook directory `root`.
pub(super) fn snapshot_of(p: &PublishedGeneration, root: &Path) -> Snapshot {
    // A single-file playbook path is the file itself.
    let place = |rel: &str| {
        if root.is_file() || root.extension().is_some_and(|e| e == "toml") {
            root.to_path_buf()
        } else {
            root.join(rel)
        }
    };
    Snapshot {
        files: p.files.iter().map(|f| Source::new(place(&f.path), f.text.clone())).collect(),
        read_errors: Vec::new(),
    }
}

fn drift(applied: &[PublishedFile], disk: &[PublishedFile]) -> Vec<Drift> {
    let a: BTreeMap<&str, &str> = applied.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let d: BTreeMap<&str, &str> = disk.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let mut out = Vec::new();
    for (path, hash) in &d {
        match a.get(path) {
            Some(h) if h == hash => {}
            Some(_) => out.push(Drift { path: path.to_string(), kind: DriftKind::Differs }),
            None => out.push(Drift { path: path.to_string(), kind: DriftKind::OnlyOnDisk }),
        }
    }
    out.extend(
        a.keys().filter(|p| !d.contains_key(*p)).map(|p| Drift { path: p.to_string(), kind: DriftKind::MissingOnDisk }),
    );
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

/// At start: the newest published generation if it is valid here (it wins
/// over this node's files), else `None` and this node's own files serve. The
/// first node of a cluster publishes its own valid files, renumbering `own`.
pub(super) fn start(c: &ClusterGen, config: &Config, own: &mut Loaded, now: i64) -> Option<(Generation, Snapshot)> {
    match c.latest() {
        Ok(Some(p)) => {
            let l = loader::load_snapshot(config.clone(), snapshot_of(&p, &config.playbooks), p.number, now);
            match l.generation {
                Some(g) => {
                    tracing::info!("serving cluster generation {} published by {}", p.number, p.published_by);
                    c.set_applied(p);
                    Some((g, l.snapshot))
                }
                None => {
                    let errors: Vec<String> = l.diagnostics.iter().map(Diagnostic::to_string).collect();
                    let why = format!(
                        "generation {} published by {} is invalid with this node's configuration; this node serves its own files: {}",
                        p.number,
                        p.published_by,
                        errors.join("; ")
                    );
                    tracing::error!("{why}");
                    c.set_error(Some(why));
                    None
                }
            }
        }
        Ok(None) => {
            let g = own.generation.as_mut()?;
            match c.publish(&own.snapshot, &config.playbooks, now) {
                Ok(n) => g.number = n,
                Err(e) => {
                    let why = format!("cannot publish this node's playbooks to the cluster: {e:#}");
                    tracing::error!("{why}");
                    c.set_error(Some(why));
                }
            }
            None
        }
        Err(e) => {
            let why = format!("cannot read the published generation: {e:#}; this node serves its own files");
            tracing::error!("{why}");
            c.set_error(Some(why));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> PublishedFile {
        PublishedFile { path: path.into(), text: text.into(), sha256: hex::encode(Sha256::digest(text.as_bytes())) }
    }

    #[test]
    fn drift_names_changed_extra_and_missing_files() {
        let applied = vec![file("a.toml", "1"), file("b.toml", "2"), file("c.toml", "3")];
        let disk = vec![file("a.toml", "1"), file("b.toml", "2 edited"), file("d.toml", "4")];
        assert_eq!(
            drift(&applied, &disk),
            vec![
                Drift { path: "b.toml".into(), kind: DriftKind::Differs },
                Drift { path: "c.toml".into(), kind: DriftKind::MissingOnDisk },
                Drift { path: "d.toml".into(), kind: DriftKind::OnlyOnDisk },
            ]
        );
        assert!(drift(&applied, &applied).is_empty());
    }

    #[test]
    fn published_files_are_relative_to_the_playbook_directory_and_placed_under_another() {
        let snap = Snapshot {
            files: vec![Source::new("/a/playbooks/sub/x.toml", "x"), Source::new("/a/playbooks/y.toml", "y")],
            read_errors: Vec::new(),
        };
        let files = files_of(&snap, Path::new("/a/playbooks"));
        assert_eq!(files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), vec!["sub/x.toml", "y.toml"]);
        let p = PublishedGeneration { number: 3, files, published_by: "n".into(), published_at: 0 };
        let back = snapshot_of(&p, Path::new("/b/playbooks"));
        assert_eq!(back.files[0].path, Path::new("/b/playbooks/sub/x.toml"));
        assert_eq!(back.files[1].text, "y");
    }
}
