//! Tests of what only the SQLite store has (group commit, fsync failures,
//! its migrations, undecodable columns), and the shared conformance tests
//! run against it.

use super::*;
use crate::store::conformance::{Backend, conformance_tests, intent};
use serde_json::json;

/// A SQLite journal in a temporary directory, for the conformance tests.
struct SqliteBackend {
    dir: tempfile::TempDir,
}

impl Backend for SqliteBackend {
    fn open(&self, key: Option<(JournalKey, bool)>) -> Box<dyn Store> {
        let store = SqliteStore::open(self.dir.path()).unwrap();
        Box::new(match key {
            Some((k, adopt)) => store.with_key(k, adopt).unwrap(),
            None => store,
        })
    }

    fn tamper(&self, sql: &str) {
        Connection::open(self.dir.path().join("journal.db")).unwrap().execute_batch(sql).unwrap();
    }
}

conformance_tests!(Some(SqliteBackend { dir: tempfile::tempdir().unwrap() }));

fn append(store: &SqliteStore, n: usize) {
    for i in 0..n {
        store.transaction(&mut |tx| tx.append("INC-1", i as i64, "note", &json!({"i": i})).map(|_| ())).unwrap();
    }
}

#[test]
fn concurrent_commits_share_flushes_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    s.transaction(&mut |tx| tx.append(&format!("INC-{t}"), i, "note", &json!({"i": i})).map(|_| ()))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = store.verify(None).unwrap();
    assert_eq!(r.events, 400);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let flushes = store.flush_count();
    assert!((1..=400).contains(&flushes), "{flushes}");
    // Every commit was followed by a flush that covered it.
    let st = store.flush_lock();
    assert_eq!(st.synced, st.committed);
}

#[test]
fn migrations_are_idempotent_and_versioned() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let s = SqliteStore::open(dir.path()).unwrap();
    let v: i64 = s.lock().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v as usize, MIGRATIONS.len());
    s.lock().pragma_update(None, "user_version", 99).unwrap();
    drop(s);
    let e = SqliteStore::open(dir.path()).err().unwrap().to_string();
    assert!(e.contains("newer crisis"), "{e}");
}

#[test]
fn timers_stored_before_families_get_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let conn = Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..2] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        for k in ["deadline:step:a", "deadline:ack", "escalate:3", "track:stale"] {
            conn.execute(
                "INSERT INTO timers (incident_id, due_at, kind, data) VALUES ('INC-1', 1, ?1, '{}')",
                params![k],
            )
            .unwrap();
        }
    }
    let s = SqliteStore::open_path(&path).unwrap();
    let fams: Vec<(String, String)> = s.due_timers(i64::MAX).unwrap().into_iter().map(|t| (t.kind, t.family)).collect();
    let want = [
        ("deadline:step:a", "step-deadline"),
        ("deadline:ack", "deadline"),
        ("escalate:3", "escalate"),
        ("track:stale", "track"),
    ];
    assert_eq!(fams, want.map(|(k, f)| (k.to_string(), f.to_string())));
}

#[test]
fn intents_stored_before_the_target_column_get_theirs_and_lanes_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let conn = Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..6] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        for (id, payload) in [("a", r#"{"target":"superiors"}"#), ("b", r#"{"target":"oncall"}"#), ("c", "{not json")] {
            conn.execute(
                "INSERT INTO intents (invocation_id, incident_id, created_at, not_before, payload) VALUES (?1, 'INC-1', 1, 1, ?2)",
                params![id, payload],
            )
            .unwrap();
        }
    }
    let s = SqliteStore::open_path(&path).unwrap();
    let lanes: Vec<(String, i64)> = s.outbox_lanes().unwrap().into_iter().map(|l| (l.target, l.depth)).collect();
    assert_eq!(lanes, [("?".to_string(), 1), ("oncall".to_string(), 1), ("superiors".to_string(), 1)]);
    let conn = Connection::open(&path).unwrap();
    let plan: String =
        conn.query_row(&format!("EXPLAIN QUERY PLAN {}", super::outbox::LANES_SQL), [], |r| r.get(3)).unwrap();
    assert!(plan.contains("intents_target_pending"), "per-target lanes must read the index, plan: {plan}");
}

