//! The engine's complaint operations: every change is journaled on the
//! complaint's stream in the same hash chain as incidents, and its projection
//! row, intents and timers are written in the same transaction.
//!
//! The first response's intent and its deadline timer are written with the
//! complaint itself, so a complaint acknowledged to its sender always gets
//! its answer, even across a crash. A timer fires once: the first-response
//! deadline journals a miss (and tells `[complaints] owner_rota`) unless the
//! answer was delivered; the follow-up timer records the follow-up message.

use super::complaint::{
    COMPLAINT_PREFIX, ClassifiedBy, Complaint, ComplaintEvent, ComplaintObserver, ComplaintState, Composer,
    EscalationReason,
};
use super::effects::{CustomerRef, EffectKind, EffectOutcome, IncidentSummary, IntentPayload};
use super::engine::Engine;
use super::error::EngineError;
use crate::config::complaints::ComplaintsConfig;
use crate::config::{Config, Target};
use crate::playbook::types::{Category, Channel, Phase, Purpose, Severity};
use crate::store::{ComplaintQuery, ComplaintRow, IntentRow, TimerRow, Tx};
use std::collections::BTreeMap;

/// The first-response deadline timer's key (one per complaint).
pub(crate) const FIRST_RESPONSE_TIMER: &str = "complaint:first-response";
/// The follow-up timer's key (one per complaint).
pub(crate) const FOLLOW_UP_TIMER: &str = "complaint:follow-up";
/// The family both complaint timers are cancelled by.
pub(super) const TIMER_FAMILY: &str = "complaint";

/// A complaint the daemon checked, classified and composed an answer for,
/// ready to be journaled.
#[derive(Debug, Clone)]
pub struct NewComplaint {
    /// The id [`Engine::reserve_complaint_id`] gave it.
    pub id: String,
    /// The customer's id in the customer source.
    pub customer: String,
    /// The customer's segment (for the message composer).
    pub segment: String,
    /// The customer's tier.
    pub tier: String,
    /// The customer's locale.
    pub locale: String,
    /// The channel it came in on; the answer goes out on it.
    pub channel: Channel,
    /// The text, contact details already masked.
    pub text: String,
    /// Labels given at intake.
    pub labels: BTreeMap<String, String>,
    /// Who reported it.
    pub source: String,
    /// The classification.
    pub category: Category,
    /// How sure the classification is (0 to 1).
    pub confidence: f64,
    /// Which pipeline step classified it.
    pub classified_by: ClassifiedBy,
    /// What composed the first response.
    pub composer: Composer,
    /// The first response's subject.
    pub subject: String,
    /// The first response's text.
    pub body: String,
    /// The digest of the sender's idempotency key, when it sent one.
    pub intake_key: Option<String>,
}

/// What an intake did. Why: a sender that retries after losing the answer
/// (the daemon was killed after the commit) must get the complaint its first
/// attempt recorded, and the customer must get one first response, not two.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The complaint, new or found.
    pub complaint: Complaint,
    /// It was recorded earlier under the same idempotency key; nothing new was journaled.
    pub replayed: bool,
}

/// The complaint recorded under the same idempotency key, if `found` is one;
/// a conflict when it is not the complaint being sent now (another customer,
/// channel or text), so a reused key never hides a different complaint.
fn same_intake(
    found: Option<ComplaintRow>,
    customer: &str,
    channel: Channel,
    text: &str,
) -> Result<Option<Complaint>, EngineError> {
    let Some(row) = found else { return Ok(None) };
    let c = Complaint::from_row(&row)?;
    if c.customer != customer || c.channel != channel || c.text != text {
        return Err(EngineError::conflict(format!(
            "the idempotency key was already used for complaint {} with another customer, channel or text: \
             send a new key for a new complaint",
            c.id
        )));
    }
    Ok(Some(c))
}

/// The plain first response, used when no appeasement plugin composes one.
pub fn first_response_template(locale: &str, id: &str, category: Category) -> (String, String) {
    if locale.to_ascii_lowercase().starts_with("zh") {
        (
            format!("我们已收到您的投诉 {id}"),
            format!("您好，我们已收到您的投诉（编号 {id}，类别：{category}）。专人正在处理，我们会尽快与您联系。"),
        )
    } else {
        (
            format!("We received your complaint {id}"),
            format!(
                "Hello, we received your complaint (reference {id}, {category}). A member of our team is on it and will get back to you shortly."
            ),
        )
    }
}

