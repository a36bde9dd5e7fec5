//! The incident engine: six phases, steps, deadlines,
//! escalation, dedup, and side effects recorded before they run.

mod acting;
mod advance;
mod batch;
pub(crate) mod budget;
mod budget_wait;
pub(crate) mod clock;
mod commands;
pub(crate) mod complaint;
mod complaint_engine;
pub(crate) mod complaint_surge;
mod complaint_verify;
mod ctx;
mod dedup;
pub(crate) mod digest;
pub mod effects;
mod engine;
mod error;
pub(crate) mod events;
mod generation;
mod intake_ack;
pub mod loader;
mod notices;
pub(crate) mod outbox;
mod results;
mod retry;
pub mod state;
pub mod status;
pub mod status_post;
mod steer;
mod timers;
mod trigger_types;
pub mod verify;
mod when;

pub use batch::{IntakeDone, IntakeOp};
/// The engine's time source, so tools outside the daemon (the cost-curve
/// bench seeding a journal) can build an [`Engine`].
pub use clock::{Clock, ManualClock};
pub use commands::{StepAction, TriggerOutcome, TriggerRequest};
pub use complaint_engine::{NewComplaint, Recorded, first_response_template};
pub use dedup::FallbackKey;
pub use engine::{Actor, Engine, MAX_DEDUP_KEY, Observer};
pub use error::{EngineError, Hint};
pub use events::JournalEvent;
pub use generation::Generation;
pub use intake_ack::IntakeAck;

#[cfg(test)]
mod tests;
