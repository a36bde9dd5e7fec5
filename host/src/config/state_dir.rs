//! The layout of the state directory: every file the daemon, the CLI, drills
//! and the plugin host keep under `state_dir` is named here and nowhere else.

use std::path::PathBuf;

/// File name of the API bearer token (mode 0600).
const TOKEN_FILE: &str = "api.token";
/// File name of the hash-chained journal (SQLite).
const JOURNAL_FILE: &str = "journal.db";
/// Directory of compiled plugin components.
const PLUGIN_CACHE_DIR: &str = "plugin-cache";
/// Directory of per-run drill journals.
const DRILLS_DIR: &str = "drills";

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
    }
}
