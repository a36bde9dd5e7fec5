//! Complaint surges: a playbook's `[trigger] surge` opens its incident when
//! `count` complaints of one category and one group (equal `by` values)
//! arrive within `within`; later complaints of the group attach to the open
//! incident, and its close settles every attached complaint.
//!
//! Counts are derived from the complaint rows inside the complaint's own
//! transaction, so they survive a crash with the complaints themselves and
//! need no counter of their own. A complaint counts once: it belongs to at
//! most one incident, and only complaints not yet attached count towards a
//! new surge. The incident is opened through the normal trigger path with a
//! dedup key built from the group, so a second crossing of the same group
//! (another daemon on the same database, whose writes are serialized with
//! this one's) attaches instead of opening a second incident.

use super::complaint::{Complaint, ComplaintEvent, ComplaintState};
use super::complaint_engine::{Change, FOLLOW_UP_TIMER, TIMER_FAMILY};
use super::ctx::Ctx;
use super::engine::{Engine, MAX_DEDUP_KEY};
use super::error::EngineError;
use super::events::Event;
use super::generation::Generation;
use super::state::Incident;
use super::trigger_types::{PreparedTrigger, TriggerDone, TriggerRequest};
use crate::playbook::spec::{Playbook, SurgeKey, SurgeSpec};
use crate::playbook::types::{Mode, Purpose};
use crate::store::{ComplaintQuery, Tx};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Who the surge's journal entries name.
const BY: &str = "crisis";
/// The `source` of incidents and attachments a surge makes.
const SOURCE: &str = "complaint-surge";

/// The values a complaint has for a surge's `by` keys, in `by` order; `None`
/// if it lacks a label the surge groups by (it then does not count).
pub(crate) fn group_of(spec: &SurgeSpec, c: &Complaint) -> Option<Vec<(SurgeKey, String)>> {
    spec.by
        .iter()
        .map(|k| {
            let v = match k {
                SurgeKey::Label(l) => c.labels.get(l).filter(|v| !v.trim().is_empty())?.clone(),
                SurgeKey::Channel => c.channel.to_string(),
                SurgeKey::Category => c.category.to_string(),
            };
            Some((k.clone(), v))
        })
        .collect()
}

/// The dedup key of one surge group (`surge:labels.product=X`), hashed when it would be too long.
pub(crate) fn dedup_key(group: &[(SurgeKey, String)]) -> String {
    let parts: Vec<String> = group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let key = format!("surge:{}", parts.join(","));
    if key.len() <= MAX_DEDUP_KEY { key } else { format!("surge:sha256:{}", hex::encode(Sha256::digest(key))) }
}

/// Whether `c` counts towards a new surge of `spec` for `group`: same mode
/// and category, same group, received in the window, attached to nothing yet.
pub(crate) fn counts(spec: &SurgeSpec, group: &[(SurgeKey, String)], mode: Mode, since: i64, c: &Complaint) -> bool {
    c.mode == mode
        && c.category == spec.category
        && c.received_at >= since
        && c.incident.is_none()
        && group_of(spec, c).as_deref() == Some(group)
}

/// The ids of the earlier complaints that, with `new`, cross the surge's
/// threshold at `now`; `None` while the window holds fewer than `count`.
pub(crate) fn crossing(spec: &SurgeSpec, new: &Complaint, earlier: &[Complaint], now: i64) -> Option<Vec<String>> {
    let group = group_of(spec, new)?;
    if new.category != spec.category {
        return None;
    }
    let since = now - spec.within.as_millis() as i64;
    let ids: Vec<String> = earlier
        .iter()
        .filter(|c| c.id != new.id && counts(spec, &group, new.mode, since, c))
        .map(|c| c.id.clone())
        .collect();
    (ids.len() + 1 >= spec.count as usize).then_some(ids)
}

/// What a complaint's surge check did inside its transaction, for after the commit.
pub(super) struct SurgeHit {
    /// The incident the complaint was attached to.
    pub(super) incident: String,
    /// The playbook whose surge it is.
    pub(super) playbook: String,
    /// The trigger that opened the incident, when this complaint crossed the threshold.
    opened: Option<(Box<PreparedTrigger>, TriggerDone)>,
    /// The incident after the attachments, and what they journaled on it.
    attached: (Incident, Vec<Event>),
    /// The earlier complaints attached with it, and their new events.
    others: Vec<(Complaint, Vec<ComplaintEvent>)>,
}

