//! Notices: the side effects an incident asks for, recorded as intents
//! before they run. Every intent payload is built in one place.

use super::ctx::Ctx;
use super::effects::{CustomerRef, EffectKind, IncidentSummary, IntentPayload};
use super::events::Event;
use super::status_post::StatusPost;
use crate::config::status_page::STATUS_PLUGIN;
use crate::playbook::types::Purpose;
use crate::store::IntentRow;
use std::collections::BTreeMap;

/// What one intent is to deliver; the incident's part is added when it is recorded.
pub(super) struct Notice {
    kind: EffectKind,
    purpose: Purpose,
    target: String,
    notifier: String,
    composer: Option<String>,
    subject: String,
    body: String,
    recipients: Vec<String>,
    customer: Option<CustomerRef>,
    status: Option<StatusPost>,
}

impl Notice {
    /// A message to a notification target, for `recipients` when it pages people.
    fn notify(
        purpose: Purpose,
        target: &str,
        notifier: &str,
        subject: &str,
        body: &str,
        recipients: Vec<String>,
    ) -> Self {
        Notice {
            kind: EffectKind::Notify,
            purpose,
            target: target.to_string(),
            notifier: notifier.to_string(),
            composer: None,
            subject: subject.to_string(),
            body: body.to_string(),
            recipients,
            customer: None,
            status: None,
        }
    }

    /// A publication to a status page target.
    pub(super) fn status(purpose: Purpose, target: &str, subject: &str, post: StatusPost) -> Self {
        let mut n = Notice::notify(purpose, target, STATUS_PLUGIN, subject, "", Vec::new());
        n.status = Some(post);
        n
    }

    /// A message an appeasement plugin composes for one customer.
    pub(super) fn appease(
        purpose: Purpose,
        target: &str,
        notifier: &str,
        composer: Option<String>,
        subject: &str,
        customer: CustomerRef,
    ) -> Self {
        Notice {
            kind: EffectKind::Appease,
            purpose,
            target: target.to_string(),
            notifier: notifier.to_string(),
            composer,
            subject: subject.to_string(),
            body: String::new(),
            recipients: Vec::new(),
            customer: Some(customer),
            status: None,
        }
    }
}

impl Ctx<'_> {
    /// What plugins may know of the incident.
    fn summary(&self) -> IncidentSummary {
        IncidentSummary {
            id: self.inc.id.clone(),
            title: self.inc.title.clone(),
            playbook_id: self.inc.playbook_id.clone(),
            severity: self.inc.severity,
            category: self.inc.category,
            phase: self.inc.phase,
            summary: self.pb.summary.clone(),
        }
    }

    /// The subject line of every notice: drill marker, severity, id, title.
    pub(super) fn subject(&self, what: &str) -> String {
        let drill = if self.inc.is_drill() { "[DRILL] " } else { "" };
        format!("{drill}[{}] {} {}: {what}", self.inc.severity, self.inc.id, self.inc.title)
    }

    /// Records the intent for a notice (not to run before `not_before`) and journals it.
    /// A notice its target's storm-control rule folds is journaled as
    /// included in the digest instead.
    pub(super) fn record_notice(&mut self, n: Notice, not_before: i64) -> anyhow::Result<()> {
        // A status post is never folded: each one is the page's public record.
        if n.status.is_none()
            && let Some(digest) = self.fold(n.kind, &n.purpose, &n.target, &n.recipients)?
        {
            return self.emit(Event::IncludedInDigest { digest, purpose: n.purpose, target: n.target });
        }
        let seq: u32 = self.inc.effects.values().map(|c| c.recorded).sum::<u32>() + 1;
        let invocation_id = format!("{}.{seq}", self.inc.id);
        let recorded = Event::IntentRecorded {
            invocation_id: invocation_id.clone(),
            purpose: n.purpose.clone(),
            target: n.target.clone(),
            channel: n.customer.as_ref().map(|c| c.channel.clone()),
            customer: n.customer.as_ref().map(|c| c.id.clone()),
        };
        let payload = IntentPayload {
            kind: n.kind,
            purpose: n.purpose,
            target: n.target,
            notifier: n.notifier,
            composer: n.composer,
            mode: self.inc.mode,
            incident: self.summary(),
            subject: n.subject,
            body: n.body,
            recipients: n.recipients,
            customer: n.customer,
            status: n.status,
        };
        self.tx.add_intent(&IntentRow {
            invocation_id,
            incident_id: self.inc.id.clone(),
            created_at: self.now,
            not_before,
            payload: serde_json::to_value(&payload)?,
            attempts: 0,
            result: None,
            reclaimed_from: None,
        })?;
        self.emit(recorded)
    }

    /// Records a notification to each target.
    pub(super) fn notify(
        &mut self,
        purpose: Purpose,
        targets: &[String],
        subject: &str,
        body: &str,
    ) -> anyhow::Result<()> {
        for t in targets {
            let Some(target) = self.generation_.config.targets.get(t) else {
                self.emit(Event::Note {
                    by: "crisis".into(),
                    note: format!("target `{t}` is no longer configured; {purpose} notice not sent"),
                })?;
                continue;
            };
            // Internal text never reaches a status page; steps publish there through `[act.status]`.
            if target.plugin == STATUS_PLUGIN {
                continue;
            }
            let notice = Notice::notify(purpose.clone(), t, &target.plugin, subject, body, Vec::new());
            self.record_notice(notice, self.now)?;
        }
        Ok(())
    }

    /// Pages people through their roster target (default: the `oncall` target).
    pub(super) fn page(
        &mut self,
        purpose: Purpose,
        people: &[String],
        subject: &str,
        body: &str,
    ) -> anyhow::Result<()> {
        let mut by_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in people {
            let target = self
                .generation_
                .config
                .roster
                .people
                .get(p)
                .and_then(|x| x.target.clone())
                .unwrap_or_else(|| "oncall".into());
            by_target.entry(target).or_default().push(p.clone());
        }
        for (target, recipients) in by_target {
            let Some(t) = self.generation_.config.targets.get(&target).filter(|t| t.plugin != STATUS_PLUGIN) else {
                self.emit(Event::Note {
                    by: "crisis".into(),
                    note: format!("cannot page {}: no `{target}` target is configured", recipients.join(", ")),
                })?;
                continue;
            };
            let notice = Notice::notify(purpose.clone(), &target, &t.plugin, subject, body, recipients);
            self.record_notice(notice, self.now)?;
        }
        Ok(())
    }
}
