//! The `[drill]` table: schedule, clock, simulator, pass score and inline injects.

use super::Validator;
use crate::playbook::inject;
use crate::playbook::model;
use crate::playbook::spec::{DEFAULT_PASS_SCORE, DrillClock, DrillSpec};
use crate::playbook::types::World;
use std::str::FromStr;

impl Validator<'_, '_> {
    pub(super) fn drill(&mut self, d: model::DrillSection, steps: &[String]) -> Option<DrillSpec> {
        let mut ok = true;
        let mut injects = Vec::new();
        for (n, raw) in d.inject.iter().enumerate() {
            match inject::from_toml(raw, n + 1, steps, self.ctx) {
                Ok(i) => injects.push(i),
                Err(errs) => {
                    ok = false;
                    for (span, msg) in errs {
                        self.err_span(span, msg);
                    }
                }
            }
        }
        if let Some(s) = &d.schedule
            && let Err(e) = croner::Cron::from_str(s.get_ref())
        {
            self.err(s, format!("bad cron schedule `{}`: {e}; write five fields like \"0 10 * * TUE\"", s.get_ref()));
            ok = false;
        }
        if let Some(tz) = &d.timezone
            && tz.get_ref().parse::<chrono_tz::Tz>().is_err()
        {
            self.err(
                tz,
                format!("unknown time zone `{}`: use an IANA name like Asia/Shanghai or Europe/Berlin", tz.get_ref()),
            );
            ok = false;
        }
        let clock = match &d.clock {
            Some(c) => self.parse::<DrillClock>(c),
            None => Some(DrillClock::Virtual),
        };
        if let Some(sim) = &d.simulator {
            match self.ctx.plugins.get(sim.get_ref()) {
                Some(World::Drill) => {}
                Some(w) => {
                    self.err(
                        sim,
                        format!(
                            "plugin `{}` implements the {w} world; a drill simulator needs a drill plugin",
                            sim.get_ref()
                        ),
                    );
                    ok = false;
                }
                None => {
                    self.err(sim, format!("unknown drill simulator plugin `{}` (built-in: drill-sim)", sim.get_ref()));
                    ok = false;
                }
            }
        }
        let pass_score = match &d.pass_score {
            Some(p) if !(0..=100).contains(p.get_ref()) => {
                let msg = format!(
                    "[drill] pass_score = {} is out of range: write a whole number from 0 to 100, the lowest \
                     total (out of 100) that passes a drill of this playbook (default {DEFAULT_PASS_SCORE})",
                    p.get_ref()
                );
                self.err_span(p.span(), msg);
                ok = false;
                DEFAULT_PASS_SCORE
            }
            p => p.as_ref().map_or(DEFAULT_PASS_SCORE, |p| *p.get_ref() as u32),
        };
        if !ok {
            return None;
        }
        Some(DrillSpec {
            schedule: d.schedule.map(|s| s.into_inner()),
            timezone: d.timezone.map(|s| s.into_inner()),
            clock: clock?,
            simulator: d.simulator.map(|s| s.into_inner()),
            pass_score,
            injects,
        })
    }
}