impl Engine {
    /// Checks the surge of every playbook (by id) for a complaint being
    /// recorded in `tx`: attaches it to its group's open incident, or opens
    /// the incident when it crosses the threshold and attaches the complaints
    /// that formed the surge too. The first playbook that takes it wins.
    pub(super) fn surge_in(
        &self,
        tx: &mut dyn Tx,
        g: &Generation,
        c: &Complaint,
    ) -> Result<Option<SurgeHit>, EngineError> {
        let now = self.now();
        for pb in g.playbooks.values() {
            let Some(spec) = pb.trigger.as_ref().and_then(|t| t.surge.as_ref()) else { continue };
            if spec.category != c.category {
                continue;
            }
            let Some(group) = group_of(spec, c) else { continue };
            let key = dedup_key(&group);
            if let Some(open) = tx.open_by_dedup(&pb.id, &key)? {
                let attached = self.attach_in(tx, g, &open, std::slice::from_ref(&c.id))?;
                return Ok(Some(SurgeHit {
                    incident: open,
                    playbook: pb.id.clone(),
                    opened: None,
                    attached,
                    others: Vec::new(),
                }));
            }
            let since = now - spec.within.as_millis() as i64;
            let rows = tx.complaints(&window(spec, since))?;
            let earlier: Vec<Complaint> = rows.iter().map(Complaint::from_row).collect::<anyhow::Result<_>>()?;
            let Some(ids) = crossing(spec, c, &earlier, now) else { continue };
            let prepared = self.prepare_trigger(g, surge_request(pb, spec, &group, &key, ids.len() + 1), None)?;
            let done = self.trigger_in(tx, g, &prepared)?;
            let incident = done.incident.id.clone();
            let all: Vec<String> = ids.iter().chain(std::iter::once(&c.id)).cloned().collect();
            let attached = self.attach_in(tx, g, &incident, &all)?;
            let mut others = Vec::with_capacity(ids.len());
            for other in earlier.into_iter().filter(|e| ids.contains(&e.id)) {
                let mut ch = Change { tx: &mut *tx, c: other, now, emitted: Vec::new() };
                ch.emit(ComplaintEvent::AttachedTo { incident: incident.clone(), playbook: pb.id.clone() })?;
                others.push(ch.save()?);
            }
            return Ok(Some(SurgeHit {
                incident,
                playbook: pb.id.clone(),
                opened: Some((Box::new(prepared), done)),
                attached,
                others,
            }));
        }
        Ok(None)
    }

    /// Journals on incident `id` that each complaint of `ids` joined it.
    fn attach_in(
        &self,
        tx: &mut dyn Tx,
        g: &Generation,
        id: &str,
        ids: &[String],
    ) -> Result<(Incident, Vec<Event>), EngineError> {
        self.mutate_in(tx, g, id, false, &mut |ctx| {
            for c in ids {
                ctx.emit(Event::Attached {
                    fields: BTreeMap::new(),
                    labels: BTreeMap::new(),
                    source: SOURCE.into(),
                    complaint: Some(c.clone()),
                })?;
            }
            Ok(())
        })
    }

    /// After the commit: tells the observers what a surge check journaled.
    pub(super) fn surged(&self, hit: SurgeHit) {
        if let Some((p, done)) = hit.opened {
            self.triggered(&p, done);
        }
        self.observe(&hit.attached.1, &hit.attached.0);
        self.observe_complaints(&hit.others);
    }

    /// The complaints a surge attached to incident `inc`.
    pub fn attached_complaints(&self, inc: &Incident) -> Result<Vec<Complaint>, EngineError> {
        let pb = self.pinned_playbook(&inc.playbook_hash)?;
        let Some(spec) = pb.trigger.as_ref().and_then(|t| t.surge.as_ref()) else { return Ok(Vec::new()) };
        let since = inc.opened_at - spec.within.as_millis() as i64;
        let rows = self.store().complaints(&window(spec, since))?;
        let all: Vec<Complaint> = rows.iter().map(Complaint::from_row).collect::<anyhow::Result<_>>()?;
        Ok(all.into_iter().filter(|c| c.incident.as_deref() == Some(inc.id.as_str())).collect())
    }
}

/// The complaints a surge counts and settles: its category's, received since `since`.
fn window(spec: &SurgeSpec, since: i64) -> ComplaintQuery {
    ComplaintQuery { since: Some(since), category: Some(spec.category.to_string()), ..Default::default() }
}