#[test]
fn a_claim_reads_each_targets_due_range_from_the_claim_index_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("journal.db")).unwrap();
    let plan: String = conn
        .query_row(&format!("EXPLAIN QUERY PLAN {}", super::outbox::DUE_KEYS_SQL), params!["pager", 0, 0, 0, 1], |r| {
            r.get(3)
        })
        .unwrap();
    assert!(plan.contains("INDEX intents_claimable (target=? AND not_before>? AND not_before<?)"), "plan: {plan}");
    let next: String = conn
        .query_row(&format!("EXPLAIN QUERY PLAN {}", super::outbox::NEXT_TARGET_SQL), params!["pager"], |r| r.get(3))
        .unwrap();
    assert!(next.contains("INDEX intents_claimable (target>?)"), "each target is one seek, plan: {next}");
}

#[test]
fn open_incident_reads_touch_the_open_incidents_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("journal.db")).unwrap();
    let plan = |sql: &str| -> String {
        conn.query_row(&format!("EXPLAIN QUERY PLAN {sql}"), [None::<String>], |r| r.get(3)).unwrap()
    };
    let labels = plan(super::OPEN_INCIDENTS_SQL);
    assert!(labels.contains("COVERING INDEX incidents_open_labels"), "plan: {labels}");
    let open = plan(&super::incidents_sql(true));
    assert!(open.contains("incidents_open_list"), "plan: {open}");
}

#[test]
fn corrupt_rows_are_returned_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .transaction(&mut |tx| {
            tx.add_timer("INC-1", 5, "track:update", "track", &json!({}))?;
            tx.add_timer("INC-2", 5, "track:update", "track", &json!({}))?;
            Ok(())
        })
        .unwrap();
    let conn = Connection::open(dir.path().join("journal.db")).unwrap();
    conn.execute("UPDATE timers SET data = '{not json', incident_id = x'ff00' WHERE incident_id = 'INC-1'", [])
        .unwrap();
    let due = store.due_timers(10).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].data, serde_json::Value::Null);
    assert_eq!(due[1].incident_id, "INC-2");
}

#[test]
fn a_failed_fsync_is_never_followed_by_a_successful_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.fail_fsync_at = Some(2);
    store.exit_on_fsync_failure = false;
    append(&store, 1);
    let second = store.transaction(&mut |tx| tx.append("INC-1", 1, "note", &json!({})).map(|_| ()));
    let err = format!("{:#}", second.unwrap_err());
    assert!(err.contains("cannot flush") && err.contains("failpoint"), "{err}");
    // The disk is not asked again: a later fsync could succeed without the lost pages.
    let third = store.transaction(&mut |tx| tx.append("INC-1", 2, "note", &json!({})).map(|_| ()));
    assert!(format!("{:#}", third.unwrap_err()).contains("earlier fsync"));
    assert!(store.sync().is_err());
    assert_eq!(store.flush_count(), 1);
}

#[test]
fn the_fsync_failpoint_is_read_as_a_positive_count() {
    // Parsed from the value alone; the environment is process-wide, so it is not set here.
    assert_eq!(parse_fsync_failpoint("fsync-error-after:3"), Some(3));
    assert_eq!(parse_fsync_failpoint("fsync-error-after:0"), None);
    assert_eq!(parse_fsync_failpoint("after-execute"), None);
}

#[test]
fn outbox_counts_are_read_without_the_writers_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    store.transaction(&mut |tx| tx.add_intent(&intent("INC-1.1", "oncall", 7, 0))).unwrap();
    // A long write holds the store lock: the counts still answer, and they
    // include everything committed before it.
    let writing = store.lock();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = store.clone();
    std::thread::spawn(move || tx.send(reader.outbox_lanes().map(|l| (l[0].target.clone(), l[0].depth))).unwrap());
    let lanes = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the counts waited for the writer");
    assert_eq!(lanes.unwrap(), ("oncall".to_string(), 1));
    drop(writing);
}
