//! People, teams and rotas: who is on call at a given instant.
//!
//! Rotas hand off at a local time of day in their own time zone, so a
//! Shanghai rota and a Berlin rota change at their own mornings, and a
//! daylight-saving change moves the instant but not the local hand-off time.

use super::model::{RosterFile, Str};
use crate::diag::{Diagnostic, Source};
use crate::playbook::types::Who;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeMap;

/// Who can be paged: people, teams and rotas, all keyed by their roster ids.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Roster {
    /// People by roster id (the id playbooks and commands use, e.g. `alice`).
    pub people: BTreeMap<String, Person>,
    /// Teams by id, each a list of people's roster ids.
    pub teams: BTreeMap<String, Vec<String>>,
    /// On-call rotas by id.
    pub rotas: BTreeMap<String, Rota>,
}

/// One person in the roster.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    /// Display name, as shown in reports and pages.
    pub name: String,
    /// IANA time zone of the person (e.g. `Asia/Shanghai`), for showing local times; `None` if unknown.
    pub timezone: Option<String>,
    /// Roles this person can fill (e.g. `commander`); `role:` references pick people by these.
    pub roles: Vec<String>,
    /// Target used to page this person.
    pub target: Option<String>,
    /// Where `smtp` targets e-mail this person; a contact detail, so never serialized.
    #[serde(skip)]
    pub email: Option<String>,
}

/// A rotation of people taking shifts of whole days.
#[derive(Debug, Clone, Serialize)]
pub struct Rota {
    /// The rota's time zone; hand-offs happen in its local time.
    pub timezone: Tz,
    /// Local time of day at which one shift hands off to the next.
    pub handoff: NaiveTime,
    /// Length of one shift in days (at least 1).
    pub shift_days: u32,
    /// Local date on which the first member's first shift starts.
    pub start: NaiveDate,
    /// Roster ids of the people taking turns, in shift order.
    pub members: Vec<String>,
}

impl Rota {
    /// The member on shift at `at`: shifts start at `handoff` local time.
    pub fn on_call(&self, at: DateTime<Utc>) -> Option<&str> {
        if self.members.is_empty() {
            return None;
        }
        let local = at.with_timezone(&self.timezone);
        let mut day = local.date_naive();
        if local.time() < self.handoff {
            day = day.pred_opt()?;
        }
        let days = (day - self.start).num_days();
        let shift = days.div_euclid(self.shift_days as i64);
        let idx = shift.rem_euclid(self.members.len() as i64) as usize;
        Some(&self.members[idx])
    }
}

impl Roster {
    /// People a reference names at `at` (a rota gives its one on-call member).
    /// Roles resolve through the roster; incident roles are resolved by the engine.
    pub fn resolve(&self, who: &Who, at: DateTime<Utc>) -> Vec<String> {
        match who {
            Who::Person(p) => vec![p.clone()],
            Who::Team(t) => self.teams.get(t).cloned().unwrap_or_default(),
            Who::Rota(r) => {
                self.rotas.get(r).and_then(|r| r.on_call(at)).map(|p| vec![p.to_string()]).unwrap_or_default()
            }
            Who::Role(role) => self
                .people
                .iter()
                .filter(|(_, p)| p.roles.iter().any(|r| r == role))
                .map(|(id, _)| id.clone())
                .collect(),
        }
    }
}

/// Validates a parsed roster file, pushing positioned diagnostics.
pub fn build(src: &Source, file: RosterFile, diags: &mut Vec<Diagnostic>) -> Roster {
    let mut roster = Roster::default();
    for (id, p) in &file.people {
        let tz = p.get_ref().timezone.as_ref();
        if let Some(tz) = tz {
            check_tz(src, tz, diags);
        }
        if let Some(t) = &p.get_ref().target {
            let _ = t; // checked against targets by the config loader
        }
        roster.people.insert(
            id.clone(),
            Person {
                name: p.get_ref().name.clone().unwrap_or_else(|| id.clone()),
                timezone: tz.map(|t| t.get_ref().clone()),
                roles: p.get_ref().roles.clone(),
                target: p.get_ref().target.as_ref().map(|t| t.get_ref().clone()),
                email: p.get_ref().email.as_ref().map(|e| e.get_ref().clone()),
            },
        );
    }
    let member = |m: &Str, diags: &mut Vec<Diagnostic>, what: &str| {
        if !file.people.contains_key(m.get_ref()) {
            diags.push(src.at(
                m.span(),
                format!("{what} member `{}` is not in [people]: add [people.{}]", m.get_ref(), m.get_ref()),
            ));
        }
        m.get_ref().clone()
    };
    for (id, t) in &file.teams {
        let members = t.get_ref().members.iter().map(|m| member(m, diags, &format!("team `{id}`"))).collect();
        roster.teams.insert(id.clone(), members);
    }
    for (id, r) in &file.rotas {
        let r = r.get_ref();
        let tz = check_tz(src, &r.timezone, diags);
        let handoff = NaiveTime::parse_from_str(r.handoff.get_ref(), "%H:%M").map_err(|_| {
            diags.push(src.at(
                r.handoff.span(),
                format!("bad hand-off time `{}`: write local time as HH:MM, like 09:00", r.handoff.get_ref()),
            ));
        });
        let start = NaiveDate::parse_from_str(r.start.get_ref(), "%Y-%m-%d").map_err(|_| {
            diags.push(
                src.at(r.start.span(), format!("bad rota start date `{}`: write it as YYYY-MM-DD", r.start.get_ref())),
            );
        });
        let shift_days = match &r.shift {
            None => Ok(1),
            Some(s) => match crate::playbook::types::parse_duration(s.get_ref()) {
                Ok(d) if d.as_secs() % 86_400 == 0 => Ok((d.as_secs() / 86_400) as u32),
                Ok(_) => {
                    diags.push(
                        src.at(s.span(), format!("rota shift `{}` must be whole days, like 1d or 7d", s.get_ref())),
                    );
                    Err(())
                }
                Err(e) => {
                    diags.push(src.at(s.span(), e));
                    Err(())
                }
            },
        };
        if r.members.is_empty() {
            diags.push(src.at(r.timezone.span(), format!("rota `{id}` has no members")));
        }
        let members = r.members.iter().map(|m| member(m, diags, &format!("rota `{id}`"))).collect();
        if let (Some(timezone), Ok(handoff), Ok(start), Ok(shift_days)) = (tz, handoff, start, shift_days) {
            roster.rotas.insert(id.clone(), Rota { timezone, handoff, shift_days, start, members });
        }
    }
    roster
}

