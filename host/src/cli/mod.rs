//! The command line: one binary, subcommands by concern.
//!
//! Exit codes: 0 success, 1 failure, 2 invalid input (usage,
//! validation), 3 not found, 4 daemon unreachable.

mod client;
mod complaint;
mod drill;
mod fixture;
mod incident;
mod output;
mod playbook;
mod plugin;
mod shell;
mod store;
mod token;

pub use output::Failure;

use clap::{Parser, Subcommand};
use incident::{Actor, IncidentCmd, ReportFormat, Role, StepVerb, TriggerArgs};
use std::path::PathBuf;
use std::process::ExitCode;

/// The parsed `crisis` command line: global options and one subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "crisis",
    version,
    about = "Crisis and incident response: TOML playbooks, a six-phase engine, Wasm plugins, drills.",
    long_about = "crisis runs customer-facing crises through the six phases of a crisis plan \
(report, activate, assign, act, track, outcome). Playbooks are TOML files; plugins are \
WebAssembly components. Most commands talk to a running `crisis daemon` over its local API \
(address and token from the configuration, or CRISIS_API and CRISIS_TOKEN).\n\n\
Exit codes: 0 success, 1 failure, 2 invalid input, 3 not found, 4 daemon unreachable."
)]
pub struct Cli {
    /// Configuration file. Default: ./crisis.toml if present, else the embedded defaults.
    #[arg(long, global = true, env = "CRISIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The subcommand to run (`crisis help` lists them).
    #[command(subcommand)]
    pub command: Command,
}

