//! The shared conformance tests run against a throwaway PostgreSQL server,
//! and what only the PostgreSQL store has (its migrations, its connection errors).

use super::*;
use crate::store::conformance::{Backend, conformance_tests};

/// A fresh database on the test cluster, for the conformance tests.
struct PgBackend {
    url: String,
}

impl PgBackend {
    /// `None` (the test is skipped, having said why) without a server.
    fn new() -> Option<PgBackend> {
        testdb::database().map(|url| PgBackend { url })
    }
}

impl Backend for PgBackend {
    fn open(&self, key: Option<(JournalKey, bool)>) -> Box<dyn Store> {
        let store = PgStore::connect(&self.url).unwrap();
        Box::new(match key {
            Some((k, adopt)) => store.with_key(k, adopt).unwrap(),
            None => store,
        })
    }

    fn tamper(&self, sql: &str) {
        testdb::exec(&self.url, sql);
    }
}

conformance_tests!(PgBackend::new());

#[test]
fn migrations_are_idempotent_and_versioned() {
    let Some(b) = PgBackend::new() else { return };
    drop(b.open(None));
    drop(b.open(None));
    b.tamper("UPDATE schema_version SET version = 99");
    let e = format!("{:#}", PgStore::connect(&b.url).err().unwrap());
    assert!(e.contains("newer crisis"), "{e}");
}

#[test]
fn two_connections_append_to_one_totally_ordered_chain() {
    let Some(b) = PgBackend::new() else { return };
    let stores = [b.open(None), b.open(None)];
    std::thread::scope(|s| {
        for (n, store) in stores.iter().enumerate() {
            s.spawn(move || {
                for i in 0..40 {
                    store
                        .transaction(&mut |tx| {
                            tx.append(&format!("INC-{n}"), i, "note", &serde_json::json!({})).map(|_| ())
                        })
                        .unwrap();
                }
            });
        }
    });
    let r = stores[0].verify(None).unwrap();
    assert_eq!(r.events, 80);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn two_connections_never_claim_the_same_intent() {
    let Some(b) = PgBackend::new() else { return };
    let stores = [b.open(None), b.open(None)];
    stores[0]
        .transaction(&mut |tx| {
            for i in 0..60 {
                tx.add_intent(&IntentRow {
                    invocation_id: format!("INC-1.{i}"),
                    incident_id: "INC-1".into(),
                    created_at: 0,
                    not_before: 0,
                    payload: serde_json::json!({"target": "pager"}),
                    attempts: 0,
                    result: None,
                    reclaimed_from: None,
                })?;
            }
            Ok(())
        })
        .unwrap();
    let claimed: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = store.claim_intents(10, 3).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.into_iter().map(|r| r.invocation_id));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<String> = claimed.concat();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (60, 60), "each intent claimed exactly once");
}

#[test]
fn a_bad_url_or_unreachable_server_is_named_without_the_password() {
    let e = PgStore::connect("postgres://u:hunter2@[not a host").err().unwrap();
    let e = format!("{e:#}");
    assert!(e.contains("not a PostgreSQL connection URL") && !e.contains("hunter2"), "{e}");
    let e = PgStore::connect("postgres://u:hunter2@127.0.0.1:1/journal").err().unwrap();
    let e = format!("{e:#}");
    assert!(e.contains("127.0.0.1/journal") && !e.contains("hunter2"), "{e}");
}

#[test]
fn a_database_not_in_utf8_is_refused_with_how_to_create_one() {
    let Some(b) = PgBackend::new() else { return };
    let name = format!("latin_{}", std::process::id());
    testdb::exec(&b.url, &format!("CREATE DATABASE {name} ENCODING 'LATIN1' TEMPLATE template0"));
    let url = b.url.replace(&b.url[b.url.rfind("dbname=").unwrap()..], &format!("dbname={name}"));
    let e = format!("{:#}", PgStore::connect(&url).err().unwrap());
    assert!(e.contains("encoding LATIN1") && e.contains("ENCODING 'UTF8'"), "{e}");
}
