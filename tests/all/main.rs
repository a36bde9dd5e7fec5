//! The one integration-test binary of `crisis`: one module per feature, the
//! shared harnesses as modules. Every test binary links wasmtime, so one
//! binary instead of one per file keeps `cargo test` from spending its time
//! linking.
//!
//! All modules run in one process and in parallel: a test must not change
//! process-wide state (environment variables, the working directory, global
//! statics). Children get their environment through `Command::env`, and a
//! test that needs a variable in this process runs in a child process of the
//! binary (`plugin_support::in_child_with_env`).
//!
//! No `allow(dead_code)`: a helper no test uses any more is deleted, not hidden.

// Tests (and their helpers) fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod plugin_support;

mod backlog;
mod budget;
mod channels;
mod classifier;
mod cluster;
mod cluster_sync;
mod complaint_drill;
mod complaint_surge;
mod complaints;
mod console;
mod crash;
mod drill_cli;
mod drill_control;
mod drill_html;
mod drill_run;
mod drill_schedule;
mod drill_scoring;
mod egress_security;
mod exposure;
mod fsync_fatal;
mod incident_flow;
mod incident_paging;
mod intake_groups;
mod journal_integrity;
mod layers;
mod lifecycle;
mod mail;
mod outbox_chaos;
mod pagerduty;
mod playbook_validate;
mod plugin_builtins;
mod plugin_cli;
mod plugin_egress;
mod plugin_examples;
mod plugin_flow;
mod plugin_new;
mod plugin_quarantine;
mod plugin_reload;
mod plugin_sandbox;
mod plugin_test_cli;
mod postgres_store;
mod private_state;
mod reload_intake;
mod shell_docs;
mod status_page;
mod store_migrate;
mod storm;
mod tokens;
