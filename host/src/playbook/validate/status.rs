//! `[act.status]`: what a notify step publishes on the public status page,
//! and the rule that only such a step may name a `status` target (phase
//! notices and a step's own `message` are internal text).

use super::Validator;
use crate::playbook::model::{self, Str};
use crate::playbook::spec::{StatusSpec, StatusText};
use crate::playbook::types::{ComponentState, StepKind, is_locale};

impl Validator<'_, '_> {
    /// Refuses `status` targets in a phase's notify list: phases send
    /// internal text (report fields, progress), which must never be published.
    pub(super) fn no_status_targets(&mut self, list: &[Str], what: &str) {
        for t in list.iter().filter(|t| self.ctx.status_targets.contains(t.get_ref())) {
            self.err(t, format!("target `{}` in {what} is a public status page: phase notices carry internal text, so only a notify step with an [act.status] table may publish to it; remove it here", t.get_ref()));
        }
    }

    /// Checks a step's `[act.status]` table against its kind and targets;
    /// `Err(())` means an error was reported.
    pub(super) fn step_status(&mut self, s: &model::Step, id: &Str, kind: StepKind) -> Result<Option<StatusSpec>, ()> {
        let step = id.get_ref();
        let status_targets: Vec<&Str> =
            s.notify.iter().filter(|t| self.ctx.status_targets.contains(t.get_ref())).collect();
        let Some(decl) = &s.status else {
            let named = !status_targets.is_empty();
            for t in status_targets {
                self.err(t, format!("step `{step}` notifies status target `{}` but has no [act.status] table: add one with components, state and title (the public text), since the step's `message` is internal", t.get_ref()));
            }
            return if named { Err(()) } else { Ok(None) };
        };
        let span = decl.span();
        let d = decl.get_ref();
        let mut ok = true;
        if kind != StepKind::Notify {
            self.err_span(span.clone(), format!("[act.status] on `{kind}` step `{step}`: only a notify step publishes to the status page; make it kind = \"notify\" or remove the table"));
            ok = false;
        } else if status_targets.is_empty() {
            let known: Vec<String> = self.ctx.status_targets.iter().cloned().collect();
            self.err_span(span.clone(), format!("step `{step}` has [act.status] but notifies no status target: add one to `notify` (status targets: {})", if known.is_empty() { "none; declare [targets.NAME] with plugin = \"status\" in crisis.toml".to_string() } else { known.join(", ") }));
            ok = false;
        }
        if d.components.is_empty() {
            self.err_span(
                span.clone(),
                format!("step `{step}` [act.status] needs `components = [\"ID\", ...]` from [status_page] components"),
            );
            ok = false;
        }
        for c in &d.components {
            if !self.ctx.components.contains(c.get_ref()) {
                let known: Vec<String> = self.ctx.components.iter().cloned().collect();
                let known = if known.is_empty() { "none declared".to_string() } else { known.join(", ") };
                self.err(c, format!("unknown status page component `{}`: declare it in [status_page] components in crisis.toml (known: {known})", c.get_ref()));
                ok = false;
            }
        }
        let state = match &d.state {
            Some(st) => self.parse::<ComponentState>(st),
            None => {
                self.err_span(
                    span.clone(),
                    format!("step `{step}` [act.status] needs `state` (one of {})", ComponentState::ALL.join(", ")),
                );
                None
            }
        };
        let title = match &d.title {
            Some(t) if !t.get_ref().trim().is_empty() => Some(t.get_ref().clone()),
            Some(t) => {
                self.err(t, format!("step `{step}` [act.status] title is empty: write the public headline"));
                None
            }
            None => {
                self.err_span(span.clone(), format!("step `{step}` [act.status] needs `title`: the public headline"));
                None
            }
        };
        let message = d.message.clone().or_else(|| s.message.clone());
        if message.is_none() {
            self.err_span(
                span.clone(),
                format!("step `{step}` [act.status] needs `message` (or the step's `message`): the public text"),
            );
            ok = false;
        }
        let mut locales = std::collections::BTreeMap::new();
        for (tag, text) in &d.locales {
            if !is_locale(tag) {
                self.err_span(text.span(), format!("`{tag}` in step `{step}` [act.status.locales] is not a locale: use a BCP 47 tag like en, zh-CN or pt-BR"));
                ok = false;
            }
            let t = text.get_ref();
            locales.insert(
                tag.clone(),
                StatusText { title: t.title.clone(), message: t.message.clone(), resolved: t.resolved.clone() },
            );
        }
        match (ok, state, title, message) {
            (true, Some(state), Some(title), Some(message)) => Ok(Some(StatusSpec {
                components: d.components.iter().map(|c| c.get_ref().clone()).collect(),
                state,
                title,
                message,
                resolved: d.resolved.clone(),
                locales,
            })),
            _ => Err(()),
        }
    }
}
