//! Drills through the library: determinism, containment and inline scenarios,
//! on the shipped playbooks and a fixture with inline injects.
use crate::common::repo;
use crisis::drill::{
    self, DrillOptions, Extensions, InjectKind, Rating, Scenario, ScenarioSource, ScoreHook, ScoreInput,
};
use crisis::incident::Generation;
use crisis::incident::effects::{EffectKind, EffectOutcome, Executor, IntentPayload};
use crisis::playbook::spec::Playbook;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A generation over `playbooks` with the example roster and customers and
/// the default targets (customers and regulator are not drill_safe).
fn generation(dir: &Path, playbooks: &Path, roster: &Path, customers: &Path) -> Generation {
    let cfg = format!(
        "playbooks = {:?}\nroster = {:?}\ncustomers = {:?}\nstate_dir = {:?}\n\
         [targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.departments]\nplugin = \"log\"\ndrill_safe = true\n\
         [targets.customers]\nplugin = \"log\"\n[targets.regulator]\nplugin = \"log\"\n\
         [targets.pr]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n\
         [targets.status-page]\nplugin = \"status\"\n\
         [status_page]\ncomponents = [{{ id = \"login\" }}, {{ id = \"checkout\" }}, {{ id = \"payments\" }}]\n",
        playbooks,
        roster,
        customers,
        dir.join("state")
    );
    std::fs::write(dir.join("crisis.toml"), cfg).unwrap();
    let config = crisis::config::load(&dir.join("crisis.toml")).unwrap_or_else(|d| panic!("{d:?}"));
    let loaded = crisis::incident::loader::load(config, 1, 0);
    loaded.generation.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

fn shipped(dir: &Path) -> Generation {
    let r = repo();
    generation(dir, &r.join("playbooks"), &r.join("examples/roster.toml"), &r.join("examples/customers.csv"))
}

fn inline(dir: &Path) -> Generation {
    let f = repo().join("tests/fixtures/drill/inline");
    generation(dir, &f.join("playbooks"), &f.join("roster.toml"), &f.join("customers.csv"))
}

/// Records every call that reaches it: the "real world" of a drill.
#[derive(Default)]
struct Recorder(Mutex<Vec<IntentPayload>>);

impl Executor for Recorder {
    fn execute(&self, _id: &str, p: &IntentPayload) -> EffectOutcome {
        self.0.lock().unwrap().push(p.clone());
        EffectOutcome::sent("delivered by the recorder")
    }
}

fn run(g: &Generation, pb: &str, seed: u64, inner: Arc<dyn Executor>) -> drill::DrillOutcome {
    drill::run(g, pb, DrillOptions::virtual_in_memory(format!("{pb}-{seed}"), seed), inner, &Extensions::default())
        .unwrap_or_else(|e| panic!("{pb} seed {seed}: {e}"))
}

#[test]
fn same_playbook_and_seed_give_the_same_journal_and_score() {
    let dir = tempfile::tempdir().unwrap();
    let g = shipped(dir.path());
    assert_eq!(g.playbooks.len(), 5);
    for pb in g.playbooks.keys() {
        let a = run(&g, pb, 7, Arc::new(Recorder::default()));
        let b = run(&g, pb, 7, Arc::new(Recorder::default()));
        assert!(a.events.len() > 30, "{pb}: {} events", a.events.len());
        // Byte-identical events: seq, time, kind, data and the hash chain.
        assert_eq!(serde_json::to_string(&a.events).unwrap(), serde_json::to_string(&b.events).unwrap(), "{pb}");
        assert_eq!(a.report.score, b.report.score, "{pb}");
        assert_eq!(a.report.controller, b.report.controller, "{pb}");
        assert_eq!(a.report.status, "completed", "{pb}: {:?}", a.report.went_wrong);
        // A different seed plays a different drill.
        let c = run(&g, pb, 8, Arc::new(Recorder::default()));
        assert_ne!(serde_json::to_string(&a.events).unwrap(), serde_json::to_string(&c.events).unwrap(), "{pb}");
    }
}

#[test]
fn nothing_but_drill_safe_notices_ever_reaches_the_inner_executor() {
    let dir = tempfile::tempdir().unwrap();
    let g = shipped(dir.path());
    let safe: Vec<&String> = g.config.targets.iter().filter(|(_, t)| t.drill_safe).map(|(n, _)| n).collect();
    let mut captured_customers = 0;
    let mut captured_notices = 0;
    let mut passed = 0;
    for pb in g.playbooks.keys() {
        for seed in 1..=6 {
            let rec = Arc::new(Recorder::default());
            let out = run(&g, pb, seed, rec.clone());
            for p in rec.0.lock().unwrap().iter() {
                assert_eq!(p.kind, EffectKind::Notify, "{pb}/{seed}: a customer message reached the executor");
                assert!(p.customer.is_none(), "{pb}/{seed}");
                assert!(safe.contains(&&p.target), "{pb}/{seed}: notice to non-drill-safe target {}", p.target);
                assert_eq!(p.mode.to_string(), "drill");
                assert!(p.subject.starts_with(&format!("[DRILL {pb}-{seed}]")), "{}", p.subject);
                passed += 1;
            }
            // Every effect in the journal either went to a drill-safe target or was captured.
            for e in out.events.iter().filter(|e| e.kind == "effect_result") {
                let detail = e.data["detail"].as_str().unwrap();
                let target = e.data["target"].as_str().unwrap();
                if e.data["customer"].is_string() {
                    assert!(detail.starts_with(drill::contain::CAPTURED), "{detail}");
                    captured_customers += 1;
                } else if !safe.iter().any(|s| *s == target) {
                    assert!(detail.starts_with(drill::contain::CAPTURED), "{detail}");
                    captured_notices += 1;
                }
                // No contact details in the journal or the report.
                assert!(!detail.contains('@') && !detail.contains("+1-555"), "{detail}");
            }
            let md = out.report.markdown();
            assert!(!md.contains("example.com") && !md.contains("+1-555"), "contact details in the report of {pb}");
            let c = &out.report.communications;
            assert_eq!(
                c.customer_messages_captured.values().sum::<u32>() as usize,
                out.events.iter().filter(|e| e.kind == "effect_result" && e.data["customer"].is_string()).count()
            );
        }
    }
    // The test would be vacuous if nothing was captured or passed.
    assert!(
        captured_customers > 100 && captured_notices > 10 && passed > 100,
        "{captured_customers} {captured_notices} {passed}"
    );
}

#[test]
fn inline_injects_force_escalation_and_a_retried_step() {
    let dir = tempfile::tempdir().unwrap();
    let g = inline(dir.path());
    let out = run(&g, "checkout-drill", 1, Arc::new(Recorder::default()));
    let r = &out.report;
    assert_eq!(r.scenario.source, "default+inline");
    let crit = |id: &str| {
        r.score.criteria.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no {id}: {:?}", r.score.criteria))
    };
    // Silent for 12 minutes from minute 1: acknowledged at +13m by the scripted person.
    assert_eq!(crit("acknowledge").measured.as_deref(), Some("13m"));
    assert_eq!(crit("acknowledge").rating, Rating::MajorChallenges);
    assert!(crit("acknowledge").finding.contains("zhang-min"));
    assert_eq!(crit("escalation").rating, Rating::Performed);
    // Every evidence seq is a real event of this drill, of a fitting kind.
    let esc = &crit("escalation").evidence;
    assert!(!esc.is_empty() && esc.iter().all(|s| out.events.iter().any(|e| e.seq == *s && e.kind == "escalated")));
    // The bridge failed at +15m and was retried at +35m: 22 minutes after ready, against 10m.
    let bridge = crit("step:bridge");
    assert_eq!(bridge.measured.as_deref(), Some("22m"));
    assert_eq!(bridge.rating, Rating::MajorChallenges);
    assert!(
        out.events
            .iter()
            .any(|e| e.kind == "note" && e.data["note"].as_str().unwrap().contains("bridge number is out of date"))
    );
    // The regulator is not drill_safe: the report notice to it was captured.
    let to_regulator =
        out.events.iter().filter(|e| e.kind == "effect_result" && e.data["target"] == "regulator").collect::<Vec<_>>();
    assert!(to_regulator.iter().any(|e| e.data["purpose"] == "report"));
    assert!(to_regulator.iter().all(|e| e.data["detail"].as_str().unwrap().starts_with(drill::contain::CAPTURED)));
    assert_eq!(r.communications.notices_captured.get("regulator").copied(), Some(to_regulator.len() as u32));
    // 25 default complaints + 12 inline ones, all attached.
    assert_eq!(out.incident.as_ref().unwrap().attached, 1 + 25 + 12);
    // Improvement items point at the drilled file and hash.
    let pb = &g.playbooks["checkout-drill"];
    assert!(
        r.improvements
            .iter()
            .any(|i| i.criterion == "step:bridge" && i.playbook_hash == pb.hash && i.section.contains("bridge"))
    );
    assert!(r.improvements.iter().all(|i| i.playbook_path.ends_with("checkout-drill.toml")));
    assert!(r.score.total > 0 && r.score.total < 100);
}

struct FixedSource;
impl ScenarioSource for FixedSource {
    fn name(&self) -> &str {
        "test-sim"
    }
    fn plan(&self, pb: &Playbook, _seed: u64) -> anyhow::Result<Option<Scenario>> {
        // A scenario where nobody ever acknowledges or acts.
        let mut s = drill::responders::default_scenario(pb, 1);
        s.source = "test-sim".into();
        s.injects.retain(|i| matches!(i.kind, InjectKind::Alert { .. }));
        Ok(Some(s))
    }
}

struct CountingHook;
impl ScoreHook for CountingHook {
    fn name(&self) -> &str {
        "test-hook"
    }
    fn criteria(&self, input: &ScoreInput<'_>) -> anyhow::Result<Vec<drill::Criterion>> {
        let n = input.events.iter().filter(|e| e.kind == "escalated").count();
        let mut c = drill::Criterion::new(
            "sim:escalations",
            "Escalations seen by the simulator",
            if n > 0 { Rating::Performed } else { Rating::Unable },
            format!("{n} escalations"),
            "[assign] escalate",
        );
        c.points = 99; // the host recomputes points from the rating
        Ok(vec![c])
    }
}

#[test]
fn plugin_sources_and_score_hooks_plug_in() {
    let dir = tempfile::tempdir().unwrap();
    let g = shipped(dir.path());
    let ext =
        Extensions { sources: vec![Arc::new(FixedSource)], hooks: vec![Arc::new(CountingHook)], ..Default::default() };
    let out = drill::run(
        &g,
        "service-outage",
        DrillOptions::virtual_in_memory("sim", 1),
        Arc::new(Recorder::default()),
        &ext,
    )
    .unwrap();
    let r = out.report;
    assert_eq!(r.scenario.source, "test-sim");
    // Nobody acts: activation waits for approval forever, nobody is paged, the drill fails.
    assert_eq!(r.status, "incomplete");
    assert_eq!(r.score.verdict, "fail");
    let sim = r.score.criteria.iter().find(|c| c.id == "sim:escalations").unwrap();
    assert_eq!((sim.source.as_str(), sim.points, sim.rating), ("test-hook", 0, Rating::Unable));
    assert!(r.score.criteria.iter().any(|c| c.id == "activate" && c.rating == Rating::Unable));
    assert!(r.score.criteria.iter().any(|c| c.id == "acknowledge" && c.rating == Rating::Unable));
    assert!(r.score.total <= 100);
}

#[test]
fn a_drill_on_a_sped_up_clock_takes_real_time_at_that_speed() {
    let dir = tempfile::tempdir().unwrap();
    let g = inline(dir.path());
    let mut opts = DrillOptions::virtual_in_memory("fast", 1);
    opts.clock = "x3600".parse().unwrap();
    opts.responders = true;
    let t = std::time::Instant::now();
    let out = drill::run(&g, "checkout-drill", opts, Arc::new(Recorder::default()), &Extensions::default()).unwrap();
    // About 1h31m of drill time at 3600x is about 1.5 s of real time.
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(1200), "{took:?}");
    assert_eq!(out.report.status, "completed", "{:?}", out.report.went_wrong);
    assert_eq!(out.report.clock.to_string(), "x3600");
}

