//! Reports people read after the fact: the outcome report and the
//! human timeline. They count and reference customers by id only.

mod outcome;
mod timeline;

pub(crate) use outcome::build as outcome_report;
pub(crate) use timeline::describe;
