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
    assert_eq!((w.digests_total, w.folded_total), (2, 2), "totals survive windows");
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
    for p in [Purpose::Report, Purpose::Activate, Purpose::Deadline, Purpose::Track, Purpose::Outcome, Purpose::Step("x".into())] {
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
    let mut ms: Vec<Member> =
        (12..=48).map(|n| member(&format!("INC-{n}"), "service-outage", Severity::Sev2, Some(if n % 2 == 0 { "ana" } else { "ben" }))).collect();
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
    assert_eq!(subject("DIG-4", "superiors", &ms, true), "[DRILL] [digest] DIG-4: 39 notices to `superiors` in the last 30s");
}
