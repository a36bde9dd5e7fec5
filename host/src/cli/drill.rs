//! `crisis drill ...`: run drills (in the daemon or standalone), list runs
//! and schedules, print after-action reports, suspend and resume schedules.

use super::Cli;
use super::client::Client;
use super::incident::ReportFormat;
use super::output::{Failure, print_json, print_reply, table};
use crate::daemon::api_types::{
    DrillList, DrillStartRequest, EmptyBody, NextRun, ReportFormat as WireFormat, ScheduleSwitch,
};
use crate::drill::index::RunRow;
use crate::drill::{self, ClockMode, DrillOptions, Extensions};
use crate::drill::run::EngineHook;
use crate::incident::Engine;
use crate::incident::clock::{fmt_ms, fmt_span};
use crate::incident::effects::LogExecutor;
use clap::Subcommand;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Subcommand)]
pub enum DrillCmd {
    /// Run a drill of a playbook now and print its scored after-action report.
    ///
    /// A drill is an incident in drill mode on its own journal: customer
    /// messages and notices to targets not marked drill_safe are captured,
    /// never sent. With the virtual clock (the default for most playbooks)
    /// every deadline, escalation and inject happens instantly, in order, and
    /// scripted responders play the team, so a multi-hour scenario finishes
    /// in well under a second. The same playbook and seed give the same
    /// journal and score.
    #[command(verbatim_doc_comment)]
    Run {
        /// Playbook id (see `crisis playbook list`).
        playbook: String,
        /// virtual, real, or a speed-up like x10 or x60. Default: virtual with
        /// --standalone; in the daemon, the playbook's [drill] clock, else virtual.
        /// On a scaled or real clock a standalone run shows its progress on a terminal.
        #[arg(long, value_name = "CLOCK", value_parser = parse_clock)]
        clock: Option<ClockMode>,
        /// Seed for the default scenario (delays, who is late, which step fails).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run in this process on an in-memory journal with the playbooks from
        /// the configuration; no daemon needed (for CI). Responders always act.
        #[arg(long)]
        standalone: bool,
        /// Report format.
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
    },
    /// Drill runs with their scores, and per playbook: schedule, next run,
    /// suspended, and whether it changed since its last drill.
    List,
    /// The after-action report of a drill run.
    Report {
        /// Run id (from `crisis drill list`).
        id: String,
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
    },
    /// Stop scheduled drills of a playbook (persisted across restarts).
    Suspend { playbook: String },
    /// Resume scheduled drills of a playbook.
    Resume { playbook: String },
}

fn parse_clock(s: &str) -> Result<ClockMode, String> {
    s.parse()
}

pub(crate) fn run(cli: &Cli, cmd: &DrillCmd) -> Result<(), Failure> {
    match cmd {
        DrillCmd::Run { playbook, clock, seed, standalone: true, format } => {
            standalone(cli, playbook, *clock, *seed, *format)
        }
        DrillCmd::Run { playbook, clock, seed, standalone: false, format } => {
            let c = Client::from_cli(cli)?;
            let body = DrillStartRequest { playbook: playbook.clone(), clock: *clock, seed: Some(*seed) };
            let v: RunRow = c.post("/v1/drills/runs", &body)?;
            if cli.json {
                print_reply(&v);
            } else if v.status == "running" {
                println!(
                    "drill {} of {} started on the {} clock; it plays the scenario's injects and the responders scripted in the playbook's [[drill.inject]]; follow it with `crisis drill list`, then `crisis drill report {}`",
                    v.id, playbook, v.clock, v.id
                );
            } else if *format == ReportFormat::Json {
                print_reply(&v.report);
            } else {
                print!(
                    "{}",
                    c.get_text(&format!("/v1/drills/runs/{}/report?format={}", v.id, WireFormat::Markdown.as_str()))?
                );
            }
            Ok(())
        }
        DrillCmd::List => list(cli),
        DrillCmd::Report { id, format } => {
            let c = Client::from_cli(cli)?;
            if *format == ReportFormat::Json || cli.json {
                let rep: drill::AfterActionReport =
                    c.get(&format!("/v1/drills/runs/{id}/report?format={}", WireFormat::Json.as_str()))?;
                print_reply(&rep);
            } else {
                print!(
                    "{}",
                    c.get_text(&format!("/v1/drills/runs/{id}/report?format={}", WireFormat::Markdown.as_str()))?
                );
            }
            Ok(())
        }
        DrillCmd::Suspend { playbook } => schedule_switch(cli, playbook, "suspend"),
        DrillCmd::Resume { playbook } => schedule_switch(cli, playbook, "resume"),
    }
}

