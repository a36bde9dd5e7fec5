//! Journal, timer and migration tests of the SQLite store.

use super::*;
use crate::store::chain::{JournalKey, KEYED_PREFIX};
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
    let lanes = store.outbox_lanes().unwrap();
    assert_eq!(lanes.iter().map(|l| (l.target.as_str(), l.depth)).collect::<Vec<_>>(), vec![("oncall", 2)]);
    assert_eq!((lanes[0].oldest_at, lanes[0].oldest_incident.as_str()), (0, "INC-1"));

    store.transaction(&mut |tx| tx.dead_letter_intent("INC-1.2", 30, "boom")).unwrap();
    let lanes = store.outbox_lanes().unwrap();
    assert_eq!((lanes[0].depth, lanes[0].oldest_id.as_str()), (1, "INC-1.1"), "the dead letter no longer counts");
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

#[test]
fn a_recovered_targets_backlog_is_made_due_and_no_other() {
    let store = SqliteStore::in_memory().unwrap();
    let intent = |id: &str, target: &str, not_before: i64| IntentRow {
        invocation_id: id.into(),
        incident_id: "INC-1".into(),
        created_at: 0,
        not_before,
        payload: json!({ "target": target }),
        attempts: 1,
        result: None,
    };
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1", "pager", 500))?;
            tx.add_intent(&intent("INC-1.2", "pager", 900))?;
            tx.add_intent(&intent("INC-1.3", "managers", 900))?;
            tx.add_intent(&intent("INC-1.4", "pager", 900))?;
            Ok(())
        })
        .unwrap();
    assert_eq!(store.claim_intents(600, 1).unwrap()[0].invocation_id, "INC-1.1");
    // The claimed one is running; the waiting pager items become due now.
    assert_eq!(store.expedite_target("pager", 100).unwrap(), 2);
    let due: Vec<String> = store.claim_intents(100, 10).unwrap().into_iter().map(|r| r.invocation_id).collect();
    assert_eq!(due, vec!["INC-1.2", "INC-1.4"]);
    assert!(store.claim_intents(899, 10).unwrap().is_empty(), "another target's backoff is kept");
}

fn key(b: u8) -> JournalKey {
    JournalKey::from_bytes(&[b; 32]).unwrap()
}

/// What someone without the key can do: recompute plain SHA-256 for events `from..=to`.
fn rewrite_unkeyed(path: &Path, from: i64, to: i64) {
    let conn = Connection::open(path).unwrap();
    let rows: Vec<(i64, String, i64, String, String, String)> = {
        let mut stmt =
            conn.prepare("SELECT seq, incident_id, at, kind, data, prev_hash FROM events ORDER BY seq").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let mut prev = None;
    for (seq, inc, at, kind, data, stored_prev) in rows {
        if seq < from || seq > to {
            continue;
        }
        let p = prev.clone().unwrap_or(stored_prev);
        let h = event_hash(&p, seq, &inc, at, &kind, &data);
        conn.execute("UPDATE events SET prev_hash = ?1, hash = ?2 WHERE seq = ?3", params![p, h, seq]).unwrap();
        conn.execute("UPDATE kv SET value = ?1 WHERE key = 'chain_head'", params![format!("{seq}:{h}")]).unwrap();
        prev = Some(h);
    }
}

#[test]
fn keyed_chain_verifies_and_a_different_key_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap().with_key(key(1), true).unwrap();
    append(&store, 4);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.head.starts_with(KEYED_PREFIX) && r.head_seq == 4, "{}", r.head);
    drop(store);
    let other = SqliteStore::open(dir.path()).unwrap().with_key(key(2), false).unwrap();
    let r = other.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("key differs")), "{:?}", r.problems);
    assert!(!r.problems.iter().any(|p| p.contains("edited")), "{:?}", r.problems);
}

