//! Why an engine call was refused, with what the person can do about it as data.

use crate::playbook::types::{OutcomeField, ReportField};
use std::fmt;

/// Why an engine call was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Nothing by that name; `nearby` holds the names that look like it.
    #[error("no {what} `{id}`{}", nearby_hint(.nearby))]
    NotFound {
        /// What kind of thing was looked up: `incident`, `playbook`, `step`, `person`.
        what: &'static str,
        /// The name that was asked for.
        id: String,
        /// Known names close to it, closest first.
        nearby: Vec<String>,
    },
    /// The request itself is wrong; `hint` says how to fix it.
    #[error("{message}{}", hint_suffix(.hint))]
    Invalid {
        /// What is wrong, in a sentence.
        message: String,
        /// What to do about it, when the engine knows.
        hint: Option<Hint>,
    },
    /// The request does not fit the incident's current state.
    #[error("{message}{}", hint_suffix(.hint))]
    Conflict {
        /// Why the state does not allow it, in a sentence.
        message: String,
        /// What to do about it, when the engine knows.
        hint: Option<Hint>,
    },
    /// The person may not do this (they do not hold the role it needs).
    #[error("{by} cannot {action}: it needs {needs}")]
    Forbidden {
        /// Who tried.
        by: String,
        /// What they tried, e.g. `approve the activation`.
        action: String,
        /// Whom it needs: the person, role, team or rota the playbook names.
        needs: String,
    },
    /// The store or the engine failed; not the caller's fault.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl EngineError {
    /// A refused request without a hint.
    pub fn invalid(message: impl Into<String>) -> Self {
        EngineError::Invalid { message: message.into(), hint: None }
    }

    /// A request that conflicts with the incident's state, without a hint.
    pub fn conflict(message: impl Into<String>) -> Self {
        EngineError::Conflict { message: message.into(), hint: None }
    }

    /// Attaches what the person can do next (to `Invalid` and `Conflict`).
    pub fn with_hint(mut self, h: Hint) -> Self {
        if let EngineError::Invalid { hint, .. } | EngineError::Conflict { hint, .. } = &mut self {
            *hint = Some(h);
        }
        self
    }

    /// What the person can do next, if the engine knows.
    pub fn hint(&self) -> Option<&Hint> {
        match self {
            EngineError::Invalid { hint, .. } | EngineError::Conflict { hint, .. } => hint.as_ref(),
            _ => None,
        }
    }
}

fn nearby_hint(n: &[String]) -> String {
    if n.is_empty() { String::new() } else { format!("; did you mean {}?", n.join(", ")) }
}

fn hint_suffix(h: &Option<Hint>) -> String {
    h.as_ref().map(|h| format!("{}{h}", h.separator())).unwrap_or_default()
}

/// What a person can do about a refused request. The engine says what, as
/// data; `Display` renders it in command-line words, and other front ends may
/// render it their own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// The report needs this field.
    PassField(ReportField),
    /// The outcome report needs this field.
    PassOutcomeField(OutcomeField),
    /// An update needs a note.
    PassNote,
    /// The dedup key is too long.
    ShortenDedupKey,
    /// Steps start once the incident is acknowledged.
    AckFirst,
    /// The step waits for an approval.
    ApproveStep {
        /// The incident the step belongs to.
        incident: String,
        /// The step that waits.
        step: String,
    },
    /// The incident is closed; only a new one can be worked.
    OpenNew,
}

impl Hint {
    /// How the hint joins the message it follows.
    fn separator(&self) -> &'static str {
        match self {
            Hint::PassField(_) => "; ",
            Hint::AckFirst | Hint::OpenNew => " ",
            _ => ": ",
        }
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::PassField(ReportField::Scope) => f.write_str("pass --scope TEXT"),
            Hint::PassField(other) => write!(f, "pass --field {other}=TEXT"),
            Hint::PassOutcomeField(field) => write!(f, "pass --{field} TEXT"),
            Hint::PassNote => f.write_str("--note TEXT"),
            Hint::ShortenDedupKey => f.write_str("shorten --dedup-key or the playbook's dedup_key template"),
            Hint::AckFirst => f.write_str("(acknowledge it first: crisis ack)"),
            Hint::ApproveStep { incident, step } => {
                write!(f, "crisis approve {incident} --step {step} --as PERSON")
            }
            Hint::OpenNew => f.write_str("(open a new incident with `crisis trigger`)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_render_after_the_message() {
        let e = EngineError::invalid("missing report field `scope`: playbook p requires it in the report")
            .with_hint(Hint::PassField(ReportField::Scope));
        assert_eq!(
            e.to_string(),
            "missing report field `scope`: playbook p requires it in the report; pass --scope TEXT"
        );
        let e = EngineError::conflict("steps start in the act phase; incident I-1 is in the assign phase")
            .with_hint(Hint::AckFirst);
        assert_eq!(
            e.to_string(),
            "steps start in the act phase; incident I-1 is in the assign phase (acknowledge it first: crisis ack)"
        );
        let e = EngineError::conflict("x").with_hint(Hint::ApproveStep { incident: "I-1".into(), step: "s".into() });
        assert_eq!(e.to_string(), "x: crisis approve I-1 --step s --as PERSON");
        assert_eq!(e.hint(), Some(&Hint::ApproveStep { incident: "I-1".into(), step: "s".into() }));
        assert_eq!(EngineError::conflict("plain").to_string(), "plain");
    }
}
