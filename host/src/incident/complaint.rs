//! Customer complaints: the handbook's flow as states, the events that move
//! a complaint along it, and the projection folded from them.
//!
//! A complaint's events are journaled in the same hash chain as incidents,
//! under the complaint's own id (`CMP-<n>`) as their stream. The text is
//! journaled only after phone numbers and e-mail addresses in it were masked,
//! and the customer is named by id only: contact details never reach the journal.

use crate::playbook::types::{Category, Channel, Mode, Purpose};
use crate::store::{ComplaintRow, EventRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Called after commit with each complaint event and the complaint's
/// resulting state; complaint metrics hang off this.
pub(crate) type ComplaintObserver = std::sync::Arc<dyn Fn(&ComplaintEvent, &Complaint) + Send + Sync>;

/// Complaint ids are `CMP-<n>`; the prefix also tells their journal streams from incidents'.
pub(crate) const COMPLAINT_PREFIX: &str = "CMP";

/// Whether a journal stream (an incident id column) is a complaint's.
pub(crate) fn is_complaint_id(id: &str) -> bool {
    id.strip_prefix(COMPLAINT_PREFIX).and_then(|r| r.strip_prefix('-')).is_some_and(|n| n.parse::<u64>().is_ok())
}

/// Where a complaint is in the handbook's flow. Why an enum: the legal
/// moves are checked here, once, instead of by comparing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComplaintState {
    /// Journaled, not yet classified.
    Received,
    /// Its category is known; the first response is on its way.
    Classified,
    /// The customer's first response was delivered.
    FirstResponseSent,
    /// Reported to a superior's rota.
    Escalated,
    /// Resolved, with a resolution note.
    Resolved,
    /// The follow-up message asking whether the problem is solved went out.
    FollowedUp,
}

impl ComplaintState {
    /// The name stored and shown (`first-response-sent`).
    pub fn as_str(self) -> &'static str {
        match self {
            ComplaintState::Received => "received",
            ComplaintState::Classified => "classified",
            ComplaintState::FirstResponseSent => "first-response-sent",
            ComplaintState::Escalated => "escalated",
            ComplaintState::Resolved => "resolved",
            ComplaintState::FollowedUp => "followed-up",
        }
    }

    /// Whether a complaint in this state may move to `next`: forward along
    /// received → classified → first-response-sent → escalated → resolved →
    /// followed-up, where escalating and resolving may come before the first
    /// response was delivered, and nothing moves back.
    pub fn may_become(self, next: ComplaintState) -> bool {
        use ComplaintState::*;
        matches!(
            (self, next),
            (Received, Classified)
                | (Classified, FirstResponseSent | Escalated | Resolved)
                | (FirstResponseSent, Escalated | Resolved)
                | (Escalated, Resolved)
                | (Resolved, FollowedUp)
        )
    }

    /// Not yet resolved: it can still be assigned and escalated.
    pub fn is_open(self) -> bool {
        !matches!(self, ComplaintState::Resolved | ComplaintState::FollowedUp)
    }
}

impl std::fmt::Display for ComplaintState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which step of the classification pipeline chose the category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum ClassifiedBy {
    /// The category came with the complaint.
    Given,
    /// The `[[complaints.rule]]` with this 1-based position matched.
    Rule {
        /// Position of the rule in crisis.toml.
        index: usize,
    },
    /// A classifier plugin chose it.
    Plugin {
        /// The plugin's name.
        plugin: String,
    },
    /// Nothing matched: `other` with confidence 0.
    Default,
}

/// Why a complaint was reported to a superior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EscalationReason {
    /// The customer's tier is one of `[complaints] escalate_tiers`.
    Tier,
    /// The customer complained `repeat_count` times within `repeat_within`.
    Repeated,
    /// The category is one of `[complaints] escalate_categories`.
    Category,
    /// Someone escalated it by hand.
    Manual,
}

/// What wrote the first response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Composer {
    /// The appeasement plugin composed it.
    Plugin {
        /// The plugin's name.
        plugin: String,
    },
    /// The plain template, because the plugin failed (or none is configured).
    Template {
        /// Why the plugin's message was not used.
        reason: String,
    },
}