fn check_tz(src: &Source, tz: &Str, diags: &mut Vec<Diagnostic>) -> Option<Tz> {
    match tz.get_ref().parse::<Tz>() {
        Ok(t) => Some(t),
        Err(_) => {
            diags.push(
                src.at(tz.span(), format!("unknown time zone `{}`: use an IANA name like Asia/Shanghai", tz.get_ref())),
            );
            None
        }
    }
}

/// Reads and checks the roster file; a person paged through an undeclared
/// target is an error at that person's `target`.
pub(super) fn load(src: &Source, targets: &[String], diags: &mut Vec<Diagnostic>) -> Roster {
    let doc = match crate::tomlfile::parse(src) {
        Ok(d) => d,
        Err(e) => {
            diags.extend(e);
            return Roster::default();
        }
    };
    let value = serde_spanned::Spanned::new(0..src.text.len(), toml::de::DeValue::Table(doc.root.clone()));
    let file: RosterFile = doc.section(&value, "roster", diags).unwrap_or_default();
    // Point at the person's `target` in the roster, where the fix is made.
    for (id, person) in &file.people {
        if let Some(t) = &person.get_ref().target
            && !targets.contains(t.get_ref())
        {
            let known = targets.join(", ");
            diags.push(src.at(
                t.span(),
                format!("person `{id}` is paged through target `{}`, which crisis.toml does not declare: add [targets.{}] (known: {known})", t.get_ref(), t.get_ref()),
            ));
        }
    }
    build(src, file, diags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rota(tz: &str, handoff: &str) -> Rota {
        Rota {
            timezone: tz.parse().unwrap(),
            handoff: NaiveTime::parse_from_str(handoff, "%H:%M").unwrap(),
            shift_days: 1,
            start: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            members: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn hands_off_at_local_time_in_each_zone() {
        let sh = rota("Asia/Shanghai", "09:00");
        let be = rota("Europe/Berlin", "09:00");
        // 2026-01-05 00:30 UTC = 08:30 in Shanghai (before hand-off: previous day's member, c)
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 0, 30, 0).unwrap();
        assert_eq!(sh.on_call(t), Some("c"));
        // 01:30 UTC = 09:30 Shanghai: a starts. Berlin is 02:30 local, still c.
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 1, 30, 0).unwrap();
        assert_eq!(sh.on_call(t), Some("a"));
        assert_eq!(be.on_call(t), Some("c"));
        // 08:30 UTC = 09:30 Berlin (CET, +1): a starts in Berlin too.
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 8, 30, 0).unwrap();
        assert_eq!(be.on_call(t), Some("a"));
        // Next day rotates to b.
        let t = Utc.with_ymd_and_hms(2026, 1, 6, 8, 30, 0).unwrap();
        assert_eq!(be.on_call(t), Some("b"));
    }

    #[test]
    fn daylight_saving_moves_the_instant_not_the_local_handoff() {
        let be = rota("Europe/Berlin", "09:00");
        // 2026-03-29: Berlin switches to CEST (+2). 09:00 local = 07:00 UTC.
        let before = Utc.with_ymd_and_hms(2026, 3, 29, 6, 59, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 29, 7, 1, 0).unwrap();
        assert_ne!(be.on_call(before), be.on_call(after));
    }

    #[test]
    fn weekly_shifts() {
        let mut r = rota("UTC", "00:00");
        r.shift_days = 7;
        let t0 = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        let t6 = Utc.with_ymd_and_hms(2026, 1, 11, 12, 0, 0).unwrap();
        let t7 = Utc.with_ymd_and_hms(2026, 1, 12, 12, 0, 0).unwrap();
        assert_eq!(r.on_call(t0), Some("a"));
        assert_eq!(r.on_call(t6), Some("a"));
        assert_eq!(r.on_call(t7), Some("b"));
    }
}
