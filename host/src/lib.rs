//! crisis: a crisis and incident response daemon.
//!
//! The binary (`src/main.rs`) only parses the command line; everything else
//! lives in this library so end-to-end tests and benchmarks can reach it.
pub mod plugin;