/// One change to a complaint, as journaled (`kind` + JSON data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ComplaintEvent {
    /// The complaint arrived; `text` is already masked.
    ComplaintReceived {
        customer: String,
        channel: Channel,
        locale: String,
        tier: String,
        text: String,
        labels: BTreeMap<String, String>,
        mode: Mode,
        source: String,
        /// The digest of the sender's idempotency key, when it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intake_key: Option<String>,
    },
    /// Its category was decided.
    ComplaintClassified { category: Category, confidence: f64, by: ClassifiedBy },
    /// The first response to the customer was recorded as an intent, due by `due_at`.
    FirstResponseRecorded { invocation_id: String, composer: Composer, due_at: i64 },
    /// The first response was not delivered by its deadline; `notified` is the rota told.
    FirstResponseMissed { due_at: i64, notified: Option<String> },
    /// Someone took it on.
    ComplaintAssigned { person: String, by: String },
    /// Reported to the rota `to`.
    ComplaintEscalated { to: String, reason: EscalationReason, by: String },
    /// Resolved with a note.
    ComplaintResolved { note: String, by: String },
    /// The follow-up message was recorded as an intent.
    FollowUpRecorded { invocation_id: String },
    /// A surge of complaints like it opened `incident` (a playbook's `[trigger] surge`), or
    /// it arrived while that incident was open: the incident's outcome settles it.
    AttachedTo { incident: String, playbook: String },
    /// The incident it was attached to closed: the outcome message to the customer was recorded as an intent.
    OutcomeMessageRecorded { incident: String, invocation_id: String },
    /// A side effect of the complaint ran (or finally failed).
    ComplaintEffect { invocation_id: String, purpose: Purpose, target: String, ok: bool, detail: String },
    /// An admin (`by`, with token id `token`) acted for `person`; written just
    /// before the action, so a refused action still leaves the attempt.
    ActingFor {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        person: String,
        action: String,
    },
}

impl ComplaintEvent {
    /// The `kind` column value; the same text serde writes as the tag.
    pub fn kind(&self) -> &'static str {
        match self {
            ComplaintEvent::ComplaintReceived { .. } => "complaint_received",
            ComplaintEvent::ComplaintClassified { .. } => "complaint_classified",
            ComplaintEvent::FirstResponseRecorded { .. } => "first_response_recorded",
            ComplaintEvent::FirstResponseMissed { .. } => "first_response_missed",
            ComplaintEvent::ComplaintAssigned { .. } => "complaint_assigned",
            ComplaintEvent::ComplaintEscalated { .. } => "complaint_escalated",
            ComplaintEvent::ComplaintResolved { .. } => "complaint_resolved",
            ComplaintEvent::FollowUpRecorded { .. } => "follow_up_recorded",
            ComplaintEvent::AttachedTo { .. } => "attached_to",
            ComplaintEvent::OutcomeMessageRecorded { .. } => "outcome_message_recorded",
            ComplaintEvent::ComplaintEffect { .. } => "complaint_effect",
            ComplaintEvent::ActingFor { .. } => "acting_for",
        }
    }

    /// The event a journal row of a complaint stream holds.
    pub fn from_record(rec: &EventRecord) -> anyhow::Result<ComplaintEvent> {
        let mut data = rec.data.clone();
        if let Some(obj) = data.as_object_mut() {
            obj.entry("kind").or_insert_with(|| serde_json::Value::String(rec.kind.clone()));
        }
        serde_json::from_value(data)
            .map_err(|e| anyhow::anyhow!("event {} ({}) of {} is unreadable: {e}", rec.seq, rec.kind, rec.incident_id))
    }
}

/// A complaint as its events left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Complaint {
    /// `CMP-<n>`.
    pub id: String,
    /// The customer's id in the customer source.
    pub customer: String,
    /// The channel it came in on, which the answers go out on.
    pub channel: Channel,
    /// The customer's locale at intake.
    pub locale: String,
    /// The customer's tier at intake.
    pub tier: String,
    /// The complaint text, contact details masked.
    pub text: String,
    /// Free labels given at intake (`product = "router"`).
    pub labels: BTreeMap<String, String>,
    /// Live or drill.
    pub mode: Mode,
    /// Where it was reported (`cli`, `api`, an intake token's name).
    pub source: String,
    /// `other` until classified.
    pub category: Category,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// How the category was decided; `None` until classified.
    pub classified_by: Option<ClassifiedBy>,
    /// Where it is in the flow.
    pub state: ComplaintState,
    /// Unix ms.
    pub received_at: i64,
    /// Unix ms of the latest event.
    pub updated_at: i64,
    /// The first response's intent.
    pub first_response_id: Option<String>,
    /// What composed the first response.
    pub composer: Option<Composer>,
    /// When the first response is due (Unix ms).
    pub first_response_due: Option<i64>,
    /// When it was delivered (Unix ms).
    pub first_response_at: Option<i64>,
    /// Its deadline passed before it was delivered.
    pub first_response_missed: bool,
    /// Who took it on.
    pub assignee: Option<String>,
    /// The rota it was reported to.
    pub escalated_to: Option<String>,
    /// Why it was escalated.
    pub escalation: Option<EscalationReason>,
    /// The resolution note.
    pub resolution: Option<String>,
    /// When it was resolved (Unix ms).
    pub resolved_at: Option<i64>,
    /// When the follow-up was delivered (Unix ms).
    pub followed_up_at: Option<i64>,
    /// The incident a complaint surge attached it to; its outcome resolves the complaint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The digest of the sender's idempotency key: a retry with the same key gets this complaint back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake_key: Option<String>,
    /// Sequence number of its latest event.
    pub last_seq: i64,
}

