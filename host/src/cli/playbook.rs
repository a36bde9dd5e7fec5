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
                print!("{}", describe(pb));
            }
            Ok(())
        }
    }
}

/// A readable summary of a playbook, phase by phase.
fn describe(p: &playbook::Playbook) -> String {
    use std::fmt::Write;
    let d = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let mut s = String::new();
    let _ = writeln!(s, "{} — {}", p.id, p.name);
    let _ = writeln!(
        s,
        "  category {}, default severity {}, file {}, hash {}",
        p.category,
        p.severity,
        p.path.display(),
        &p.hash[..12]
    );
    if !p.summary.is_empty() {
        let _ = writeln!(s, "  {}", p.summary);
    }
    if let Some(t) = &p.trigger {
        let m: Vec<String> = t.matches.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "trigger: match {} dedup {}", m.join(","), t.dedup_key.as_deref().unwrap_or("-"));
    }
    let req: Vec<&str> = p.report.require.iter().map(|f| f.as_str()).collect();
    let _ = writeln!(
        s,
        "1 report:   within {}, require [{}], notify [{}]",
        d(p.report.within),
        req.join(", "),
        p.report.notify.join(", ")
    );
    let _ = writeln!(
        s,
        "2 activate: {}channels [{}]{}",
        p.activate.approval.as_ref().map(|a| format!("approval by {a}, ")).unwrap_or_default(),
        p.activate.channels.join(", "),
        p.activate.within.map(|w| format!(", within {}", d(w))).unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "3 assign:   commander {}{}{}{}",
        p.assign.commander,
        p.assign.liaison.as_ref().map(|l| format!(", liaison {l}")).unwrap_or_default(),
        p.assign.scribe.as_ref().map(|l| format!(", scribe {l}")).unwrap_or_default(),
        p.assign.ack_within.map(|w| format!(", ack within {}", d(w))).unwrap_or_default()
    );
    for e in &p.assign.escalate {
        let _ = writeln!(s, "             escalate after {} to {} (x{})", d(e.after), e.to, e.repeat);
    }
    let _ = writeln!(s, "4 act:");
    for st in &p.act {
        let _ = writeln!(
            s,
            "   - {} [{}]{}{}{}",
            st.id,
            st.kind,
            st.within.map(|w| format!(" within {}", d(w))).unwrap_or_default(),
            if st.after.is_empty() { String::new() } else { format!(" after {}", st.after.join(",")) },
            st.when.as_ref().map(|w| format!(" when {w}")).unwrap_or_default()
        );
        for t in &st.tasks {
            let _ = writeln!(s, "       · {t}");
        }
    }
    let _ = writeln!(
        s,
        "5 track:    {}{}notify [{}]",
        p.track.update_every.map(|w| format!("update every {}, ", d(w))).unwrap_or_default(),
        p.track.stale_after.map(|w| format!("stale after {}, ", d(w))).unwrap_or_default(),
        p.track.notify.join(", ")
    );
    let req: Vec<&str> = p.outcome.require.iter().map(|f| f.as_str()).collect();
    let _ = writeln!(
        s,
        "6 outcome:  require [{}], notify [{}]{}",
        req.join(", "),
        p.outcome.notify.join(", "),
        p.outcome.within.map(|w| format!(", within {}", d(w))).unwrap_or_default()
    );
    if let Some(dr) = &p.drill {
        // The spelling a playbook uses for the clock, not the Rust enum.
        let clock = match dr.clock {
            playbook::spec::DrillClock::Real => "real".to_string(),
            playbook::spec::DrillClock::Virtual => "virtual".to_string(),
            playbook::spec::DrillClock::Speed(n) => format!("x{n}"),
        };
        let _ = writeln!(
            s,
            "drill: schedule {} ({}), clock {clock}",
            dr.schedule.as_deref().unwrap_or("-"),
            dr.timezone.as_deref().unwrap_or("UTC")
        );
    }
    s
}
