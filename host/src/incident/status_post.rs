//! What a status page post holds: the public text in each locale and the
//! state it puts the components in. Only this text is ever published.

use crate::playbook::types::ComponentState;
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