fn standalone(
    cli: &Cli,
    playbook: &str,
    clock: Option<ClockMode>,
    seed: u64,
    format: ReportFormat,
) -> Result<(), Failure> {
    let cfg = crate::config::discover(cli.config.as_deref())
        .map_err(|d| Failure::diagnostics("the configuration is invalid; fix the errors above", d))?;
    let loaded = crate::incident::loader::load(cfg, 1, chrono::Utc::now().timestamp_millis());
    let Some(g) = loaded.generation else {
        return Err(Failure::diagnostics(
            "the playbook set is invalid; fix the errors above (crisis playbook validate)",
            loaded.diagnostics,
        ));
    };
    // Standalone runs are for CI and quick checks: virtual time unless `--clock`
    // says otherwise (the playbook's [drill] clock is for daemon runs).
    let clock = clock.unwrap_or(ClockMode::Virtual);
    // In memory, with the scripted responders, on the chosen clock.
    let mut opts =
        DrillOptions { clock, ..DrillOptions::virtual_in_memory(format!("{playbook}.standalone-{seed}"), seed) };
    if clock != ClockMode::Virtual && !cli.json {
        eprintln!(
            "running {playbook} on the {clock} clock: this takes as long as the scenario at that speed (Ctrl-C to stop)"
        );
    }
    // The playbook's simulator plugin (drill-sim) plans injects and adds criteria.
    let mut ext = Extensions::default();
    if g.playbooks.get(playbook).and_then(|p| p.drill.as_ref()).is_some_and(|d| d.simulator.is_some()) {
        let host = crate::daemon::plugins::host_for(&g.config).map_err(Failure::failed)?;
        let sim = Arc::new(drill::simulator::Simulator::new(Arc::new(host)));
        ext.sources.push(sim.clone());
        ext.hooks.push(sim);
    }
    // On a scaled or real clock a drill takes a while: show where it is, on a terminal only.
    let progress = match g.playbooks.get(playbook) {
        Some(pb) if clock != ClockMode::Virtual && std::io::stderr().is_terminal() => {
            let scenario = drill::run::scenario_for(pb, seed, &ext).ok();
            let start = drill::clock::start_time(clock, seed, None, chrono::Utc::now().timestamp_millis());
            let (hook, guard) = Progress::start(start, scenario);
            opts.engine_hook = Some(hook);
            Some(guard)
        }
        _ => None,
    };
    let out = drill::run(&g, playbook, opts, Arc::new(LogExecutor), &ext).map_err(|e| match e {
        drill::DrillError::NotFound { .. } => Failure::not_found(e.to_string()),
        drill::DrillError::Invalid(_) => Failure::invalid(e.to_string()),
        drill::DrillError::Failed(_) => Failure::failed(e.to_string()),
    })?;
    drop(progress);
    if cli.json || format == ReportFormat::Json {
        print_json(&out.report);
    } else {
        print!("{}", out.report.markdown());
    }
    Ok(())
}

/// A once-a-second progress line on stderr while a scaled or real-clock drill
/// runs: drill time so far and the next timed inject. Stops when dropped.
struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(start: i64, scenario: Option<drill::Scenario>) -> (EngineHook, Progress) {
        let engine: Arc<Mutex<Option<Arc<Engine>>>> = Arc::default();
        let slot = engine.clone();
        let hook = EngineHook(Arc::new(move |e| *slot.lock().unwrap_or_else(|p| p.into_inner()) = e));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut ticks = 0u32;
            while !stopped.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                ticks += 1;
                if ticks % 10 != 0 {
                    continue;
                }
                let Some(e) = engine.lock().unwrap_or_else(|p| p.into_inner()).clone() else { continue };
                let offset = (e.now() - start).max(0);
                let next = scenario.as_ref().and_then(|s| s.injects.iter().find(|i| i.at.as_millis() as i64 > offset));
                let next = match next {
                    Some(i) => format!("next inject +{}: {}", fmt_span(i.at.as_millis() as i64), i.kind.describe()),
                    None => "no timed inject left; responders and timers play out".to_string(),
                };
                eprint!("\r\x1b[2Kdrill time +{}; {next}", fmt_span(offset));
            }
        });
        (hook, Progress { stop, thread: Some(thread) })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        eprintln!();
    }
}

fn local(next: Option<&NextRun>) -> String {
    next.map(|n| n.local.clone()).unwrap_or_else(|| "-".into())
}

fn list(cli: &Cli) -> Result<(), Failure> {
    let v: DrillList = Client::from_cli(cli)?.get("/v1/drills")?;
    if cli.json {
        print_reply(&v);
        return Ok(());
    }
    let pbs: Vec<Vec<String>> = v
        .playbooks
        .iter()
        .map(|p| {
            let flag = if p.never_drilled {
                "never drilled"
            } else if p.changed_since_last_drill {
                "CHANGED since last drill"
            } else {
                "drilled as is"
            };
            vec![
                p.id.clone(),
                p.schedule
                    .as_ref()
                    .map(|s| format!("{s} {}", p.timezone.as_deref().unwrap_or("-")))
                    .unwrap_or_else(|| "-".into()),
                if p.suspended { "suspended".into() } else { local(p.next.as_ref()) },
                p.last_run.as_ref().and_then(|r| r.score).map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                flag.to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["PLAYBOOK", "SCHEDULE", "NEXT", "LAST SCORE", "DRILLED VERSION"], &pbs));
    let runs: Vec<Vec<String>> = v
        .runs
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.playbook_id.clone(),
                r.status.clone(),
                r.clock.clone(),
                r.score.map(|s| format!("{s} {}", r.verdict.as_deref().unwrap_or("-"))).unwrap_or_else(|| "-".into()),
                r.started_at.or(r.scheduled_for).map(fmt_ms).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    println!();
    if runs.is_empty() {
        println!("no drill runs yet: crisis drill run PLAYBOOK");
    } else {
        print!("{}", table(&["RUN", "PLAYBOOK", "STATUS", "CLOCK", "SCORE", "STARTED"], &runs));
    }
    Ok(())
}

fn schedule_switch(cli: &Cli, playbook: &str, what: &str) -> Result<(), Failure> {
    let v: ScheduleSwitch =
        Client::from_cli(cli)?.post(&format!("/v1/drills/schedules/{playbook}/{what}"), &EmptyBody {})?;
    if cli.json {
        print_reply(&v);
    } else if what == "suspend" {
        println!("scheduled drills of {playbook} are suspended; resume with: crisis drill resume {playbook}");
    } else {
        println!("scheduled drills of {playbook} resumed; next: {}", local(v.next.as_ref()));
    }
    Ok(())
}
