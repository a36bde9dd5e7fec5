//! Checkpoints the journal's WAL on a thread of its own.
//!
//! Rule: a commit never pays for a checkpoint. By default SQLite checkpoints
//! inside whichever commit grows the WAL past 1,000 pages: it copies the
//! pages into the database file and fsyncs it while that commit's caller
//! holds the journal's only writer. While the outbox drains a backlog that
//! happens several times a second, and every trigger waiting for the writer
//! waits for the copy and the fsync too. Here a thread with a connection of
//! its own runs passive checkpoints, which never block a writer; a commit
//! checkpoints only when the WAL grows past [`FALLBACK_PAGES`], which takes a
//! checkpointer that is stuck (or failing) for seconds.

use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the checkpointer copies the WAL into the database file.
const INTERVAL: Duration = Duration::from_millis(200);
/// The WAL size (in 4 KiB pages, 64 MiB) past which a commit checkpoints by
/// itself, as SQLite would without this thread.
pub(super) const FALLBACK_PAGES: i64 = 16_384;

/// The background checkpointer of one journal file; stops when dropped.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the journal at `path` (already created and migrated).
    pub(super) fn start(path: &Path) -> anyhow::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        let (stop, stopped) = mpsc::channel();
        let thread =
            std::thread::Builder::new().name("crisis-checkpoint".into()).spawn(move || run(&conn, &stopped))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

/// Checkpoints every [`INTERVAL`] until the owner is dropped. A failed
/// checkpoint loses nothing (the pages stay in the WAL, which is already on
/// disk) and is tried again on the next tick; it is logged once per run of
/// failures.
fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) if failing => {
                tracing::info!("journal checkpoints work again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!("cannot checkpoint the journal's WAL (retried every {INTERVAL:?}): {e}");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

impl Drop for Checkpointer {
    /// Waits for a checkpoint under way, so the journal file is not in use
    /// once its store is gone.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_leave_the_checkpoint_to_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", FALLBACK_PAGES).unwrap();
        conn.execute_batch("CREATE TABLE t(x BLOB)").unwrap();
        // Far past SQLite's own 1,000-page threshold, below the fallback:
        // the pages are still only in the WAL, the database file is small.
        for _ in 0..1_500 {
            conn.execute("INSERT INTO t VALUES (zeroblob(4000))", []).unwrap();
        }
        let size = || std::fs::metadata(&path).unwrap().len();
        assert!(size() < 1 << 20, "a commit checkpointed: the database file has {} bytes", size());
        let checkpointer = Checkpointer::start(&path).unwrap();
        // The thread copies the WAL into the database file.
        let t = std::time::Instant::now();
        while size() < 1_500 * 4_000 {
            assert!(t.elapsed() < Duration::from_secs(10), "the checkpointer never ran ({} bytes)", size());
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(checkpointer);
        // The writer's connection still works after the thread stopped.
        conn.execute("INSERT INTO t VALUES (zeroblob(10))", []).unwrap();
    }
}
