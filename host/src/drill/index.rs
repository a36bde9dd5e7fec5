//! The daemon's index of drill runs and schedule state, in the main journal
//! database (migration 2), so `crisis drill list` and `drill report` work
//! after restarts. Each run's events live in its own journal; this index
//! holds the run's identity, status, score and after-action report.
//!
//! A scheduled occurrence is claimed by inserting its row, unique on
//! (playbook, scheduled time), before anything runs: a restart or a second
//! check can never start the same occurrence twice.

use super::trend::TrendPoint;
use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// One drill run, or one scheduled occurrence that did not run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRow {
    /// Run id: `<playbook>.m<unix ms>` for manual runs; scheduled runs get their own id per occurrence.
    pub id: String,
    /// Id of the playbook drilled.
    pub playbook_id: String,
    /// File the drilled playbook was loaded from (informational).
    pub playbook_path: String,
    /// sha256 (hex) of the exact playbook version drilled.
    pub playbook_hash: String,
    /// `schedule` or `manual`.
    pub origin: String,
    /// Unix ms of the schedule occurrence this row is for; `None` for manual runs.
    pub scheduled_for: Option<i64>,
    /// `running`, `completed`, `incomplete`, `cancelled`, `failed`, `interrupted`,
    /// or for occurrences that did not run: `missed`, `suspended`, `blackout`, `refused-overlap`.
    pub status: String,
    /// Why the run ended as it did or the occurrence was skipped; `None` for a normal run.
    pub reason: Option<String>,
    /// Clock mode the run used: `real`, `virtual` or `xN`.
    pub clock: String,
    /// Scenario seed: the same seed replays the same drill.
    pub seed: u64,
    /// Unix ms when the row was claimed.
    pub created_at: i64,
    /// Unix ms when the run started; `None` for occurrences that never ran.
    pub started_at: Option<i64>,
    /// Unix ms when the run ended; `None` while running or if it never ran.
    pub finished_at: Option<i64>,
    /// Total score 0..=100 from the after-action report; `None` until the run finishes with a report.
    pub score: Option<u32>,
    /// `pass` or `fail` from the report; `None` until the run finishes with a report.
    pub verdict: Option<String>,
    /// The after-action report as JSON; only filled by [`DrillIndex::get`], `None` in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
}

/// Handle on the drill tables of the main journal database; safe to share between threads.
pub struct DrillIndex {
    conn: Mutex<Connection>,
}

const COLS: &str = "id, playbook_id, playbook_path, playbook_hash, origin, scheduled_for, status, reason, clock, seed, created_at, started_at, finished_at, score, verdict";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        playbook_id: r.get(1)?,
        playbook_path: r.get(2)?,
        playbook_hash: r.get(3)?,
        origin: r.get(4)?,
        scheduled_for: r.get(5)?,
        status: r.get(6)?,
        reason: r.get(7)?,
        clock: r.get(8)?,
        seed: r.get::<_, i64>(9)? as u64,
        created_at: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        score: r.get::<_, Option<i64>>(13)?.map(|s| s as u32),
        verdict: r.get(14)?,
        report: None,
    })
}

