//! The drill scheduler on virtual time: `tick` at chosen instants against a
//! real index, with restarts simulated by reopening it.
use crate::common::repo;
use chrono::{DateTime, Utc};
use crisis::daemon::drills::{DrillService, tick};
use crisis::drill::index::RunRow;
use crisis::incident::Generation;
use std::path::Path;
use std::sync::Arc;

/// The inline fixture (schedule `*/2 * * * *` in Europe/Berlin, virtual clock) with `drills` appended to crisis.toml.
fn generation(dir: &Path, drills: &str) -> Arc<Generation> {
    let f = repo().join("tests/fixtures/drill/inline");
    let cfg = format!(
        "playbooks = {:?}\nroster = {:?}\ncustomers = {:?}\nstate_dir = {:?}\n\
         [targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n\
         [targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n{drills}\n",
        f.join("playbooks"),
        f.join("roster.toml"),
        f.join("customers.csv"),
        dir.join("state")
    );
    std::fs::write(dir.join("crisis.toml"), cfg).unwrap();
    let config = crisis::config::load(&dir.join("crisis.toml")).unwrap_or_else(|d| panic!("{d:?}"));
    Arc::new(crisis::incident::loader::load(config, 1, 0).generation.expect("valid fixture"))
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn settle(svc: &DrillService) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !svc.running_ids().is_empty() {
        assert!(std::time::Instant::now() < deadline, "drills did not finish: {:?}", svc.running_ids());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn rows(svc: &DrillService) -> Vec<RunRow> {
    let mut r = svc.index.list(10_000).unwrap();
    r.sort_by_key(|x| x.scheduled_for);
    r
}

fn statuses(svc: &DrillService) -> Vec<(String, String)> {
    rows(svc).into_iter().map(|r| (r.id, r.status)).collect()
}

#[test]
fn first_start_runs_the_latest_occurrence_once_and_restarts_never_repeat_it() {
    let dir = tempfile::tempdir().unwrap();
    let g = generation(dir.path(), "");
    let state = dir.path().join("state");
    let svc = Arc::new(DrillService::open(&state).unwrap());
    // Berlin spring-forward morning; the */2 schedule's latest occurrence is 01:00 UTC.
    let t = utc("2026-03-29T01:00:40Z");
    let started = tick(&svc, &g, t).unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].id, "checkout-drill.20260329T0100Z");
    settle(&svc);
    let r = &rows(&svc)[0];
    assert_eq!(
        (r.status.as_str(), r.origin.as_str(), r.scheduled_for),
        ("completed", "schedule", Some(t.timestamp_millis() - 40_000))
    );
    assert!(r.score.is_some());
    // Only the latest occurrence was considered on the first start: no history of "missed" rows.
    assert_eq!(rows(&svc).len(), 1);

    // Restart: a new service on the same state; the daemon died before saving
    // last_checked, so the same occurrence is decided again - and not run again.
    drop(svc);
    let svc = Arc::new(DrillService::open(&state).unwrap());
    svc.index.set_last_checked("checkout-drill", utc("2026-03-29T00:59:00Z").timestamp_millis()).unwrap();
    assert!(tick(&svc, &g, t).unwrap().is_empty());
    assert_eq!(rows(&svc).len(), 1);
    // Ticking on: the next occurrence (01:02) runs.
    assert_eq!(tick(&svc, &g, utc("2026-03-29T01:02:05Z")).unwrap().len(), 1);
    settle(&svc);
    assert_eq!(
        statuses(&svc),
        vec![
            ("checkout-drill.20260329T0100Z".into(), "completed".into()),
            ("checkout-drill.20260329T0102Z".into(), "completed".into())
        ]
    );
}

