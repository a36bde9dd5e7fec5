//! One daemon of a shared journal as `crisis status` and `/metrics` show it.

use serde::{Deserialize, Serialize};

/// One node as `crisis status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct NodeStatus {
    /// The node id.
    pub(crate) id: String,
    /// Where it serves its API.
    pub(crate) address: String,
    /// Seconds since its last heartbeat.
    pub(crate) heartbeat_age_seconds: f64,
    /// Its heartbeat is within the lease time.
    pub(crate) alive: bool,
    /// It stopped cleanly and gave its claims back: not dead, gone.
    #[serde(default)]
    pub(crate) left: bool,
    /// This is the daemon that answered.
    #[serde(default)]
    pub(crate) this: bool,
    /// Pending intents it holds a live lease on.
    pub(crate) intents: i64,
    /// Timers it holds a live lease on.
    pub(crate) timers: i64,
    /// Other duties it holds (e.g. `scheduler`).
    #[serde(default)]
    pub(crate) holds: Vec<String>,
}
