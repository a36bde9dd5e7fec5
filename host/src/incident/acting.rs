//! An admin acting for someone else: journaled on the incident before the
//! action it covers, so the record shows who really did it.

use super::engine::Engine;
use super::error::EngineError;
use super::events::Event;

/// A person named to act must be in the roster, unless there is no roster at all.
pub(super) fn check_roster_person(roster: &crate::config::roster::Roster, person: &str) -> Result<(), EngineError> {
    if roster.people.is_empty() || roster.people.contains_key(person) {
        return Ok(());
    }
    Err(EngineError::NotFound {
        what: "person in the roster",
        id: person.to_string(),
        nearby: crate::diag::nearby(person, roster.people.keys().map(String::as_str)),
    })
}

impl Engine {
    /// Journals that `by` (an admin's person id, or `bootstrap-admin`, holding
    /// token `token`) acts for `person` in `action` on incident `id`. Call it
    /// right before the action; a refused action leaves this record standing
    /// as the attempt.
    pub fn record_acting_for(
        &self,
        id: &str,
        by: &str,
        token: Option<&str>,
        person: &str,
        action: &str,
    ) -> Result<(), EngineError> {
        self.mutate(id, false, |ctx| {
            ctx.check_person(person)?;
            Ok(ctx.emit(Event::ActingFor {
                by: by.to_string(),
                token: token.map(str::to_string),
                person: person.to_string(),
                action: action.to_string(),
            })?)
        })?;
        Ok(())
    }
}
