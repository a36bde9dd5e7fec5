//! What playbook references are resolved against, kept apart from the
//! validator so the config loader and the inject parser can build and read it
//! without depending on the whole validator.

use super::types::World;
use std::collections::{BTreeMap, BTreeSet};

/// What playbook references are checked against: `crisis.toml` and the roster.
#[derive(Debug, Clone, Default)]
pub struct RefContext {
    /// Notification target names from `crisis.toml` that `notify` and `channels` may name.
    pub targets: BTreeSet<String>,
    /// Plugin names (configured and built-in) with the world each implements, which decides the steps that may call it.
    pub plugins: BTreeMap<String, World>,
    /// Rota names in the roster, for `rota:NAME` references.
    pub rotas: BTreeSet<String>,
    /// Team names in the roster, for `team:NAME` references.
    pub teams: BTreeSet<String>,
    /// Roster ids of people, for `person:NAME` references and drill `by = ...`; empty means people are not checked.
    pub people: BTreeSet<String>,
    /// Roles people hold in the roster (e.g. `duty-manager`), besides the incident roles.
    pub roles: BTreeSet<String>,
    /// Targets of the built-in `status` kind: only steps with `[act.status]` may publish to them.
    pub status_targets: BTreeSet<String>,
    /// Component ids of `[status_page] components`, for `[act.status] components`.
    pub components: BTreeSet<String>,
}

/// Built-in plugins shipped inside the binary, with their worlds.
pub(crate) const BUILTIN_PLUGINS: &[(&str, World)] = &[
    ("webhook-notify", World::Notifier),
    ("sms-gateway", World::Notifier),
    ("appease-script", World::Appeasement),
    ("drill-sim", World::Drill),
    ("keyword-classifier", World::Classifier),
];

impl RefContext {
    /// A context that knows only the built-in plugins; used when no config is given.
    pub fn builtins_only() -> Self {
        let mut c = RefContext::default();
        c.add_builtin_plugins();
        c
    }

    /// Adds the built-in plugins, which every configuration can name.
    pub fn add_builtin_plugins(&mut self) {
        for (name, world) in BUILTIN_PLUGINS {
            self.plugins.insert(name.to_string(), *world);
        }
    }
}
