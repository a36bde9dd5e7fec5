//! Timers: deadlines, escalation rounds and tracking reminders, persisted
//! with an exact key and a fixed family, and fired once even if late.
//!
//! A timer is cancelled either by its exact key (one step's deadline) or by
//! its whole family (every escalation level); never by a prefix of free
//! text, so a step `bridge` never cancels the deadline of step `bridge-2`.

use super::clock::{fmt_ms, fmt_span};
use super::ctx::Ctx;
use super::engine::Engine;
use super::error::EngineError;
use super::events::Event;
use super::retry::{MAX_ATTEMPTS, backoff_ms};
use super::state::Status;
use crate::playbook::types::{Phase, Purpose};
use crate::store::{DeadItemKind, TimerRow};

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeadlineKind {
    Report,
    Activate,
    Ack,
    Outcome,
    Step(String),
}

impl DeadlineKind {
    /// The deadline that ends when `phase` completes, if the phase has one.
    pub(super) fn of_phase(phase: Phase) -> Option<Self> {
        match phase {
            Phase::Report => Some(DeadlineKind::Report),
            Phase::Activate => Some(DeadlineKind::Activate),
            Phase::Outcome => Some(DeadlineKind::Outcome),
            Phase::Assign | Phase::Act | Phase::Track => None,
        }
    }

    /// What was missed, as journaled in `deadline_missed` (`ack`, `step:ID`).
    fn what(&self) -> String {
        match self {
            DeadlineKind::Report => "report".into(),
            DeadlineKind::Activate => "activate".into(),
            DeadlineKind::Ack => "ack".into(),
            DeadlineKind::Outcome => "outcome".into(),
            DeadlineKind::Step(id) => format!("step:{id}"),
        }
    }

    fn parse(what: &str) -> Option<Self> {
        Some(match what {
            "report" => DeadlineKind::Report,
            "activate" => DeadlineKind::Activate,
            "ack" => DeadlineKind::Ack,
            "outcome" => DeadlineKind::Outcome,
            other => DeadlineKind::Step(other.strip_prefix("step:").filter(|s| !s.is_empty())?.to_string()),
        })
    }
}

/// One pending timer of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    Deadline(DeadlineKind),
    /// Escalation `level` (0-based), its `round`th time (1-based).
    Escalate {
        level: usize,
        round: u32,
    },
    TrackUpdate,
    TrackStale,
}

/// Timers cancelled together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerFamily {
    /// Report, activate, ack and outcome deadlines.
    Deadline,
    /// Every step's deadline.
    StepDeadline,
    /// Every escalation level and round.
    Escalate,
    /// Periodic updates and the stale check.
    Track,
}

impl TimerFamily {
    pub(super) const ALL: [TimerFamily; 4] =
        [TimerFamily::Deadline, TimerFamily::StepDeadline, TimerFamily::Escalate, TimerFamily::Track];

    /// The stored `family` column value.
    fn as_str(self) -> &'static str {
        match self {
            TimerFamily::Deadline => "deadline",
            TimerFamily::StepDeadline => "step-deadline",
            TimerFamily::Escalate => "escalate",
            TimerFamily::Track => "track",
        }
    }
}

impl Timer {
    /// The exact stored key; at most one pending timer of an incident has it.
    pub(super) fn key(&self) -> String {
        match self {
            Timer::Deadline(d) => format!("deadline:{}", d.what()),
            Timer::Escalate { level, .. } => format!("escalate:{level}"),
            Timer::TrackUpdate => "track:update".into(),
            Timer::TrackStale => "track:stale".into(),
        }
    }

    fn family(&self) -> TimerFamily {
        match self {
            Timer::Deadline(DeadlineKind::Step(_)) => TimerFamily::StepDeadline,
            Timer::Deadline(_) => TimerFamily::Deadline,
            Timer::Escalate { .. } => TimerFamily::Escalate,
            Timer::TrackUpdate | Timer::TrackStale => TimerFamily::Track,
        }
    }

    fn data(&self) -> serde_json::Value {
        match self {
            Timer::Deadline(d) => serde_json::json!({ "what": d.what() }),
            Timer::Escalate { level, round } => {
                serde_json::json!({ "level": level, "round": round })
            }
            Timer::TrackUpdate | Timer::TrackStale => serde_json::json!({}),
        }
    }

    /// Reads a stored timer back from its exact key (and the round from its data).
    pub(super) fn from_row(row: &TimerRow) -> Option<Timer> {
        let key = row.kind.as_str();
        if let Some(what) = key.strip_prefix("deadline:") {
            return DeadlineKind::parse(what).map(Timer::Deadline);
        }
        if let Some(level) = key.strip_prefix("escalate:") {
            let level = level.parse().ok()?;
            let round = row.data.get("round").and_then(|v| v.as_u64()).unwrap_or(1) as u32;
            return Some(Timer::Escalate { level, round });
        }
        match key {
            "track:update" => Some(Timer::TrackUpdate),
            "track:stale" => Some(Timer::TrackStale),
            _ => None,
        }
    }
}

