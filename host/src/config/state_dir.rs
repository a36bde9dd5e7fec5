//! The layout of the state directory: every file the daemon, the CLI, drills
//! and the plugin host keep under `state_dir` is named here and nowhere else.
//!
//! The directory is private to the daemon's user: it is created 0700, a
//! directory owned by someone else or writable by group or others is refused
//! (whoever can write there could replace the journal or plant compiled code),
//! and the files the daemon writes itself are created 0600 under a temporary
//! name with `O_CREAT|O_EXCL|O_NOFOLLOW`, then renamed into place.

use crate::store::JournalKey;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the API bearer token (mode 0600).
const TOKEN_FILE: &str = "api.token";
/// File name of the hash-chained journal (SQLite).
const JOURNAL_FILE: &str = "journal.db";
/// Directory of compiled plugin components.
const PLUGIN_CACHE_DIR: &str = "plugin-cache";
/// Directory of per-run drill journals.
const DRILLS_DIR: &str = "drills";
/// File name of the key that authenticates compiled plugin cache entries.
const CACHE_KEY_FILE: &str = "cache.key";
/// File name of the key that authenticates the journal's hash chain (32 raw bytes, 0600).
const JOURNAL_KEY_FILE: &str = "journal.key";
/// SQLite's companion files of a database in WAL mode.
const SQLITE_SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

/// A state directory. Why: the daemon writes the token and the CLI reads it,
/// the daemon and drills share the journal; both sides must agree on names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The layout rooted at `root` (normally `Config::state_dir`).
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The API bearer token the daemon writes and the CLI sends.
    pub(crate) fn token_file(&self) -> PathBuf {
        self.root.join(TOKEN_FILE)
    }

    /// Where the token is written before it is renamed into place.
    pub(crate) fn token_tmp(&self) -> PathBuf {
        self.root.join(format!(".{TOKEN_FILE}.tmp"))
    }

    /// This daemon's node id among the daemons sharing a journal database.
    pub(crate) fn node_id(&self) -> PathBuf {
        self.root.join("node.id")
    }

    /// The main journal (incidents, drill index, reload state).
    pub(crate) fn journal(&self) -> PathBuf {
        self.root.join(JOURNAL_FILE)
    }

    /// The compiled-component cache of the plugin host.
    pub(crate) fn plugin_cache(&self) -> PathBuf {
        self.root.join(PLUGIN_CACHE_DIR)
    }

    /// The directory holding one journal per drill run.
    pub(crate) fn drills_dir(&self) -> PathBuf {
        self.root.join(DRILLS_DIR)
    }

    /// The journal of drill run `run_id`.
    pub(crate) fn drill_journal(&self, run_id: &str) -> PathBuf {
        self.drills_dir().join(format!("{run_id}.db"))
    }

    /// The HMAC key of the compiled-component cache (32 random bytes, 0600).
    pub(crate) fn cache_key(&self) -> PathBuf {
        self.root.join(CACHE_KEY_FILE)
    }

    /// The key of the journal's hash chain: beside the journal, never inside it.
    pub(crate) fn journal_key(&self) -> PathBuf {
        self.root.join(JOURNAL_KEY_FILE)
    }

    /// Reads the journal key, creating it (32 random bytes, 0600, through
    /// `O_CREAT|O_EXCL|O_NOFOLLOW` and a rename) at the first start. A key
    /// file that others could read or replace, or that is not 32 bytes, is
    /// refused: a leaked key lets anyone rewrite the journal undetected.
    pub(crate) fn load_or_create_journal_key(&self) -> Result<LoadedKey, String> {
        let path = self.journal_key();
        let shown = path.display();
        match read_private(&path).map_err(|e| format!("cannot read the journal key {shown}: {e}"))? {
            PrivateFile::Private(bytes) => {
                let key = JournalKey::from_bytes(&bytes).map_err(|e| {
                    format!("{shown} is not a journal key ({e}); restore the file the journal was written with")
                })?;
                Ok(LoadedKey { key, created: false })
            }
            PrivateFile::Exposed { mode, owner } => {
                let me = rustix::process::geteuid().as_raw();
                Err(format!(
                    "the journal key {shown} is not a private regular file (owner uid {owner}, mode {mode:04o}): whoever can read it can rewrite the journal undetected; crisis needs it owned by uid {me} with mode 0600; fix: `chown {me} {shown} && chmod 0600 {shown}` if it is the original key, else restore the original"
                ))
            }
            PrivateFile::Missing => {
                let key = JournalKey::generate();
                let tmp = self.root.join(format!(".{JOURNAL_KEY_FILE}.tmp"));
                write_private(&tmp, &path, key.as_bytes())
                    .map_err(|e| format!("cannot create the journal key {shown}: {e}"))?;
                Ok(LoadedKey { key, created: true })
            }
        }
    }

    /// The key of the compiled-component cache in `cache_dir`: a state
    /// directory's (or the CLI's per-user) `plugin-cache` uses `cache.key`
    /// beside it, so the daemon and the CLI share one key; any other cache
    /// directory (`--cache-dir`, tests) keeps its key inside itself, never in
    /// a parent it does not own.
    pub(crate) fn cache_key_for(cache_dir: &Path) -> PathBuf {
        match cache_dir.parent() {
            Some(parent) if cache_dir.file_name().is_some_and(|n| n == PLUGIN_CACHE_DIR) => {
                let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
                StateDir::new(parent).cache_key()
            }
            _ => cache_dir.join(CACHE_KEY_FILE),
        }
    }

    /// Creates the directory (0700) if it is missing, then refuses it unless
    /// it is a directory owned by this process's user that neither group nor
    /// others can write.
    pub(crate) fn ensure_private(&self) -> Result<(), UnsafeStateDir> {
        let dir = &self.root;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| UnsafeStateDir::Io { dir: dir.clone(), message: format!("cannot create it: {e}") })?;
        }
        let meta =
            std::fs::metadata(dir).map_err(|e| UnsafeStateDir::Io { dir: dir.clone(), message: e.to_string() })?;
        if !meta.is_dir() {
            return Err(UnsafeStateDir::Io { dir: dir.clone(), message: "it is not a directory".into() });
        }
        let me = rustix::process::geteuid().as_raw();
        let mode = meta.mode() & 0o7777;
        if meta.uid() != me || mode & 0o022 != 0 {
            return Err(UnsafeStateDir::NotPrivate { dir: dir.clone(), owner: meta.uid(), mode, me });
        }
        Ok(())
    }

    /// The journal and its SQLite companion files (`-wal`, `-shm`), and every
    /// drill journal with its companions: the database files SQLite creates,
    /// whose mode the daemon sets itself after opening them.
    pub(crate) fn database_files(&self) -> Vec<PathBuf> {
        let mut dbs = vec![self.journal()];
        if let Ok(entries) = std::fs::read_dir(self.drills_dir()) {
            dbs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "db")));
        }
        let mut out = Vec::new();
        for db in dbs {
            for suffix in SQLITE_SUFFIXES {
                let mut name = db.clone().into_os_string();
                name.push(suffix);
                out.push(PathBuf::from(name));
            }
        }
        out
    }
}

