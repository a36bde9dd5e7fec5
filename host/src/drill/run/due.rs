//! When each scenario inject may play: its offset, its precondition in the
//! incident's state, and whether people rather than scripts act on this clock.

use super::Runner;
use crate::incident::state::{Incident, Status, StepStatus};
use crate::playbook::inject::InjectKind;
use crate::playbook::types::Phase;

/// When an action may run: now or later (`Wait(Some(t))`), not yet known
/// (`Wait(None)`, its precondition has not happened), or never (`Never`).
pub(super) enum Due {
    At(i64),
    Wait,
    Never(String),
}

impl Runner<'_> {
    pub(super) fn due(&self, i: usize, inc: Option<&Incident>) -> Due {
        let inj = &self.injects[i];
        let start = self.t0 + inj.at.as_millis() as i64;
        let after = inj.after.as_millis() as i64;
        let at_least = |t: i64| Due::At(start.max(t + after));
        // On a real or sped-up clock people act; only responders the playbook
        // scripts explicitly in [[drill.inject]] stand in for them.
        if inj.kind.is_responder()
            && !self.responders
            && !self.pb.drill.as_ref().is_some_and(|d| d.injects.contains(inj))
            && !self.controller_by.contains_key(&i)
        {
            return Due::Never(
                "people act in this drill (real or sped-up clock), not the default scripted responders".into(),
            );
        }
        if let InjectKind::Alert { .. } = inj.kind {
            return Due::At(start);
        }
        let Some(inc) = inc else { return Due::Wait };
        let closed = inc.status == Status::Closed;
        match &inj.kind {
            InjectKind::Alert { .. } => unreachable!(),
            InjectKind::NoAck { .. } => Due::At(start),
            InjectKind::DuplicateAlert | InjectKind::ComplaintBurst { .. } => {
                if inc.status != Status::Open {
                    Due::Never("the incident was already resolved".into())
                } else {
                    Due::At(start)
                }
            }
            InjectKind::StepFailure { step, .. } => match inc.steps.get(step) {
                _ if inc.status != Status::Open => Due::Never("the incident was already resolved".into()),
                Some(s) if s.status.finished() => Due::Never(format!("step {step} had already finished")),
                Some(s) if s.status == StepStatus::Ready || s.status == StepStatus::Running => {
                    at_least(s.ready_at.unwrap_or(start))
                }
                _ => Due::Wait,
            },
            InjectKind::Ack { .. } => {
                if inc.acked_at.is_some() {
                    return Due::Never("already acknowledged".into());
                }
                if closed || inc.status != Status::Open {
                    return Due::Never("the incident was resolved before anyone acknowledged".into());
                }
                // The owner stays silent through every no-ack window.
                let silent = self
                    .injects
                    .iter()
                    .filter_map(|x| match x.kind {
                        InjectKind::NoAck { duration } => Some(self.t0 + (x.at + duration).as_millis() as i64),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                // `after` runs from the owner's page, at the start of the assign phase.
                match inc.phases.get(&Phase::Assign).and_then(|p| p.entered) {
                    Some(paged) => match at_least(paged) {
                        Due::At(t) => Due::At(t.max(silent)),
                        d => d,
                    },
                    None => Due::Wait,
                }
            }
            InjectKind::Approve { step: None, .. } => {
                if self.pb.activate.approval.is_none() {
                    return Due::Never("the playbook does not need approval to activate".into());
                }
                if inc.approvals.contains("activation") || inc.completed(Phase::Activate) || inc.status != Status::Open
                {
                    return Due::Never("activation no longer waited for approval".into());
                }
                match inc.phases.get(&Phase::Activate).and_then(|p| p.entered) {
                    Some(t) => at_least(t),
                    None => Due::Wait,
                }
            }
            InjectKind::Approve { step: Some(step), .. } => match inc.steps.get(step) {
                Some(s) if s.status.finished() => Due::Never(format!("step {step} had already finished")),
                Some(s) if s.status == StepStatus::Waiting => at_least(s.ready_at.unwrap_or(start)),
                Some(s) if s.status != StepStatus::Pending => {
                    Due::Never(format!("step {step} does not wait for approval"))
                }
                _ if inc.status != Status::Open => Due::Never("the incident was already resolved".into()),
                _ => Due::Wait,
            },
            InjectKind::StepDone { step, .. } => {
                let failure_pending = self.injects.iter().enumerate().any(|(j, x)| {
                    !self.done[j] && matches!(&x.kind, InjectKind::StepFailure { step: s, .. } if s == step)
                });
                match inc.steps.get(step) {
                    Some(s) if s.status.finished() => {
                        Due::Never(format!("step {step} had already finished ({:?})", s.status).to_lowercase())
                    }
                    _ if inc.status != Status::Open => Due::Never("the incident was already resolved".into()),
                    Some(s) if s.status == StepStatus::Ready && !failure_pending => {
                        match at_least(s.ready_at.unwrap_or(start)) {
                            Due::At(t) => Due::At(t.max(self.retry_at.get(step).copied().unwrap_or(0))),
                            d => d,
                        }
                    }
                    _ => Due::Wait,
                }
            }
            InjectKind::Resolve { .. } => {
                if inc.status != Status::Open {
                    return Due::Never("already resolved".into());
                }
                match inc.phases.get(&Phase::Act).and_then(|p| p.completed) {
                    Some(t) => at_least(t),
                    None => Due::Wait,
                }
            }
            InjectKind::Outcome { .. } => {
                if inc.outcome.is_some() {
                    return Due::Never("the outcome report was already written".into());
                }
                match inc.resolved_at {
                    Some(t) => at_least(t),
                    None => Due::Wait,
                }
            }
        }
    }
}
