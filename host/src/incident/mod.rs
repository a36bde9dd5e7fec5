//! The incident engine: six phases, steps, deadlines,
//! escalation, dedup, and side effects recorded before they run.

mod advance;
mod batch;
pub mod clock;
mod commands;
mod dedup;
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

pub use batch::{IntakeDone, IntakeOp};
pub use commands::{StepAction, TriggerOutcome, TriggerRequest};
pub use dedup::FallbackKey;
pub use engine::{Actor, Engine, Generation, Observer, MAX_DEDUP_KEY};
pub use error::{EngineError, Hint};
pub use events::JournalEvent;

#[cfg(test)]
mod tests;
