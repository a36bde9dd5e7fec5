//! Status page publications: a notify step with `[act.status]` records one
//! intent per `status` target carrying a [`StatusPost`], and resolving the
//! incident records a "resolved" post (components operational again) for
//! every step that published. Only the post's own text is public: the
//! incident's title, labels, fields, notes and people never enter it.

use super::ctx::Ctx;
use super::notices::Notice;
use super::status_post::StatusPost;
use crate::config::status_page::STATUS_PLUGIN;
use crate::playbook::spec::StepSpec;
use crate::playbook::types::Purpose;

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
