use super::*;
use std::time::Duration;

fn rule(after: u32, secs: u64) -> DigestRule {
    DigestRule { after, within: Duration::from_secs(secs) }
}

fn member(incident: &str, playbook: &str, severity: Severity, commander: Option<&str>) -> Member {
    Member {
        incident: incident.into(),
        playbook: playbook.into(),
        severity,
        purpose: Purpose::Report,
        commander: commander.map(str::to_string),
        window_ms: 30_000,
    }
}

#[test]
fn the_first_after_notices_go_out_and_the_rest_fold_into_one_digest() {
    let r = rule(3, 30);
    let mut w = Window::default();
    for t in 0..3 {
        assert_eq!(w.decide(r, 1_000 + t), Decision::Send, "notice {t}");
    }
    assert_eq!(w.decide(r, 1_010), Decision::Fold { into: None, due_at: 31_000 });
    w.open_digest("DIG-1");
    for t in 0..5 {
        assert_eq!(w.decide(r, 2_000 + t), Decision::Fold { into: Some("DIG-1".into()), due_at: 31_000 });
    }
    assert_eq!((w.singles, w.folded, w.digests_total, w.folded_total), (3, 6, 1, 6));
}

#[test]
fn a_window_ends_exactly_at_within_and_the_next_notice_opens_a_fresh_one() {
    let r = rule(1, 2);
    let mut w = Window::default();
    assert_eq!(w.decide(r, 10_000), Decision::Send);
    assert_eq!(w.decide(r, 11_999), Decision::Fold { into: None, due_at: 12_000 });
    w.open_digest("DIG-1");
    // At the end instant the old window is over: its digest takes nothing more.
    assert_eq!(w.decide(r, 12_000), Decision::Send);
    assert_eq!((w.started_at, w.ends_at, w.digest.clone()), (12_000, 14_000, None));
    assert_eq!(w.decide(r, 12_001), Decision::Fold { into: None, due_at: 14_000 });
    w.open_digest("DIG-2");
    assert_eq!((w.windows_total, w.digests_total, w.folded_total), (2, 2, 2), "totals survive windows");
}

#[test]
fn a_closed_window_starts_over() {
    let r = rule(1, 60);
    let mut w = Window::default();
    w.decide(r, 0);
    w.decide(r, 1);
    w.open_digest("DIG-1");
    w.close(5);
    assert_eq!(w.decide(r, 5), Decision::Send);
    assert_eq!(w.digest, None);
}

#[test]
fn pages_escalations_customer_messages_and_digests_are_never_folded() {
    assert!(!foldable(EffectKind::Notify, &Purpose::Page, &[]));
    assert!(!foldable(EffectKind::Notify, &Purpose::Escalate, &[]));
    assert!(!foldable(EffectKind::Notify, &Purpose::Digest, &[]));
    assert!(!foldable(EffectKind::Appease, &Purpose::Step("appease".into()), &[]));
    // A notice addressed to people is a page whatever its purpose.
    assert!(!foldable(EffectKind::Notify, &Purpose::Track, &["ana".to_string()]));
    for p in [
        Purpose::Report,
        Purpose::Activate,
        Purpose::Deadline,
        Purpose::Track,
        Purpose::Outcome,
        Purpose::Step("x".into()),
    ] {
        assert!(foldable(EffectKind::Notify, &p, &[]), "{p}");
    }
}

#[test]
fn ids_are_listed_as_compact_ranges() {
    let ids = ["INC-12", "INC-13", "INC-14", "INC-16", "INC-18", "INC-19", "DRL-3", "odd"];
    assert_eq!(compact_ids(ids), "DRL-3, INC-12…INC-14, INC-16, INC-18, INC-19, odd");
    let many: Vec<String> = (0..100).map(|n| format!("INC-{}", n * 2)).collect();
    let s = compact_ids(many.iter().map(String::as_str));
    assert!(s.ends_with("and 60 more"), "{s}");
}

#[test]
fn the_summary_groups_by_severity_and_playbook_and_names_commanders() {
    let mut ms: Vec<Member> = (12..=48)
        .map(|n| {
            member(&format!("INC-{n}"), "service-outage", Severity::Sev2, Some(if n % 2 == 0 { "ana" } else { "ben" }))
        })
        .collect();
    ms.push(member("INC-50", "data-breach", Severity::Sev1, None));
    let mut second = member("INC-50", "data-breach", Severity::Sev1, None);
    second.purpose = Purpose::Step("notify".into());
    ms.push(second);
    let text = summary(&ms);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "1 new incident of data-breach (sev1) in the last 30s: INC-50 (2 notices); notices: report, step:notify",
            "37 new incidents of service-outage (sev2) in the last 30s: INC-12…INC-48; notices: report; commanders: ana, ben",
        ]
    );
    assert_eq!(
        subject("DIG-4", "superiors", &ms, true),
        "[DRILL] [digest] DIG-4: 39 notices to `superiors` in the last 30s"
    );
}

