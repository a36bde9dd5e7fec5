//! The incident engine: six phases, steps, deadlines,
//! escalation, dedup, and side effects recorded before they run.

pub mod clock;
pub mod effects;
mod engine;
pub mod events;
pub mod loader;
pub mod outbox;
pub mod state;
mod when;

pub use engine::{Engine, EngineError, Generation, TriggerRequest, TriggerOutcome, StepAction, Actor};

#[cfg(test)]
mod tests;
