//! Live control of a running drill: the exercise controller cancels,
//! pauses, resumes or adds an inject, and the daemon holds a drill while a
//! serious live incident is open. Commands queue here and the drill's own
//! runner applies them between its steps (so the engine, the clock and the
//! controller log change on one thread), answering each caller in turn.

use crate::playbook::inject::{self, Inject};
use crate::playbook::model::DrillInject;
use crate::playbook::refs::RefContext;
use crate::playbook::spec::Playbook;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Who holds a drill's clock still: the controller (one pause at a time) or
/// an open live incident (by id). The drill runs only when nothing holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", content = "id", rename_all = "snake_case")]
pub enum Hold {
    /// `crisis drill pause`, by the named caller.
    Controller(String),
    /// The open live incident with this id.
    LiveIncident(String),
}

/// What a caller asks a running drill to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Stop the drill now; it ends `cancelled`.
    Cancel {
        /// Who cancelled (token person, or `crisis`).
        by: String,
        /// Why, as given with `--reason`.
        reason: Option<String>,
    },
    /// Stop the drill clock until resumed.
    Pause {
        /// Who paused.
        by: String,
    },
    /// Let go of the controller's pause.
    Resume {
        /// Who resumed.
        by: String,
    },
    /// Hold the drill while live incident `live` is open.
    HoldFor {
        /// The live incident's id.
        live: String,
    },
    /// Live incident `live` is over: let go of its hold.
    Release {
        /// The live incident's id.
        live: String,
    },
    /// Play this inject now, on behalf of the controller `by`.
    Inject {
        /// The inject, already checked against the playbook.
        inject: Inject,
        /// Who added it.
        by: String,
    },
}

/// How a running drill answered a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The drill's incident, once its alert opened one.
    pub drill_incident: Option<String>,
    /// Drill time when the command took effect, Unix ms.
    pub drill_time: i64,
    /// Whether the drill clock stands still now.
    pub paused: bool,
    /// What holds it still (empty when running).
    pub held_by: Vec<Hold>,
    /// What came of the command, for people.
    pub result: String,
}

/// Why a running drill did not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlError {
    /// The drill's state does not allow it (already paused, already ended, ...).
    #[error("{0}")]
    Conflict(String),
    /// The drill did not answer in time (it may still apply the command).
    #[error("{0}")]
    Timeout(String),
}

type Answer = Sender<Result<Reply, ControlError>>;

#[derive(Default)]
struct Queue {
    commands: VecDeque<(Command, Answer)>,
    ended: Option<String>,
}

/// The command queue between callers and one running drill.
#[derive(Default)]
pub struct Control {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.lock();
        write!(f, "Control({} queued, ended: {:?})", q.commands.len(), q.ended)
    }
}

impl Control {
    /// A queue for a drill about to start.
    pub fn new() -> Arc<Self> {
        Arc::new(Control::default())
    }