/// Every `crisis` subcommand with its arguments.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: API on loopback, journal, timers, side effects.
    Daemon {
        /// Log format on stderr.
        #[arg(long, value_enum, default_value = "text")]
        log_format: crate::daemon::LogFormat,
    },
    /// Daemon readiness, applied generation and files, on-disk drift, last reload, watcher, open incidents.
    Status,
    /// Reload playbooks and configuration now and print the outcome (exit 2 if rejected).
    Reload,
    /// Validate, list and show playbooks (offline: reads the files directly).
    #[command(subcommand)]
    Playbook(playbook::PlaybookCmd),
    /// List, inspect and call Wasm plugins (offline: starts its own plugin host).
    #[command(subcommand)]
    Plugin(plugin::PluginCmd),
    /// Start an incident from a playbook (or attach to the open one with the same dedup key).
    Trigger(TriggerArgs),
    /// List and show incidents.
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Acknowledge an incident: stops escalation; you become commander if you were not.
    Ack {
        /// Incident id to acknowledge, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// Who is acting (`--as PERSON`), recorded in the journal.
        #[command(flatten)]
        actor: Actor,
    },
    /// Name a person for an incident role.
    Assign {
        /// Incident id, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// Role to fill: the commander leads, the liaison talks to customers and
        /// the public, the scribe keeps the record.
        #[arg(long, value_enum)]
        role: Role,
        /// Roster person id.
        #[arg(long, value_name = "PERSON")]
        to: String,
        /// Who is acting (`--as PERSON`), recorded in the journal.
        #[command(flatten)]
        actor: Actor,
    },
    /// Approve the plan's activation, or an approval step with --step.
    Approve {
        /// Incident id, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// Approve this playbook step (its id) instead of the activation.
        #[arg(long)]
        step: Option<String>,
        /// Who approves (`--as PERSON`); must be, or hold the role of, the approver the playbook names.
        #[command(flatten)]
        actor: Actor,
    },
    /// Mark a step done or skip it.
    Step {
        /// Incident id, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// Step id from the playbook (see `crisis incident show ID`).
        step: String,
        /// `done` if the step was carried out, `skip` if it is not needed.
        #[arg(value_enum)]
        action: StepVerb,
        /// Optional note recorded with the step in the timeline.
        #[arg(long)]
        note: Option<String>,
        /// Who is acting (`--as PERSON`), recorded in the journal.
        #[command(flatten)]
        actor: Actor,
    },
    /// Add a progress note to the timeline.
    Update {
        /// Incident id, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// The progress note, as it should appear in the timeline.
        #[arg(long)]
        note: String,
        /// Who is acting (`--as PERSON`), recorded in the journal.
        #[command(flatten)]
        actor: Actor,
    },
    /// Write the outcome report (cause, process, aftermath).
    Outcome {
        /// Incident id, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// What caused the crisis. Required if the playbook's outcome requires `cause`.
        #[arg(long, default_value = "")]
        cause: String,
        /// How it was handled. Required if the playbook's outcome requires `process`.
        #[arg(long, default_value = "")]
        process: String,
        /// What follows: remedies, compensation, prevention. Required if the playbook's
        /// outcome requires `aftermath`.
        #[arg(long, default_value = "")]
        aftermath: String,
        /// Who is acting (`--as PERSON`), recorded in the journal.
        #[command(flatten)]
        actor: Actor,
    },
    /// Resolve: the crisis is over; unfinished steps are skipped and the dedup key is released.
    Resolve {
        /// Incident id to resolve, e.g. INC-12.
        id: String,
        /// Who is acting (`--as PERSON`), recorded in the journal.
        #[command(flatten)]
        actor: Actor,
    },
    /// Print an incident's journal; --follow keeps printing until it closes.
    Timeline {
        /// Incident id, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// Keep polling and printing new events until the incident closes.
        #[arg(long)]
        follow: bool,
    },
    /// The outcome report of an incident.
    Report {
        /// Incident id, e.g. INC-12 (see `crisis incident list`).
        id: String,
        /// `md` for a Markdown report, `json` for the report as the daemon stores it.
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
    },
    /// Check the journal's keyed hash chain and everything derived from it:
    /// incident projections, pinned playbook versions, timers (exit 1 on any problem).
    Verify {
        /// Print the chain head as SEQ:HASH, to record somewhere the daemon cannot write.
        #[arg(long)]
        anchor: bool,
        /// Also check that event SEQ still has HASH (an anchor printed earlier by --anchor).
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<crate::store::Anchor>,
    },
    /// Put a dead-lettered side effect back in the outbox (journaled); see `crisis status`.
    Retry {
        /// The invocation id of the dead-lettered intent (`INC-3.2`).
        intent: String,
        /// Who re-drives it (admins may act for someone else).
        #[command(flatten)]
        actor: incident::Actor,
    },
    /// Drills: run a playbook as an exercise (never reaching customers), scored, with an after-action report.
    #[command(subcommand)]
    Drill(drill::DrillCmd),
    /// Customer complaints: add (classified and answered within [complaints] first_response), list, show,
    /// assign, escalate, resolve, report.
    #[command(subcommand)]
    Complaint(complaint::ComplaintCmd),
    /// API tokens: one per person (with a role: responder, approver, admin) or per alert source (intake).
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// The journal's database: `store migrate --to postgres` moves a SQLite journal into PostgreSQL (offline).
    #[command(subcommand)]
    Store(store::StoreCmd),
    /// Print a shell completion script, e.g. `crisis completions bash > /etc/bash_completion.d/crisis`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or with --dir write one page per command there.
    ///
    /// `crisis man --dir /usr/local/share/man/man1` installs crisis(1) and a
    /// page for every subcommand (crisis-trigger(1), crisis-drill-run(1), ...).
    Man {
        /// Write crisis.1 and one page per subcommand into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Runs a parsed command line and maps failures to exit codes.
pub fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Daemon { log_format } => match crate::daemon::run(cli.config.clone(), *log_format) {
            Ok(()) => Ok(()),
            Err(crate::daemon::StartError::Config(d)) => {
                Err(Failure::diagnostics("the configuration is invalid; fix the errors above", d))
            }
            Err(crate::daemon::StartError::Other(e)) => Err(Failure::failed(format!("{e:#}"))),
        },
        Command::Status => incident::status(&cli),
        Command::Reload => incident::reload(&cli),
        Command::Playbook(cmd) => playbook::run(&cli, cmd),
        Command::Plugin(cmd) => plugin::run(&cli, cmd),
        Command::Trigger(a) => incident::trigger(&cli, a),
        Command::Incident(cmd) => incident::incident(&cli, cmd),
        Command::Ack { id, actor } => incident::ack(&cli, id, actor),
        Command::Assign { id, role, to, actor } => incident::assign(&cli, id, *role, to, actor),
        Command::Approve { id, step, actor } => incident::approve(&cli, id, step.as_deref(), actor),
        Command::Step { id, step, action, note, actor } => {
            incident::step(&cli, id, step, *action, note.as_deref(), actor)
        }
        Command::Update { id, note, actor } => incident::update(&cli, id, note, actor),
        Command::Outcome { id, cause, process, aftermath, actor } => {
            incident::outcome(&cli, id, cause, process, aftermath, actor)
        }
        Command::Resolve { id, actor } => incident::resolve(&cli, id, actor),
        Command::Timeline { id, follow } => incident::timeline(&cli, id, *follow),
        Command::Report { id, format } => incident::report(&cli, id, *format),
        Command::Verify { anchor, expect_head } => incident::verify(&cli, *anchor, expect_head.as_ref()),
        Command::Retry { intent, actor } => incident::retry(&cli, intent, actor),
        Command::Drill(cmd) => drill::run(&cli, cmd),
        Command::Token(cmd) => token::run(&cli, cmd),
        Command::Complaint(cmd) => complaint::run(&cli, cmd),
        Command::Store(cmd) => store::run(&cli, cmd),
        Command::Completions { shell } => shell::completions(*shell),
        Command::Man { dir } => shell::man(dir.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(cli.json),
    }
}