impl DrillIndex {
    /// Opens the index in `state_dir/journal.db` (migrating it if needed).
    pub fn open(state_dir: &Path) -> anyhow::Result<Self> {
        // Opening the store applies the migrations; the index then uses its own connection.
        drop(crate::store::SqliteStore::open(state_dir)?);
        let path = crate::config::state_dir::StateDir::new(state_dir).journal();
        let conn = Connection::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(DrillIndex { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts a run; `false` if its (playbook, scheduled time) or id already exists.
    pub fn claim(&self, r: &RunRow) -> anyhow::Result<bool> {
        let n = self.lock().execute(
            "INSERT OR IGNORE INTO drill_runs (id, playbook_id, playbook_path, playbook_hash, origin, scheduled_for, status, reason, clock, seed, created_at, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![r.id, r.playbook_id, r.playbook_path, r.playbook_hash, r.origin, r.scheduled_for, r.status, r.reason, r.clock, r.seed as i64, r.created_at, r.started_at],
        )?;
        Ok(n == 1)
    }

    /// Records a finished run with its score and report.
    pub fn finish(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
        finished_at: i64,
        report: Option<&super::AfterActionReport>,
    ) -> anyhow::Result<()> {
        let (score, verdict, json) = match report {
            Some(r) => (Some(r.score.total as i64), Some(r.score.verdict.clone()), Some(serde_json::to_string(r)?)),
            None => (None, None, None),
        };
        self.lock().execute(
            "UPDATE drill_runs SET status = ?2, reason = ?3, finished_at = ?4, score = ?5, verdict = ?6, report = ?7 WHERE id = ?1",
            params![id, status, reason, finished_at, score, verdict, json],
        )?;
        Ok(())
    }

    /// One run by id, with its report; `None` if there is no such run.
    pub fn get(&self, id: &str) -> anyhow::Result<Option<RunRow>> {
        let c = self.lock();
        let r = c
            .query_row(&format!("SELECT {COLS}, report FROM drill_runs WHERE id = ?1"), [id], |r| {
                let mut x = row(r)?;
                x.report = r.get::<_, Option<String>>(15)?.and_then(|s| serde_json::from_str(&s).ok());
                Ok(x)
            })
            .optional()?;
        Ok(r)
    }

    /// All runs, newest first (without reports).
    pub fn list(&self, limit: usize) -> anyhow::Result<Vec<RunRow>> {
        let c = self.lock();
        let mut st = c.prepare(&format!("SELECT {COLS} FROM drill_runs ORDER BY created_at DESC, id DESC LIMIT ?1"))?;
        let rows = st.query_map([limit as i64], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Ids of the newest 500 runs, newest first (for suggestions on a mistyped id).
    pub fn ids(&self) -> anyhow::Result<Vec<String>> {
        let c = self.lock();
        let mut st = c.prepare("SELECT id FROM drill_runs ORDER BY created_at DESC LIMIT 500")?;
        let rows = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }

    /// Whether a run of `playbook` is in progress.
    pub fn running(&self, playbook: &str) -> anyhow::Result<bool> {
        let n: i64 = self.lock().query_row(
            "SELECT COUNT(*) FROM drill_runs WHERE playbook_id = ?1 AND status = 'running'",
            [playbook],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The newest run of `playbook` that actually ran to an end.
    pub fn last_run(&self, playbook: &str) -> anyhow::Result<Option<RunRow>> {
        let c = self.lock();
        Ok(c.query_row(
            &format!("SELECT {COLS} FROM drill_runs WHERE playbook_id = ?1 AND started_at IS NOT NULL AND status != 'running' ORDER BY started_at DESC LIMIT 1"),
            [playbook],
            row,
        )
        .optional()?)
    }

    /// The newest `n` scored runs of `playbook` that started no later than run `upto` (all of them when
    /// `None`), oldest first: the score trend shown by `crisis drill list` and the HTML report.
    pub fn trend(&self, playbook: &str, upto: Option<&str>, n: usize) -> anyhow::Result<Vec<TrendPoint>> {
        let c = self.lock();
        let mut st = c.prepare(
            "SELECT r.id, r.score, r.verdict, r.playbook_hash, r.started_at FROM drill_runs r
             WHERE r.playbook_id = ?1 AND r.score IS NOT NULL AND r.started_at IS NOT NULL
               AND (?2 IS NULL OR r.started_at < (SELECT started_at FROM drill_runs WHERE id = ?2)
                    OR (r.started_at = (SELECT started_at FROM drill_runs WHERE id = ?2) AND r.id <= ?2))
             ORDER BY r.started_at DESC, r.id DESC LIMIT ?3",
        )?;
        let mut rows = st
            .query_map(params![playbook, upto, n as i64], |r| {
                Ok(TrendPoint {
                    run_id: r.get(0)?,
                    score: r.get::<_, i64>(1)? as u32,
                    verdict: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    playbook_hash: r.get(3)?,
                    started_at: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Runs left `running` by a daemon that stopped: marked `interrupted`.
    pub fn interrupt_running(&self, now: i64) -> anyhow::Result<usize> {
        Ok(self.lock().execute(
            "UPDATE drill_runs SET status = 'interrupted', reason = 'the daemon stopped while the drill ran', finished_at = ?1 WHERE status = 'running'",
            [now],
        )?)
    }

    /// Suspends or resumes the scheduled drills of `playbook` (`crisis drill suspend`/`resume`).
    pub fn set_suspended(&self, playbook: &str, suspended: bool) -> anyhow::Result<()> {
        self.lock().execute(
            "INSERT INTO drill_schedules (playbook_id, suspended) VALUES (?1, ?2) ON CONFLICT(playbook_id) DO UPDATE SET suspended = ?2",
            params![playbook, suspended as i64],
        )?;
        Ok(())
    }

    /// Whether scheduled drills of `playbook` are suspended; `false` if never set.
    pub fn suspended(&self, playbook: &str) -> anyhow::Result<bool> {
        let v: Option<i64> = self
            .lock()
            .query_row("SELECT suspended FROM drill_schedules WHERE playbook_id = ?1", [playbook], |r| r.get(0))
            .optional()?;
        Ok(v == Some(1))
    }

    /// Unix ms up to which the schedule of `playbook` has been decided; `None` if never checked.
    pub fn last_checked(&self, playbook: &str) -> anyhow::Result<Option<i64>> {
        let v: Option<Option<i64>> = self
            .lock()
            .query_row("SELECT last_checked FROM drill_schedules WHERE playbook_id = ?1", [playbook], |r| r.get(0))
            .optional()?;
        Ok(v.flatten())
    }

    /// Records that occurrences of `playbook` up to `at` (Unix ms) have been decided.
    pub fn set_last_checked(&self, playbook: &str, at: i64) -> anyhow::Result<()> {
        self.lock().execute(
            "INSERT INTO drill_schedules (playbook_id, last_checked) VALUES (?1, ?2) ON CONFLICT(playbook_id) DO UPDATE SET last_checked = ?2",
            params![playbook, at],
        )?;
        Ok(())
    }
}
