//! `crisis playbook validate|list|show`: offline, straight from the files.

use super::Cli;
use super::output::{Failure, print_json, table};
use crate::config;
use crate::diag::nearby;
use crate::playbook::{self, Snapshot};
use clap::Subcommand;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PlaybookCmd {
    /// Check playbooks and report every problem as path:line:col: message (exit 2 on any).
    ///
    /// References (targets, rotas, teams, people, roles, plugins) are checked
    /// against the configuration and its roster.
    Validate {
        /// Files or directories. Default: the configured playbook directory.
        paths: Vec<PathBuf>,
    },
    /// List the playbooks in the configured directory.
    List,
    /// Show one playbook as the engine will run it.
    Show {
        /// Playbook id.
        id: String,
    },
}

pub(crate) fn run(cli: &Cli, cmd: &PlaybookCmd) -> Result<(), Failure> {
    let cfg = config::discover(cli.config.as_deref())
        .map_err(|d| Failure::diagnostics("the configuration is invalid; fix the errors above", d))?;
    let paths = match cmd {
        PlaybookCmd::Validate { paths } if !paths.is_empty() => paths.clone(),
        _ => vec![cfg.playbooks.clone()],
    };
    let snapshot = Snapshot::read(&paths);
    let validated = playbook::validate(&snapshot, &cfg.ref_context());
    match cmd {
        PlaybookCmd::Validate { .. } => {
            if cli.json {
                #[derive(Serialize)]
                struct Out<'a> {
                    valid: bool,
                    files: usize,
                    playbooks: Vec<&'a str>,
                    set_hash: String,
                    errors: Vec<String>,
                    warnings: Vec<String>,
                }
                print_json(&Out {
                    valid: validated.is_ok(),
                    files: snapshot.files.len(),
                    playbooks: validated.playbooks.iter().map(|p| p.id.as_str()).collect(),
                    set_hash: snapshot.hash(),
                    errors: validated.diagnostics.iter().map(|d| d.to_string()).collect(),
                    warnings: validated.warnings.iter().map(|d| d.to_string()).collect(),
                });
                return if validated.is_ok() { Ok(()) } else { Err(Failure::new(2, "")) };
            }
            if !validated.is_ok() {
                let n = validated.diagnostics.len();
                return Err(Failure::diagnostics(
                    format!(
                        "{n} problem{} in {} file{}",
                        if n == 1 { "" } else { "s" },
                        snapshot.files.len(),
                        if snapshot.files.len() == 1 { "" } else { "s" }
                    ),
                    validated.diagnostics,
                ));
            }
            // Warnings never change the exit code. They go to stderr once the
            // set is valid, so a broken set shows its errors alone first.
            for w in &validated.warnings {
                eprintln!("{w}");
            }
            println!(
                "ok: {} playbook{} valid",
                validated.playbooks.len(),
                if validated.playbooks.len() == 1 { "" } else { "s" }
            );
            Ok(())
        }
        PlaybookCmd::List => {
            if !validated.is_ok() {
                return Err(Failure::diagnostics(
                    "the playbook set is invalid; run `crisis playbook validate` for details",
                    validated.diagnostics,
                ));
            }
            if cli.json {
                #[derive(Serialize)]
                struct Row<'a> {
                    id: &'a str,
                    name: &'a str,
                    category: String,
                    severity: String,
                    path: &'a std::path::Path,
                    hash: &'a str,
                    drill_schedule: Option<&'a str>,
                }
                let rows: Vec<Row> = validated
                    .playbooks
                    .iter()
                    .map(|p| Row {
                        id: &p.id,
                        name: &p.name,
                        category: p.category.to_string(),
                        severity: p.severity.to_string(),
                        path: &p.path,
                        hash: &p.hash,
                        drill_schedule: p.drill.as_ref().and_then(|d| d.schedule.as_deref()),
                    })
                    .collect();
                print_json(&rows);
            } else {
                let rows: Vec<Vec<String>> = validated
                    .playbooks
                    .iter()
                    .map(|p| {
                        vec![
                            p.id.clone(),
                            p.severity.to_string(),
                            p.category.to_string(),
                            p.act.len().to_string(),
                            p.hash[..12].to_string(),
                            p.name.clone(),
                        ]
                    })
                    .collect();
                print!("{}", table(&["ID", "SEVERITY", "CATEGORY", "STEPS", "HASH", "NAME"], &rows));
            }
            Ok(())
        }
        PlaybookCmd::Show { id } => {
            if !validated.is_ok() {
                return Err(Failure::diagnostics(
                    "the playbook set is invalid; run `crisis playbook validate` for details",
                    validated.diagnostics,
                ));
            }
            let Some(pb) = validated.playbooks.iter().find(|p| &p.id == id) else {
                let near = nearby(id, validated.playbooks.iter().map(|p| p.id.as_str()));
                return Err(Failure::not_found(format!("no playbook `{id}`; playbooks: {}", near.join(", "))));
            };
            if cli.json {
                print_json(pb);
            } else {
                print!("{}", playbook::describe::describe(pb));
            }
            Ok(())
        }
    }
}