impl Ctx<'_> {
    /// Schedules `t` to fire `after_ms` from now.
    pub(super) fn schedule(&mut self, after_ms: i64, t: Timer) -> anyhow::Result<()> {
        self.tx.add_timer(&self.inc.id, self.now + after_ms, &t.key(), t.family().as_str(), &t.data())?;
        Ok(())
    }

    /// Cancels exactly this timer (every round of an escalation level).
    pub(super) fn cancel(&mut self, t: &Timer) -> anyhow::Result<()> {
        self.tx.cancel_timer(&self.inc.id, &t.key())?;
        Ok(())
    }

    /// Cancels every timer of a family.
    pub(super) fn cancel_family(&mut self, f: TimerFamily) -> anyhow::Result<()> {
        self.tx.cancel_timers_in(&self.inc.id, f.as_str())?;
        Ok(())
    }

    /// Journals the acknowledgement by `by` and stops what waits for one:
    /// every escalation level and the acknowledgement deadline.
    pub(super) fn acknowledge(&mut self, by: &str) -> anyhow::Result<()> {
        self.emit(Event::Acknowledged { by: by.to_string() })?;
        self.cancel_family(TimerFamily::Escalate)?;
        self.cancel(&Timer::Deadline(DeadlineKind::Ack))
    }

    pub(super) fn fire_timer(&mut self, t: &Timer, due_at: i64) -> anyhow::Result<()> {
        match t {
            Timer::Deadline(d) => {
                let done = match d {
                    DeadlineKind::Report => self.inc.completed(Phase::Report),
                    DeadlineKind::Activate => self.inc.completed(Phase::Activate),
                    DeadlineKind::Ack => self.inc.acked_at.is_some(),
                    DeadlineKind::Outcome => self.inc.completed(Phase::Outcome),
                    DeadlineKind::Step(s) => self.inc.step_status(s).finished(),
                };
                if done {
                    return Ok(());
                }
                let what = d.what();
                self.emit(Event::DeadlineMissed { what: what.clone(), due_at })?;
                let subject = self.subject(&format!("deadline missed: {what}"));
                let body = format!("{what} was due at {} and is not done.", fmt_ms(due_at));
                let targets = self.pb.report.notify.clone();
                self.notify(Purpose::Deadline, &targets, &subject, &body)
            }
            Timer::Escalate { level, round } => {
                if self.inc.acked_at.is_some() {
                    return Ok(());
                }
                let Some(e) = self.pb.assign.escalate.get(*level).cloned() else { return Ok(()) };
                let people = self.people(&e.to);
                self.emit(Event::Escalated {
                    level: level + 1,
                    to: e.to.to_string(),
                    people: people.clone(),
                    round: *round,
                })?;
                let subject = self.subject(&format!("escalation level {} (not acknowledged)", level + 1));
                let body = format!(
                    "Nobody has acknowledged {}. Acknowledge with: crisis ack {} --as YOU",
                    self.inc.id, self.inc.id
                );
                self.page(Purpose::Escalate, &people, &subject, &body)?;
                if *round < e.repeat {
                    self.schedule(e.after.as_millis() as i64, Timer::Escalate { level: *level, round: round + 1 })?;
                }
                Ok(())
            }
            Timer::TrackUpdate => {
                if self.inc.completed(Phase::Track) || self.inc.status != Status::Open {
                    return Ok(());
                }
                self.emit(Event::UpdateDue {})?;
                let done = self.inc.steps.values().filter(|s| s.status.finished()).count();
                let body =
                    format!("Progress: {done} of {} steps finished; phase {}.", self.pb.act.len(), self.inc.phase);
                let subject = self.subject("progress update");
                let targets = self.pb.track.notify.clone();
                self.notify(Purpose::Track, &targets, &subject, &body)?;
                if let Some(every) = self.pb.track.update_every {
                    self.schedule(every.as_millis() as i64, Timer::TrackUpdate)?;
                }
                Ok(())
            }
            Timer::TrackStale => {
                if self.inc.completed(Phase::Track) || self.inc.status != Status::Open {
                    return Ok(());
                }
                let Some(stale) = self.pb.track.stale_after else { return Ok(()) };
                let stale = stale.as_millis() as i64;
                let idle = self.now - self.inc.last_activity_at;
                if idle >= stale {
                    self.emit(Event::Stale { idle_ms: idle })?;
                    let subject = self.subject("stale incident");
                    let body = format!("No activity for {}.", fmt_span(idle));
                    let targets = self.pb.track.notify.clone();
                    self.notify(Purpose::Track, &targets, &subject, &body)?;
                    self.schedule(stale, Timer::TrackStale)
                } else {
                    self.schedule(stale - idle, Timer::TrackStale)
                }
            }
        }
    }
}

impl Engine {
    /// Fires every timer that is due (late ones once). Returns how many fired.
    ///
    /// One timer's failure never stops the others: a timer that fails is
    /// retried with backoff and dead-lettered after [`MAX_ATTEMPTS`] tries,
    /// and one that cannot be read at all is dead-lettered at once.
    pub fn fire_due_timers(&self) -> Result<usize, EngineError> {
        let mut fired = 0;
        loop {
            // Claimed, not just read: on a shared database another node may be firing timers too.
            let due = self.store().claim_timers(self.now())?;
            if due.is_empty() {
                return Ok(fired);
            }
            for t in due {
                if self.fire_isolated(t) {
                    fired += 1;
                }
            }
        }
    }