impl Complaint {
    /// The complaint its first event opens; `None` if that event is not `complaint_received`.
    pub fn received(id: &str, ev: &ComplaintEvent, at: i64, seq: i64) -> Option<Complaint> {
        let ComplaintEvent::ComplaintReceived {
            customer,
            channel,
            locale,
            tier,
            text,
            labels,
            mode,
            source,
            intake_key,
        } = ev
        else {
            return None;
        };
        Some(Complaint {
            id: id.to_string(),
            customer: customer.clone(),
            channel: *channel,
            locale: locale.clone(),
            tier: tier.clone(),
            text: text.clone(),
            labels: labels.clone(),
            mode: *mode,
            source: source.clone(),
            category: Category::Other,
            confidence: 0.0,
            classified_by: None,
            state: ComplaintState::Received,
            received_at: at,
            updated_at: at,
            first_response_id: None,
            composer: None,
            first_response_due: None,
            first_response_at: None,
            first_response_missed: false,
            assignee: None,
            escalated_to: None,
            escalation: None,
            resolution: None,
            resolved_at: None,
            followed_up_at: None,
            incident: None,
            intake_key: intake_key.clone(),
            last_seq: seq,
        })
    }

    fn go(&mut self, next: ComplaintState) {
        if self.state.may_become(next) {
            self.state = next;
        }
    }

    /// Applies one later event; a move the flow does not allow leaves the state as it is.
    pub fn apply(&mut self, ev: &ComplaintEvent, at: i64, seq: i64) {
        self.updated_at = at;
        self.last_seq = seq;
        match ev {
            ComplaintEvent::ComplaintReceived { .. } => {}
            ComplaintEvent::ComplaintClassified { category, confidence, by } => {
                self.category = *category;
                self.confidence = *confidence;
                self.classified_by = Some(by.clone());
                self.go(ComplaintState::Classified);
            }
            ComplaintEvent::FirstResponseRecorded { invocation_id, composer, due_at } => {
                self.first_response_id = Some(invocation_id.clone());
                self.composer = Some(composer.clone());
                self.first_response_due = Some(*due_at);
            }
            ComplaintEvent::FirstResponseMissed { .. } => self.first_response_missed = true,
            ComplaintEvent::ComplaintAssigned { person, .. } => self.assignee = Some(person.clone()),
            ComplaintEvent::ComplaintEscalated { to, reason, .. } => {
                self.escalated_to = Some(to.clone());
                self.escalation = Some(*reason);
                self.go(ComplaintState::Escalated);
            }
            ComplaintEvent::ComplaintResolved { note, .. } => {
                self.resolution = Some(note.clone());
                self.resolved_at = Some(at);
                self.go(ComplaintState::Resolved);
            }
            ComplaintEvent::FollowUpRecorded { .. } | ComplaintEvent::OutcomeMessageRecorded { .. } => {}
            ComplaintEvent::AttachedTo { incident, .. } => self.incident = Some(incident.clone()),
            ComplaintEvent::ComplaintEffect { purpose, ok: true, .. } => match purpose {
                Purpose::FirstResponse if self.first_response_at.is_none() => {
                    self.first_response_at = Some(at);
                    self.go(ComplaintState::FirstResponseSent);
                }
                Purpose::FollowUp if self.followed_up_at.is_none() => {
                    self.followed_up_at = Some(at);
                    self.go(ComplaintState::FollowedUp);
                }
                _ => {}
            },
            ComplaintEvent::ComplaintEffect { .. } | ComplaintEvent::ActingFor { .. } => {}
        }
    }

    /// Milliseconds from receipt to the delivered first response.
    pub fn first_response_ms(&self) -> Option<i64> {
        self.first_response_at.map(|t| t - self.received_at)
    }