#[test]
fn downtime_beyond_grace_records_missed_runs_and_runs_the_newest_late() {
    let dir = tempfile::tempdir().unwrap();
    let g = generation(dir.path(), "[drills]\ngrace = \"5m\"\n");
    let svc = Arc::new(DrillService::open(&dir.path().join("state")).unwrap());
    svc.index.set_last_checked("checkout-drill", utc("2026-06-01T10:00:00Z").timestamp_millis()).unwrap();
    // Down for 11 minutes: 10:02 .. 10:10 were due; the newest (10:10) is 1 minute late.
    let started = tick(&svc, &g, utc("2026-06-01T10:11:00Z")).unwrap();
    assert_eq!(started.len(), 1);
    settle(&svc);
    let all = rows(&svc);
    assert_eq!(all.len(), 5);
    assert!(all[..4].iter().all(|r| r.status == "missed" && r.started_at.is_none()), "{all:?}");
    assert!(all[0].reason.as_deref().unwrap().contains("beyond the [drills] grace period"), "{:?}", all[0].reason);
    assert!(all[3].reason.as_deref().unwrap().contains("only the newest runs"), "{:?}", all[3].reason);
    assert_eq!(all[4].id, "checkout-drill.20260601T1010Z");
    assert_eq!(all[4].status, "completed");
    // The occurrences are recorded once: checking the same range again adds nothing.
    svc.index.set_last_checked("checkout-drill", utc("2026-06-01T10:00:00Z").timestamp_millis()).unwrap();
    assert!(tick(&svc, &g, utc("2026-06-01T10:11:00Z")).unwrap().is_empty());
    assert_eq!(rows(&svc).len(), 5);
}

#[test]
fn overlap_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let g = generation(dir.path(), "");
    let svc = Arc::new(DrillService::open(&dir.path().join("state")).unwrap());
    let pb = &g.playbooks["checkout-drill"];
    // A long real-clock run of the same playbook is in progress.
    let running = RunRow {
        id: "checkout-drill.mlong".into(),
        playbook_id: pb.id.clone(),
        playbook_path: pb.path.display().to_string(),
        playbook_hash: pb.hash.clone(),
        origin: "manual".into(),
        scheduled_for: None,
        status: "running".into(),
        reason: None,
        clock: "real".into(),
        seed: 1,
        created_at: 0,
        started_at: Some(0),
        finished_at: None,
        score: None,
        verdict: None,
        report: None,
    };
    assert!(svc.index.claim(&running).unwrap());
    svc.index.set_last_checked("checkout-drill", utc("2026-06-01T10:00:30Z").timestamp_millis()).unwrap();
    assert!(tick(&svc, &g, utc("2026-06-01T10:02:10Z")).unwrap().is_empty());
    let r = rows(&svc).into_iter().find(|r| r.scheduled_for.is_some()).unwrap();
    assert_eq!(r.status, "refused-overlap");
    assert!(r.reason.unwrap().contains("still running"));
    // The same occurrence is not decided twice.
    svc.index.set_last_checked("checkout-drill", utc("2026-06-01T10:00:30Z").timestamp_millis()).unwrap();
    tick(&svc, &g, utc("2026-06-01T10:02:10Z")).unwrap();
    assert_eq!(rows(&svc).len(), 2);
}

#[test]
fn suspended_playbooks_and_blackouts_skip_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let g = generation(
        dir.path(),
        "[drills]\nblackout = [{ start = \"2026-12-24T00:00:00+01:00\", end = \"2026-12-27T00:00:00+01:00\", reason = \"holidays\" }]\n",
    );
    let svc = Arc::new(DrillService::open(&dir.path().join("state")).unwrap());
    svc.index.set_suspended("checkout-drill", true).unwrap();
    svc.index.set_last_checked("checkout-drill", utc("2026-06-01T10:00:30Z").timestamp_millis()).unwrap();
    assert!(tick(&svc, &g, utc("2026-06-01T10:02:10Z")).unwrap().is_empty());
    assert_eq!(rows(&svc)[0].status, "suspended");
    // Suspension survives a "restart".
    let svc = Arc::new(DrillService::open(&dir.path().join("state")).unwrap());
    assert!(svc.index.suspended("checkout-drill").unwrap());
    svc.index.set_suspended("checkout-drill", false).unwrap();

    svc.index.set_last_checked("checkout-drill", utc("2026-12-25T10:00:30Z").timestamp_millis()).unwrap();
    assert!(tick(&svc, &g, utc("2026-12-25T10:02:10Z")).unwrap().is_empty());
    let r = rows(&svc).into_iter().find(|r| r.status == "blackout").expect("a blackout row");
    assert!(r.reason.unwrap().contains("holidays"));
    // After the window, drills run again.
    svc.index.set_last_checked("checkout-drill", utc("2026-12-27T10:00:30Z").timestamp_millis()).unwrap();
    assert_eq!(tick(&svc, &g, utc("2026-12-27T10:02:10Z")).unwrap().len(), 1);
    settle(&svc);
}
