//! Status page publications: a notify step with `[act.status]` records one
//! intent per `status` target carrying a [`StatusPost`], and resolving the
//! incident records a "resolved" post (components operational again) for
//! every step that published. Only the post's own text is public: the
//! incident's title, labels, fields, notes and people never enter it.

use super::ctx::Ctx;
use super::notices::Notice;
use crate::config::status_page::STATUS_PLUGIN;
use crate::playbook::spec::StepSpec;
use crate::playbook::types::{ComponentState, Purpose};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The body of a resolved post when the step does not write one.
pub const DEFAULT_RESOLVED: &str = "This issue has been resolved and the affected services are operating normally.";

/// One locale's text of a post.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PostText {
    /// The headline.
    pub title: String,
    /// The message.
    pub body: String,
}

/// What one status intent publishes: the public text in each locale and
/// the state it puts the components in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusPost {
    /// Component ids from `[status_page] components`.
    pub components: Vec<String>,
    /// The state the components are shown in while the incident is open.
    pub state: ComponentState,
    /// True for the post that ends the incident on the page.
    pub resolved: bool,
    /// The text in the status page's default locale.
    pub text: PostText,
    /// Translations by locale.
    pub locales: BTreeMap<String, PostText>,
}

impl StatusPost {
    /// The post a step publishes while the incident is open.
    pub(crate) fn open(s: &crate::playbook::spec::StatusSpec) -> Self {
        let text = PostText { title: s.title.clone(), body: s.message.clone() };
        let locales = s
            .locales
            .iter()
            .map(|(l, t)| {
                let title = t.title.clone().unwrap_or_else(|| text.title.clone());
                (l.clone(), PostText { title, body: t.message.clone().unwrap_or_else(|| text.body.clone()) })
            })
            .collect();
        StatusPost { components: s.components.clone(), state: s.state, resolved: false, text, locales }
    }

    /// The post that resolves what [`StatusPost::open`] published.
    pub(crate) fn resolved(s: &crate::playbook::spec::StatusSpec) -> Self {
        let body = s.resolved.clone().unwrap_or_else(|| DEFAULT_RESOLVED.to_string());
        let text = PostText { title: s.title.clone(), body };
        let locales = s
            .locales
            .iter()
            .map(|(l, t)| {
                let title = t.title.clone().unwrap_or_else(|| text.title.clone());
                (l.clone(), PostText { title, body: t.resolved.clone().unwrap_or_else(|| text.body.clone()) })
            })
            .collect();
        StatusPost {
            components: s.components.clone(),
            state: ComponentState::Operational,
            resolved: true,
            text,
            locales,
        }
    }
}

impl Ctx<'_> {
    /// Whether target `name` is configured as a status page target.
    pub(super) fn is_status_target(&self, name: &str) -> bool {
        self.generation_.config.targets.get(name).is_some_and(|t| t.plugin == STATUS_PLUGIN)
    }

    /// Records the step's post for each of its status targets.
    pub(super) fn publish_step(&mut self, s: &StepSpec) -> anyhow::Result<()> {
        let Some(spec) = &s.status else { return Ok(()) };
        self.publish(s, StatusPost::open(spec))
    }

    /// On resolve: a resolved post for every step that published while open.
    pub(super) fn publish_resolved(&mut self) -> anyhow::Result<()> {
        for s in self.pb.act.clone() {
            let Some(spec) = &s.status else { continue };
            if self.inc.effects_for(&Purpose::Step(s.id.clone())).recorded > 0 {
                self.publish(&s, StatusPost::resolved(spec))?;
            }
        }
        Ok(())
    }

    fn publish(&mut self, s: &StepSpec, post: StatusPost) -> anyhow::Result<()> {
        let subject = self.subject(&format!("status page: {}", post.state));
        for t in s.notify.iter().filter(|t| self.is_status_target(t)).cloned().collect::<Vec<_>>() {
            let notice = Notice::status(Purpose::Step(s.id.clone()), &t, &subject, post.clone());
            self.record_notice(notice, self.now)?;
        }
        Ok(())
    }
}