/// The journal key and whether it was created just now. Why: only a fresh
/// key may adopt a journal written before it existed.
#[derive(Debug)]
pub(crate) struct LoadedKey {
    /// The key.
    pub(crate) key: JournalKey,
    /// True if this start created it.
    pub(crate) created: bool,
}

/// Reads the journal key from a `[secrets]` value: 64 hex characters (32 bytes).
pub(crate) fn journal_key_from_secret(name: &str, value: &str) -> Result<JournalKey, String> {
    let bytes = hex::decode(value.trim()).map_err(|_| {
        format!("journal_key (secret `{name}`) must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`")
    })?;
    JournalKey::from_bytes(&bytes).map_err(|e| format!("journal_key (secret `{name}`): {e}; use 64 hex characters"))
}

/// Why a state directory is refused. Why a type: the daemon exits with this
/// message, which names the directory, its owner and mode, and the fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnsafeStateDir {
    /// Owned by another user, or writable by group or others.
    #[error(
        "state_dir {path} is owned by uid {owner} with mode {mode:04o}; crisis needs it owned by its own user (uid {me}) and not writable by group or others, since whoever can write there can replace the journal or plant compiled plugin code; fix: `chown {me} {path} && chmod 0700 {path}`",
        path = .dir.display()
    )]
    NotPrivate {
        /// The directory.
        dir: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// This process's effective uid.
        me: u32,
    },
    /// It cannot be created or inspected, or is not a directory.
    #[error("state_dir {}: {message}", .dir.display())]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Sets `path` to 0600 if it exists. Why: SQLite creates its files itself,
/// so their mode is set explicitly after opening, not trusted to the umask.
pub(crate) fn restrict_file(path: &Path) -> std::io::Result<()> {
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// What [`read_private`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PrivateFile {
    /// No file.
    Missing,
    /// A file that is not a regular file owned by this user with mode 0600
    /// (or stricter): its contents may have been read or replaced by others.
    Exposed {
        /// Its permission bits.
        mode: u32,
        /// Its owner's uid.
        owner: u32,
    },
    /// The contents of a private file.
    Private(Vec<u8>),
}

