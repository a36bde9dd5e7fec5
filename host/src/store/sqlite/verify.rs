//! Walking the chain and the seals beside it in SQLite; the hashing rules
//! themselves are in `chain`, shared by every backend.

use super::super::chain::{EventFields, GENESIS, HashAlg, JournalKey, keyed_from_seal, playbook_seal};
use super::super::{Anchor, Result, TimerRow, VerifyReport};
use rusqlite::{Connection, OptionalExtension, params};

/// `kv` key of the sealed record `SEQ:SEAL`: keyed hashing began at event SEQ.
const KEYED_FROM: &str = "chain_keyed_from";
/// `kv` key prefix of a pinned playbook version's seal (followed by its hash).
const PLAYBOOK_SEAL: &str = "playbook_seal:";

fn kv(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM kv WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
}

/// Where keyed hashing began and the seal recorded with it; `None` if never recorded.
fn keyed_from(conn: &Connection) -> Result<Option<(i64, String)>> {
    Ok(kv(conn, KEYED_FROM)?.and_then(|v| {
        let (seq, seal) = v.split_once(':')?;
        Some((seq.parse().ok()?, seal.to_string()))
    }))
}

/// Records the seal of a newly pinned playbook version.
pub(super) fn put_playbook_seal(conn: &Connection, hash: &str, seal: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![format!("{PLAYBOOK_SEAL}{hash}"), seal],
    )?;
    Ok(())
}

