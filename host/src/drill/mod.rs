//! Drills: a drill is an incident in drill mode, run by
//! the real engine on its own journal and clock, fed by a scenario, scored
//! from its journal, and written up as an after-action report.
//!
//! - [`scenario`]: scenarios (injects from `playbook::inject`) and the
//!   [`ScenarioSource`] extension point;
//! - [`responders`]: the default scenario and who scripted responders act as;
//! - [`clock`]: real, sped-up and virtual drill time;
//! - [`contain`]: [`DrillExecutor`], which keeps drills away from customers;
//! - [`run`]: running one drill end to end;
//! - [`score`]: HSEEP-rated criteria and the [`ScoreHook`] extension point;
//! - [`first_response`]: the drill's complaints' first responses, rated;
//! - [`report`]: the after-action report (Markdown and JSON);
//! - [`report_html`]: the same report as one self-contained HTML page;
//! - [`trend`]: a playbook's recent drill scores;
//! - [`schedule`]: cron schedules as pure decisions over a time range;
//! - [`index`]: the daemon's index of drill runs and schedule state.

pub mod clock;
pub mod contain;
pub mod control;
mod criteria;
mod facts;
pub mod first_response;
pub mod index;
mod rating;
pub mod report;
pub mod report_html;
pub mod responders;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod score;
pub mod simulator;
pub mod trend;

pub use crate::playbook::inject::{Inject, InjectKind};
pub use clock::ClockMode;
pub use contain::DrillExecutor;
pub use report::AfterActionReport;
pub use run::{DrillError, DrillOptions, DrillOutcome, Extensions, Journal, run};
pub use scenario::{Scenario, ScenarioSource};
pub use score::{Criterion, Rating, Score, ScoreHook, ScoreInput};
