//! The behaviour every [`Store`] backend must have, as tests written once
//! and run against each backend (SQLite and PostgreSQL), so the backends
//! cannot drift apart.

use super::*;
use serde_json::json;

/// What a conformance test needs from a backend.
pub(crate) trait Backend {
    /// Opens this backend's journal (the same one every time), with a key
    /// and whether it may adopt unkeyed events, if given.
    fn open(&self, key: Option<(JournalKey, bool)>) -> Box<dyn Store>;
    /// Runs SQL on the journal database behind the store's back, as someone
    /// tampering with it would.
    fn tamper(&self, sql: &str);
}

/// Declares one `#[test]` per conformance test, each with a fresh backend
/// from `$backend` (an `Option`: `None` means the backend is unavailable and
/// the test is skipped, having said why).
macro_rules! conformance_tests {
    ($backend:expr) => {
        conformance_tests!($backend;
            chain_verifies_and_detects_edits_and_deletes,
            deleting_the_last_event_is_detected,
            concurrent_commits_all_land_in_one_chain,
            failed_transactions_leave_nothing,
            timers_cancel_by_exact_key_or_family,
            claimed_intents_are_skipped_until_released_and_dead_letters_are_listed,
            a_recovered_targets_backlog_is_made_due_and_no_other,
            a_claim_passes_over_the_skipped_targets,
            a_claim_takes_only_the_intents_due_within_its_window,
            an_intent_with_an_empty_target_is_claimed_and_due,
            keyed_chain_verifies_and_a_different_key_is_named_as_such,
            an_unkeyed_prefix_verifies_under_keyed_events_and_editing_it_is_caught,
            rewriting_only_the_unkeyed_prefix_breaks_the_link_into_the_keyed_events,
            a_journal_rewritten_unkeyed_without_its_keying_record_is_caught,
            pinned_playbooks_are_sealed_and_anchors_hold_until_their_event_changes,
            intents_held_by_an_open_circuit_are_due_again_after_a_restart_and_backoffs_are_kept,
            tokens_round_trip_and_revoke_once,
            incidents_counters_and_kv_round_trip,
            kv_adds_from_two_stores_on_one_journal_all_count,
            incident_pages_follow_the_list_order_and_stay_put_as_incidents_open,
            complaints_filter_by_category_and_an_intake_key_is_unique,
            a_key_prefix_is_deleted_in_its_transaction_and_no_other_key
        );
    };
    ($backend:expr; $($name:ident),+) => {
        $(
            #[test]
            fn $name() {
                if let Some(b) = $backend {
                    crate::store::conformance::$name(&b);
                }
            }
        )+
    };
}
pub(crate) use conformance_tests;

fn append(store: &dyn Store, n: usize) {
    for i in 0..n {
        store.transaction(&mut |tx| tx.append("INC-1", i as i64, "note", &json!({"i": i})).map(|_| ())).unwrap();
    }
}

fn key(b: u8) -> JournalKey {
    JournalKey::from_bytes(&[b; 32]).unwrap()
}

pub(crate) fn chain_verifies_and_detects_edits_and_deletes(b: &dyn Backend) {
    let store = b.open(None);
    append(&*store, 5);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.events, 5);

    b.tamper("UPDATE events SET data = '{\"i\":99}' WHERE seq = 3");
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("event 3") && p.contains("edited")), "{:?}", r.problems);

    b.tamper("UPDATE events SET data = '{\"i\":2}' WHERE seq = 3");
    assert!(store.verify(None).unwrap().problems.is_empty());
    b.tamper("DELETE FROM events WHERE seq = 2");
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("missing")), "{:?}", r.problems);
}

pub(crate) fn deleting_the_last_event_is_detected(b: &dyn Backend) {
    let store = b.open(None);
    append(&*store, 3);
    b.tamper("DELETE FROM events WHERE seq = 3");
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("removed from the end")), "{:?}", r.problems);
}

pub(crate) fn concurrent_commits_all_land_in_one_chain(b: &dyn Backend) {
    let store: std::sync::Arc<dyn Store> = b.open(None).into();
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
}

pub(crate) fn failed_transactions_leave_nothing(b: &dyn Backend) {
    let store = b.open(None);
    let r = store.transaction(&mut |tx| {
        tx.append("INC-1", 1, "x", &json!({}))?;
        anyhow::bail!("boom")
    });
    assert!(r.is_err());
    assert_eq!(store.verify(None).unwrap().events, 0);
    // The store is still usable afterwards.
    append(&*store, 1);
    assert_eq!(store.verify(None).unwrap().events, 1);
}