/// The trigger a surge opens its playbook's incident with: the group's labels,
/// and every report field the playbook may require, said from the counts.
fn surge_request(pb: &Playbook, spec: &SurgeSpec, group: &[(SurgeKey, String)], key: &str, n: usize) -> TriggerRequest {
    let labels: BTreeMap<String, String> = group
        .iter()
        .filter_map(|(k, v)| match k {
            SurgeKey::Label(l) => Some((l.clone(), v.clone())),
            SurgeKey::Channel | SurgeKey::Category => None,
        })
        .collect();
    let what: Vec<String> = group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let what = if what.is_empty() { String::new() } else { format!(" ({})", what.join(", ")) };
    let within = humantime::format_duration(spec.within);
    let fields = BTreeMap::from([
        ("nature".to_string(), format!("{n} {} complaints within {within}{what}", spec.category)),
        ("scope".to_string(), format!("customers complaining about {}{what}", spec.category)),
        ("consequences".to_string(), format!("more {} complaints while the cause stays unaddressed", spec.category)),
    ]);
    TriggerRequest {
        playbook: pb.id.clone(),
        title: None,
        severity: None,
        scope: None,
        fields,
        labels,
        dedup_key: Some(key.to_string()),
        source: SOURCE.into(),
        by: BY.into(),
    }
}

/// The message telling a complainant that the problem behind their complaint was dealt with.
fn outcome_template(locale: &str, id: &str) -> (String, String) {
    if locale.to_ascii_lowercase().starts_with("zh") {
        (
            format!("您的投诉 {id} 已处理"),
            format!("您好，您的投诉（编号 {id}）所涉及的问题已经处理完毕。如仍有问题，欢迎回复告诉我们。"),
        )
    } else {
        (
            format!("Your complaint {id} is resolved"),
            format!(
                "Hello, the problem behind your complaint {id} has been dealt with. If anything is still wrong, reply to let us know."
            ),
        )
    }
}

/// Settles the complaints attached to an incident that just closed, in its
/// transaction: each open one is resolved with the incident's outcome as its
/// note, its customer's outcome message is recorded as an intent, and its
/// follow-up timer is set. A complaint already resolved by hand is left as it is.
pub(super) fn settle_attached(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let Some(spec) = ctx.pb.trigger.as_ref().and_then(|t| t.surge.as_ref()) else { return Ok(()) };
    let since = ctx.inc.opened_at - spec.within.as_millis() as i64;
    let note = match &ctx.inc.outcome {
        Some(o) => format!("incident {} closed. Cause: {} Aftermath: {}", ctx.inc.id, o.cause, o.aftermath),
        None => format!("incident {} closed", ctx.inc.id),
    };
    let cfg = ctx.generation_.config.clone();
    let rows = ctx.tx.complaints(&window(spec, since))?;
    for row in rows {
        let c = Complaint::from_row(&row)?;
        if c.incident.as_deref() != Some(ctx.inc.id.as_str()) || !c.state.may_become(ComplaintState::Resolved) {
            continue;
        }
        let (id, locale) = (c.id.clone(), c.locale.clone());
        let mut ch = Change { tx: &mut *ctx.tx, c, now: ctx.now, emitted: Vec::new() };
        ch.emit(ComplaintEvent::ComplaintResolved { note: note.clone(), by: BY.into() })?;
        let invocation_id =
            ch.message_customer(&cfg, Purpose::ComplaintOutcome, "outcome", "", outcome_template(&locale, &id))?;
        ch.emit(ComplaintEvent::OutcomeMessageRecorded { incident: ctx.inc.id.clone(), invocation_id })?;
        let due = ctx.now + cfg.complaints.follow_up.as_millis() as i64;
        ch.tx.add_timer(&id, due, FOLLOW_UP_TIMER, TIMER_FAMILY, &serde_json::json!({}))?;
        ch.save()?;
    }
    Ok(())
}

/// What the outcome report says about the complaints a surge attached.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct AttachedSummary {
    /// How many complaints were attached.
    pub total: usize,
    /// Per category name.
    pub by_category: BTreeMap<String, usize>,
    /// Per channel name.
    pub by_channel: BTreeMap<String, usize>,
    /// Median time to the delivered first response (ms), if any was delivered.
    pub first_response_p50_ms: Option<i64>,
    /// 95th percentile of it (ms).
    pub first_response_p95_ms: Option<i64>,
    /// First responses that missed their deadline.
    pub first_response_missed: usize,
}

