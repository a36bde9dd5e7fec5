//! The runner's side of live control: applying queued [`Command`]s between
//! steps, on the drill's own thread, and journaling each on the drill incident.

use super::super::clock::DrillTime;
use super::super::control::{Command, Control, ControlError, Hold, Reply};
use super::super::report::ControllerEntry;
use super::{DrillError, Due, Runner};
use crate::incident::EngineError;
use crate::incident::events::Event;
use std::time::Instant;

/// What applying one command came to: its result text, and whether the drill stops.
struct Applied {
    result: String,
    stop: bool,
}

impl Runner<'_> {
    /// Whether anything holds the drill clock still.
    pub(super) fn paused(&self) -> bool {
        !self.holds.is_empty()
    }

    /// Applies every queued command; `Some(status)` when the drill must end now.
    pub(super) fn steer(&mut self, ctl: &Control, time: &DrillTime) -> Result<Option<String>, DrillError> {
        let mut stopped = false;
        for (cmd, answer) in ctl.take() {
            if stopped {
                let _ = answer.send(Err(ControlError::Conflict("the drill was cancelled just before".into())));
                continue;
            }
            let now = time.now();
            let res = match self.apply(cmd, now, time) {
                Ok(a) => {
                    stopped = a.stop;
                    Ok(Reply {
                        drill_incident: self.incident.clone(),
                        drill_time: now,
                        paused: self.paused(),
                        held_by: self.holds.iter().cloned().collect(),
                        result: a.result,
                    })
                }
                Err(Steer::Refused(e)) => Err(e),
                Err(Steer::Broken(e)) => {
                    let _ = answer.send(Err(ControlError::Conflict(format!("the drill broke down: {e}"))));
                    return Err(e);
                }
            };
            let _ = answer.send(res);
        }
        Ok(stopped.then(|| "cancelled".to_string()))
    }

    fn apply(&mut self, cmd: Command, now: i64, time: &DrillTime) -> Result<Applied, Steer> {
        let done = |result: String| Ok(Applied { result, stop: false });
        match cmd {
            Command::Cancel { by, reason } => {
                if let Some(id) = self.incident.clone() {
                    self.engine.cancel_drill(&id, &by, reason.as_deref()).map_err(Steer::engine)?;
                }
                let result =
                    format!("cancelled by {by}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default());
                self.steering_entry(now, "cancel", &result);
                Ok(Applied { result, stop: true })
            }
            Command::Pause { by } => {
                if let Some(Hold::Controller(who)) = self.holds.iter().find(|h| matches!(h, Hold::Controller(_))) {
                    return Err(Steer::Refused(ControlError::Conflict(format!(
                        "the drill is already paused (by {who}); resume it with crisis drill resume"
                    ))));
                }
                self.hold(Hold::Controller(by.clone()), time);
                self.journal(Event::DrillPaused { by: by.clone(), live_incident: None })?;
                let result = format!("paused by {by}; the drill clock stands still");
                self.steering_entry(now, "pause", &result);
                done(result)
            }
            Command::Resume { by } => {
                let Some(h) = self.holds.iter().find(|h| matches!(h, Hold::Controller(_))).cloned() else {
                    let why = match self.holds.iter().next() {
                        Some(Hold::LiveIncident(live)) => format!(
                            "the drill was not paused by the controller; it is held by live incident {live} and resumes when that is resolved"
                        ),
                        _ => "the drill is not paused".to_string(),
                    };
                    return Err(Steer::Refused(ControlError::Conflict(why)));
                };
                let (running, paused_ms) = self.let_go(&h, time);
                self.journal(Event::DrillResumed {
                    by: by.clone(),
                    live_incident: None,
                    clock_running: running,
                    paused_ms,
                })?;
                let result = if running {
                    format!("resumed by {by} after {} paused", crate::incident::clock::fmt_span(paused_ms))
                } else {
                    format!("resumed by {by}; the clock stays stopped while a live incident holds the drill")
                };
                self.steering_entry(now, "resume", &result);
                done(result)
            }
            Command::HoldFor { live } => {
                let h = Hold::LiveIncident(live.clone());
                if self.holds.contains(&h) {
                    return done(format!("already held by live incident {live}"));
                }
                self.hold(h, time);
                self.journal(Event::DrillPaused { by: "crisis".into(), live_incident: Some(live.clone()) })?;
                let result = format!("paused while live incident {live} is open");
                self.steering_entry(now, "pause", &result);
                done(result)
            }
            Command::Release { live } => {
                let h = Hold::LiveIncident(live.clone());
                if !self.holds.contains(&h) {
                    return done(format!("not held by live incident {live}"));
                }
                let (running, paused_ms) = self.let_go(&h, time);
                self.journal(Event::DrillResumed {
                    by: "crisis".into(),
                    live_incident: Some(live.clone()),
                    clock_running: running,
                    paused_ms,
                })?;
                let result = format!(
                    "live incident {live} is over; the drill {}",
                    if running { "resumes" } else { "stays paused" }
                );
                self.steering_entry(now, "resume", &result);
                done(result)
            }
            Command::Inject { mut inject, by } => {
                inject.at = std::time::Duration::from_millis((now - self.t0).max(0) as u64);
                self.injects.push(inject);
                self.done.push(false);
                let i = self.injects.len() - 1;
                self.controller_by.insert(i, by);
                let inc = self.current().map_err(Steer::Broken)?;
                match self.due(i, inc.as_ref()) {
                    Due::At(t) if t <= now => self.perform(i, now).map_err(Steer::Broken)?,
                    Due::Never(why) => {
                        self.done[i] = true;
                        self.note(i, now, format!("not performed: {why}"));
                    }
                    _ => {
                        return done(format!("inject #{} waits for its precondition, then plays", i + 1));
                    }
                }
                let result = self.log.last().map(|e| e.result.clone()).unwrap_or_default();
                done(format!("inject #{}: {result}", i + 1))
            }
        }
    }

    fn hold(&mut self, h: Hold, time: &DrillTime) {
        if self.holds.is_empty() {
            time.pause();
            self.paused_since = Some(Instant::now());
        }
        self.holds.insert(h);
    }

    /// Drops hold `h`; whether the clock runs again, and for how long it stood still (real ms).
    fn let_go(&mut self, h: &Hold, time: &DrillTime) -> (bool, i64) {
        self.holds.remove(h);
        if !self.holds.is_empty() {
            return (false, 0);
        }
        time.resume();
        let ms = self.paused_since.take().map(|s| s.elapsed().as_millis() as i64).unwrap_or(0);
        (true, ms)
    }

    /// Journals a steering event on the drill incident, if the alert opened one yet.
    pub(super) fn journal(&self, ev: Event) -> Result<(), Steer> {
        match &self.incident {
            Some(id) => self.engine.record_steering(id, ev).map_err(Steer::engine),
            None => Ok(()),
        }
    }

    fn steering_entry(&mut self, at: i64, kind: &str, result: &str) {
        self.log.push(ControllerEntry {
            at,
            offset_ms: at - self.t0,
            inject: 0,
            kind: kind.to_string(),
            text: format!("controller: {kind}"),
            result: result.to_string(),
        });
    }
}

/// A command refused (answered to its caller), or a breakdown that ends the drill.
pub(super) enum Steer {
    Refused(ControlError),
    Broken(DrillError),
}

impl Steer {
    fn engine(e: EngineError) -> Steer {
        match e {
            EngineError::Internal(e) => Steer::Broken(DrillError::Failed(e)),
            other => Steer::Refused(ControlError::Conflict(other.to_string())),
        }
    }
}