    /// Fires one timer; on failure defers or dead-letters it. True if it fired.
    fn fire_isolated(&self, row: TimerRow) -> bool {
        let (id, incident) = (row.id, row.incident_id.clone());
        if super::complaint::is_complaint_id(&incident) {
            let Err(e) = self.fire_complaint_timer(&row) else { return true };
            return self.timer_failed(id, &incident, e);
        }
        let Some(timer) = Timer::from_row(&row).filter(|_| row.data.is_object() && !row.incident_id.is_empty()) else {
            self.dead_letter_timer(id, &incident, &format!("the stored timer `{}` cannot be read", row.kind));
            return false;
        };
        let Err(e) = self.fire(row, timer) else { return true };
        self.timer_failed(id, &incident, e)
    }

    /// Defers a timer whose firing failed, or dead-letters it after [`MAX_ATTEMPTS`]; false.
    fn timer_failed(&self, id: i64, incident: &str, e: EngineError) -> bool {
        match self.store().defer_timer(id, self.now(), backoff_ms(0)) {
            Ok(attempts) if attempts < MAX_ATTEMPTS => {
                tracing::warn!(timer = id, incident = %incident, attempt = attempts, "timer failed, retrying with backoff: {e}")
            }
            Ok(attempts) => self.dead_letter_timer(id, incident, &format!("failed {attempts} times: {e}")),
            Err(d) => {
                tracing::error!(timer = id, "cannot postpone the failed timer: {d:#}");
                self.dead_letter_timer(id, incident, &format!("failed and could not be postponed: {e}"));
            }
        }
        false
    }

    /// Sets a timer aside, journaling it on its incident when that can be read.
    fn dead_letter_timer(&self, id: i64, incident: &str, reason: &str) {
        tracing::error!(timer = id, incident = %incident, "dead-lettering timer: {reason}");
        let journaled = !incident.is_empty()
            && self
                .mutate(incident, true, |ctx| {
                    ctx.tx.dead_letter_timer(id, ctx.now, reason)?;
                    ctx.emit(Event::DeadLettered {
                        item: DeadItemKind::Timer,
                        id: id.to_string(),
                        purpose: None,
                        reason: reason.to_string(),
                    })?;
                    Ok(())
                })
                .is_ok();
        if !journaled {
            let now = self.now();
            if let Err(e) = self.store().transaction(&mut |tx| tx.dead_letter_timer(id, now, reason)) {
                tracing::error!(timer = id, "cannot set the timer aside: {e:#}");
            }
        }
    }

    fn fire(&self, row: TimerRow, timer: Timer) -> Result<(), EngineError> {
        let res = self.mutate(&row.incident_id, true, |ctx| {
            // Gone (cancelled, or fired) or taken over by another node since it was claimed: not fired here.
            if !ctx.tx.take_timer(row.id)? {
                return Ok(());
            }
            if let Some(node) = &row.reclaimed_from {
                tracing::warn!(timer = row.id, incident = %row.incident_id, node = %node, "firing a timer whose node's lease ran out");
                ctx.emit(Event::Reclaimed { item: DeadItemKind::Timer, id: row.id.to_string(), node: node.clone() })?;
            }
            if ctx.inc.status != Status::Closed {
                ctx.fire_timer(&timer, row.due_at).map_err(EngineError::Internal)?;
            }
            Ok(())
        });
        self.drop_orphan_timer(res.map(|_| ()), row.id)
    }

    /// Ends a timer firing: a timer whose incident or complaint does not
    /// exist can never fire, so it is deleted instead of failing again at
    /// every pass; any other error is the caller's.
    pub(super) fn drop_orphan_timer(&self, fired: Result<(), EngineError>, timer: i64) -> Result<(), EngineError> {
        match fired {
            Err(EngineError::NotFound { .. }) => {
                self.store().transaction(&mut |tx| tx.delete_timer(timer))?;
                Ok(())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_exact_and_read_back() {
        let timers = [
            Timer::Deadline(DeadlineKind::Report),
            Timer::Deadline(DeadlineKind::Ack),
            Timer::Deadline(DeadlineKind::Step("bridge-2".into())),
            Timer::Escalate { level: 1, round: 2 },
            Timer::TrackUpdate,
            Timer::TrackStale,
        ];
        for t in timers {
            let row = TimerRow {
                id: 1,
                incident_id: "I".into(),
                due_at: 0,
                kind: t.key(),
                family: t.family().as_str().into(),
                data: t.data(),
                reclaimed_from: None,
            };
            assert_eq!(Timer::from_row(&row), Some(t));
        }
        assert_eq!(Timer::Deadline(DeadlineKind::Step("bridge".into())).key(), "deadline:step:bridge");
        assert_eq!(Timer::Escalate { level: 0, round: 3 }.key(), "escalate:0");
    }
}