    /// The projection row stored for it.
    pub fn row(&self) -> anyhow::Result<ComplaintRow> {
        Ok(ComplaintRow {
            id: self.id.clone(),
            customer: self.customer.clone(),
            category: self.category.to_string(),
            channel: self.channel.to_string(),
            state: self.state.to_string(),
            received_at: self.received_at,
            updated_at: self.updated_at,
            intake_key: self.intake_key.clone(),
            data: serde_json::to_value(self)?,
        })
    }

    /// The complaint a stored row holds.
    pub fn from_row(row: &ComplaintRow) -> anyhow::Result<Complaint> {
        serde_json::from_value(row.data.clone())
            .map_err(|e| anyhow::anyhow!("the stored complaint {} is unreadable: {e}", row.id))
    }
}

/// The complaint its journal events produce, folded as the engine writes them.
pub(crate) fn fold(id: &str, events: &[EventRecord]) -> Result<Complaint, String> {
    let (first, rest) = events.split_first().ok_or("it has no events in the journal")?;
    let ev = ComplaintEvent::from_record(first).map_err(|e| e.to_string())?;
    let mut c = Complaint::received(id, &ev, first.at, first.seq)
        .ok_or_else(|| format!("its first event {} is `{}`, not `complaint_received`", first.seq, first.kind))?;
    for rec in rest {
        c.apply(&ComplaintEvent::from_record(rec).map_err(|e| e.to_string())?, rec.at, rec.seq);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_only_moves_forward() {
        use ComplaintState::*;
        assert!(Received.may_become(Classified));
        assert!(Classified.may_become(FirstResponseSent));
        assert!(FirstResponseSent.may_become(Escalated));
        assert!(Escalated.may_become(Resolved));
        assert!(Resolved.may_become(FollowedUp));
        assert!(!Received.may_become(Resolved));
        assert!(!Resolved.may_become(Escalated));
        assert!(!FollowedUp.may_become(Resolved));
        assert!(!Escalated.may_become(FirstResponseSent));
    }

    #[test]
    fn ids_are_told_from_incidents() {
        assert!(is_complaint_id("CMP-12"));
        assert!(!is_complaint_id("CMP-x"));
        assert!(!is_complaint_id("INC-12"));
    }

    #[test]
    fn kind_is_the_serde_tag_and_folds_back() {
        let evs = [
            ComplaintEvent::ComplaintReceived {
                customer: "c1".into(),
                channel: Channel::Sms,
                locale: "en".into(),
                tier: "vip".into(),
                text: "t".into(),
                labels: BTreeMap::new(),
                mode: Mode::Live,
                source: "cli".into(),
                intake_key: Some("k".into()),
            },
            ComplaintEvent::ComplaintClassified {
                category: Category::Price,
                confidence: 0.8,
                by: ClassifiedBy::Rule { index: 1 },
            },
            ComplaintEvent::FirstResponseRecorded {
                invocation_id: "CMP-1.fr".into(),
                composer: Composer::Template { reason: "r".into() },
                due_at: 5,
            },
            ComplaintEvent::ComplaintEffect {
                invocation_id: "CMP-1.fr".into(),
                purpose: Purpose::FirstResponse,
                target: "log".into(),
                ok: true,
                detail: "d".into(),
            },
            ComplaintEvent::AttachedTo { incident: "INC-4".into(), playbook: "surge".into() },
            ComplaintEvent::ComplaintResolved { note: "refunded".into(), by: "ana".into() },
            ComplaintEvent::OutcomeMessageRecorded { incident: "INC-4".into(), invocation_id: "CMP-1.outcome".into() },
        ];
        let recs: Vec<EventRecord> = evs
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let v = serde_json::to_value(e).unwrap();
                assert_eq!(v["kind"], e.kind());
                EventRecord {
                    seq: i as i64 + 1,
                    incident_id: "CMP-1".into(),
                    at: i as i64 * 10,
                    kind: e.kind().into(),
                    data: v,
                    prev_hash: String::new(),
                    hash: String::new(),
                }
            })
            .collect();
        let c = fold("CMP-1", &recs).unwrap();
        assert_eq!(c.state, ComplaintState::Resolved);
        assert_eq!(c.category, Category::Price);
        assert_eq!(c.first_response_ms(), Some(30));
        assert_eq!(c.resolution.as_deref(), Some("refunded"));
        assert_eq!(c.incident.as_deref(), Some("INC-4"));
    }
}
