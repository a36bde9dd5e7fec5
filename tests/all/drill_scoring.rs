//! Drill scoring: the shipped playbooks pass their default drills, `n/a`
//! criteria, the merge of host and simulator criteria, missed deadlines and
//! the per-playbook pass score.
use crate::common::*;
use crisis::drill::simulator::Simulator;
use crisis::drill::{
    self, DrillOptions, Extensions, InjectKind, Rating, Scenario, ScenarioSource, ScoreHook, ScoreInput,
};
use crisis::incident::Generation;
use crisis::incident::effects::LogExecutor;
use crisis::playbook::spec::Playbook;
use crisis::plugin::{PluginHost, PluginHostConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The embedded default configuration with its relative paths made absolute.
fn embedded_default(dir: &Path, playbooks: &Path) -> Generation {
    let r = repo();
    let cfg = crisis::config::DEFAULT_CONFIG
        .replace("state_dir = \".crisis\"", &format!("state_dir = {:?}", dir.join("state")))
        .replace("playbooks = \"playbooks\"", &format!("playbooks = {playbooks:?}"))
        .replace("roster = \"examples/roster.toml\"", &format!("roster = {:?}", r.join("examples/roster.toml")))
        .replace(
            "customers = \"examples/customers.csv\"",
            &format!("customers = {:?}", r.join("examples/customers.csv")),
        );
    std::fs::write(dir.join("crisis.toml"), cfg).unwrap();
    load(&dir.join("crisis.toml"))
}

fn load(config: &Path) -> Generation {
    let config = crisis::config::load(config).unwrap_or_else(|d| panic!("{d:?}"));
    let loaded = crisis::incident::loader::load(config, 1, 0);
    loaded.generation.unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

/// The built-in plugins, drill-sim among them, as the simulator of every shipped playbook.
fn simulator() -> Arc<Simulator> {
    let host = PluginHost::new(PluginHostConfig { load_builtins: true, ..Default::default() }).unwrap();
    Arc::new(Simulator::new(Arc::new(host)))
}

fn with_sim(sim: &Arc<Simulator>) -> Extensions {
    Extensions { sources: vec![sim.clone()], hooks: vec![sim.clone()], ..Default::default() }
}

fn run(g: &Generation, pb: &str, seed: u64, ext: &Extensions) -> drill::DrillOutcome {
    drill::run(g, pb, DrillOptions::virtual_in_memory(format!("{pb}-{seed}"), seed), Arc::new(LogExecutor), ext)
        .unwrap_or_else(|e| panic!("{pb} seed {seed}: {e}"))
}

fn crit<'a>(r: &'a drill::AfterActionReport, id: &str) -> &'a drill::Criterion {
    let mut rows = r.score.criteria.iter().filter(|c| c.id == id);
    let c = rows.next().unwrap_or_else(|| panic!("no {id}: {:#?}", r.score.criteria));
    assert!(rows.next().is_none(), "criterion {id} has more than one row");
    c
}

#[test]
fn every_shipped_playbook_passes_its_default_drill_on_seeds_1_to_20() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator();
    let ext = with_sim(&sim);
    let example = load(&repo().join("examples/crisis.toml"));
    let embedded = embedded_default(dir.path(), &repo().join("playbooks"));
    let mut escalations_tested = 0;
    for (name, g) in [("examples/crisis.toml", &example), ("embedded default", &embedded)] {
        assert_eq!(g.playbooks.len(), 5, "{name}");
        for pb in g.playbooks.keys() {
            assert!(g.playbooks[pb].drill.as_ref().is_some_and(|d| d.simulator.is_some()), "{pb}");
            for seed in 1..=20 {
                let r = run(g, pb, seed, &ext).report;
                let bad: Vec<String> = r
                    .score
                    .criteria
                    .iter()
                    .filter(|c| !matches!(c.rating, Rating::Performed | Rating::NotApplicable))
                    .map(|c| format!("{} {}: {}", c.id, c.rating.as_str(), c.finding))
                    .collect();
                assert_eq!(
                    (r.score.verdict.as_str(), r.status.as_str()),
                    ("pass", "completed"),
                    "{name} {pb} seed {seed}: {} / 100, {bad:#?}\n{:#?}",
                    r.score.total,
                    r.went_wrong
                );
                assert_eq!(r.score.total, 100, "{name} {pb} seed {seed}: {bad:#?}");
                // Every shipped playbook has an escalation ladder: the owner misses the
                // window, escalation fires and the escalated person acknowledges.
                assert_eq!(crit(&r, "escalation").rating, Rating::Performed, "{pb} {seed}");
                assert!(crit(&r, "escalation").source.contains("host+drill-sim"), "{pb} {seed}");
                assert!(
                    r.timeline.iter().any(|t| t.kind == "deadline_missed"),
                    "{pb} {seed}: the ack window was not missed"
                );
                escalations_tested += 1;
            }
        }
    }
    assert_eq!(escalations_tested, 200);
    // Deterministic: the same seed scores the same.
    let a = run(&example, "service-outage", 2, &ext).report;
    let b = run(&embedded, "service-outage", 2, &ext).report;
    assert_eq!(a.score, b.score);
}

