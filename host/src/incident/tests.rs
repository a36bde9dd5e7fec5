//! Engine tests on a manual clock: phases, dedup, escalation, deadlines.

use super::clock::ManualClock;
use super::effects::{EffectKind, EffectOutcome};
use super::state::{Status, StepStatus};
use super::*;
use crate::config;
use crate::playbook::types::Phase;
use crate::store::{SqliteStore, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: i64 = 1_767_600_000_000; // 2026-01-05T08:00:00Z

const ROSTER: &str = r#"
[people.alice]
name = "Alice"
roles = ["duty-manager"]
[people.bob]
name = "Bob"
[people.carol]
name = "Carol"
roles = ["director"]
[teams.pr]
members = ["bob"]
[rotas.duty]
timezone = "UTC"
handoff = "00:00"
start = "2026-01-05"
members = ["alice", "bob"]
[rotas.managers]
timezone = "Asia/Shanghai"
handoff = "09:00"
start = "2026-01-05"
members = ["carol"]
"#;

const CONFIG: &str = r#"
roster = "roster.toml"
customers = "customers.csv"
[targets.superiors]
plugin = "log"
[targets.customers]
plugin = "log"
[targets.oncall]
plugin = "log"
"#;

const CUSTOMERS: &str = "id,name,segment,tier,locale,channel,phone,email\n\
c1,A,affected,vip,en,sms,+1555001,a@example.com\n\
c2,B,affected,standard,zh-CN,sms,+1555002,b@example.com\n\
c3,C,affected,standard,en,email,+1555003,c@example.com\n\
c4,D,other,vip,en,sms,+1555004,d@example.com\n";

pub(crate) const PLAYBOOK: &str = r#"
[playbook]
id = "outage"
name = "Checkout outage"
category = "service-process"
severity = "sev2"
[trigger]
dedup_key = "{{ labels.service }}:{{ labels.region }}"
[report]
require = ["nature", "scope"]
notify = ["superiors"]
within = "2m"
[activate]
channels = ["superiors"]
[assign]
commander = "rota:duty"
ack_within = "5m"
escalate = [
  { after = "5m", to = "rota:managers" },
  { after = "15m", to = "person:carol", repeat = 2 },
]
[[act]]
id = "dispatch"
kind = "dispatch"
tasks = ["Send engineers"]
within = "10m"
[[act]]
id = "tell-customers"
kind = "appease"
audience = { segment = "affected", tier = ["vip", "standard"] }
channel = "sms"
after = ["dispatch"]
limits = { max_messages = 2, per_minute = 1 }
when = "severity <= sev2"
[[act]]
id = "low-sev-only"
kind = "notify"
notify = ["superiors"]
when = "severity >= sev4"
[track]
update_every = "30m"
stale_after = "1h"
notify = ["superiors"]
[outcome]
require = ["cause", "process", "aftermath"]
notify = ["superiors"]
within = "72h"
"#;

pub(crate) struct Fixture {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn fixture_with(playbook: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roster.toml"), ROSTER).unwrap();
    std::fs::write(dir.path().join("customers.csv"), CUSTOMERS).unwrap();
    std::fs::write(dir.path().join("crisis.toml"), CONFIG).unwrap();
    let cfg = config::load(&dir.path().join("crisis.toml")).unwrap();
    let pb = crate::playbook::parse_one(&dir.path().join("outage.toml"), playbook, &cfg.ref_context()).unwrap();
    let customers = config::customers::load(&dir.path().join("customers.csv")).unwrap();
    let mut playbooks = BTreeMap::new();
    playbooks.insert(pb.id.clone(), Arc::new(pb));
    let generation = Generation {
        number: 1,
        set_hash: "x".into(),
        loaded_at: T0,
        playbooks,
        config: Arc::new(cfg),
        customers: Arc::new(customers),
    };
    let clock = Arc::new(ManualClock::new(T0));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    Fixture { engine: Engine::new(store, clock.clone(), generation), clock, _dir: dir }
}

fn fixture() -> Fixture {
    fixture_with(PLAYBOOK)
}

fn trigger(f: &Fixture, service: &str) -> Result<TriggerOutcome, EngineError> {
    let mut fields = BTreeMap::new();
    fields.insert("nature".to_string(), "checkout returns 500".to_string());
    let mut labels = BTreeMap::new();
    labels.insert("service".to_string(), service.to_string());
    labels.insert("region".to_string(), "eu".to_string());
    f.engine.trigger(TriggerRequest {
        playbook: "outage".into(),
        scope: Some("all EU shoppers".into()),
        fields,
        labels,
        ..Default::default()
    })
}

/// Runs every due intent through the log executor, like the daemon's worker.
fn drain(f: &Fixture) -> usize {
    let exec = effects::LogExecutor;
    let mut n = 0;
    loop {
        let pending = f.engine.pending_intents(100).unwrap();
        if pending.is_empty() {
            return n;
        }
        for (id, p, _) in pending {
            let out = effects::Executor::execute(&exec, &id, &p);
            f.engine.record_effect(&id, &out).unwrap();
            n += 1;
        }
    }
}

fn kinds(f: &Fixture, id: &str) -> Vec<String> {
    f.engine.store().events(id, 0).unwrap().into_iter().map(|e| e.kind).collect()
}

#[test]
fn a_whole_incident_runs_through_six_phases() {
    let f = fixture();
    let inc = trigger(&f, "checkout").unwrap().incident;
    assert_eq!(inc.phase, Phase::Report);
    assert_eq!(drain(&f), 3, "report notice, activation notice, commander page");
    let inc = f.engine.incident(&inc.id).unwrap();
    // Report delivered → activated (no approval) → assign: alice is on the duty rota.
    assert_eq!(inc.phase, Phase::Assign);
    assert_eq!(inc.roles.get("commander").map(String::as_str), Some("alice"));
    drain(&f);
    let inc = f.engine.ack(&inc.id, "alice").unwrap();
    assert_eq!(inc.phase, Phase::Act);
    assert_eq!(inc.step_status("dispatch"), StepStatus::Ready);
    assert_eq!(inc.step_status("low-sev-only"), StepStatus::Skipped, "when severity >= sev4 is false for sev2");
    let inc = f.engine.step(&inc.id, "dispatch", StepAction::Done, Some("two engineers sent"), "alice").unwrap();
    assert_eq!(inc.step_status("tell-customers"), StepStatus::Running);
    // max_messages = 2 → two intents; per_minute = 1 → the second waits a minute.
    assert_eq!(drain(&f), 1);
    f.clock.advance(60_000);
    assert_eq!(drain(&f), 1);
    let inc = f.engine.incident(&inc.id).unwrap();
    assert_eq!(inc.step_status("tell-customers"), StepStatus::Done);
    assert_eq!(inc.phase, Phase::Outcome);
    let inc = f.engine.resolve(&inc.id, "alice", "cli").unwrap();
    assert_eq!(inc.status, Status::Resolved);
    let err = f.engine.record_outcome(&inc.id, "bad deploy", "", "refunds", "alice").unwrap_err();
    assert!(err.to_string().contains("requires `process`"), "{err}");
    let inc = f.engine.record_outcome(&inc.id, "bad deploy", "rolled back", "refunds sent", "alice").unwrap();
    assert_eq!(inc.status, Status::Closed);
    for p in Phase::ORDER {
        let t = &inc.phases[&p];
        assert!(t.entered.is_some() && t.completed.is_some(), "{p} not entered and completed");
    }
    let err = f.engine.update(&inc.id, "late note", "alice").unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    assert!(f.engine.store().verify(None).unwrap().problems.is_empty());
}

#[test]
fn missing_report_field_is_refused_naming_it() {
    let f = fixture();
    let err = f
        .engine
        .trigger(TriggerRequest { playbook: "outage".into(), scope: Some("x".into()), ..Default::default() })
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Invalid { .. })
            && err.to_string().contains("`nature`")
            && err.to_string().contains("--field nature="),
        "{err}"
    );
    let err = f.engine.trigger(TriggerRequest { playbook: "outgae".into(), ..Default::default() }).unwrap_err();
    assert!(matches!(&err, EngineError::NotFound { nearby, .. } if nearby[0] == "outage"), "{err}");
}