#[test]
fn on_a_real_clock_only_the_playbooks_own_responders_act() {
    let dir = tempfile::tempdir().unwrap();
    let g = inline(dir.path());
    let mut opts = DrillOptions::virtual_in_memory("people", 1);
    opts.clock = "x3600".parse().unwrap();
    opts.responders = false;
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    opts.cancel = Some(cancel.clone());
    let c2 = cancel.clone();
    // Nobody resolves (no scripted resolve in the fixture): stop it after a while, as a blackout would.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        c2.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let out = drill::run(&g, "checkout-drill", opts, Arc::new(Recorder::default()), &Extensions::default()).unwrap();
    stopper.join().unwrap();
    let r = out.report;
    assert_eq!(r.status, "cancelled");
    let result =
        |kind: &str| r.controller.iter().filter(|c| c.kind == kind).map(|c| c.result.clone()).collect::<Vec<_>>();
    // The playbook's own ack (as zhang-min) and bridge step ran ...
    assert_eq!(result("ack"), vec!["acknowledged as zhang-min".to_string()]);
    assert!(result("step-done")[0].starts_with("done by"), "{:?}", r.controller);
    // ... the default scenario's resolve did not: people would have to.
    assert!(result("resolve").iter().all(|x| x.starts_with("not performed: people act")), "{:?}", result("resolve"));
    assert!(r.went_wrong.iter().any(|w| w.contains("ended cancelled")));
}