/// The default scenario with its injects changed by `edit`.
struct Edited(fn(&Playbook, &mut Vec<drill::Inject>));
impl ScenarioSource for Edited {
    fn name(&self) -> &str {
        "edited"
    }
    fn plan(&self, pb: &Playbook, seed: u64) -> anyhow::Result<Option<Scenario>> {
        let mut s = drill::responders::default_scenario(pb, seed);
        (self.0)(pb, &mut s.injects);
        s.source = "edited".into();
        Ok(Some(s))
    }
}

fn edited(sim: &Arc<Simulator>, edit: fn(&Playbook, &mut Vec<drill::Inject>)) -> Extensions {
    Extensions { sources: vec![Arc::new(Edited(edit))], hooks: vec![sim.clone()], ..Default::default() }
}

#[test]
fn an_owner_who_never_acknowledges_fails_on_acknowledgement_and_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let g = embedded_default(dir.path(), &repo().join("playbooks"));
    let sim = simulator();
    let ext = edited(&sim, |_, i| i.retain(|x| !matches!(x.kind, InjectKind::Ack { .. })));
    let out = run(&g, "service-outage", 1, &ext);
    let r = &out.report;
    assert_eq!(r.score.verdict, "fail");
    assert_eq!(crit(r, "acknowledge").rating, Rating::Unable);
    let esc = crit(r, "escalation");
    // Host (unable: nobody answered) and drill-sim (escalation fired, nobody acknowledged) in one row.
    assert_eq!((esc.rating, esc.source.as_str()), (Rating::Unable, "host+drill-sim"));
    assert!(
        !esc.evidence.is_empty()
            && esc.evidence.iter().all(|s| out.events.iter().any(|e| e.seq == *s && e.kind == "escalated"))
    );
    for title in ["Owner acknowledged", "Escalated when the owner was silent"] {
        assert!(
            r.went_wrong.iter().any(|w| w.starts_with(title) && w.ends_with("(unable)")),
            "{title}: {:#?}",
            r.went_wrong
        );
    }
    let md = r.markdown();
    assert!(
        md.contains("| Owner acknowledged | unable |")
            && md.contains("| Escalated when the owner was silent | unable |"),
        "{md}"
    );
}

#[test]
fn an_owner_who_acknowledges_in_time_passes_with_escalation_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let g = embedded_default(dir.path(), &repo().join("playbooks"));
    let sim = simulator();
    // The owner acknowledges one minute after the page, well inside ack_within (5m).
    let ext = edited(&sim, |_, i| {
        for x in i.iter_mut().filter(|x| matches!(x.kind, InjectKind::Ack { .. })) {
            x.after = Duration::from_secs(60);
        }
    });
    for seed in [1, 2, 3] {
        let out = run(&g, "service-outage", seed, &ext);
        let r = &out.report;
        assert!(out.events.iter().all(|e| e.kind != "escalated"), "seed {seed}");
        let esc = crit(r, "escalation");
        assert_eq!(
            (esc.rating, esc.points, esc.source.as_str()),
            (Rating::NotApplicable, 0, "host+drill-sim"),
            "{esc:?}"
        );
        assert_eq!(crit(r, "acknowledge").rating, Rating::Performed);
        assert_eq!((r.score.verdict.as_str(), r.score.total), ("pass", 100), "seed {seed}: {:#?}", r.score.criteria);
        // n/a is neither a success nor a shortfall, and needs no improvement.
        assert!(!r.went_wrong.iter().chain(&r.went_well).any(|w| w.starts_with("Escalated when")));
        assert!(r.improvements.iter().all(|i| i.criterion != "escalation"));
        assert!(r.markdown().contains("| Escalated when the owner was silent | n/a |"));
        // The total counts applicable criteria only.
        let applicable: Vec<_> = r.score.criteria.iter().filter(|c| c.rating != Rating::NotApplicable).collect();
        let points: u32 = applicable.iter().map(|c| c.points).sum();
        assert_eq!(r.score.total, (points * 100 + applicable.len() as u32 * 3 / 2) / (applicable.len() as u32 * 3));
    }
}