pub(crate) fn timers_cancel_by_exact_key_or_family(b: &dyn Backend) {
    let store = b.open(None);
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

/// A pending intent of `INC-1` for `target`, created at 0.
pub(crate) fn intent(id: &str, target: &str, not_before: i64, attempts: i64) -> IntentRow {
    IntentRow {
        invocation_id: id.into(),
        incident_id: "INC-1".into(),
        created_at: 0,
        not_before,
        payload: json!({ "target": target }),
        attempts,
        result: None,
        reclaimed_from: None,
    }
}

pub(crate) fn claimed_intents_are_skipped_until_released_and_dead_letters_are_listed(b: &dyn Backend) {
    let store = b.open(None);
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1", "oncall", 0, 0))?;
            tx.add_intent(&intent("INC-1.2", "oncall", 0, 0))?;
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

pub(crate) fn a_recovered_targets_backlog_is_made_due_and_no_other(b: &dyn Backend) {
    let store = b.open(None);
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1", "pager", 500, 1))?;
            tx.add_intent(&intent("INC-1.2", "pager", 900, 1))?;
            tx.add_intent(&intent("INC-1.3", "managers", 900, 1))?;
            tx.add_intent(&intent("INC-1.4", "pager", 900, 1))?;
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

pub(crate) fn a_claim_passes_over_the_skipped_targets(b: &dyn Backend) {
    let store = b.open(None);
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1", "pager", 0, 0))?;
            tx.add_intent(&intent("INC-1.2", "pager", 0, 0))?;
            tx.add_intent(&intent("INC-1.3", "managers", 0, 0))?;
            tx.add_intent(&intent("INC-1.4", "regulator", 0, 0))?;
            Ok(())
        })
        .unwrap();
    let ids = |rows: Vec<IntentRow>| rows.into_iter().map(|r| r.invocation_id).collect::<Vec<_>>();
    let skip = ["pager".to_string(), "regulator".to_string()];
    assert_eq!(
        ids(store.claim_intents_except(10, 1, &skip, DueWindow::Any).unwrap()),
        vec!["INC-1.3"],
        "the skipped ones come first"
    );
    assert!(
        store.claim_intents_except(10, 10, &skip, DueWindow::Any).unwrap().is_empty(),
        "they are passed over, not claimed"
    );
    assert_eq!(ids(store.claim_intents_except(10, 10, &skip[..1], DueWindow::Any).unwrap()), vec!["INC-1.4"]);
    assert_eq!(ids(store.claim_intents(10, 10).unwrap()), vec!["INC-1.1", "INC-1.2"]);
}

pub(crate) fn a_claim_takes_only_the_intents_due_within_its_window(b: &dyn Backend) {
    let store = b.open(None);
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1", "pager", 10, 0))?;
            tx.add_intent(&intent("INC-1.2", "pager", 99, 0))?;
            tx.add_intent(&intent("INC-1.3", "pager", 100, 0))?;
            tx.add_intent(&intent("INC-1.4", "pager", 160, 0))?;
            tx.add_intent(&intent("INC-1.5", "pager", 300, 0))?;
            Ok(())
        })
        .unwrap();
    let ids = |rows: Vec<IntentRow>| rows.into_iter().map(|r| r.invocation_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.claim_intents_except(200, 10, &[], DueWindow::Since(100)).unwrap()),
        vec!["INC-1.3", "INC-1.4"]
    );
    assert_eq!(
        ids(store.claim_intents_except(200, 10, &[], DueWindow::Before(100)).unwrap()),
        vec!["INC-1.1", "INC-1.2"]
    );
    assert!(store.claim_intents_except(200, 10, &[], DueWindow::Any).unwrap().is_empty(), "INC-1.5 is not due yet");
    assert_eq!(ids(store.claim_intents_except(300, 10, &[], DueWindow::Any).unwrap()), vec!["INC-1.5"]);
}

