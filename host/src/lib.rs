//! crisis: a crisis and incident response daemon.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else
//! lives in this library so end-to-end tests and benchmarks can reach it.

pub mod cli;
pub mod config;
pub mod diag;
pub mod playbook;
pub mod tomlfile;
pub mod incident;
pub mod store;
pub mod report;
pub mod generation;
pub mod daemon;
pub mod drill;
