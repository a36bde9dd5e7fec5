//! End-to-end: `crisis store migrate --to postgres` against a throwaway
//! server. A journal of 1,000 incidents moves with the same chain head;
//! the daemon then runs on PostgreSQL with the same incident list, the same
//! outcome report and a journal that verifies. Refused: while the daemon
//! runs, a broken chain, a database that already has rows.
use crate::common::*;
use serde_json::{Value, json};

use crate::postgres_store::testdb;

const URL_ENV: &str = "CRISIS_TEST_PG_URL";
/// The secret is declared from the start; `[store]` is added only after the migration.
const SECRET: &str = "[secrets.pg]\nenv = \"CRISIS_TEST_PG_URL\"\n";
const QUIET: &str = "[targets.managers]\nplugin = \"log\"\n[targets.pager]\nplugin = \"log\"\n[targets.good]\nplugin = \"log\"\n[targets.bad]\nplugin = \"log\"\n[limits]\nintake_per_minute = 100000\n";

/// Runs `crisis --json store migrate --to postgres ARGS` on `d`'s config with the database URL in the environment.
fn migrate(d: &Daemon, url: &str, args: &[&str]) -> Run {
    std::process::Command::new(bin())
        .args(["--config", d.config.to_str().unwrap(), "--json", "store", "migrate", "--to", "postgres"])
        .args(args)
        .current_dir(d.dir.path())
        .env_remove("CRISIS_CONFIG")
        .env(URL_ENV, url)
        .output()
        .unwrap()
        .into()
}

fn pending(d: &Daemon) -> i64 {
    let s = d.json(&["status"]);
    s["outbox"]["depth"].as_object().map(|m| m.values().filter_map(|v| v.as_i64()).sum()).unwrap_or(0)
}

/// How many tables the test database has: none until a migration got past its checks.
fn tables(url: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'", &[]).unwrap().get(0)
}

/// Rows in a table of the test database.
fn count(url: &str, table: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).unwrap().get(0)
}

fn start(db: &str) -> Daemon {
    Daemon::start_with_env("outbox", &format!("{LOG_TARGETS}{QUIET}{SECRET}"), &[(URL_ENV, db)])
}

#[test]
fn a_thousand_incidents_move_to_postgresql_with_the_same_head_list_and_report() {
    let Some(db) = testdb::database() else { return };
    let mut d = start(&db);
    // 1,000 incidents through the API, eight clients at a time.
    std::thread::scope(|s| {
        for t in 0..8 {
            let d = &d;
            s.spawn(move || {
                for n in (t..1000).step_by(8) {
                    d.post_incident(
                        &json!({ "playbook": "page", "fields": { "nature": "m" }, "labels": { "n": n.to_string() } }),
                    );
                }
            });
        }
    });
    let id = "INC-7";
    d.ok(&["resolve", id]);
    d.ok(&["outcome", id, "--cause", "a migrated cause"]);
    // Every notice executed, so nothing changes the incidents between the two lists.
    wait_until(&d, "the outbox to drain", 120, || pending(&d) == 0);
    let list = d.json(&["incident", "list", "--limit", "1000"]);
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1000);
    let report = d.ok(&["report", id]);
    let anchor = d.json(&["verify"])["anchor"].as_str().unwrap().to_string();

    let running = migrate(&d, &db, &["--url-secret", "pg"]);
    assert_eq!(running.code, 1, "{}{}", running.stdout, running.stderr);
    assert!(
        running.stdout.contains("is in use by crisis daemon pid") && running.stdout.contains("stop it first"),
        "{}",
        running.stdout
    );
    assert_eq!(tables(&db), 0, "a refused migration touched the database");

    d.kill9();
    let t = std::time::Instant::now();
    let r = migrate(&d, &db, &["--url-secret", "pg"]);
    eprintln!("store migrate took {:?}", t.elapsed());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["heads_equal"], true, "{out}");
    let head = format!("{}:{}", out["to"]["head_seq"], out["to"]["head"].as_str().unwrap());
    assert_eq!(head, anchor);
    assert_eq!(format!("{}:{}", out["from"]["head_seq"], out["from"]["head"].as_str().unwrap()), anchor);
    let rows =
        |t: &str| out["tables"].as_array().unwrap().iter().find(|x| x["table"] == t).unwrap()["rows"].as_i64().unwrap();
    assert_eq!(rows("incidents"), 1000);
    assert_eq!(rows("events"), out["from"]["events"].as_i64().unwrap());
    assert_eq!(count(&db, "events"), rows("events"));
    assert!(out["note"].as_str().unwrap().contains("journal.key"), "{out}");
    assert!(rows("timers") > 0 && rows("intents") > 0 && rows("playbook_versions") > 0, "{out}");

    // A second run finds the database taken and names what is there.
    let again = migrate(&d, &db, &["--url-secret", "pg"]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(
        again.stdout.contains("not empty") && again.stdout.contains("events (more than 1000 rows)"),
        "{}",
        again.stdout
    );

    // The daemon now runs on PostgreSQL with the same state directory and key;
    // journal.db is moved aside, so the same list can only come from PostgreSQL.
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{cfg}[store]\nurl = \"secret:pg\"\n")).unwrap();
    std::fs::rename(d.dir.path().join("state/journal.db"), d.dir.path().join("state/journal.db.migrated")).unwrap();
    d.restart();
    let v = d.json(&["verify"]);
    assert_eq!(v["problems"], json!([]), "{v}");
    assert_eq!(v["anchor"], anchor.as_str());
    assert_eq!(d.json(&["incident", "list", "--limit", "1000"]), list);
    assert_eq!(d.ok(&["report", id]), report);
    // Incident numbering carries on after the copied incidents.
    let next = d.post_incident(&json!({ "playbook": "page", "fields": { "nature": "m" }, "labels": { "n": "after" } }));
    assert_eq!(next, "INC-1001");
}

#[test]
fn a_database_holding_other_data_or_a_broken_chain_is_refused() {
    let Some(db) = testdb::database() else { return };
    let mut d = start(&db);
    for n in 0..3 {
        d.post_incident(&json!({ "playbook": "page", "fields": { "nature": "m" }, "labels": { "n": n.to_string() } }));
    }
    d.kill9();
    // Someone else's rows in the target: refused, naming them, and left as they were.
    testdb::exec(&db, "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('keep me')");
    let r = migrate(&d, &db, &["--url-secret", "pg"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("not empty: notes (1 row)"), "{}", r.stdout);
    assert_eq!(count(&db, "notes"), 1);
    assert_eq!(tables(&db), 1, "the journal's schema was created in someone else's database");

    let fresh = testdb::database().unwrap();
    let conn = rusqlite::Connection::open(d.dir.path().join("state/journal.db")).unwrap();
    conn.execute("UPDATE events SET data = '{\"forged\":true}' WHERE seq = 2", []).unwrap();
    drop(conn);
    let r = migrate(&d, &fresh, &["--url-secret", "pg"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("does not verify") && r.stdout.contains("event 2") && r.stdout.contains("edited"),
        "{}",
        r.stdout
    );
    assert_eq!(tables(&fresh), 0, "a refused migration touched the database");
}