#[test]
fn an_unkeyed_prefix_verifies_under_keyed_events_and_editing_it_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    append(&SqliteStore::open(dir.path()).unwrap(), 3);
    let store = SqliteStore::open(dir.path()).unwrap().with_key(key(1), true).unwrap();
    append(&store, 2);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let ev = store.events("INC-1", 3).unwrap();
    assert_eq!(HashAlg::of(&ev[0].prev_hash), HashAlg::Unkeyed, "the first keyed event chains onto the old head");
    assert!(ev.iter().all(|e| HashAlg::of(&e.hash) == HashAlg::Keyed));

    let conn = Connection::open(&db).unwrap();
    conn.execute("UPDATE events SET data = '{\"i\":42}' WHERE seq = 2", []).unwrap();
    rewrite_unkeyed(&db, 2, i64::MAX);
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("event 4") && p.contains("unkeyed hash")), "{:?}", r.problems);

    // Rewriting only the unkeyed prefix breaks the link into the first keyed event.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    append(&SqliteStore::open(dir.path()).unwrap(), 3);
    let store = SqliteStore::open(dir.path()).unwrap().with_key(key(1), true).unwrap();
    append(&store, 1);
    let conn = Connection::open(&db).unwrap();
    conn.execute("UPDATE events SET data = '{\"i\":42}' WHERE seq = 2", []).unwrap();
    rewrite_unkeyed(&db, 2, 3);
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("event 4") && p.contains("does not chain")), "{:?}", r.problems);
}

#[test]
fn a_journal_rewritten_unkeyed_without_its_keying_record_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    append(&SqliteStore::open(dir.path()).unwrap().with_key(key(1), true).unwrap(), 3);
    rewrite_unkeyed(&db, 1, i64::MAX);
    Connection::open(&db).unwrap().execute("DELETE FROM kv WHERE key = 'chain_keyed_from'", []).unwrap();
    let store = SqliteStore::open(dir.path()).unwrap().with_key(key(1), false).unwrap();
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("no sealed record")), "{:?}", r.problems);
}

#[test]
fn pinned_playbooks_are_sealed_and_anchors_hold_until_their_event_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let store = SqliteStore::open(dir.path()).unwrap().with_key(key(1), true).unwrap();
    store.transaction(&mut |tx| tx.put_playbook_version("h1", "pb", &json!({"id": "pb"}))).unwrap();
    append(&store, 2);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let anchor = Anchor { seq: r.head_seq, hash: r.head.clone() };
    append(&store, 2);
    assert!(store.verify(Some(&anchor)).unwrap().problems.is_empty());
    let conn = Connection::open(&db).unwrap();
    conn.execute("UPDATE playbook_versions SET spec = '{\"id\":\"pb\",\"x\":1}' WHERE hash = 'h1'", []).unwrap();
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("h1") && p.contains("edited")), "{:?}", r.problems);
    conn.execute("UPDATE events SET at = 77 WHERE seq = 2", []).unwrap();
    let wrong = Anchor { seq: 2, hash: format!("{KEYED_PREFIX}{}", "0".repeat(64)) };
    let r = store.verify(Some(&wrong)).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("anchored hash")), "{:?}", r.problems);
    let r = store.verify(Some(&Anchor { seq: 9, hash: anchor.hash })).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("anchored event 9")), "{:?}", r.problems);
}

#[test]
fn intents_held_by_an_open_circuit_are_due_again_after_a_restart_and_backoffs_are_kept() {
    let store = SqliteStore::in_memory().unwrap();
    let intent = |id: &str| IntentRow {
        invocation_id: id.into(),
        incident_id: "INC-1".into(),
        created_at: 0,
        not_before: 0,
        payload: json!({ "target": "pager" }),
        attempts: 0,
        result: None,
    };
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1"))?;
            tx.add_intent(&intent("INC-1.2"))?;
            Ok(())
        })
        .unwrap();
    assert_eq!(store.claim_intents(0, 10).unwrap().len(), 2);
    store.hold_intent("INC-1.1", 3_600_000).unwrap();
    store.release_intent("INC-1.2", Some(5_000)).unwrap();
    assert!(store.claim_intents(100, 10).unwrap().is_empty(), "held and backed off");
    // A restart: circuits start closed, so the held one is due now; a backoff stays.
    store.release_claims(100).unwrap();
    let due: Vec<String> = store.claim_intents(100, 10).unwrap().into_iter().map(|r| r.invocation_id).collect();
    assert_eq!(due, vec!["INC-1.1"]);
    assert_eq!(store.claim_intents(5_000, 10).unwrap()[0].invocation_id, "INC-1.2");
}