/// Counts attached complaints for the outcome report (never their text or customer).
pub(crate) fn attached_summary(complaints: &[Complaint]) -> AttachedSummary {
    let mut s = AttachedSummary { total: complaints.len(), ..Default::default() };
    let mut times = Vec::new();
    for c in complaints {
        *s.by_category.entry(c.category.to_string()).or_default() += 1;
        *s.by_channel.entry(c.channel.to_string()).or_default() += 1;
        times.extend(c.first_response_ms());
        s.first_response_missed += usize::from(c.first_response_missed);
    }
    times.sort_unstable();
    let rank = |p: usize| (!times.is_empty()).then(|| times[(p * times.len()).div_ceil(100).max(1) - 1]);
    s.first_response_p50_ms = rank(50);
    s.first_response_p95_ms = rank(95);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::types::{Category, Channel};
    use std::time::Duration;

    const MIN: i64 = 60_000;

    fn spec(count: u32) -> SurgeSpec {
        SurgeSpec {
            category: Category::ProductQuality,
            count,
            within: Duration::from_secs(600),
            by: vec![SurgeKey::Label("product".into())],
        }
    }

    fn complaint(n: usize, product: Option<&str>, at: i64) -> Complaint {
        let labels = product.map(|p| BTreeMap::from([("product".to_string(), p.to_string())])).unwrap_or_default();
        let ev = ComplaintEvent::ComplaintReceived {
            customer: format!("c{n}"),
            channel: Channel::Sms,
            locale: "en".into(),
            tier: "standard".into(),
            text: "leaks".into(),
            labels,
            mode: Mode::Live,
            source: "cli".into(),
            intake_key: None,
        };
        let mut c = Complaint::received(&format!("CMP-{n}"), &ev, at, 1).unwrap();
        c.category = Category::ProductQuality;
        c
    }

    #[test]
    fn the_threshold_counts_the_new_complaint_and_the_window_before_it() {
        let earlier: Vec<Complaint> = (1..20).map(|n| complaint(n, Some("kettle"), n as i64 * 1000)).collect();
        let now = 30 * 1000;
        let ids = crossing(&spec(20), &complaint(20, Some("kettle"), now), &earlier, now).unwrap();
        assert_eq!(ids.len(), 19);
        assert!(crossing(&spec(20), &complaint(20, Some("kettle"), now), &earlier[1..], now).is_none());
    }

    #[test]
    fn complaints_outside_the_window_of_another_group_or_attached_do_not_count() {
        let now = 20 * MIN;
        let mut earlier = vec![
            complaint(1, Some("kettle"), now - 11 * MIN),
            complaint(2, Some("toaster"), now - MIN),
            complaint(3, None, now - MIN),
            complaint(4, Some("kettle"), now - MIN),
            complaint(5, Some("kettle"), now - 10 * MIN),
        ];
        earlier[4].incident = Some("INC-1".into());
        let mut drill = complaint(6, Some("kettle"), now - MIN);
        drill.mode = Mode::Drill;
        let mut price = complaint(7, Some("kettle"), now - MIN);
        price.category = Category::Price;
        earlier.extend([drill, price]);
        let ids = crossing(&spec(2), &complaint(8, Some("kettle"), now), &earlier, now).unwrap();
        assert_eq!(ids, vec!["CMP-4".to_string()]);
        assert!(crossing(&spec(3), &complaint(8, Some("kettle"), now), &earlier, now).is_none());
    }

    #[test]
    fn a_complaint_without_the_grouping_label_never_surges() {
        let earlier: Vec<Complaint> = (1..5).map(|n| complaint(n, None, 0)).collect();
        assert!(crossing(&spec(1), &complaint(9, None, 0), &earlier, 0).is_none());
        let mut all = spec(2);
        all.by.clear();
        assert_eq!(crossing(&all, &complaint(9, None, 0), &earlier, 0).map(|v| v.len()), Some(4));
    }

    #[test]
    fn dedup_keys_name_the_group_and_stay_short() {
        let c = complaint(1, Some("kettle"), 0);
        let mut s = spec(1);
        s.by.push(SurgeKey::Channel);
        assert_eq!(dedup_key(&group_of(&s, &c).unwrap()), "surge:labels.product=kettle,channel=sms");
        let long = complaint(2, Some(&"x".repeat(400)), 0);
        let k = dedup_key(&group_of(&s, &long).unwrap());
        assert!(k.starts_with("surge:sha256:") && k.len() <= MAX_DEDUP_KEY, "{k}");
    }

    #[test]
    fn the_summary_counts_and_takes_nearest_rank_percentiles() {
        let cs: Vec<Complaint> = (1..=20)
            .map(|n| {
                let mut c = complaint(n, Some("kettle"), 0);
                c.first_response_at = Some(n as i64 * 1000);
                c.first_response_missed = n > 18;
                c
            })
            .collect();
        let s = attached_summary(&cs);
        assert_eq!(s.total, 20);
        assert_eq!(s.by_channel.get("sms"), Some(&20));
        assert_eq!(s.by_category.get("product-quality"), Some(&20));
        assert_eq!((s.first_response_p50_ms, s.first_response_p95_ms), (Some(10_000), Some(19_000)));
        assert_eq!(s.first_response_missed, 2);
        assert_eq!(attached_summary(&[]).first_response_p50_ms, None);
    }
}