pub(crate) fn an_intent_with_an_empty_target_is_claimed_and_due(b: &dyn Backend) {
    let store = b.open(None);
    store.transaction(&mut |tx| tx.add_intent(&intent("INC-1.1", "", 10, 0))).unwrap();
    assert_eq!(store.next_intent_due().unwrap(), Some(10));
    let claimed: Vec<String> = store.claim_intents(10, 10).unwrap().into_iter().map(|r| r.invocation_id).collect();
    assert_eq!(claimed, vec!["INC-1.1"]);
}

/// What someone without the key can do: recompute plain SHA-256 for events
/// `from..=to` (all of incident `INC-1`) and the recorded head.
fn rewrite_unkeyed(b: &dyn Backend, store: &dyn Store, from: i64, to: i64) {
    let mut prev: Option<String> = None;
    for e in store.events("INC-1", 0).unwrap() {
        if e.seq < from || e.seq > to {
            continue;
        }
        let p = prev.clone().unwrap_or(e.prev_hash);
        let h = event_hash(&p, e.seq, &e.incident_id, e.at, &e.kind, &serde_json::to_string(&e.data).unwrap());
        b.tamper(&format!("UPDATE events SET prev_hash = '{p}', hash = '{h}' WHERE seq = {}", e.seq));
        b.tamper(&format!("UPDATE kv SET value = '{}:{h}' WHERE key = 'chain_head'", e.seq));
        prev = Some(h);
    }
}

pub(crate) fn keyed_chain_verifies_and_a_different_key_is_named_as_such(b: &dyn Backend) {
    let store = b.open(Some((key(1), true)));
    append(&*store, 4);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.head.starts_with(KEYED_PREFIX) && r.head_seq == 4, "{}", r.head);
    drop(store);
    let other = b.open(Some((key(2), false)));
    let r = other.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("key differs")), "{:?}", r.problems);
    assert!(!r.problems.iter().any(|p| p.contains("edited")), "{:?}", r.problems);
}

pub(crate) fn an_unkeyed_prefix_verifies_under_keyed_events_and_editing_it_is_caught(b: &dyn Backend) {
    append(&*b.open(None), 3);
    let store = b.open(Some((key(1), true)));
    append(&*store, 2);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let ev = store.events("INC-1", 3).unwrap();
    assert_eq!(HashAlg::of(&ev[0].prev_hash), HashAlg::Unkeyed, "the first keyed event chains onto the old head");
    assert!(ev.iter().all(|e| HashAlg::of(&e.hash) == HashAlg::Keyed));

    b.tamper("UPDATE events SET data = '{\"i\":42}' WHERE seq = 2");
    rewrite_unkeyed(b, &*store, 2, i64::MAX);
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("event 4") && p.contains("unkeyed hash")), "{:?}", r.problems);
}

pub(crate) fn rewriting_only_the_unkeyed_prefix_breaks_the_link_into_the_keyed_events(b: &dyn Backend) {
    append(&*b.open(None), 3);
    let store = b.open(Some((key(1), true)));
    append(&*store, 1);
    b.tamper("UPDATE events SET data = '{\"i\":42}' WHERE seq = 2");
    rewrite_unkeyed(b, &*store, 2, 3);
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("event 4") && p.contains("does not chain")), "{:?}", r.problems);
}

pub(crate) fn a_journal_rewritten_unkeyed_without_its_keying_record_is_caught(b: &dyn Backend) {
    let first = b.open(Some((key(1), true)));
    append(&*first, 3);
    rewrite_unkeyed(b, &*first, 1, i64::MAX);
    drop(first);
    b.tamper("DELETE FROM kv WHERE key = 'chain_keyed_from'");
    let store = b.open(Some((key(1), false)));
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("no sealed record")), "{:?}", r.problems);
}

pub(crate) fn pinned_playbooks_are_sealed_and_anchors_hold_until_their_event_changes(b: &dyn Backend) {
    let store = b.open(Some((key(1), true)));
    store.transaction(&mut |tx| tx.put_playbook_version("h1", "pb", &json!({"id": "pb"}))).unwrap();
    append(&*store, 2);
    let r = store.verify(None).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let anchor = Anchor { seq: r.head_seq, hash: r.head.clone() };
    append(&*store, 2);
    assert!(store.verify(Some(&anchor)).unwrap().problems.is_empty());
    b.tamper("UPDATE playbook_versions SET spec = '{\"id\":\"pb\",\"x\":1}' WHERE hash = 'h1'");
    let r = store.verify(None).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("h1") && p.contains("edited")), "{:?}", r.problems);
    b.tamper("UPDATE events SET at = 77 WHERE seq = 2");
    let wrong = Anchor { seq: 2, hash: format!("{KEYED_PREFIX}{}", "0".repeat(64)) };
    let r = store.verify(Some(&wrong)).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("anchored hash")), "{:?}", r.problems);
    let r = store.verify(Some(&Anchor { seq: 9, hash: anchor.hash })).unwrap();
    assert!(r.problems.iter().any(|p| p.contains("anchored event 9")), "{:?}", r.problems);
}

