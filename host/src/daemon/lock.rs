//! One daemon per state directory: an advisory `flock` on
//! `state_dir/daemon.lock`, held for the life of the process.
//!
//! The kernel releases a `flock` when its holder dies, however it dies, so a
//! daemon killed with SIGKILL leaves no stale lock behind: the next one takes
//! it and rewrites the holder's pid and start time. The file's contents are
//! only for the refusal message; the lock itself is the truth.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside `state_dir`.
pub(crate) const LOCK_FILE: &str = "daemon.lock";

/// Who holds the lock, as recorded in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub pid: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
}

impl Holder {
    fn render(&self) -> String {
        format!("pid={}\nstarted_at={}\n", self.pid, self.started_at)
    }

    fn parse(text: &str) -> Option<Holder> {
        let mut pid = None;
        let mut started_at = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => pid = v.trim().parse().ok(),
                Some(("started_at", v)) => started_at = Some(v.trim().to_string()),
                _ => {}
            }
        }
        Some(Holder { pid: pid?, started_at: started_at? })
    }
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// Another live daemon holds it.
    #[error("state_dir {} is in use by crisis daemon pid {} (started {}); stop it first", dir.display(), holder.pid, holder.started_at)]
    InUse { dir: PathBuf, holder: Holder },
    /// Another live daemon holds it but has not written its pid yet.
    #[error("state_dir {} is in use by another crisis daemon (still starting, pid not yet recorded); stop it first", dir.display())]
    InUseUnknown { dir: PathBuf },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub(crate) struct StateDirLock {
    _file: File,
    path: PathBuf,
}

impl StateDirLock {
    /// Takes the lock without waiting, then records this process as its holder.
    pub(crate) fn acquire(state_dir: &Path, started_at: &str) -> Result<StateDirLock, LockError> {
        let path = state_dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        // Never truncate before holding the lock: the contents belong to the holder.
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(Self::in_use(state_dir, &mut file));
            }
            Err(e) => return Err(io(e.into())),
        }
        let holder = Holder { pid: std::process::id(), started_at: started_at.to_string() };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(holder.render().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(StateDirLock { _file: file, path })
    }

    /// The holder may be between taking the lock and writing its pid: give it a moment.
    fn in_use(state_dir: &Path, file: &mut File) -> LockError {
        for _ in 0..20 {
            let mut text = String::new();
            if file.seek(SeekFrom::Start(0)).is_ok()
                && file.read_to_string(&mut text).is_ok()
                && let Some(holder) = Holder::parse(&text)
            {
                return LockError::InUse { dir: state_dir.to_path_buf(), holder };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        LockError::InUseUnknown { dir: state_dir.to_path_buf() }
    }

    /// Where the lock lives.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDirLock::acquire(dir.path(), "2026-01-01T00:00:00Z").unwrap();
        let err = StateDirLock::acquire(dir.path(), "2026-01-01T00:00:05Z").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg == format!(
                "state_dir {} is in use by crisis daemon pid {} (started 2026-01-01T00:00:00Z); stop it first",
                dir.path().display(),
                std::process::id()
            ),
            "{msg}"
        );
        drop(first);
        let second = StateDirLock::acquire(dir.path(), "2026-01-01T00:00:09Z").unwrap();
        let text = std::fs::read_to_string(second.path()).unwrap();
        assert_eq!(
            Holder::parse(&text),
            Some(Holder { pid: std::process::id(), started_at: "2026-01-01T00:00:09Z".into() })
        );
    }

    #[test]
    fn holder_lines_parse_back() {
        let h = Holder { pid: 42, started_at: "2026-11-30T03:00:00Z".into() };
        assert_eq!(Holder::parse(&h.render()), Some(h));
        assert_eq!(Holder::parse("pid=\n"), None);
    }
}