    /// Hands `cmd` to the drill without waiting for its answer (blackout halts).
    pub fn post(&self, cmd: Command) {
        let (tx, _) = channel();
        let mut q = self.lock();
        if q.ended.is_none() {
            q.commands.push_back((cmd, tx));
            self.wake.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `cmd` to the drill and waits up to `timeout` for its answer.
    pub fn request(&self, cmd: Command, timeout: Duration) -> Result<Reply, ControlError> {
        let (tx, rx) = channel();
        {
            let mut q = self.lock();
            if let Some(status) = &q.ended {
                return Err(ControlError::Conflict(format!("the drill has already ended ({status})")));
            }
            q.commands.push_back((cmd, tx));
        }
        self.wake.notify_all();
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => Err(ControlError::Timeout(format!(
                "the drill did not answer within {}s; it may still apply the command: check crisis drill list",
                timeout.as_secs()
            ))),
        }
    }

    /// Commands waiting to be applied, oldest first.
    pub(crate) fn take(&self) -> Vec<(Command, Answer)> {
        self.lock().commands.drain(..).collect()
    }

    /// Sleeps up to `d`, waking early when a command arrives.
    pub(crate) fn wait(&self, d: Duration) {
        let q = self.lock();
        if q.commands.is_empty() {
            drop(self.wake.wait_timeout(q, d).unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// The drill ended `status`: commands still queued, and later ones, are refused.
    pub(crate) fn end(&self, status: &str) {
        let rest: Vec<(Command, Answer)> = {
            let mut q = self.lock();
            q.ended = Some(status.to_string());
            q.commands.drain(..).collect()
        };
        for (_, tx) in rest {
            let _ = tx.send(Err(ControlError::Conflict(format!("the drill has already ended ({status})"))));
        }
    }
}

/// Which key `--target` fills for each inject kind; kinds without one take none.
fn target_key(kind: &str) -> Option<&'static str> {
    match kind {
        "step-failure" | "step-done" | "approve" => Some("step"),
        "complaint-burst" => Some("channel"),
        "ack" | "resolve" => Some("by"),
        _ => None,
    }
}

#[derive(Deserialize)]
struct OneInject {
    inject: Vec<serde_spanned::Spanned<DrillInject>>,
}

/// A controller inject of `kind` for a drill of `pb`, checked like a
/// `[[drill.inject]]` entry: `target` fills the kind's step (`step-failure`,
/// `step-done`, `approve`), channel (`complaint-burst`) or person (`ack`,
/// `resolve`); `payload` is a JSON object of the entry's other keys. It plays
/// now (`at` is refused); `after` still delays a responder action.
pub fn controller_inject(
    pb: &Playbook,
    ctx: &RefContext,
    kind: &str,
    target: Option<&str>,
    payload: Option<&serde_json::Value>,
) -> Result<Inject, String> {
    let mut table = match payload {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("--payload must be a JSON object of inject keys, not {other}")),
    };
    for key in ["kind", "at"] {
        if table.contains_key(key) {
            return Err(match key {
                "kind" => "--payload must not set `kind`: give the kind as the command's KIND argument".to_string(),
                _ => "--payload must not set `at`: a controller inject plays now (use `after` to delay a responder action)"
                    .to_string(),
            });
        }
    }
    if kind == "alert" {
        return Err("a drill starts from exactly one alert, which it already had; inject `duplicate-alert` or `complaint-burst` instead".into());
    }
    if !inject::KINDS.contains(&kind) {
        let near = crate::diag::nearby(kind, inject::KINDS.iter().copied());
        return Err(format!(
            "unknown inject kind `{kind}`: use one of {}{}",
            inject::KINDS.join(", "),
            near.first().map(|n| format!(" (did you mean {n}?)")).unwrap_or_default()
        ));
    }
    if let Some(t) = target {
        let Some(key) = target_key(kind) else {
            return Err(format!("--target does not apply to a `{kind}` inject; give its keys in --payload"));
        };
        if table.contains_key(key) {
            return Err(format!("give `{key}` once: either --target or in --payload"));
        }
        table.insert(key.into(), serde_json::Value::String(t.to_string()));
    }
    table.insert("kind".into(), serde_json::Value::String(kind.to_string()));
    let doc = toml::Value::try_from(serde_json::json!({ "inject": [table] }))
        .and_then(|v| toml::to_string(&v).map_err(serde::ser::Error::custom))
        .map_err(|e| format!("--payload cannot be an inject: {e}"))?;
    let mut unknown = Vec::new();
    let parsed: OneInject =
        serde_ignored::deserialize(toml::Deserializer::parse(&doc).map_err(|e| e.to_string())?, |p| {
            // The path runs through the wrapper (`inject.0.…`); the key is its last part.
            unknown.push(p.to_string().rsplit('.').next().unwrap_or_default().to_string())
        })
        .map_err(|e| format!("--payload does not fit a `{kind}` inject: {}", e.message()))?;
    if !unknown.is_empty() {
        return Err(format!(
            "unknown inject key(s) {}: see [[drill.inject]] in the playbook format",
            unknown.join(", ")
        ));
    }
    let steps: Vec<String> = pb.act.iter().map(|s| s.id.clone()).collect();
    let raw = parsed.inject.first().ok_or("--payload held no inject")?;
    inject::from_toml(raw, 1, &steps, ctx).map_err(|errs| {
        errs.into_iter().map(|(_, m)| m.replace("[[drill.inject]] #1", "the inject")).collect::<Vec<_>>().join("; ")
    })
}