#[test]
fn dedup_attaches_while_open_and_reopens_after_resolution() {
    let f = fixture();
    let a = trigger(&f, "checkout").unwrap();
    let b = trigger(&f, "checkout").unwrap();
    assert!(!a.deduped && b.deduped);
    assert_eq!(a.incident.id, b.incident.id);
    assert_eq!(b.incident.attached, 1);
    let c = trigger(&f, "login").unwrap();
    assert_ne!(c.incident.id, a.incident.id, "another key opens another incident");
    f.engine.resolve(&a.incident.id, "alice", "cli").unwrap();
    let d = trigger(&f, "checkout").unwrap();
    assert!(!d.deduped);
    assert_ne!(d.incident.id, a.incident.id);
    let long = "x".repeat(300);
    let mut req = TriggerRequest {
        playbook: "outage".into(),
        scope: Some("s".into()),
        dedup_key: Some(long),
        ..Default::default()
    };
    req.fields.insert("nature".into(), "n".into());
    assert!(matches!(f.engine.trigger(req), Err(e @ EngineError::Invalid { .. }) if e.to_string().contains("255")));
}

#[test]
fn escalation_fires_on_time_repeats_and_ack_cancels() {
    let f = fixture();
    let id = trigger(&f, "checkout").unwrap().incident.id;
    drain(&f);
    f.clock.advance(4 * 60_000 + 59_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().escalations, 0, "nothing before 5m");
    f.clock.advance(1_000);
    f.engine.fire_due_timers().unwrap();
    let inc = f.engine.incident(&id).unwrap();
    assert_eq!(inc.escalations, 1, "level 1 at 5m");
    assert!(inc.missed.iter().any(|m| m.what == "ack"), "ack_within 5m missed");
    f.clock.advance(10 * 60_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().escalations, 2, "level 2 at 15m");
    f.clock.advance(15 * 60_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().escalations, 3, "level 2 repeats at 30m");
    f.clock.advance(60 * 60_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().escalations, 3, "repeat = 2 means two rounds");

    // A second incident acknowledged before 5m never escalates.
    let id2 = trigger(&f, "search").unwrap().incident.id;
    drain(&f);
    f.clock.advance(60_000);
    f.engine.ack(&id2, "bob").unwrap();
    f.clock.advance(60 * 60_000);
    f.engine.fire_due_timers().unwrap();
    let inc2 = f.engine.incident(&id2).unwrap();
    assert_eq!(inc2.escalations, 0);
    assert_eq!(inc2.roles["commander"], "bob", "acking takes command");
    let escalated_people: Vec<_> = f
        .engine
        .store()
        .events(&id, 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "escalated")
        .map(|e| e.data["people"].clone())
        .collect();
    assert_eq!(escalated_people[0], serde_json::json!(["carol"]), "managers rota (Asia/Shanghai) resolves to carol");
}

