//! Journal, timer and migration tests of the SQLite store.

use super::*;
use serde_json::json;

fn append(store: &SqliteStore, n: usize) {
    for i in 0..n {
        store.transaction(&mut |tx| tx.append("INC-1", i as i64, "note", &json!({"i": i})).map(|_| ())).unwrap();
    }
}

#[test]
fn chain_verifies_and_detects_edits_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    append(&store, 5);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.events, 5);

    let conn = Connection::open(dir.path().join("journal.db")).unwrap();
    conn.execute("UPDATE events SET data = '{\"i\":99}' WHERE seq = 3", []).unwrap();
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("event 3") && p.contains("edited")), "{:?}", r.problems);

    conn.execute("UPDATE events SET data = '{\"i\":2}' WHERE seq = 3", []).unwrap();
    assert!(store.verify(None).unwrap().problems.is_empty());
    conn.execute("DELETE FROM events WHERE seq = 2", []).unwrap();
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("missing")), "{:?}", r.problems);
}

#[test]
fn deleting_the_last_event_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    append(&store, 3);
    let conn = Connection::open(dir.path().join("journal.db")).unwrap();
    conn.execute("DELETE FROM events WHERE seq = 3", []).unwrap();
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("removed from the end")), "{:?}", r.problems);
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
fn failed_transactions_leave_nothing() {
    let store = SqliteStore::in_memory().unwrap();
    let r = store.transaction(&mut |tx| {
        tx.append("INC-1", 1, "x", &json!({}))?;
        anyhow::bail!("boom")
    });
    assert!(r.is_err());
    assert_eq!(store.verify(None).unwrap().events, 0);
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
fn timers_cancel_by_exact_key_or_family() {
    let store = SqliteStore::in_memory().unwrap();
    store
        .transaction(&mut |tx| {
            tx.add_timer("INC-1", 10, "deadline:step:bridge", "step-deadline", &json!({}))?;
            tx.add_timer("INC-1", 10, "deadline:step:bridge-2", "step-deadline", &json!({}))?;
            tx.add_timer("INC-1", 10, "escalate:0", "escalate", &json!({"level": 0, "round": 1}))?;
            tx.add_timer("INC-1", 10, "escalate:1", "escalate", &json!({"level": 1, "round": 1}))?;
            tx.add_timer("INC-2", 10, "escalate:0", "escalate", &json!({"level": 0, "round": 1}))?;
            assert_eq!(tx.cancel_timer("INC-1", "deadline:step:bridge")?, 1);
            assert_eq!(tx.cancel_timers_in("INC-1", "escalate")?, 2);
            Ok(())
        })
        .unwrap();
    let left: Vec<(String, String)> =
        store.due_timers(i64::MAX).unwrap().into_iter().map(|t| (t.incident_id, t.kind)).collect();
    assert_eq!(
        left,
        [("INC-1".to_string(), "deadline:step:bridge-2".to_string()), ("INC-2".to_string(), "escalate:0".to_string())]
    );
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
fn claimed_intents_are_skipped_until_released_and_dead_letters_are_listed() {
    let store = SqliteStore::in_memory().unwrap();
    let intent = |id: &str| IntentRow {
        invocation_id: id.into(),
        incident_id: "INC-1".into(),
        created_at: 0,
        not_before: 0,
        payload: json!({"target": "oncall"}),
        attempts: 0,
        result: None,
    };
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1"))?;
            tx.add_intent(&intent("INC-1.2"))?;
            tx.add_timer("INC-1", 5, "track:update", "track", &json!({}))?;
            Ok(())
        })
        .unwrap();
    assert_eq!(store.claim_intents(10, 1).unwrap()[0].invocation_id, "INC-1.1");
    assert_eq!(store.claim_intents(10, 10).unwrap().len(), 1, "the claimed one is skipped");
    assert!(store.claim_intents(10, 10).unwrap().is_empty());
    store.release_intent("INC-1.1", Some(20)).unwrap();
    assert!(store.claim_intents(10, 10).unwrap().is_empty(), "released but deferred");
    assert_eq!(store.claim_intents(20, 10).unwrap().len(), 1);
    assert_eq!(store.outbox_depth().unwrap(), vec![("oncall".to_string(), 2)]);

    store.transaction(&mut |tx| tx.dead_letter_intent("INC-1.2", 30, "boom")).unwrap();
    assert_eq!(store.outbox_depth().unwrap(), vec![("oncall".to_string(), 1)]);
    let timer = store.due_timers(10).unwrap().remove(0);
    assert_eq!(store.defer_timer(timer.id, 40, 1000).unwrap(), 1);
    assert_eq!(store.next_timer_due().unwrap(), Some(1040));
    assert_eq!(store.defer_timer(timer.id, 40, 1000).unwrap(), 2);
    assert_eq!(store.next_timer_due().unwrap(), Some(2040));
    store.transaction(&mut |tx| tx.dead_letter_timer(timer.id, 31, "bad")).unwrap();
    assert!(store.due_timers(100).unwrap().is_empty());
    assert_eq!(store.next_timer_due().unwrap(), None);
    let dead = store.dead_letters().unwrap();
    assert_eq!(
        dead.iter().map(|d| (d.kind, d.id.as_str())).collect::<Vec<_>>(),
        vec![(DeadItemKind::Intent, "INC-1.2"), (DeadItemKind::Timer, "1")]
    );

    let mut redriven = false;
    store
        .transaction(&mut |tx| {
            redriven = tx.redrive_intent("INC-1.2", 50)?;
            Ok(())
        })
        .unwrap();
    assert!(redriven);
    assert_eq!(store.claim_intents(50, 10).unwrap()[0].invocation_id, "INC-1.2");
    assert_eq!(store.dead_letters().unwrap().len(), 1);
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