/// The follow-up asking whether the problem is solved.
fn follow_up_template(locale: &str, id: &str) -> (String, String) {
    if locale.to_ascii_lowercase().starts_with("zh") {
        (format!("关于您的投诉 {id}"), format!("您好，关于您的投诉 {id}，问题是否已经解决？欢迎回复告诉我们。"))
    } else {
        (
            format!("About your complaint {id}"),
            format!("Hello, about your complaint {id}: is the problem solved? Reply to let us know."),
        )
    }
}

/// One complaint being changed inside a transaction.
pub(super) struct Change<'a> {
    pub(super) tx: &'a mut dyn Tx,
    pub(super) c: Complaint,
    pub(super) now: i64,
    pub(super) emitted: Vec<ComplaintEvent>,
}

impl Change<'_> {
    pub(super) fn emit(&mut self, ev: ComplaintEvent) -> anyhow::Result<()> {
        let rec = self.tx.append(&self.c.id, self.now, ev.kind(), &serde_json::to_value(&ev)?)?;
        self.c.apply(&ev, rec.at, rec.seq);
        self.emitted.push(ev);
        Ok(())
    }

    pub(super) fn save(self) -> anyhow::Result<(Complaint, Vec<ComplaintEvent>)> {
        self.tx.put_complaint(&self.c.row()?)?;
        Ok((self.c, self.emitted))
    }

    fn summary(&self) -> IncidentSummary {
        IncidentSummary {
            id: self.c.id.clone(),
            title: format!("Complaint {} ({})", self.c.id, self.c.category),
            playbook_id: "complaints".into(),
            severity: Severity::Sev4,
            category: self.c.category,
            phase: Phase::Report,
            summary: format!("{} complaint on {} from customer {}", self.c.category, self.c.channel, self.c.customer),
        }
    }

    fn intent(&mut self, invocation_id: &str, payload: &IntentPayload) -> anyhow::Result<()> {
        self.tx.add_intent(&IntentRow {
            invocation_id: invocation_id.to_string(),
            incident_id: self.c.id.clone(),
            created_at: self.now,
            not_before: self.now,
            payload: serde_json::to_value(payload)?,
            attempts: 0,
            result: None,
            reclaimed_from: None,
        })
    }

    /// Records a message to the customer through the complaints target.
    pub(super) fn message_customer(
        &mut self,
        cfg: &Config,
        purpose: Purpose,
        key: &str,
        segment: &str,
        msg: (String, String),
    ) -> anyhow::Result<String> {
        let (target, notifier) = customer_target(cfg);
        let payload = IntentPayload {
            kind: EffectKind::Appease,
            purpose,
            target,
            notifier,
            composer: None,
            mode: self.c.mode,
            incident: self.summary(),
            subject: msg.0,
            body: msg.1,
            recipients: Vec::new(),
            customer: Some(CustomerRef {
                id: self.c.customer.clone(),
                segment: segment.to_string(),
                tier: self.c.tier.clone(),
                locale: self.c.locale.clone(),
                channel: self.c.channel.to_string(),
            }),
            status: None,
        };
        let id = format!("{}.{key}", self.c.id);
        self.intent(&id, &payload)?;
        Ok(id)
    }

    /// Tells `who` (a rota's on-call person through their target, or a
    /// target) about this complaint; returns whom, or `None` if nobody can be reached.
    fn notice(
        &mut self,
        cfg: &Config,
        who: Option<&str>,
        key: &str,
        subject: String,
        body: String,
    ) -> anyhow::Result<Option<String>> {
        let Some(who) = who else { return Ok(None) };
        let (target, recipients) = match cfg.roster.rotas.get(who) {
            Some(rota) => {
                let at = chrono::DateTime::from_timestamp_millis(self.now).unwrap_or_default();
                let Some(person) = rota.on_call(at) else { return Ok(None) };
                let target =
                    cfg.roster.people.get(person).and_then(|p| p.target.clone()).unwrap_or_else(|| "oncall".into());
                (target, vec![person.to_string()])
            }
            None => (who.to_string(), Vec::new()),
        };
        let Some(t) = cfg.targets.get(&target) else { return Ok(None) };
        let payload = IntentPayload {
            kind: EffectKind::Notify,
            purpose: Purpose::ComplaintNotice,
            target: target.clone(),
            notifier: t.plugin.clone(),
            composer: None,
            mode: self.c.mode,
            incident: self.summary(),
            subject,
            body,
            recipients,
            customer: None,
            status: None,
        };
        self.intent(&format!("{}.{key}", self.c.id), &payload)?;
        Ok(Some(who.to_string()))
    }

    /// Escalates to the superior rota (journaled even when nobody can be reached).
    fn escalate(&mut self, cfg: &Config, reason: EscalationReason, by: &str) -> anyhow::Result<()> {
        let cc = &cfg.complaints;
        let to = cc.superior.clone().unwrap_or_else(|| "nobody".into());
        let n = self.c.last_seq;
        let subject = format!("Complaint {} escalated ({})", self.c.id, reason_text(reason));
        let body = format!(
            "Complaint {} from customer {} ({} tier, {}, {}): {}",
            self.c.id, self.c.customer, self.c.tier, self.c.category, self.c.channel, self.c.text
        );
        self.notice(cfg, cc.superior.as_deref(), &format!("escalate.{n}"), subject, body)?;
        self.emit(ComplaintEvent::ComplaintEscalated { to, reason, by: by.to_string() })
    }
}

