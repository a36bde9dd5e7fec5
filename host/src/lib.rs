//! crisis: a crisis and incident response daemon.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else
//! lives in this library so end-to-end tests and benchmarks can reach it.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod diag;
pub mod drill;
pub mod incident;
pub mod playbook;
pub mod plugin;
pub mod report;
pub mod store;
pub mod tomlfile;
pub mod when;