/// Reads a file the daemon wrote itself, reporting instead of trusting one
/// whose mode or owner was changed (or that was replaced by a symlink).
pub(crate) fn read_private(path: &Path) -> std::io::Result<PrivateFile> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PrivateFile::Missing),
        Err(e) => return Err(e),
    };
    let mode = meta.mode() & 0o7777;
    if !meta.file_type().is_file() || meta.uid() != rustix::process::geteuid().as_raw() || mode & 0o077 != 0 {
        return Ok(PrivateFile::Exposed { mode, owner: meta.uid() });
    }
    Ok(PrivateFile::Private(std::fs::read(path)?))
}

/// Writes `bytes` to `path` (mode 0600) through a fresh temporary file `tmp`
/// (in the same directory, unique to the writer) opened with
/// `O_CREAT|O_EXCL|O_NOFOLLOW`, so neither a planted file nor a symlink at the
/// temporary name is written through, then renames it into place.
pub(crate) fn write_private(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A leftover of a crashed run (or a planted link): removed, never followed.
    match std::fs::remove_file(tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(tmp)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    let renamed = written.and_then(|()| std::fs::rename(tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    renamed
}

/// Sets the process umask to 0o077. Why: files created by libraries (SQLite's
/// journal, WAL and shared-memory files, drill journals) get no group or
/// other bits, even before the daemon tightens their mode explicitly.
pub(crate) fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_files_under_the_root() {
        let s = StateDir::new("/var/lib/crisis");
        assert_eq!(s.token_file(), Path::new("/var/lib/crisis/api.token"));
        assert_eq!(s.token_tmp(), Path::new("/var/lib/crisis/.api.token.tmp"));
        assert_eq!(s.journal(), Path::new("/var/lib/crisis/journal.db"));
        assert_eq!(s.plugin_cache(), Path::new("/var/lib/crisis/plugin-cache"));
        assert_eq!(s.drill_journal("p.m1"), Path::new("/var/lib/crisis/drills/p.m1.db"));
        assert_eq!(s.cache_key(), Path::new("/var/lib/crisis/cache.key"));
        assert_eq!(s.journal_key(), Path::new("/var/lib/crisis/journal.key"));
        assert_eq!(StateDir::cache_key_for(&s.plugin_cache()), s.cache_key());
        assert_eq!(StateDir::cache_key_for(Path::new("/tmp/x")), Path::new("/tmp/x/cache.key"));
    }

    #[test]
    fn private_dir_is_created_0700_and_a_writable_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::new(tmp.path().join("a/state"));
        s.ensure_private().unwrap();
        let mode = std::fs::metadata(tmp.path().join("a/state")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(tmp.path().join("a/state"), std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = s.ensure_private().unwrap_err().to_string();
        assert!(e.contains("mode 0770") && e.contains("chmod 0700") && e.contains("a/state"), "{e}");
    }

    #[test]
    fn private_files_are_written_0600_and_exposed_ones_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("k");
        assert_eq!(read_private(&p).unwrap(), PrivateFile::Missing);
        let t = tmp.path().join(".k.tmp");
        write_private(&t, &p, b"one").unwrap();
        std::fs::write(&t, "stale").unwrap();
        write_private(&t, &p, b"two").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_private(&p).unwrap(), PrivateFile::Private(b"two".to_vec()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_private(&p).unwrap(), PrivateFile::Exposed { mode: 0o644, .. }));
        // A symlink at the final name is replaced by the rename, never written through.
        let target = tmp.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(matches!(read_private(&p).unwrap(), PrivateFile::Exposed { .. }));
        std::os::unix::fs::symlink(&target, &t).unwrap();
        write_private(&t, &p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn journal_key_is_created_once_private_and_refused_when_exposed() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::new(tmp.path());
        let first = s.load_or_create_journal_key().unwrap();
        assert!(first.created);
        assert_eq!(std::fs::metadata(s.journal_key()).unwrap().mode() & 0o777, 0o600);
        let again = s.load_or_create_journal_key().unwrap();
        assert!(!again.created);
        assert_eq!(again.key, first.key);
        std::fs::set_permissions(s.journal_key(), std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = s.load_or_create_journal_key().unwrap_err();
        assert!(e.contains("mode 0640") && e.contains("chmod 0600") && e.contains("journal.key"), "{e}");
        std::fs::set_permissions(s.journal_key(), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(s.journal_key(), b"short").unwrap();
        assert!(s.load_or_create_journal_key().unwrap_err().contains("5"));
    }

    #[test]
    fn journal_key_secret_is_64_hex_characters() {
        assert!(journal_key_from_secret("jk", &"ab".repeat(32)).is_ok());
        let e = journal_key_from_secret("jk", "not hex").unwrap_err();
        assert!(e.contains("`jk`") && e.contains("64 hex"), "{e}");
        assert!(journal_key_from_secret("jk", &"ab".repeat(16)).unwrap_err().contains("16"));
    }
}