pub(crate) fn intents_held_by_an_open_circuit_are_due_again_after_a_restart_and_backoffs_are_kept(b: &dyn Backend) {
    let store = b.open(None);
    store
        .transaction(&mut |tx| {
            tx.add_intent(&intent("INC-1.1", "pager", 0, 0))?;
            tx.add_intent(&intent("INC-1.2", "pager", 0, 0))?;
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

pub(crate) fn tokens_round_trip_and_revoke_once(b: &dyn Backend) {
    let s = b.open(None);
    let row = TokenRow {
        id: "tok_00aa11bb".into(),
        secret_sha256: "ab".repeat(32),
        kind: TokenKind::Person,
        subject: "alice".into(),
        role: Some(TokenRole::Approver),
        created_at: 5,
        created_by: "bootstrap-admin".into(),
        expires_at: Some(99),
        revoked_at: None,
        revoked_by: None,
    };
    s.put_token(&row).unwrap();
    let intake = TokenRow {
        id: "tok_intake01".into(),
        secret_sha256: "cd".repeat(32),
        kind: TokenKind::Intake,
        subject: "am".into(),
        role: None,
        expires_at: None,
        created_at: 6,
        ..row.clone()
    };
    s.put_token(&intake).unwrap();
    assert_eq!(s.tokens().unwrap(), vec![row.clone(), intake]);
    assert!(s.revoke_token("tok_00aa11bb", 7, "carol").unwrap());
    assert!(!s.revoke_token("tok_00aa11bb", 8, "carol").unwrap());
    assert!(!s.revoke_token("tok_missing", 8, "carol").unwrap());
    let got = &s.tokens().unwrap()[0];
    assert_eq!((got.revoked_at, got.revoked_by.as_deref()), (Some(7), Some("carol")));
}

/// An incident row of playbook `pb`, its dedup key and state derived from its id and opening time.
fn incident_row(id: &str, mode: &str, status: &str, opened_at: i64) -> IncidentRow {
    IncidentRow {
        id: id.into(),
        playbook_id: "pb".into(),
        playbook_hash: "h".into(),
        mode: mode.into(),
        dedup_key: Some(format!("k-{id}")),
        status: status.into(),
        phase: "detect".into(),
        severity: "sev2".into(),
        title: "t".into(),
        opened_at,
        updated_at: opened_at,
        state: json!({"n": opened_at}),
    }
}

pub(crate) fn incidents_counters_and_kv_round_trip(b: &dyn Backend) {
    let s = b.open(None);
    let row = incident_row;
    let mut numbers = Vec::new();
    s.transaction(&mut |tx| {
        numbers =
            vec![tx.next_incident_number("INC")?, tx.next_incident_number("INC")?, tx.next_incident_number("DRL")?];
        tx.put_incident(&row("INC-1", "live", "open", 1))?;
        tx.put_incident(&row("INC-2", "drill", "open", 2))?;
        tx.put_incident(&row("INC-1", "live", "resolved", 1))?;
        assert_eq!(tx.incident("INC-1")?.map(|r| r.status), Some("resolved".into()), "replaced in place");
        assert_eq!(tx.open_by_dedup("pb", "k-INC-2")?, Some("INC-2".into()));
        assert_eq!(tx.open_by_dedup("pb", "k-INC-1")?, None, "resolved incidents take no more triggers");
        tx.kv_set("digest:a:2", "two")?;
        tx.kv_set("digest:a:1", "one")?;
        tx.kv_set("digest:b", "other")?;
        tx.kv_set("digest:a:1", "uno")?;
        assert_eq!(tx.kv_get("digest:a:1")?.as_deref(), Some("uno"));
        Ok(())
    })
    .unwrap();
    assert_eq!(numbers, vec![1, 2, 1]);
    assert_eq!(s.incident("INC-2").unwrap(), Some(row("INC-2", "drill", "open", 2)));
    let ids =
        |open_only, mode| -> Vec<String> { s.incidents(open_only, mode).unwrap().into_iter().map(|r| r.id).collect() };
    assert_eq!(ids(false, None), vec!["INC-2", "INC-1"]);
    assert_eq!(ids(true, None), vec!["INC-2"]);
    assert_eq!(ids(false, Some("live")), vec!["INC-1"]);
    let open =
        OpenIncident { id: "INC-2".into(), playbook_id: "pb".into(), severity: "sev2".into(), phase: "detect".into() };
    assert_eq!(s.open_incidents(None).unwrap(), vec![open]);
    assert_eq!(s.open_incidents(Some("live")).unwrap(), vec![], "a resolved incident is not open");
    assert_eq!(s.incident_ids().unwrap(), vec!["INC-2", "INC-1"]);
    let prefixed = s.kv_prefix("digest:a:").unwrap();
    assert_eq!(prefixed, vec![("digest:a:1".into(), "uno".into()), ("digest:a:2".into(), "two".into())]);
    s.kv_put("k", "v").unwrap();
    assert_eq!(s.kv_get("k").unwrap().as_deref(), Some("v"));
    assert_eq!(s.kv_get("missing").unwrap(), None);
}

pub(crate) fn kv_adds_from_two_stores_on_one_journal_all_count(b: &dyn Backend) {
    // Two daemons on one database: each adds its own sends to the shared count.
    let stores: Vec<std::sync::Arc<dyn Store>> = vec![b.open(None).into(), b.open(None).into()];
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = stores[t % 2].clone();
            std::thread::spawn(move || (0..25).map(|_| s.kv_add("budget.daily.sms.1", 1).unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let mut sums: Vec<i64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    sums.sort();
    assert_eq!(sums, (1..=100).collect::<Vec<_>>(), "every add saw a distinct running total");
    assert_eq!(stores[1].kv_get("budget.daily.sms.1").unwrap().as_deref(), Some("100"));
    assert_eq!(stores[0].kv_add("budget.daily.sms.1", 0).unwrap(), 100);
    stores[0].kv_put("not-a-count", "x").unwrap();
    assert!(stores[0].kv_add("not-a-count", 1).unwrap_err().to_string().contains("not a count"));
}

pub(crate) fn incident_pages_follow_the_list_order_and_stay_put_as_incidents_open(b: &dyn Backend) {
    let s = b.open(None);
    let row =
        |n: i64, opened_at: i64, status: &str, mode: &str| incident_row(&format!("INC-{n}"), mode, status, opened_at);
    // INC-3 and INC-4 opened in the same millisecond: the id breaks the tie
    // (as text, the order the whole list uses).
    let put = |rows: Vec<IncidentRow>| {
        s.transaction(&mut |tx| rows.iter().try_for_each(|r| tx.put_incident(r))).unwrap();
    };
    put(vec![
        row(1, 10, "open", "live"),
        row(2, 20, "resolved", "live"),
        row(3, 30, "open", "live"),
        row(4, 30, "open", "drill"),
        row(5, 50, "closed", "live"),
    ]);
    let q = |open_only: bool, mode: Option<&str>, after: Option<&str>, limit: usize| IncidentQuery {
        open_only,
        mode: mode.map(str::to_string),
        after: after.map(str::to_string),
        limit,
    };
    let page = |q: IncidentQuery| -> (Vec<String>, Option<String>) {
        let p = s.incidents_page(&q).unwrap().expect("the cursor names an incident");
        (p.rows.into_iter().map(|r| r.id).collect(), p.next)
    };
    let all: Vec<String> = s.incidents(false, None).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(all, vec!["INC-5", "INC-4", "INC-3", "INC-2", "INC-1"]);
    assert_eq!(page(q(false, None, None, 2)), (vec!["INC-5".into(), "INC-4".into()], Some("INC-4".into())));
    // A new incident opens between two pages: the next page does not shift.
    put(vec![row(6, 60, "open", "live")]);
    assert_eq!(page(q(false, None, Some("INC-4"), 2)), (vec!["INC-3".into(), "INC-2".into()], Some("INC-2".into())));
    assert_eq!(page(q(false, None, Some("INC-2"), 2)), (vec!["INC-1".into()], None), "the last page has no next");
    assert_eq!(page(q(false, None, None, 6)).1, None, "a page holding exactly the rest has no next");
    assert_eq!(page(q(true, None, None, 10)).0, vec!["INC-6", "INC-4", "INC-3", "INC-1"]);
    assert_eq!(page(q(true, Some("live"), Some("INC-6"), 1)), (vec!["INC-3".into()], Some("INC-3".into())));
    assert_eq!(page(q(true, Some("live"), Some("INC-3"), 1)), (vec!["INC-1".into()], None));
    assert_eq!(page(q(false, Some("drill"), None, 10)), (vec!["INC-4".into()], None));
    // The cursor need not match the filter (it may have been resolved since).
    assert_eq!(page(q(true, None, Some("INC-5"), 10)).0, vec!["INC-4", "INC-3", "INC-1"]);
    assert_eq!(s.incidents_page(&q(false, None, Some("INC-99"), 2)).unwrap(), None, "an unknown cursor is told apart");
}

fn complaint_row(n: i64, category: &str, received_at: i64, intake_key: Option<&str>) -> ComplaintRow {
    ComplaintRow {
        id: format!("CMP-{n}"),
        customer: "C-001".into(),
        category: category.into(),
        channel: "sms".into(),
        state: "classified".into(),
        received_at,
        updated_at: received_at,
        intake_key: intake_key.map(str::to_string),
        data: json!({"n": n}),
    }
}

pub(crate) fn complaints_filter_by_category_and_an_intake_key_is_unique(b: &dyn Backend) {
    let s = b.open(None);
    let rows = [
        complaint_row(1, "price", 10, Some("k1")),
        complaint_row(2, "product-quality", 20, None),
        complaint_row(3, "price", 30, None),
        complaint_row(4, "price", 40, Some("k4")),
    ];
    s.transaction(&mut |tx| rows.iter().try_for_each(|r| tx.put_complaint(r))).unwrap();
    let ids = |q: ComplaintQuery| -> Vec<String> { s.complaints(&q).unwrap().into_iter().map(|r| r.id).collect() };
    let price = |since: Option<i64>| ComplaintQuery { category: Some("price".into()), since, ..Default::default() };
    assert_eq!(ids(price(None)), vec!["CMP-1", "CMP-3", "CMP-4"]);
    assert_eq!(ids(price(Some(30))), vec!["CMP-3", "CMP-4"]);
    let keyed = |k: &str| ComplaintQuery { intake_key: Some(k.into()), ..Default::default() };
    assert_eq!(ids(keyed("k4")), vec!["CMP-4"]);
    assert!(ids(keyed("k9")).is_empty());
    assert_eq!(s.complaints(&keyed("k1")).unwrap()[0], rows[0], "the key round-trips with the row");
    // Rewriting a complaint's row keeps its key; a second complaint under a used key is refused.
    s.transaction(&mut |tx| tx.put_complaint(&complaint_row(1, "price", 10, Some("k1")))).unwrap();
    let dup = s.transaction(&mut |tx| tx.put_complaint(&complaint_row(5, "price", 50, Some("k1"))));
    assert!(dup.is_err(), "a second complaint under the key k1 was stored");
    assert_eq!(ids(keyed("k1")), vec!["CMP-1"]);
    assert_eq!(ids(ComplaintQuery::default()).len(), 4, "the refused transaction left nothing");
}

pub(crate) fn a_key_prefix_is_deleted_in_its_transaction_and_no_other_key(b: &dyn Backend) {
    let s = b.open(None);
    for k in ["m:1:a", "m:1:b", "m:10:c", "m:2:d", "n"] {
        s.kv_put(k, "v").unwrap();
    }
    let mut deleted = 0;
    s.transaction(&mut |tx| {
        deleted = tx.kv_delete_prefix("m:1:")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(deleted, 2);
    let left: Vec<String> =
        s.kv_prefix("").unwrap().into_iter().map(|(k, _)| k).filter(|k| k != "chain_head").collect();
    assert_eq!(left, vec!["m:10:c", "m:2:d", "n"], "only the keys under the prefix went");
    // A failed transaction deletes nothing.
    let failed = s.transaction(&mut |tx| {
        tx.kv_delete_prefix("m:")?;
        Err(anyhow::anyhow!("refused"))
    });
    assert!(failed.is_err());
    assert_eq!(s.kv_prefix("m:").unwrap().len(), 2);
}