/// See [`super::SqliteStore::with_key`].
pub(super) fn adopt_key(conn: &mut Connection, key: &JournalKey, adopt_unkeyed: bool) -> Result<()> {
    if let Some((seq, seal)) = keyed_from(conn)? {
        if keyed_from_seal(key, seq) != seal {
            tracing::error!(
                "the journal key differs from the key this journal was written with: `crisis verify` will fail until the original key (journal.key or the journal_key secret) is restored"
            );
        }
        return Ok(());
    }
    let (events, keyed): (i64, i64) =
        conn.query_row("SELECT COUNT(*), COALESCE(SUM(hash LIKE 'k1:%'), 0) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if keyed > 0 || (events > 0 && !adopt_unkeyed) {
        // Not recorded now: `verify` reports the missing record.
        return Ok(());
    }
    let tx = conn.transaction()?;
    let next: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM events", [], |r| r.get(0))?;
    tx.execute(
        "INSERT INTO kv (key, value) VALUES (?1, ?2)",
        params![KEYED_FROM, format!("{next}:{}", keyed_from_seal(key, next))],
    )?;
    let versions: Vec<(String, String, String)> = {
        let mut stmt = tx.prepare("SELECT hash, playbook_id, spec FROM playbook_versions")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (hash, id, spec) in versions {
        put_playbook_seal(&tx, &hash, &playbook_seal(key, &hash, &id, &spec))?;
    }
    tx.commit()?;
    if events > 0 {
        tracing::info!(
            "the journal is keyed from event {next} on; its {events} earlier events keep their unkeyed hashes"
        );
    }
    Ok(())
}

/// Test hook: with `CRISIS_FAILPOINT=verify-hold`, a verify that has taken
/// its snapshot says so on stderr and waits until a writer has journaled a
/// newly opened incident after it (the daemon's own effects and timers do
/// not count), then walks its snapshot. While writers could not commit
/// beside a verify, this waited forever.
pub(super) fn hold_for_a_writer(snapshot: &Connection, path: &std::path::Path) -> Result<()> {
    if !std::env::var("CRISIS_FAILPOINT").is_ok_and(|v| v == "verify-hold") {
        return Ok(());
    }
    let head: i64 = snapshot.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    eprintln!("failpoint verify-hold reached at event {head}");
    let started = std::time::Instant::now();
    loop {
        let fresh = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let opened: i64 =
            fresh.query_row("SELECT COUNT(*) FROM events WHERE seq > ?1 AND kind = 'opened'", params![head], |r| {
                r.get(0)
            })?;
        if opened > 0 {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            anyhow::bail!("failpoint verify-hold: no incident was opened beside the verify within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Re-walks the chain, the record of where keying began and the playbook seals.
pub(super) fn verify(conn: &Connection, key: Option<&JournalKey>, expect: Option<&Anchor>) -> Result<VerifyReport> {
    let mut report = VerifyReport { head: GENESIS.to_string(), ..Default::default() };
    let problems = &mut report.problems;
    let marker = keyed_from(conn)?;
    let key_differs = match (key, &marker) {
        (Some(k), Some((seq, seal))) => keyed_from_seal(k, *seq) != *seal,
        _ => false,
    };
    if key_differs {
        problems.push(
            "the journal key differs from the key this journal was written with: its keyed events and seals cannot be checked; restore the original journal.key (or journal_key secret) and verify again".into(),
        );
    }
    let mut stmt = conn.prepare("SELECT seq, incident_id, at, kind, data, prev_hash, hash FROM events ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let (mut expected_seq, mut prev) = (1i64, GENESIS.to_string());
    let (mut keyed, mut keyed_bad, mut edits) = (0i64, 0i64, Vec::new());
    let mut anchor_seen = false;
    while let Some(r) = rows.next()? {
        let (seq, incident, at, kind, data): (i64, String, i64, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let (prev_hash, hash): (String, String) = (r.get(5)?, r.get(6)?);
        let what = format!("event {seq} ({incident} {kind})");
        if seq != expected_seq {
            problems.push(format!("events {expected_seq}..{} are missing (deleted rows)", seq - 1));
        }
        if prev_hash != prev {
            problems.push(format!("{what} does not chain to the event before it"));
        }
        let alg = HashAlg::of(&hash);
        match (&marker, alg) {
            (Some((from, _)), HashAlg::Unkeyed) if seq >= *from => problems.push(format!(
                "{what} has an unkeyed hash although the journal is keyed from event {from} on: it was rewritten without the key"
            )),
            (Some((from, _)), HashAlg::Keyed) if seq < *from => problems.push(format!(
                "{what} has a keyed hash although the journal is keyed only from event {from} on"
            )),
            _ => {}
        }
        if alg == HashAlg::Keyed {
            keyed += 1;
        }
        let fields = EventFields { seq, incident_id: &incident, at, kind: &kind, data: &data };
        match fields.recompute(key, &hash, &prev_hash) {
            Some(h) if h == hash => {}
            Some(_) if alg == HashAlg::Keyed => {
                keyed_bad += 1;
                edits.push(format!("{what} was edited: its contents no longer match its keyed hash"));
            }
            Some(_) => problems.push(format!("{what} was edited: its contents no longer match its hash")),
            None => {}
        }
        if let Some(a) = expect
            && a.seq == seq
        {
            anchor_seen = true;
            if a.hash != hash {
                problems.push(format!(
                    "event {seq} no longer has the anchored hash {}: the journal was changed at or before event {seq} since the anchor was taken",
                    a.hash
                ));
            }
        }
        prev = hash;
        expected_seq = seq + 1;
        report.events += 1;
    }
    if let Some(a) = expect
        && !anchor_seen
    {
        problems.push(format!(
            "the anchored event {} is not in the journal (it ends at event {}): events were removed",
            a.seq,
            expected_seq - 1
        ));
    }
    let guessed_differs = key.is_some() && marker.is_none() && keyed > 0 && keyed_bad == keyed;
    match key {
        None if keyed > 0 => problems.push(format!("{keyed} events are keyed but no journal key was given to check them")),
        // Every keyed event fails and nothing says where keying began: a different key.
        Some(_) if guessed_differs => problems.push(format!(
            "the journal key differs from the key its {keyed} keyed events were written with (or the record of where keying began was removed); restore the original journal.key (or journal_key secret)"
        )),
        _ if key_differs => {}
        _ => problems.append(&mut edits),
    }
    if key.is_some() && marker.is_none() && report.events > 0 && !guessed_differs {
        problems.push(
            "the journal has no sealed record of where keyed hashing began although this daemon has a journal key: the events were rewritten or the record removed by someone without the key".into(),
        );
    }
    report.incidents = {
        let mut stmt = conn.prepare("SELECT DISTINCT incident_id FROM events ORDER BY incident_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if let Some(k) = key
        && marker.is_some()
        && !key_differs
    {
        check_playbook_seals(conn, k, problems)?;
    }
    report.head = prev.clone();
    report.head_seq = expected_seq - 1;
    if let Some(rec) = kv(conn, "chain_head")? {
        let (seq, hash) = rec.split_once(':').unwrap_or(("0", ""));
        let seq: i64 = seq.parse().unwrap_or(0);
        if seq != expected_seq - 1 || hash != prev {
            report.problems.push(format!(
                "the journal ends at event {} but its recorded head is event {seq}: events were removed from the end",
                expected_seq - 1
            ));
        }
    }
    Ok(report)
}

/// Every pinned playbook version must carry the seal made when it was stored.
fn check_playbook_seals(conn: &Connection, key: &JournalKey, problems: &mut Vec<String>) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT p.hash, p.playbook_id, p.spec, kv.value FROM playbook_versions p \
         LEFT JOIN kv ON kv.key = ?1 || p.hash ORDER BY p.hash",
    )?;
    let mut rows = stmt.query(params![PLAYBOOK_SEAL])?;
    while let Some(r) = rows.next()? {
        let (hash, id, spec, seal): (String, String, String, Option<String>) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        match seal {
            None => problems
                .push(format!("pinned playbook version {hash} ({id}) has no seal: it was added without the key")),
            Some(s) if s != playbook_seal(key, &hash, &id, &spec) => problems.push(format!(
                "pinned playbook version {hash} ({id}) was edited: its stored spec no longer matches its seal"
            )),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every pending timer, in id order.
pub(super) fn timers(conn: &Connection) -> Result<Vec<TimerRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, incident_id, due_at, kind, family, data FROM timers WHERE dead_letter IS NULL ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TimerRow {
            id: r.get(0)?,
            incident_id: r.get(1)?,
            due_at: r.get(2)?,
            kind: r.get(3)?,
            family: r.get(4)?,
            data: super::json(r.get(5)?),
            reclaimed_from: None,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
