//! The export indices of a plugin's world, resolved once when it loads.
//!
//! Finding an export by name walks the component's type information; done
//! per call it costs a few percent of a fresh-store call. The indices are
//! fixed by the compiled component, so they are resolved with its
//! `InstancePre` and only loaded into each new instance.

use super::api::World;
use super::bindings::v0_1_0::exports::crisis::plugin::{appease, classify, notify, simulate};
use super::state::StoreState;
use wasmtime::component::InstancePre;

/// The indices of the one interface a plugin's world exports for its calls.
pub(crate) enum WorldIndices {
    Notifier(notify::GuestIndices),
    Appeasement(appease::GuestIndices),
    Drill(simulate::GuestIndices),
    Classifier(classify::GuestIndices),
}

impl WorldIndices {
    /// Resolves the exports of `world`; fails if the component lacks them.
    pub(crate) fn resolve(world: World, pre: &InstancePre<StoreState>) -> wasmtime::Result<WorldIndices> {
        Ok(match world {
            World::Notifier => WorldIndices::Notifier(notify::GuestIndices::new(pre)?),
            World::Appeasement => WorldIndices::Appeasement(appease::GuestIndices::new(pre)?),
            World::Drill => WorldIndices::Drill(simulate::GuestIndices::new(pre)?),
            World::Classifier => WorldIndices::Classifier(classify::GuestIndices::new(pre)?),
        })
    }

    /// The notifier exports, or an error naming what the plugin is instead.
    pub(crate) fn notifier(&self) -> wasmtime::Result<&notify::GuestIndices> {
        match self {
            WorldIndices::Notifier(g) => Ok(g),
            other => Err(other.not("a notifier")),
        }
    }

    /// The appeasement exports, or an error naming what the plugin is instead.
    pub(crate) fn appeasement(&self) -> wasmtime::Result<&appease::GuestIndices> {
        match self {
            WorldIndices::Appeasement(g) => Ok(g),
            other => Err(other.not("an appeasement plugin")),
        }
    }

    /// The drill exports, or an error naming what the plugin is instead.
    pub(crate) fn drill(&self) -> wasmtime::Result<&simulate::GuestIndices> {
        match self {
            WorldIndices::Drill(g) => Ok(g),
            other => Err(other.not("a drill plugin")),
        }
    }

    /// The classifier exports, or an error naming what the plugin is instead.
    pub(crate) fn classifier(&self) -> wasmtime::Result<&classify::GuestIndices> {
        match self {
            WorldIndices::Classifier(g) => Ok(g),
            other => Err(other.not("a classifier")),
        }
    }

    fn world(&self) -> World {
        match self {
            WorldIndices::Notifier(_) => World::Notifier,
            WorldIndices::Appeasement(_) => World::Appeasement,
            WorldIndices::Drill(_) => World::Drill,
            WorldIndices::Classifier(_) => World::Classifier,
        }
    }

    fn not(&self, wanted: &str) -> wasmtime::Error {
        wasmtime::Error::msg(format!("the plugin is a {} plugin, not {wanted}", self.world()))
    }
}
