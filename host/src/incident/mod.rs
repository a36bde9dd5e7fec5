//! The incident engine: six phases, steps, deadlines,
//! escalation, dedup, and side effects recorded before they run.

mod advance;
pub mod clock;
mod commands;
pub mod effects;
mod engine;
mod error;
pub mod events;
pub mod loader;
mod notices;
pub mod outbox;
pub mod state;
mod timers;
mod when;

pub use commands::{StepAction, TriggerOutcome, TriggerRequest};
pub use engine::{Actor, Engine, Generation, Observer, MAX_DEDUP_KEY};
pub use error::{EngineError, Hint};
pub use events::JournalEvent;

#[cfg(test)]
mod tests;