#[test]
fn a_team_that_misses_deadlines_fails_and_each_missed_deadline_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let g = embedded_default(dir.path(), &repo().join("playbooks"));
    let sim = simulator();
    // The bridge (within 10m) takes 25 minutes; the activation approval (within 5m) 8 minutes.
    let ext = edited(&sim, |_, i| {
        for x in i.iter_mut() {
            match &x.kind {
                InjectKind::StepDone { step, .. } if step == "bridge" => x.after = Duration::from_secs(25 * 60),
                InjectKind::StepFailure { step, .. } if step == "bridge" => x.after = Duration::from_secs(60),
                InjectKind::Approve { step: None, .. } => x.after = Duration::from_secs(8 * 60),
                _ => {}
            }
        }
    });
    let out = run(&g, "service-outage", 4, &ext);
    let r = &out.report;
    assert_eq!(r.score.verdict, "fail");
    let d = crit(r, "deadlines");
    assert_eq!(d.rating, Rating::Unable);
    let missed: Vec<_> = out.events.iter().filter(|e| e.kind == "deadline_missed" && e.data["what"] != "ack").collect();
    assert!(missed.len() >= 2, "{:?}", d);
    for e in &missed {
        let what = e.data["what"].as_str().unwrap();
        assert!(
            d.finding.contains(&format!("`{what}` due +")) && d.finding.contains(&format!("seq {}", e.seq)),
            "{what}: {}",
            d.finding
        );
        assert!(d.evidence.contains(&e.seq));
    }
    assert!(d.finding.contains("`step:bridge`") && d.finding.contains("`activate`"), "{}", d.finding);
    assert!(r.markdown().contains("| Deadlines met | unable |"));
}

/// One criterion rated `some-challenges`, as a simulator might add.
struct Challenged;
impl ScoreHook for Challenged {
    fn name(&self) -> &str {
        "test-hook"
    }
    fn criteria(&self, _: &ScoreInput<'_>) -> anyhow::Result<Vec<drill::Criterion>> {
        Ok(vec![drill::Criterion::new("sim:extra", "Extra", Rating::SomeChallenges, "a little slow", "[drill]")])
    }
}

#[test]
fn pass_score_is_honoured_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(repo().join("playbooks/service-outage.toml")).unwrap();
    let with = |score: &str| src.replace("[drill]\n", &format!("[drill]\npass_score = {score}\n"));
    let ext = Extensions { sources: vec![], hooks: vec![Arc::new(Challenged)], ..Default::default() };
    let mut totals = Vec::new();
    for (n, score) in ["100", "95"].iter().enumerate() {
        let pbs = dir.path().join(format!("pbs{n}"));
        std::fs::create_dir_all(&pbs).unwrap();
        std::fs::write(pbs.join("service-outage.toml"), with(score)).unwrap();
        let state = dir.path().join(format!("s{n}"));
        std::fs::create_dir_all(&state).unwrap();
        let g = embedded_default(&state, &pbs);
        assert_eq!(g.playbooks["service-outage"].drill.as_ref().unwrap().pass_score.to_string(), *score);
        let r = run(&g, "service-outage", 1, &ext).report;
        assert!(r.score.criteria.iter().all(|c| c.rating != Rating::Unable), "{:#?}", r.score.criteria);
        totals.push((r.score.total, r.score.verdict.clone()));
        let rule = format!("PASS: total ≥ {score} and no criterion `unable`");
        assert!(r.score.rule.starts_with(&rule), "{}", r.score.rule);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["score"]["pass_score"].to_string(), *score);
        assert!(r.markdown().contains(&format!("| Verdict rule | {rule}")));
    }
    // One some-challenges row among all-performed ones: between 95 and 100.
    assert!(totals[0].0 >= 95 && totals[0].0 < 100, "{totals:?}");
    assert_eq!(totals, vec![(totals[0].0, "fail".to_string()), (totals[0].0, "pass".to_string())]);

    // Out of range: `playbook validate` says what, where and what to write.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("service-outage.toml"), with("120")).unwrap();
    let r = crisis(&["playbook", "validate", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{} {}", r.stdout, r.stderr);
    let line = with("120").lines().position(|l| l.starts_with("pass_score")).unwrap() + 1;
    assert!(r.stderr.contains(&format!("service-outage.toml:{line}:")), "{}", r.stderr);
    assert!(
        r.stderr.contains("[drill] pass_score = 120 is out of range: write a whole number from 0 to 100"),
        "{}",
        r.stderr
    );
}

#[test]
fn standalone_runs_on_the_virtual_clock_unless_told_otherwise() {
    // billing-error declares clock = "x60"; standalone still finishes at once, on virtual time.
    let t = std::time::Instant::now();
    let r = crisis(&["--json", "drill", "run", "billing-error", "--standalone", "--seed", "5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["clock"], "virtual");
    assert_eq!(v["score"]["verdict"], "pass", "{}", v["score"]);
    assert!(v["score"]["rule"].as_str().unwrap().starts_with("PASS: total ≥ 80"));
    assert!(t.elapsed() < Duration::from_secs(60));
    // Not a terminal: no progress line.
    assert!(!r.stderr.contains("drill time +"), "{}", r.stderr);
}