#[test]
fn late_timers_fire_once() {
    let f = fixture();
    let id = trigger(&f, "checkout").unwrap().incident.id;
    drain(&f);
    // The daemon was "down" for two hours: each due timer fires once, late,
    // and a repeat is scheduled from the moment it fired, not caught up.
    f.clock.advance(2 * 3_600_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().escalations, 2);
    let missed_ack = f.engine.incident(&id).unwrap().missed.iter().filter(|m| m.what == "ack").count();
    assert_eq!(missed_ack, 1);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().escalations, 2);
    f.clock.advance(15 * 60_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().escalations, 3, "the repeat round, 15m after the late firing");
}

#[test]
fn step_deadline_missed_is_journaled_and_notifies() {
    let f = fixture();
    let id = trigger(&f, "checkout").unwrap().incident.id;
    drain(&f);
    f.engine.ack(&id, "alice").unwrap();
    f.clock.advance(10 * 60_000);
    f.engine.fire_due_timers().unwrap();
    let inc = f.engine.incident(&id).unwrap();
    assert!(inc.missed.iter().any(|m| m.what == "step:dispatch"), "{:?}", inc.missed);
    let pending = f.engine.pending_intents(10).unwrap();
    assert!(
        pending
            .iter()
            .any(|(_, p, _)| p.purpose == crate::playbook::types::Purpose::Deadline && p.kind == EffectKind::Notify)
    );
}

#[test]
fn stale_and_periodic_updates_during_act() {
    let f = fixture();
    let id = trigger(&f, "checkout").unwrap().incident.id;
    drain(&f);
    f.engine.ack(&id, "alice").unwrap();
    f.clock.advance(30 * 60_000);
    f.engine.fire_due_timers().unwrap();
    assert!(kinds(&f, &id).contains(&"update_due".to_string()));
    f.clock.advance(30 * 60_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().stale_warnings, 1);
    f.engine.update(&id, "still working", "alice").unwrap();
    f.clock.advance(30 * 60_000);
    f.engine.fire_due_timers().unwrap();
    assert_eq!(f.engine.incident(&id).unwrap().stale_warnings, 1, "activity resets the stale clock");
}