fn reason_text(r: EscalationReason) -> &'static str {
    match r {
        EscalationReason::Tier => "customer tier",
        EscalationReason::Repeated => "repeated complaints",
        EscalationReason::Category => "category",
        EscalationReason::Manual => "by hand",
    }
}

/// The target customer messages go through and its notifier (`log` when none is configured).
fn customer_target(cfg: &Config) -> (String, String) {
    let t: Option<(&String, &Target)> = cfg.complaints.target.as_ref().and_then(|n| cfg.targets.get_key_value(n));
    match t {
        Some((name, t)) => (name.clone(), t.plugin.clone()),
        None => ("log".into(), "log".into()),
    }
}

/// Why a new complaint is escalated at once, if it is.
fn auto_escalation(cc: &ComplaintsConfig, c: &Complaint, earlier: usize) -> Option<EscalationReason> {
    if cc.escalate_tiers.iter().any(|t| t.eq_ignore_ascii_case(&c.tier)) {
        Some(EscalationReason::Tier)
    } else if cc.escalate_categories.contains(&c.category) {
        Some(EscalationReason::Category)
    } else if cc.repeat_count > 0 && earlier + 1 >= cc.repeat_count as usize {
        Some(EscalationReason::Repeated)
    } else {
        None
    }
}

fn not_found(id: &str, tx: &mut dyn Tx) -> Result<EngineError, EngineError> {
    let ids: Vec<String> = tx.complaints(&ComplaintQuery::default())?.into_iter().map(|r| r.id).collect();
    let nearby = crate::diag::nearby(id, ids.iter().map(String::as_str));
    Ok(EngineError::NotFound { what: "complaint", id: id.to_string(), nearby })
}

