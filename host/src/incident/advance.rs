//! One incident inside one transaction: journaling events, and moving the
//! plan forward through its phases and steps as far as it goes without people.

use super::acting::check_roster_person;
use super::ctx::Ctx;
use super::effects::CustomerRef;
use super::error::EngineError;
use super::events::Event;
use super::notices::Notice;
use super::state::{Status, StepStatus};
use super::timers::{DeadlineKind, Timer, TimerFamily};
use super::when;
use crate::playbook::spec::StepSpec;
use crate::playbook::types::{INCIDENT_ROLES, Phase, Purpose, StepKind, Who};

impl Ctx<'_> {
    pub(super) fn step_spec(&self, step: &str) -> Result<&StepSpec, EngineError> {
        self.pb.step(step).ok_or_else(|| EngineError::NotFound {
            what: "step",
            id: step.to_string(),
            nearby: crate::diag::nearby(step, self.pb.act.iter().map(|s| s.id.as_str())),
        })
    }

    pub(super) fn check_person(&self, person: &str) -> Result<(), EngineError> {
        check_roster_person(&self.generation_.config.roster, person)
    }

    /// Whether `person` may act as `who` (membership, not only who is on call now).
    pub(super) fn holds(&self, person: &str, who: &Who) -> bool {
        let roster = &self.generation_.config.roster;
        match who {
            Who::Person(p) => p == person,
            Who::Team(t) => roster.teams.get(t).is_some_and(|m| m.iter().any(|x| x == person)),
            Who::Rota(r) => roster.rotas.get(r).is_some_and(|r| r.members.iter().any(|x| x == person)),
            Who::Role(role) if INCIDENT_ROLES.contains(&role.as_str()) => {
                self.inc.roles.get(role).map(String::as_str) == Some(person)
            }
            Who::Role(role) => roster.people.get(person).is_some_and(|p| p.roles.iter().any(|r| r == role)),
        }
    }

    /// People a reference resolves to right now (incident roles through the incident).
    pub(super) fn people(&self, who: &Who) -> Vec<String> {
        match who {
            Who::Role(r) if INCIDENT_ROLES.contains(&r.as_str()) => {
                self.inc.roles.get(r).cloned().into_iter().collect()
            }
            other => {
                let at = chrono::DateTime::from_timestamp_millis(self.now).unwrap_or_default();
                self.generation_.config.roster.resolve(other, at)
            }
        }
    }

    fn enter(&mut self, phase: Phase) -> anyhow::Result<()> {
        self.emit(Event::PhaseEntered { phase })
    }

    fn complete(&mut self, phase: Phase) -> anyhow::Result<()> {
        if let Some(d) = DeadlineKind::of_phase(phase) {
            self.cancel(&Timer::Deadline(d))?;
        }
        self.emit(Event::PhaseCompleted { phase })
    }

    /// Moves the plan forward as far as it goes without people.
    pub(super) fn advance(&mut self) -> anyhow::Result<()> {
        for _ in 0..10_000 {
            if !self.advance_once()? {
                return Ok(());
            }
        }
        anyhow::bail!("incident {} did not settle; this is a bug in crisis", self.inc.id)
    }

    fn advance_once(&mut self) -> anyhow::Result<bool> {
        if self.inc.status == Status::Closed {
            return Ok(false);
        }
        let resolved = self.inc.status != Status::Open;
        for phase in Phase::ORDER {
            if self.inc.completed(phase) || self.inc.skipped_phase(phase) {
                continue;
            }
            if !self.inc.entered(phase) {
                self.on_enter(phase)?;
                return Ok(true);
            }
            if resolved && phase != Phase::Outcome {
                self.settle_on_resolve(phase)?;
                return Ok(true);
            }
            return self.try_complete(phase);
        }
        Ok(false)
    }

    fn settle_on_resolve(&mut self, phase: Phase) -> anyhow::Result<()> {
        if phase == Phase::Act {
            for s in self.pb.act.clone() {
                if !self.inc.step_status(&s.id).finished() {
                    self.emit(Event::StepSkipped { step: s.id.clone(), reason: "incident resolved".into(), by: None })?;
                }
            }
        }
        self.complete(phase)
    }

    fn on_enter(&mut self, phase: Phase) -> anyhow::Result<()> {
        self.enter(phase)?;
        let pb = self.pb.clone();
        match phase {
            Phase::Report => {
                let scope = self.inc.fields.get("scope").cloned().unwrap_or_else(|| "not stated".into());
                let nature = self.inc.fields.get("nature").cloned().unwrap_or_else(|| self.inc.title.clone());
                let body =
                    format!("Nature: {nature}. Scope: {scope}. Category {}. Playbook {}.", self.inc.category, pb.id);
                let subject = self.subject("crisis reported");
                self.notify(Purpose::Report, &pb.report.notify, &subject, &body)?;
                self.schedule(pb.report.within.as_millis() as i64, Timer::Deadline(DeadlineKind::Report))?;
            }
            Phase::Activate => {
                if let Some(w) = pb.activate.within {
                    self.schedule(w.as_millis() as i64, Timer::Deadline(DeadlineKind::Activate))?;
                }
            }
            Phase::Assign => self.start_assign()?,
            Phase::Act => {}
            Phase::Track => {
                if let Some(every) = pb.track.update_every {
                    self.schedule(every.as_millis() as i64, Timer::TrackUpdate)?;
                }
                if let Some(stale) = pb.track.stale_after {
                    self.schedule(stale.as_millis() as i64, Timer::TrackStale)?;
                }
            }
            Phase::Outcome => {
                if let Some(w) = pb.outcome.within {
                    self.schedule(w.as_millis() as i64, Timer::Deadline(DeadlineKind::Outcome))?;
                }
            }
        }
        Ok(())
    }

    fn start_assign(&mut self) -> anyhow::Result<()> {
        let a = self.pb.assign.clone();
        for (role, who) in
            [("commander", Some(&a.commander)), ("liaison", a.liaison.as_ref()), ("scribe", a.scribe.as_ref())]
        {
            let Some(who) = who else { continue };
            if self.inc.roles.contains_key(role) {
                continue;
            }
            match self.people(who).into_iter().next() {
                Some(person) => self.emit(Event::RoleAssigned { role: role.into(), person, by: who.to_string() })?,
                None => self.emit(Event::Note {
                    by: "crisis".into(),
                    note: format!("no one is available for {role} from {who}"),
                })?,
            }
        }
        if self.inc.acked_at.is_some() {
            return Ok(());
        }
        if let Some(commander) = self.inc.roles.get("commander").cloned() {
            let subject = self.subject("you are the incident commander");
            let body = format!("Acknowledge with: crisis ack {} --as {commander}", self.inc.id);
            self.page(Purpose::Page, &[commander], &subject, &body)?;
        }
        if let Some(w) = a.ack_within {
            self.schedule(w.as_millis() as i64, Timer::Deadline(DeadlineKind::Ack))?;
        }
        for (level, e) in a.escalate.iter().enumerate() {
            self.schedule(e.after.as_millis() as i64, Timer::Escalate { level, round: 1 })?;
        }
        Ok(())
    }

    fn try_complete(&mut self, phase: Phase) -> anyhow::Result<bool> {
        match phase {
            Phase::Report => {
                if self.inc.effects_for(&Purpose::Report).pending() > 0 {
                    return Ok(false);
                }
                self.complete(Phase::Report)?;
                Ok(true)
            }
            Phase::Activate => {
                let approver = if self.pb.activate.approval.is_some() {
                    if !self.inc.approvals.contains("activation") {
                        return Ok(false);
                    }
                    "approval".to_string()
                } else {
                    "plan".to_string()
                };
                let channels = self.pb.activate.channels.clone();
                self.emit(Event::Activated { by: approver, channels: channels.clone() })?;
                let subject = self.subject("crisis plan activated");
                let body = format!("The {} plan is in effect. {}", self.pb.name, self.pb.summary);
                self.notify(Purpose::Activate, &channels, &subject, &body)?;
                self.complete(Phase::Activate)?;
                Ok(true)
            }
            Phase::Assign => {
                if self.inc.acked_at.is_none() {
                    return Ok(false);
                }
                self.cancel_family(TimerFamily::Escalate)?;
                self.complete(Phase::Assign)?;
                Ok(true)
            }
            Phase::Act => self.advance_steps(),
            Phase::Track => {
                // Tracking follows the action: it ends when the act phase does.
                if !self.inc.completed(Phase::Act) {
                    return Ok(false);
                }
                self.cancel_family(TimerFamily::Track)?;
                self.complete(Phase::Track)?;
                Ok(true)
            }
            Phase::Outcome => {
                let Some(o) = self.inc.outcome.clone() else { return Ok(false) };
                if self.inc.status == Status::Open {
                    return Ok(false);
                }
                let subject = self.subject("outcome report");
                let body = format!("Cause: {}\nProcess: {}\nAftermath: {}", o.cause, o.process, o.aftermath);
                let targets = self.pb.outcome.notify.clone();
                self.notify(Purpose::Outcome, &targets, &subject, &body)?;
                self.complete(Phase::Outcome)?;
                self.emit(Event::Closed {})?;
                super::complaint_surge::settle_attached(self)?;
                for f in TimerFamily::ALL {
                    self.cancel_family(f)?;
                }
                Ok(true)
            }
        }
    }

    /// Starts steps whose `after` steps finished; finishes automated steps whose messages all ran.
    fn advance_steps(&mut self) -> anyhow::Result<bool> {
        // Track is entered with act: tracking runs alongside the action.
        if !self.inc.entered(Phase::Track) {
            self.on_enter(Phase::Track)?;
            return Ok(true);
        }
        let steps = self.pb.act.clone();
        for s in &steps {
            let status = self.inc.step_status(&s.id);
            let deadline = Timer::Deadline(DeadlineKind::Step(s.id.clone()));
            match status {
                StepStatus::Pending => {
                    if !s.after.iter().all(|a| self.inc.step_status(a).finished()) {
                        continue;
                    }
                    if let Some(expr) = &s.when {
                        match when::eval(expr, &self.inc) {
                            Ok(false) => {
                                self.emit(Event::StepSkipped {
                                    step: s.id.clone(),
                                    reason: format!("`when {expr}` is false"),
                                    by: None,
                                })?;
                                return Ok(true);
                            }
                            Err(e) => {
                                self.emit(Event::StepFailed { step: s.id.clone(), reason: e })?;
                                return Ok(true);
                            }
                            Ok(true) => {}
                        }
                    }
                    if let Some(w) = s.within {
                        self.schedule(w.as_millis() as i64, deadline)?;
                    }
                    let gated = s.kind == StepKind::Approval || s.approval.is_some();
                    if gated && !self.inc.approvals.contains(&format!("step:{}", s.id)) {
                        let who = s.approval.as_ref().map(|a| a.to_string()).unwrap_or_default();
                        self.emit(Event::StepWaiting {
                            step: s.id.clone(),
                            reason: format!("waiting for approval by {who}"),
                        })?;
                    } else {
                        self.emit(Event::StepReady { step: s.id.clone() })?;
                        self.start_step(s)?;
                    }
                    return Ok(true);
                }
                StepStatus::Waiting => {
                    if self.inc.approvals.contains(&format!("step:{}", s.id)) {
                        if s.kind == StepKind::Approval {
                            self.cancel(&deadline)?;
                            self.emit(Event::StepDone { step: s.id.clone(), by: "approval".into(), note: None })?;
                        } else {
                            self.emit(Event::StepReady { step: s.id.clone() })?;
                            self.start_step(s)?;
                        }
                        return Ok(true);
                    }
                }
                StepStatus::Running => {
                    let c = self.inc.effects_for(&Purpose::Step(s.id.clone()));
                    if c.pending() > 0 {
                        continue;
                    }
                    self.cancel(&deadline)?;
                    if c.failed > 0 && c.ok == 0 {
                        self.emit(Event::StepFailed {
                            step: s.id.clone(),
                            reason: format!("all {} deliveries failed", c.failed),
                        })?;
                    } else {
                        let note = (c.failed > 0).then(|| format!("{} of {} deliveries failed", c.failed, c.recorded));
                        self.emit(Event::StepDone { step: s.id.clone(), by: "crisis".into(), note })?;
                    }
                    return Ok(true);
                }
                StepStatus::Ready | StepStatus::Done | StepStatus::Skipped | StepStatus::Failed => {}
            }
        }
        if steps.iter().all(|s| self.inc.step_status(&s.id).finished()) {
            self.complete(Phase::Act)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Runs the automatic part of a step that just became ready.
    fn start_step(&mut self, s: &StepSpec) -> anyhow::Result<()> {
        match s.kind {
            StepKind::Notify => {
                let subject = self.subject(&s.id);
                let body = s.message.clone().unwrap_or_else(|| s.tasks.join("; "));
                self.notify(Purpose::Step(s.id.clone()), &s.notify, &subject, &body)?;
                self.publish_step(s)?;
                if s.notify.is_empty() {
                    self.emit(Event::StepDone {
                        step: s.id.clone(),
                        by: "crisis".into(),
                        note: Some("no targets".into()),
                    })?;
                }
            }
            StepKind::Appease => self.start_appease(s)?,
            StepKind::Dispatch | StepKind::Allocate | StepKind::Manual | StepKind::Approval => {}
        }
        Ok(())
    }

    /// One intent per customer in the audience, spaced to the step's per-minute rate.
    fn start_appease(&mut self, s: &StepSpec) -> anyhow::Result<()> {
        let deliver = s.notify.first().cloned().unwrap_or_else(|| "customers".to_string());
        let Some(target) = self.generation_.config.targets.get(&deliver).cloned() else {
            self.emit(Event::StepFailed {
                step: s.id.clone(),
                reason: format!("no `{deliver}` target is configured to deliver customer messages"),
            })?;
            return Ok(());
        };
        let audience = s.audience.clone().unwrap_or_default();
        let channel = s.channel.map(|c| c.to_string()).unwrap_or_else(|| "sms".into());
        let max = s.limits.max_messages.unwrap_or(u32::MAX) as usize;
        let per_minute = s.limits.per_minute.unwrap_or(u32::MAX).max(1) as i64;
        let chosen: Vec<CustomerRef> = self
            .generation_
            .customers
            .iter()
            .filter(|c| audience.segment.as_ref().is_none_or(|seg| &c.segment == seg))
            .filter(|c| audience.tier.is_empty() || audience.tier.contains(&c.tier))
            .take(max)
            .map(|c| CustomerRef {
                id: c.id.clone(),
                segment: c.segment.clone(),
                tier: c.tier.clone(),
                locale: c.locale.clone(),
                channel: channel.clone(),
            })
            .collect();
        if chosen.is_empty() {
            self.emit(Event::StepDone {
                step: s.id.clone(),
                by: "crisis".into(),
                note: Some("no customers matched the audience".into()),
            })?;
            return Ok(());
        }
        let subject = self.subject("customer message");
        for (i, c) in chosen.into_iter().enumerate() {
            let not_before = self.now + (i as i64 / per_minute) * 60_000;
            let notice =
                Notice::appease(Purpose::Step(s.id.clone()), &deliver, &target.plugin, s.plugin.clone(), &subject, c);
            self.record_notice(notice, not_before)?;
        }
        Ok(())
    }
}