#[test]
fn effect_results_are_recorded_once() {
    let f = fixture();
    let id = trigger(&f, "checkout").unwrap().incident.id;
    let (inv, _, _) = f.engine.pending_intents(1).unwrap().remove(0);
    f.engine.record_effect(&inv, &EffectOutcome::sent("ok")).unwrap();
    f.engine.record_effect(&inv, &EffectOutcome::sent("again")).unwrap();
    let results = kinds(&f, &id).iter().filter(|k| *k == "effect_result").count();
    assert_eq!(results, 1);
}

#[test]
fn approval_gates_activation() {
    let pb = PLAYBOOK.replace("[activate]\n", "[activate]\napproval = \"role:duty-manager\"\n");
    let f = fixture_with(&pb);
    let id = trigger(&f, "checkout").unwrap().incident.id;
    drain(&f);
    assert_eq!(f.engine.incident(&id).unwrap().phase, Phase::Activate);
    let err = f.engine.approve(&id, None, "bob").unwrap_err();
    assert!(err.to_string().contains("needs role:duty-manager"), "{err}");
    let inc = f.engine.approve(&id, None, "alice").unwrap();
    assert_eq!(inc.phase, Phase::Assign);
    assert_eq!(inc.activated_by.as_deref(), Some("approval"));
}

const TWO_BRIDGES: &str = r#"
[playbook]
id = "outage"
name = "Two bridges"
category = "service-process"
severity = "sev2"
[report]
require = ["nature", "scope"]
notify = ["superiors"]
within = "2m"
[activate]
channels = ["superiors"]
[assign]
commander = "rota:duty"
[[act]]
id = "bridge"
kind = "manual"
tasks = ["Open the bridge"]
within = "10m"
[[act]]
id = "bridge-2"
kind = "manual"
tasks = ["Open the second bridge"]
within = "20m"
[track]
notify = ["superiors"]
[outcome]
notify = ["superiors"]
"#;

#[test]
fn finishing_a_step_keeps_the_deadline_of_a_step_whose_id_extends_it() {
    let f = fixture_with(TWO_BRIDGES);
    let id = trigger(&f, "checkout").unwrap().incident.id;
    drain(&f);
    f.engine.ack(&id, "alice").unwrap();
    let inc = f.engine.step(&id, "bridge", StepAction::Done, None, "alice").unwrap();
    assert_eq!(inc.step_status("bridge-2"), StepStatus::Ready);
    let pending: Vec<String> = f
        .engine
        .store()
        .due_timers(i64::MAX)
        .unwrap()
        .into_iter()
        .filter(|t| t.incident_id == id)
        .map(|t| t.kind)
        .collect();
    assert!(pending.iter().any(|k| k == "deadline:step:bridge-2"), "{pending:?}");
    assert!(!pending.iter().any(|k| k == "deadline:step:bridge"), "{pending:?}");
    f.clock.advance(20 * 60_000);
    f.engine.fire_due_timers().unwrap();
    let inc = f.engine.incident(&id).unwrap();
    let missed: Vec<&str> = inc.missed.iter().map(|m| m.what.as_str()).collect();
    assert_eq!(missed, ["step:bridge-2"]);
}

#[test]
fn results_that_end_together_are_journaled_together_and_once() {
    let f = fixture();
    let a = trigger(&f, "checkout").unwrap().incident.id;
    let b = trigger(&f, "search").unwrap().incident.id;
    let claimed = f.engine.claim_intents(100).unwrap();
    assert!(claimed.len() >= 2, "each incident queues its report notices: {claimed:?}");
    let outbox = outbox::Outbox::default();
    let items: Vec<_> = claimed.iter().map(|c| (c.clone(), EffectOutcome::sent("ok"))).collect();
    let settled = outbox.settle_all(&f.engine, items);
    assert!(settled.iter().all(|s| matches!(s, Ok(outbox::Settled::Recorded))), "{settled:?}");
    // Settling the same executions again journals nothing more.
    let again: Vec<_> = claimed.iter().map(|c| (c.clone(), EffectOutcome::sent("again"))).collect();
    outbox.settle_all(&f.engine, again);
    let results = |id: &str| kinds(&f, id).iter().filter(|k| *k == "effect_result").count();
    assert_eq!(results(&a) + results(&b), claimed.len());
    let pending: Vec<String> = f.engine.pending_intents(100).unwrap().into_iter().map(|p| p.0).collect();
    assert!(claimed.iter().all(|c| !pending.contains(&c.id)), "settled intents are pending again: {pending:?}");
}

