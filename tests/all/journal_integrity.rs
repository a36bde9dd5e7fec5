//! The journal's keyed chain against someone who can write `journal.db` but
//! cannot read `journal.key`: edits recomputed with plain SHA-256, edited
//! projections and pinned playbooks, and anchors recorded elsewhere.
use crate::common::*;
use rusqlite::{Connection, params};
use std::os::unix::fs::MetadataExt;

fn open_incident(d: &Daemon) -> String {
    let v = d.json(&["trigger", "outage", "--scope", "EU", "--field", "nature=n"]);
    v["incident"]["id"].as_str().unwrap().to_string()
}

/// Waits until every intent the incident recorded has its result journaled,
/// so the chain's head stays put until the test itself writes.
fn wait_settled(d: &Daemon, id: &str) {
    d.wait_for("every intent's result", || {
        let ev = d.events(id);
        let count = |k: &str| ev.iter().filter(|e| e["kind"] == k).count();
        !ev.is_empty() && count("intent_recorded") == count("effect_result")
    });
}

fn journal(d: &Daemon) -> Connection {
    Connection::open(d.dir.path().join("state/journal.db")).unwrap()
}

/// Runs `crisis verify` and expects it to fail naming every `needles`.
fn verify_fails(d: &Daemon, args: &[&str], needles: &[&str]) -> String {
    let mut a = vec!["verify"];
    a.extend_from_slice(args);
    let r = d.cli(&a);
    assert_ne!(r.code, 0, "verify passed: {}", r.stdout);
    for n in needles {
        assert!(r.stderr.contains(n), "`{n}` not in: {}", r.stderr);
    }
    r.stderr
}

#[test]
fn an_edit_with_the_plain_chain_recomputed_is_detected() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    let id = open_incident(&d);
    d.ok(&["update", &id, "--note", "first", "--as", "alice"]);
    assert!(d.ok(&["verify"]).contains("journal intact"));
    d.kill9();
    let conn = journal(&d);
    let rows: Vec<(i64, String, i64, String, String)> = {
        let mut s = conn.prepare("SELECT seq, incident_id, at, kind, data FROM events ORDER BY seq").unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert!(rows.len() >= 3, "{rows:?}");
    let target = rows[1].0;
    let mut prev: String =
        conn.query_row("SELECT prev_hash FROM events WHERE seq = ?1", params![target], |r| r.get(0)).unwrap();
    for (seq, inc, at, kind, data) in rows.into_iter().filter(|r| r.0 >= target) {
        let data = if seq == target { format!("{},\"forged\":true}}", &data[..data.len() - 1]) } else { data };
        let h = crisis::store::event_hash(&prev, seq, &inc, at, &kind, &data);
        conn.execute(
            "UPDATE events SET data = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            params![data, prev, h, seq],
        )
        .unwrap();
        conn.execute("UPDATE kv SET value = ?1 WHERE key = 'chain_head'", params![format!("{seq}:{h}")]).unwrap();
        prev = h;
    }
    drop(conn);
    d.restart();
    verify_fails(&d, &[], &[&format!("event {target}"), "unkeyed hash"]);
}

#[test]
fn an_edited_projection_and_an_edited_pinned_playbook_are_named() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    let id = open_incident(&d);
    d.kill9();
    // Columns and state together: the engine re-saves the columns from the state on its next write.
    journal(&d)
        .execute(
            "UPDATE incidents SET severity = 'sev1', title = 'nothing happened', \
             state = json_set(state, '$.severity', 'sev1', '$.title', 'nothing happened') WHERE id = ?1",
            params![id],
        )
        .unwrap();
    d.restart();
    let out = verify_fails(
        &d,
        &[],
        &[&format!("incident {id}: stored severity"), &format!("incident {id}: stored state.title")],
    );
    assert!(!out.contains("nothing happened"), "verify printed a stored value: {out}");
    let second =
        d.json(&["trigger", "outage", "--scope", "EU", "--field", "nature=n", "--label", "service=other"])["incident"]
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    assert_ne!(second, id);
    d.kill9();
    let conn = journal(&d);
    conn.execute("DELETE FROM incidents WHERE id = ?1", params![second]).unwrap();
    let hash: String =
        conn.query_row("SELECT playbook_hash FROM incidents WHERE id = ?1", params![id], |r| r.get(0)).unwrap();
    conn.execute(
        "UPDATE playbook_versions SET spec = replace(spec, '\"name\":', '\"name\":\"x\",\"_\":') WHERE hash = ?1",
        params![hash],
    )
    .unwrap();
    drop(conn);
    d.restart();
    verify_fails(
        &d,
        &[],
        &[
            &format!("pinned playbook version {hash}"),
            "edited",
            &format!("incident {second} has events but no projection row"),
        ],
    );
}

#[test]
fn an_anchor_holds_while_the_chain_grows_and_fails_once_its_event_changes() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    let id = open_incident(&d);
    wait_settled(&d, &id);
    let out = d.ok(&["verify", "--anchor"]);
    let anchor = out.lines().next().unwrap().trim().to_string();
    let (seq, hash) = anchor.split_once(':').unwrap();
    assert!(hash.starts_with("k1:") && seq.parse::<i64>().unwrap() > 0, "{anchor}");
    assert_eq!(d.json(&["verify"])["anchor"], anchor.as_str());
    d.ok(&["update", &id, "--note", "later", "--as", "alice"]);
    let out = d.ok(&["verify", "--expect-head", &anchor]);
    assert!(out.contains("still has the anchored hash"), "{out}");
    d.kill9();
    journal(&d).execute("UPDATE events SET at = at + 1 WHERE seq = ?1", params![seq.parse::<i64>().unwrap()]).unwrap();
    d.restart();
    verify_fails(&d, &["--expect-head", &anchor], &[&format!("event {seq} ")]);
    let r = d.cli(&["verify", "--expect-head", "12"]);
    assert_eq!(r.code, 2, "a malformed anchor is a usage error: {}", r.stderr);
    assert!(r.stderr.contains("SEQ:HASH"), "{}", r.stderr);
}

#[test]
fn the_journal_key_is_private_and_not_in_the_journal() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    open_incident(&d);
    d.kill9();
    let key_path = d.dir.path().join("state/journal.key");
    let meta = std::fs::metadata(&key_path).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    let key = std::fs::read(&key_path).unwrap();
    assert_eq!(key.len(), 32);
    let hex_key = hex::encode(&key);
    for f in ["journal.db", "journal.db-wal"] {
        let bytes = std::fs::read(d.dir.path().join("state").join(f)).unwrap_or_default();
        assert!(!bytes.windows(key.len()).any(|w| w == key.as_slice()), "the key is inside {f}");
        assert!(!String::from_utf8_lossy(&bytes).contains(&hex_key), "the key is inside {f} as hex");
    }
    // A key others can read is refused at start, with the fix.
    std::fs::set_permissions(&key_path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let r = crisis_in(d.dir.path(), &["--config", d.config.to_str().unwrap(), "daemon"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("journal.key") && r.stderr.contains("chmod 0600"), "{}", r.stderr);
}
