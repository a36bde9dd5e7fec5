//! End-to-end: the daemon with its journal in PostgreSQL (`[store] url`
//! from a secret) against a throwaway server: an incident survives a
//! kill -9 restart, `crisis verify` passes, an edit made in the database
//! behind the daemon's back is caught, and the URL's password is never logged.
use crate::common::*;

#[path = "../../host/src/store/postgres/testdb.rs"]
pub(crate) mod testdb;

const STORE: &str = "[store]\nurl = \"secret:pg\"\n[secrets.pg]\nenv = \"CRISIS_TEST_PG_URL\"\n";

#[test]
fn a_daemon_on_postgresql_keeps_incidents_across_a_restart_and_verifies_its_journal() {
    let Some(db) = testdb::database() else { return };
    // The test server trusts local connections, so the password is never asked for; it must never be logged either.
    let url = format!("{db} password=never-logged-7f3a");
    let mut d = Daemon::start_with_env("engine", &format!("{LOG_TARGETS}{STORE}"), &[("CRISIS_TEST_PG_URL", &url)]);
    let id = d.json(&["trigger", "outage", "--scope", "EU", "--field", "nature=n"])["incident"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.wait_for("assign phase", || d.json(&["incident", "show", &id])["phase"] == "assign");

    d.restart();
    assert_eq!(d.json(&["incident", "show", &id])["phase"], "assign");
    let listed = d.json(&["incident", "list"]);
    let ids: Vec<&str> = listed["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![id.as_str()]);
    assert!(d.ok(&["verify"]).contains("journal intact"));

    // The events are in PostgreSQL: editing one there is what verify reports.
    testdb::exec(&db, "UPDATE events SET data = '{\"forged\":true}' WHERE seq = 1");
    let r = d.cli(&["verify"]);
    assert_ne!(r.code, 0, "verify passed: {}", r.stdout);
    assert!(r.stderr.contains("event 1") && r.stderr.contains("edited"), "{}", r.stderr);
    assert!(!d.log().contains("never-logged-7f3a"), "the URL's password was logged");
}

#[test]
fn an_unreachable_database_stops_the_daemon_naming_host_and_database_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/engine"), dir.path());
    let config = write_config(dir.path(), free_port(), &format!("{LOG_TARGETS}{STORE}"));
    let out = std::process::Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "daemon"])
        .current_dir(dir.path())
        .env_remove("CRISIS_CONFIG")
        .env("CRISIS_TEST_PG_URL", "postgres://crisis:hunter2@127.0.0.1:1/journal")
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("127.0.0.1/journal") && !all.contains("hunter2"), "{all}");
}