impl Engine {
    /// Sets the function told about every complaint change after it committed.
    pub(crate) fn set_complaint_observer(&self, f: ComplaintObserver) {
        *self.complaint_observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn observe_complaint(&self, c: &Complaint, events: &[ComplaintEvent]) {
        let obs = self.complaint_observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(f) = obs {
            for ev in events {
                f(ev, c);
            }
        }
    }

    /// Runs `f` on complaint `id` in one transaction and saves it.
    fn change_complaint(
        &self,
        id: &str,
        mut f: impl FnMut(&mut Change<'_>, &Config) -> Result<(), EngineError>,
    ) -> Result<Complaint, EngineError> {
        let g = self.generation();
        let now = self.now();
        let (c, evs) = self.write(|tx| {
            let Some(row) = tx.complaints(&ComplaintQuery { id: Some(id.to_string()), ..Default::default() })?.pop()
            else {
                return Err(not_found(id, tx)?);
            };
            let c = Complaint::from_row(&row)?;
            let mut ch = Change { tx, c, now, emitted: Vec::new() };
            f(&mut ch, &g.config)?;
            Ok::<_, EngineError>(ch.save()?)
        })?;
        self.observe_complaint(&c, &evs);
        Ok(c)
    }

    /// Takes the next complaint id (`CMP-<n>`), so the first response can be
    /// composed for it before the complaint is journaled.
    pub fn reserve_complaint_id(&self) -> Result<String, EngineError> {
        self.write(|tx| {
            Ok::<_, EngineError>(format!("{COMPLAINT_PREFIX}-{}", tx.next_incident_number(COMPLAINT_PREFIX)?))
        })
    }

    /// The complaint an earlier intake recorded under idempotency key digest
    /// `key`, if any; a conflict when it differs from the one sent now.
    pub fn complaint_for_key(
        &self,
        key: &str,
        customer: &str,
        channel: Channel,
        text: &str,
    ) -> Result<Option<Complaint>, EngineError> {
        let q = ComplaintQuery { intake_key: Some(key.to_string()), ..Default::default() };
        same_intake(self.store().complaints(&q)?.pop(), customer, channel, text)
    }

    /// Whether this engine's complaints are live or drill ones.
    pub fn mode(&self) -> crate::playbook::types::Mode {
        self.mode
    }

    /// Journals a new complaint with its classification, records its first
    /// response (due within `[complaints] first_response`) and its deadline
    /// timer, escalates it at once when a `[complaints]` rule says so, and
    /// checks the playbooks' complaint surges (which may open or join an incident).
    /// A complaint already recorded under the same idempotency key is returned
    /// as it is, checked inside the transaction so two racing retries record one.
    pub fn record_complaint(&self, n: NewComplaint) -> Result<Recorded, EngineError> {
        let g = self.generation();
        let cc = &g.config.complaints;
        let now = self.now();
        let mode = self.mode;
        let recorded = self.write(|tx| {
            if let Some(k) = &n.intake_key {
                let q = ComplaintQuery { intake_key: Some(k.clone()), ..Default::default() };
                if let Some(c) = same_intake(tx.complaints(&q)?.pop(), &n.customer, n.channel, &n.text)? {
                    return Ok(Err(c));
                }
            }
            let id = n.id.clone();
            let since = now - cc.repeat_within.as_millis() as i64;
            let earlier = tx
                .complaints(&ComplaintQuery {
                    customer: Some(n.customer.clone()),
                    since: Some(since),
                    ..Default::default()
                })?
                .len();
            let received = ComplaintEvent::ComplaintReceived {
                customer: n.customer.clone(),
                channel: n.channel,
                locale: n.locale.clone(),
                tier: n.tier.clone(),
                text: n.text.clone(),
                labels: n.labels.clone(),
                mode,
                source: n.source.clone(),
                intake_key: n.intake_key.clone(),
            };
            let rec =
                tx.append(&id, now, received.kind(), &serde_json::to_value(&received).map_err(anyhow::Error::from)?)?;
            let c =
                Complaint::received(&id, &received, rec.at, rec.seq).ok_or_else(|| anyhow::anyhow!("not a receipt"))?;
            let mut ch = Change { tx, c, now, emitted: vec![received] };
            ch.emit(ComplaintEvent::ComplaintClassified {
                category: n.category,
                confidence: n.confidence,
                by: n.classified_by.clone(),
            })?;
            let due_at = now + cc.first_response.as_millis() as i64;
            let invocation_id = ch.message_customer(
                &g.config,
                Purpose::FirstResponse,
                "first-response",
                &n.segment,
                (n.subject.clone(), n.body.clone()),
            )?;
            ch.tx.add_timer(&id, due_at, FIRST_RESPONSE_TIMER, TIMER_FAMILY, &serde_json::json!({}))?;
            ch.emit(ComplaintEvent::FirstResponseRecorded { invocation_id, composer: n.composer.clone(), due_at })?;
            if let Some(reason) = auto_escalation(cc, &ch.c, earlier) {
                ch.escalate(&g.config, reason, "crisis")?;
            }
            let hit = self.surge_in(&mut *ch.tx, &g, &ch.c)?;
            if let Some(h) = &hit {
                ch.emit(ComplaintEvent::AttachedTo { incident: h.incident.clone(), playbook: h.playbook.clone() })?;
            }
            Ok::<_, EngineError>(Ok((ch.save()?, hit)))
        })?;
        match recorded {
            Ok(((c, evs), hit)) => {
                if let Some(h) = hit {
                    self.surged(h);
                }
                self.observe_complaint(&c, &evs);
                Ok(Recorded { complaint: c, replayed: false })
            }
            Err(c) => Ok(Recorded { complaint: c, replayed: true }),
        }
    }

    /// One complaint as its events left it.
    pub fn complaint(&self, id: &str) -> Result<Complaint, EngineError> {
        let q = ComplaintQuery { id: Some(id.to_string()), ..Default::default() };
        match self.store().complaints(&q)?.pop() {
            Some(row) => Ok(Complaint::from_row(&row)?),
            None => {
                let ids: Vec<String> =
                    self.store().complaints(&ComplaintQuery::default())?.into_iter().map(|r| r.id).collect();
                let nearby = crate::diag::nearby(id, ids.iter().map(String::as_str));
                Err(EngineError::NotFound { what: "complaint", id: id.to_string(), nearby })
            }
        }
    }

    /// The complaints matching `q`, oldest first.
    pub fn complaints(&self, q: &ComplaintQuery) -> Result<Vec<Complaint>, EngineError> {
        let rows = self.store().complaints(q)?;
        Ok(rows.iter().map(Complaint::from_row).collect::<anyhow::Result<_>>()?)
    }

    /// Names who works on an open complaint.
    pub fn assign_complaint(&self, id: &str, person: &str, by: &str) -> Result<Complaint, EngineError> {
        if person.trim().is_empty() {
            return Err(EngineError::invalid("assign needs a person: give a roster person id"));
        }
        let known = self.generation().config.roster.people.contains_key(person);
        if !known {
            let g = self.generation();
            let nearby = crate::diag::nearby(person, g.config.roster.people.keys().map(String::as_str));
            return Err(EngineError::NotFound { what: "person", id: person.to_string(), nearby });
        }
        self.change_complaint(id, |ch, _| {
            if !ch.c.state.is_open() {
                return Err(EngineError::conflict(format!(
                    "complaint {id} is {}; it cannot be assigned any more",
                    ch.c.state
                )));
            }
            Ok(ch.emit(ComplaintEvent::ComplaintAssigned { person: person.to_string(), by: by.to_string() })?)
        })
    }

    /// Journals that admin `by` acts for roster person `person` on complaint
    /// `id`, in its own transaction just before the action, so a refused
    /// action still leaves the attempt on the record.
    pub fn record_complaint_acting_for(
        &self,
        id: &str,
        by: &str,
        token: Option<&str>,
        person: &str,
        action: &str,
    ) -> Result<(), EngineError> {
        super::acting::check_roster_person(&self.generation().config.roster, person)?;
        self.change_complaint(id, |ch, _| {
            Ok(ch.emit(ComplaintEvent::ActingFor {
                by: by.to_string(),
                token: token.map(str::to_string),
                person: person.to_string(),
                action: action.to_string(),
            })?)
        })
        .map(|_| ())
    }

    /// Reports an open complaint to the superior rota by hand.
    pub fn escalate_complaint(&self, id: &str, by: &str) -> Result<Complaint, EngineError> {
        self.change_complaint(id, |ch, cfg| {
            if !ch.c.state.may_become(ComplaintState::Escalated) {
                return Err(EngineError::conflict(format!("complaint {id} is {}; it cannot be escalated", ch.c.state)));
            }
            Ok(ch.escalate(cfg, EscalationReason::Manual, by)?)
        })
    }

    /// Resolves a complaint with a note and schedules its follow-up message.
    pub fn resolve_complaint(&self, id: &str, note: &str, by: &str) -> Result<Complaint, EngineError> {
        if note.trim().is_empty() {
            return Err(EngineError::invalid("resolving a complaint needs a resolution note: pass --note TEXT"));
        }
        self.change_complaint(id, |ch, cfg| {
            if !ch.c.state.may_become(ComplaintState::Resolved) {
                return Err(EngineError::conflict(format!("complaint {id} is {}; it cannot be resolved", ch.c.state)));
            }
            ch.emit(ComplaintEvent::ComplaintResolved { note: note.to_string(), by: by.to_string() })?;
            let due = ch.now + cfg.complaints.follow_up.as_millis() as i64;
            ch.tx.add_timer(id, due, FOLLOW_UP_TIMER, TIMER_FAMILY, &serde_json::json!({}))?;
            Ok(())
        })
    }

    /// Fires a complaint timer claimed by the timer loop (once: a timer
    /// already taken or cancelled does nothing).
    pub(super) fn fire_complaint_timer(&self, row: &TimerRow) -> Result<(), EngineError> {
        let res = self.change_complaint(&row.incident_id, |ch, cfg| {
            if !ch.tx.take_timer(row.id)? {
                return Ok(());
            }
            match row.kind.as_str() {
                FIRST_RESPONSE_TIMER if ch.c.first_response_at.is_none() => {
                    let subject = format!("Complaint {}: first response missed", ch.c.id);
                    let body = format!(
                        "The first response to complaint {} ({}, {}) was not delivered within {}.",
                        ch.c.id,
                        ch.c.category,
                        ch.c.channel,
                        humantime::format_duration(cfg.complaints.first_response)
                    );
                    let notified = ch.notice(cfg, cfg.complaints.owner.as_deref(), "missed", subject, body)?;
                    ch.emit(ComplaintEvent::FirstResponseMissed { due_at: row.due_at, notified })?;
                }
                FOLLOW_UP_TIMER if ch.c.state == ComplaintState::Resolved => {
                    let msg = follow_up_template(&ch.c.locale, &ch.c.id);
                    let invocation_id = ch.message_customer(cfg, Purpose::FollowUp, "follow-up", "", msg)?;
                    ch.emit(ComplaintEvent::FollowUpRecorded { invocation_id })?;
                }
                _ => {}
            }
            Ok(())
        });
        self.drop_orphan_timer(res.map(|_| ()), row.id)
    }

    /// Journals a complaint intent's result on the complaint, in the caller's
    /// transaction; a delivered first response ends its deadline timer.
    pub(super) fn record_complaint_effect(
        &self,
        tx: &mut dyn Tx,
        intent: &IntentRow,
        outcome: &EffectOutcome,
    ) -> Result<(Complaint, Vec<ComplaintEvent>), EngineError> {
        let p: IntentPayload = serde_json::from_value(intent.payload.clone()).map_err(anyhow::Error::from)?;
        let id = &intent.incident_id;
        let Some(row) = tx.complaints(&ComplaintQuery { id: Some(id.clone()), ..Default::default() })?.pop() else {
            return Err(not_found(id, tx)?);
        };
        let c = Complaint::from_row(&row)?;
        let now = self.now();
        tx.complete_intent(&intent.invocation_id, now, &serde_json::to_value(outcome).map_err(anyhow::Error::from)?)?;
        let mut ch = Change { tx, c, now, emitted: Vec::new() };
        if p.purpose == Purpose::FirstResponse && outcome.ok {
            ch.tx.cancel_timer(id, FIRST_RESPONSE_TIMER)?;
        }
        ch.emit(ComplaintEvent::ComplaintEffect {
            invocation_id: intent.invocation_id.clone(),
            purpose: p.purpose,
            target: p.target,
            ok: outcome.ok,
            detail: outcome.detail.clone(),
        })?;
        Ok(ch.save()?)
    }

    /// Sets a complaint's side effect aside for good and journals that on the
    /// complaint (as an effect that failed, with the reason), so its history
    /// says why the customer never got that message.
    pub(super) fn dead_letter_complaint_intent(
        &self,
        complaint: &str,
        invocation_id: &str,
        purpose: &Purpose,
        target: &str,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.change_complaint(complaint, |ch, _| {
            if ch.tx.intent(invocation_id)?.is_none_or(|i| i.result.is_some()) {
                return Ok(());
            }
            ch.tx.dead_letter_intent(invocation_id, ch.now, reason)?;
            ch.emit(ComplaintEvent::ComplaintEffect {
                invocation_id: invocation_id.to_string(),
                purpose: purpose.clone(),
                target: target.to_string(),
                ok: false,
                detail: format!("dead-lettered: {reason}"),
            })?;
            Ok(())
        })
        .map(|_| ())
    }

    /// Tells the complaint observer about complaint events another operation committed.
    pub(super) fn observe_complaints(&self, done: &[(Complaint, Vec<ComplaintEvent>)]) {
        for (c, evs) in done {
            self.observe_complaint(c, evs);
        }
    }
}
