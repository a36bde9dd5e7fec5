//! crisis: a crisis and incident response daemon.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else
//! lives in this library so end-to-end tests and benchmarks can reach it.

pub mod cli;
pub(crate) mod complaints;
pub mod config;
pub mod daemon;
pub(crate) mod diag;
pub mod drill;
pub mod incident;
pub mod playbook;
pub mod plugin;
pub(crate) mod report;
pub mod store;
pub(crate) mod tomlfile;
pub(crate) mod when;
