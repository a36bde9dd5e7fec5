//! `crisis drill ...`: run drills (in the daemon or standalone), list runs
//! and schedules, print after-action reports, suspend and resume schedules.

use super::Cli;
use super::client::Client;
use super::incident::ReportFormat;
use super::output::{Failure, print_json, print_reply, table};
use crate::daemon::api_types::{
    DrillList, DrillStartRequest, EmptyBody, NextRun, ReportFormat as WireFormat, ScheduleSwitch,
};
use crate::daemon::drill_control::{DrillCancelRequest, DrillControlReply, DrillInjectRequest};
use crate::drill::index::RunRow;
use crate::drill::run::EngineHook;
use crate::drill::{self, ClockMode, DrillOptions, Extensions};
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
    ///
    /// `--format html` gives one self-contained page (inline CSS and SVG, no
    /// script, nothing loaded from anywhere): the scenario timeline with
    /// injects, phases and deadlines met or missed, the criteria with links to
    /// the journal events they rest on, and the playbook's score trend.
    #[command(verbatim_doc_comment)]
    Report {
        /// Run id (from `crisis drill list`).
        id: String,
        #[arg(long, value_enum, default_value = "md")]
        format: DrillReportFormat,
        /// Write the report to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Stop scheduled drills of a playbook (persisted across restarts).
    Suspend { playbook: String },
    /// Resume scheduled drills of a playbook, or a paused drill run.
    ///
    /// A run id (it contains a dot, like checkout.m1767600000000) lets go of
    /// `crisis drill pause`: the drill clock runs again. A playbook id resumes
    /// its suspended schedule.
    #[command(verbatim_doc_comment)]
    Resume {
        /// Playbook id (schedule) or run id (a paused drill).
        #[arg(value_name = "PLAYBOOK|RUN-ID")]
        target: String,
    },
    /// Cancel a running daemon drill: it stops now and ends `cancelled`.
    ///
    /// Its pending timers and messages are dropped; the cancel is journaled
    /// on the drill incident with who did it, and the after-action report's
    /// verdict is `cancelled`. A finished run cannot be cancelled.
    #[command(verbatim_doc_comment)]
    Cancel {
        /// Run id (from `crisis drill list`).
        id: String,
        /// Why, for the drill's journal and report.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Pause a running daemon drill: its clock stops until `crisis drill resume RUN-ID`.
    ///
    /// No deadline runs out and no inject plays while paused; the paused time
    /// never reaches the drill's journal, so scoring leaves it out.
    #[command(verbatim_doc_comment)]
    Pause {
        /// Run id (from `crisis drill list`).
        id: String,
    },
    /// Add an inject to a running daemon drill, as the exercise controller.
    ///
    /// KIND is a [[drill.inject]] kind: duplicate-alert, complaint-burst,
    /// no-ack, step-failure, ack, step-done, approve, resolve, outcome.
    /// --target gives the step (step-failure, step-done, approve), the
    /// channel (complaint-burst) or the person (ack, resolve); --payload the
    /// other keys as JSON, e.g. '{"reason":"the bridge is down","retry_after":"5m"}'.
    /// It plays now and is journaled as a controller inject.
    #[command(verbatim_doc_comment)]
    Inject {
        /// Run id (from `crisis drill list`).
        id: String,
        /// Inject kind, as in [[drill.inject]].
        kind: String,
        /// The inject's step, channel or person.
        #[arg(long, value_name = "X")]
        target: Option<String>,
        /// The inject's other keys, as a JSON object.
        #[arg(long, value_name = "JSON", value_parser = parse_payload)]
        payload: Option<serde_json::Value>,
    },
}

fn parse_payload(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(s) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("expected a JSON object, like '{\"count\": 5}'".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Sends a control command to running drill `id` and prints the answer.
fn steer<B: serde::Serialize>(cli: &Cli, id: &str, route: &str, body: &B) -> Result<(), Failure> {
    let v: DrillControlReply = Client::from_cli(cli)?.post(&format!("/v1/drills/runs/{id}/{route}"), body)?;
    if cli.json {
        print_reply(&v);
        return Ok(());
    }
    let at = v.drill_incident.as_deref().map(|i| format!(" ({i})")).unwrap_or_default();
    match v.action.as_str() {
        "cancel" => println!("drill {id}{at} {}; report: crisis drill report {id}", v.result),
        "pause" => println!(
            "drill {id}{at} {} at drill time {}; resume with: crisis drill resume {id}",
            v.result, v.drill_time
        ),
        _ => println!("drill {id}{at}: {}", v.result),
    }
    Ok(())
}

/// Formats of `crisis drill report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DrillReportFormat {
    /// Markdown.
    Md,
    /// The report as JSON.
    Json,
    /// One self-contained HTML page.
    Html,
}

impl DrillReportFormat {
    /// The `format` query value of the daemon's report endpoint.
    fn wire(self) -> &'static str {
        match self {
            DrillReportFormat::Md => WireFormat::Markdown.as_str(),
            DrillReportFormat::Json => WireFormat::Json.as_str(),
            DrillReportFormat::Html => "html",
        }
    }
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
        DrillCmd::Report { id, format, out } => report(cli, id, *format, out.as_deref()),
        DrillCmd::Suspend { playbook } => schedule_switch(cli, playbook, "suspend"),
        DrillCmd::Resume { target } if target.contains('.') => steer(cli, target, "resume", &EmptyBody {}),
        DrillCmd::Resume { target } => schedule_switch(cli, target, "resume"),
        DrillCmd::Cancel { id, reason } => steer(cli, id, "cancel", &DrillCancelRequest { reason: reason.clone() }),
        DrillCmd::Pause { id } => steer(cli, id, "pause", &EmptyBody {}),
        DrillCmd::Inject { id, kind, target, payload } => steer(
            cli,
            id,
            "injects",
            &DrillInjectRequest { kind: kind.clone(), target: target.clone(), payload: payload.clone() },
        ),
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
    // The playbook's simulator plugin (drill-sim) plans injects and adds
    // criteria; complaint bursts' complaints are classified and answered by
    // the configured plugins. Either needs the plugin host.
    let mut ext = Extensions::default();
    let pb = g.playbooks.get(playbook);
    let simulated = pb.and_then(|p| p.drill.as_ref()).is_some_and(|d| d.simulator.is_some());
    let bursts = pb
        .and_then(|p| drill::run::scenario_for(p, seed, &ext).ok())
        .is_some_and(|sc| sc.injects.iter().any(|i| matches!(i.kind, drill::InjectKind::ComplaintBurst { .. })));
    if simulated || bursts {
        let host = Arc::new(crate::daemon::plugins::host_for(&g.config).map_err(Failure::failed)?);
        if simulated {
            let sim = Arc::new(drill::simulator::Simulator::new(host.clone()));
            ext.sources.push(sim.clone());
            ext.hooks.push(sim);
        }
        ext.plugins = Some(host);
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

fn report(cli: &Cli, id: &str, format: DrillReportFormat, out: Option<&std::path::Path>) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    // `--json` without `--format` still means JSON, as everywhere else.
    let format = if cli.json && format == DrillReportFormat::Md { DrillReportFormat::Json } else { format };
    let path = format!("/v1/drills/runs/{id}/report?format={}", format.wire());
    let text = if format == DrillReportFormat::Json {
        let rep: drill::AfterActionReport = c.get(&path)?;
        let v = serde_json::to_value(&rep).map_err(|e| Failure::failed(e.to_string()))?;
        let mut s = serde_json::to_string_pretty(&v).map_err(|e| Failure::failed(e.to_string()))?;
        s.push('\n');
        s
    } else {
        c.get_text(&path)?
    };
    match out {
        None => print!("{text}"),
        Some(file) => {
            std::fs::write(file, &text).map_err(|e| {
                Failure::failed(format!(
                    "cannot write the report to {}: {e}; check the directory exists and is writable",
                    file.display()
                ))
            })?;
            eprintln!("wrote the after-action report of {id} to {} ({} bytes)", file.display(), text.len());
        }
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
                if !ticks.is_multiple_of(10) {
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
                drill::trend::scores_line(&p.recent_scores),
                flag.to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["PLAYBOOK", "SCHEDULE", "NEXT", "LAST 5 SCORES (OLDEST FIRST)", "DRILLED VERSION"], &pbs));
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