mod engine {
    use super::super::super::tests::{PLAYBOOK, fixture_with};
    use super::*;
    use crate::incident::effects::{Executor, LogExecutor};
    use crate::incident::{TriggerRequest, events::JournalEvent};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// Puts a digest rule on targets of the fixture's generation.
    fn with_digests(f: &super::super::super::tests::Fixture, rules: &[(&str, DigestRule)]) {
        let g = f.engine.generation();
        let mut cfg = (*g.config).clone();
        for (t, r) in rules {
            cfg.targets.get_mut(*t).unwrap().digest = Some(*r);
        }
        f.engine.swap_generation(crate::incident::Generation {
            number: g.number + 1,
            set_hash: g.set_hash.clone(),
            loaded_at: g.loaded_at,
            playbooks: g.playbooks.clone(),
            config: Arc::new(cfg),
            customers: g.customers.clone(),
        });
    }

    fn open(f: &super::super::super::tests::Fixture, n: usize) -> String {
        let mut fields = BTreeMap::new();
        fields.insert("nature".to_string(), "checkout returns 500".to_string());
        let labels =
            BTreeMap::from([("service".to_string(), format!("svc{n}")), ("region".to_string(), "eu".to_string())]);
        let req = TriggerRequest {
            playbook: "outage".into(),
            scope: Some("EU".into()),
            fields,
            labels,
            ..Default::default()
        };
        f.engine.trigger(req).unwrap().incident.id
    }

    fn digests_of(f: &super::super::super::tests::Fixture, id: &str) -> Vec<String> {
        let evs = f.engine.store().events(id, 0).unwrap();
        evs.iter()
            .filter_map(|e| match e.event().unwrap() {
                Event::IncludedInDigest { digest, target, .. } => {
                    assert_eq!(target, "superiors");
                    Some(digest)
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_burst_folds_past_the_threshold_and_the_digest_goes_out_at_the_window_end() {
        let f = fixture_with(PLAYBOOK);
        let r = rule(2, 10);
        with_digests(&f, &[("superiors", r), ("oncall", rule(1, 10))]);
        let ids: Vec<String> = (0..6).map(|n| open(&f, n)).collect();
        // Two report notices to superiors go out alone; the other four (and the
        // activation notices of their incidents, which no longer wait) fold into DIG-1.
        assert!(digests_of(&f, &ids[0]).is_empty() && digests_of(&f, &ids[1]).is_empty());
        for id in &ids[2..] {
            assert_eq!(digests_of(&f, id), ["DIG-1", "DIG-1"], "{id}: report and activation notices");
        }
        let claimed = f.engine.claim_intents(100).unwrap();
        assert!(claimed.iter().all(|c| c.id != "DIG-1"), "the digest waits for the window's end");
        let pages = claimed.iter().filter(|c| c.is_page()).count();
        assert_eq!(pages, 4, "every commander page goes out alone, digest rule or not");
        for c in &claimed {
            f.engine.store().release_intent(&c.id, None).unwrap();
        }
        f.clock.advance(10_000);
        let claimed = f.engine.claim_intents(100).unwrap();
        let d = claimed.iter().find(|c| c.id == "DIG-1").expect("the digest is due at the window's end");
        assert_eq!(d.payload.purpose, Purpose::Digest);
        assert_eq!(d.incident_id, ids[2], "carried by the incident whose notice opened it");
        assert_eq!(d.payload.subject, "[digest] DIG-1: 8 notices to `superiors` in the last 10s");
        assert!(
            d.payload.body.starts_with("4 new incidents of outage (sev2) in the last 10s: INC-"),
            "{}",
            d.payload.body
        );
        assert!(
            d.payload.body.contains("(8 notices); notices: activate, report; commanders: alice"),
            "{}",
            d.payload.body
        );
        let members = || f.engine.store().kv_prefix(&crate::incident::digest::member_prefix("DIG-1")).unwrap().len();
        assert_eq!(members(), 8, "the members are kept until the digest's result is journaled");
        // A transient failure puts it back: the retry still finds its members.
        let outbox = crate::incident::outbox::Outbox::default();
        let failed = crate::incident::effects::EffectOutcome::failed("503", true);
        assert!(matches!(outbox.settle(&f.engine, d, failed), Ok(crate::incident::outbox::Settled::Retrying(_))));
        assert_eq!(members(), 8);
        let out = LogExecutor.execute(&d.id, &d.payload);
        f.engine.record_effect(&d.id, &out).unwrap();
        assert_eq!(members(), 0, "the journaled result ends them");
        let carrier = f.engine.incident(&ids[2]).unwrap();
        assert_eq!(carrier.effects_for(&Purpose::Digest).ok, 1);
        let counters = f.engine.digest_counters().unwrap();
        let s = counters.iter().find(|c| c.target == "superiors").unwrap();
        assert_eq!((s.windows, s.digests, s.folded, s.mode.as_str()), (1, 1, 8, "live"));
        // The next notice after the window opens a fresh one and goes out alone.
        let late = open(&f, 99);
        assert!(digests_of(&f, &late).is_empty());
    }
}