#[test]
fn a_result_given_twice_in_one_group_is_journaled_once() {
    let f = fixture();
    let id = trigger(&f, "checkout").unwrap().incident.id;
    let c = f.engine.claim_intents(100).unwrap().remove(0);
    let (first, again) = (EffectOutcome::sent("ok"), EffectOutcome::sent("again"));
    f.engine.record_effects(&[(c.id.as_str(), &first), (c.id.as_str(), &again)]).unwrap();
    assert_eq!(kinds(&f, &id).iter().filter(|k| *k == "effect_result").count(), 1);
}

#[test]
fn one_unjournalable_result_does_not_hold_up_the_others_of_its_group() {
    let f = fixture();
    let good = trigger(&f, "checkout").unwrap().incident.id;
    let bad = trigger(&f, "search").unwrap().incident.id;
    let claimed = f.engine.claim_intents(100).unwrap();
    let conn = rusqlite::Connection::open(f._dir.path().join("journal.db")).unwrap();
    conn.execute("UPDATE incidents SET state = '{not json' WHERE id = ?1", [&bad]).unwrap();
    let outbox = outbox::Outbox::default();
    let items: Vec<_> = claimed.iter().map(|c| (c.clone(), EffectOutcome::sent("ok"))).collect();
    let settled = outbox.settle_all(&f.engine, items);
    for (c, s) in claimed.iter().zip(&settled) {
        if c.incident_id == good {
            assert!(matches!(s, Ok(outbox::Settled::Recorded)), "{s:?}");
        } else {
            // Kept and retried later; never sent again.
            assert!(matches!(s, Ok(outbox::Settled::Retrying(_))), "{s:?}");
        }
    }
    let recorded = kinds(&f, &good).iter().filter(|k| *k == "effect_result").count();
    assert_eq!(recorded, claimed.iter().filter(|c| c.incident_id == good).count());
}

#[test]
fn verify_walks_every_page_of_incidents_and_names_an_edited_one_on_the_last() {
    let f = fixture();
    // More incidents than two pages of the walk: the oldest is on the third.
    let ids: Vec<String> = (0..1001).map(|n| trigger(&f, &format!("svc-{n}")).unwrap().incident.id).collect();
    let report = super::verify::verify(f.engine.store().as_ref(), None).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let conn = rusqlite::Connection::open(f._dir.path().join("journal.db")).unwrap();
    conn.execute("UPDATE incidents SET title = 'edited' WHERE id = ?1", [&ids[0]]).unwrap();
    // Timers are judged against their incident's events: one left behind after
    // the ack, one of an incident that does not exist, one the engine has no kind for.
    f.engine.ack(&ids[1], "alice").unwrap();
    for (incident, kind) in [(ids[1].as_str(), "deadline:ack"), ("INC-99999", "deadline:ack"), (&ids[2], "bogus")] {
        conn.execute(
            "INSERT INTO timers (incident_id, due_at, kind, data, family) VALUES (?1, 1, ?2, '{}', '')",
            [incident, kind],
        )
        .unwrap();
    }
    let report = super::verify::verify(f.engine.store().as_ref(), None).unwrap();
    // Timer ids are the store's: compare without them.
    let numbered = regex::Regex::new(r"^timer \d+ ").unwrap();
    let mut problems: Vec<String> =
        report.problems.iter().map(|p| numbered.replace(p, "timer 0 ").into_owned()).collect();
    problems.sort();
    let mut want = vec![
        format!("incident {}: stored title differs from what its events say", ids[0]),
        format!(
            "timer 0 (deadline:ack) of incident {}: still pending although the incident's events say it is done",
            ids[1]
        ),
        "timer 0 (deadline:ack) of incident INC-99999: no such incident".to_string(),
        format!("timer 0 (bogus) of incident {}: the engine has no such timer", ids[2]),
    ];
    want.sort();
    assert_eq!(problems, want);
}
