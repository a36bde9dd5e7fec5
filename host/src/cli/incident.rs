//! Commands that run incidents through the daemon: trigger, ack, assign,
//! approve, step, update, outcome, resolve, timeline, report, verify, status.

use super::Cli;
use super::client::Client;
use super::output::{Failure, print_reply, table, wire_name};
use crate::daemon::api_types::{
    ActorBody, ApproveBody, AssignBody, EmptyBody, IncidentList, OutcomeBody, PageLimit, ReloadAttempt,
    ReportFormat as WireFormat, RetryReply, StatusReply, StepAction, StepBody, Timeline, TriggerReply, TriggerRequest,
    UpdateBody, VerifyReport,
};
use crate::daemon::reload::Outcome;
use crate::incident::clock::fmt_ms;
use crate::incident::state::{Incident, Status};
use crate::playbook::types::Phase;
use crate::store::Anchor;
use clap::{Args, Subcommand, ValueEnum};

/// `--as PERSON`: who is acting, recorded in the journal.
#[derive(Debug, Args, Clone)]
pub struct Actor {
    /// Who is acting (a roster person id). Default: your token's person; with
    /// the bootstrap state_dir/api.token, $CRISIS_USER, else $USER. Only admin
    /// tokens may name someone else, and that is journaled.
    #[arg(long = "as", value_name = "PERSON")]
    pub by: Option<String>,
}

impl Actor {
    /// `--as`, else (with the bootstrap token only) $CRISIS_USER or $USER: a
    /// person's token acts as its person, and naming anyone else is refused.
    pub(super) fn or_env(&self, c: &Client) -> Option<String> {
        if self.by.is_some() || c.personal() {
            return self.by.clone();
        }
        std::env::var("CRISIS_USER").ok().or_else(|| std::env::var("USER").ok())
    }
}

#[derive(Debug, Subcommand)]
pub enum IncidentCmd {
    /// List incidents, newest first.
    List {
        /// Only incidents that are not yet resolved.
        #[arg(long)]
        open: bool,
        /// At most this many incidents (1 to 1000).
        #[arg(long, default_value_t = PageLimit::DEFAULT, value_parser = clap::value_parser!(PageLimit))]
        limit: PageLimit,
        /// Continue after this incident: the `next` id the previous page printed.
        #[arg(long, value_name = "ID")]
        after: Option<String>,
    },
    /// Show one incident: phases, roles, steps.
    Show { id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StepVerb {
    Done,
    Skip,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Commander,
    Liaison,
    Scribe,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum ReportFormat {
    Md,
    Json,
}

pub(super) fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// Playbook id (see `crisis playbook list`).
    pub playbook: String,
    #[arg(long)]
    pub title: Option<String>,
    /// sev1 (worst) .. sev5; default: the playbook's.
    #[arg(long)]
    pub severity: Option<crate::playbook::types::Severity>,
    /// Who and what is affected.
    #[arg(long)]
    pub scope: Option<String>,
    /// Report fields such as nature=..., consequences=... (repeatable).
    #[arg(long = "field", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub fields: Vec<(String, String)>,
    /// Labels, as an alert would carry them (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub labels: Vec<(String, String)>,
    /// Attach to the open incident with this key instead of opening another (≤255 bytes).
    #[arg(long)]
    pub dedup_key: Option<String>,
    #[command(flatten)]
    pub actor: Actor,
}

pub(crate) fn trigger(cli: &Cli, a: &TriggerArgs) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let body = TriggerRequest {
        playbook: a.playbook.clone(),
        title: a.title.clone(),
        severity: a.severity,
        scope: a.scope.clone(),
        fields: a.fields.iter().cloned().collect(),
        labels: a.labels.iter().cloned().collect(),
        dedup_key: a.dedup_key.clone(),
        source: "cli".into(),
        by: a.actor.or_env(&c).unwrap_or_default(),
    };
    let r: TriggerReply = c.post("/v1/incidents", &body)?;
    if cli.json {
        print_reply(&r);
        return Ok(());
    }
    let inc = &r.incident;
    if r.deduped {
        let key = serde_json::to_string(&inc.dedup_key).unwrap_or_default();
        println!(
            "attached to open incident {} (same dedup key {key}); it has now had {} duplicate trigger(s)",
            inc.id, inc.attached
        );
    } else {
        println!(
            "opened {} — {} ({}, playbook {}), phase {}",
            inc.id, inc.title, inc.severity, inc.playbook_id, inc.phase
        );
    }
    Ok(())
}

pub(crate) fn incident(cli: &Cli, cmd: &IncidentCmd) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    match cmd {
        IncidentCmd::List { open, limit, after } => {
            let mut path = format!("/v1/incidents?open={open}&limit={}", u32::from(*limit));
            if let Some(a) = after {
                path.push_str(&format!("&after={}", query_escape(a)));
            }
            let list: IncidentList = c.get(&path)?;
            if cli.json {
                print_reply(&list);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .incidents
                .into_iter()
                .map(|i| vec![i.id, i.status, i.phase, i.severity, i.playbook, fmt_ms(i.opened_at), i.title])
                .collect();
            if rows.is_empty() {
                println!("no incidents");
            } else {
                print!("{}", table(&["ID", "STATUS", "PHASE", "SEV", "PLAYBOOK", "OPENED", "TITLE"], &rows));
            }
            if let Some(next) = list.next {
                let open = if *open { " --open" } else { "" };
                println!("more: crisis incident list{open} --limit {} --after {next}", u32::from(*limit));
            }
            Ok(())
        }
        IncidentCmd::Show { id } => {
            let inc: Incident = c.get(&format!("/v1/incidents/{id}"))?;
            if cli.json {
                print_reply(&inc);
            } else {
                print!("{}", describe(&inc));
                let dead: Vec<crate::store::DeadLetter> = c.get("/v1/dead-letters")?;
                for d in dead.iter().filter(|d| d.incident_id == inc.id) {
                    println!(
                        "DEAD LETTER {} {}: {} (re-drive: crisis retry {})",
                        wire_name(&d.kind),
                        d.id,
                        d.reason,
                        d.id
                    );
                }
            }
            Ok(())
        }
    }
}

/// `s` as one query-string value: every byte but unreserved ASCII is
/// percent-encoded, so an id can never end the value early.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A readable view of an incident's state.
fn describe(v: &Incident) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} — {}{}",
        v.id,
        v.title,
        if v.mode == crate::playbook::types::Mode::Drill { " [DRILL]" } else { "" }
    );
    let _ = writeln!(
        o,
        "  status {}, phase {}, {} {}, playbook {}",
        v.status.as_str(),
        v.phase,
        v.severity,
        v.category,
        v.playbook_id
    );
    if let Some(k) = &v.dedup_key {
        let _ = writeln!(o, "  dedup key {k} ({} duplicate trigger(s) attached)", v.attached);
    }
    let r: Vec<String> = v.roles.iter().map(|(k, p)| format!("{k} {p}")).collect();
    let _ = writeln!(o, "  roles: {}", if r.is_empty() { "none yet".into() } else { r.join(", ") });
    let _ = writeln!(
        o,
        "  acknowledged: {}",
        v.acked_by
            .as_ref()
            .map(|b| format!("by {b} at {}", fmt_ms(v.acked_at.unwrap_or(0))))
            .unwrap_or_else(|| "no".into())
    );
    let _ = writeln!(o, "phases:");
    for p in Phase::ORDER {
        let t = v.phases.get(&p).cloned().unwrap_or_default();
        let e = t.entered.map(fmt_ms).unwrap_or_else(|| "—".into());
        let c = t.completed.map(fmt_ms).unwrap_or_else(|| "—".into());
        let _ = writeln!(o, "  {:<9} entered {e:<21} completed {c}", p.as_str());
    }
    let _ = writeln!(o, "steps:");
    for (id, st) in &v.steps {
        let _ = writeln!(
            o,
            "  {id:<24} {}{}",
            wire_name(&st.status),
            st.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
        );
    }
    for (d, n) in &v.digests {
        let _ = writeln!(o, "  {n} notice(s) included in digest {d} (storm control)");
    }
    if !v.missed.is_empty() {
        let _ = writeln!(o, "missed deadlines:");
        for m in &v.missed {
            let _ = writeln!(o, "  {} (due {})", m.what, fmt_ms(m.due_at));
        }
    }
    o
}

fn print_incident(cli: &Cli, v: &Incident, what: &str) {
    if cli.json {
        print_reply(v);
    } else {
        println!("{} {what}; status {}, phase {}", v.id, v.status.as_str(), v.phase);
    }
}

pub(crate) fn ack(cli: &Cli, id: &str, actor: &Actor) -> Result<(), Failure> {
    let v: Incident =
        Client::from_cli(cli)?.post(&format!("/v1/incidents/{id}/ack"), &ActorBody { by: actor.by.clone() })?;
    print_incident(cli, &v, &format!("acknowledged by {}", v.acked_by.as_deref().unwrap_or("")));
    Ok(())
}

pub(crate) fn assign(cli: &Cli, id: &str, role: Role, to: &str, actor: &Actor) -> Result<(), Failure> {
    let role = format!("{role:?}").to_lowercase();
    let c = Client::from_cli(cli)?;
    let body = AssignBody { role: role.clone(), to: to.to_string(), by: actor.or_env(&c) };
    let v: Incident = c.post(&format!("/v1/incidents/{id}/assign"), &body)?;
    print_incident(cli, &v, &format!("{role} is now {to}"));
    Ok(())
}

pub(crate) fn approve(cli: &Cli, id: &str, step: Option<&str>, actor: &Actor) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let by = actor.or_env(&c);
    if by.is_none() && !c.personal() {
        return Err(Failure::invalid("say who approves: --as PERSON"));
    }
    let body = ApproveBody { step: step.map(str::to_string), by: by.clone() };
    let v: Incident = c.post(&format!("/v1/incidents/{id}/approve"), &body)?;
    let by = by.unwrap_or_else(|| "this token's person".into());
    print_incident(
        cli,
        &v,
        &format!("{} approved by {by}", step.map(|s| format!("step {s}")).unwrap_or_else(|| "activation".into())),
    );
    Ok(())
}

pub(crate) fn step(
    cli: &Cli,
    id: &str,
    step: &str,
    verb: StepVerb,
    note: Option<&str>,
    actor: &Actor,
) -> Result<(), Failure> {
    let action = match verb {
        StepVerb::Done => StepAction::Done,
        StepVerb::Skip => StepAction::Skip,
    };
    let c = Client::from_cli(cli)?;
    let body = StepBody { action, note: note.map(str::to_string), by: actor.or_env(&c) };
    let v: Incident = c.post(&format!("/v1/incidents/{id}/steps/{step}"), &body)?;
    print_incident(cli, &v, &format!("step {step} {}", wire_name(&action)));
    Ok(())
}

pub(crate) fn update(cli: &Cli, id: &str, note: &str, actor: &Actor) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let body = UpdateBody { note: note.to_string(), by: actor.or_env(&c) };
    let v: Incident = c.post(&format!("/v1/incidents/{id}/updates"), &body)?;
    print_incident(cli, &v, "updated");
    Ok(())
}

pub(crate) fn outcome(
    cli: &Cli,
    id: &str,
    cause: &str,
    process: &str,
    aftermath: &str,
    actor: &Actor,
) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let body =
        OutcomeBody { cause: cause.into(), process: process.into(), aftermath: aftermath.into(), by: actor.or_env(&c) };
    let v: Incident = c.post(&format!("/v1/incidents/{id}/outcome"), &body)?;
    print_incident(cli, &v, "outcome recorded");
    Ok(())
}

pub(crate) fn resolve(cli: &Cli, id: &str, actor: &Actor) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let v: Incident = c.post(&format!("/v1/incidents/{id}/resolve"), &ActorBody { by: actor.or_env(&c) })?;
    print_incident(cli, &v, "resolved");
    Ok(())
}

pub(crate) fn timeline(cli: &Cli, id: &str, follow: bool) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let mut after = 0i64;
    loop {
        let t: Timeline = c.get(&format!("/v1/incidents/{id}/events?after={after}"))?;
        for e in &t.events {
            after = after.max(e.seq);
            if cli.json {
                let line = serde_json::to_value(e).and_then(|v| serde_json::to_string(&v));
                println!("{}", line.unwrap_or_default());
            } else {
                println!("{}  {}", fmt_ms(e.at), e.text);
            }
        }
        if !follow || t.status == Status::Closed {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

pub(crate) fn report(cli: &Cli, id: &str, format: ReportFormat) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    if format == ReportFormat::Json || cli.json {
        // The outcome report is printed as the daemon wrote it.
        let rep: serde_json::Value =
            c.get(&format!("/v1/incidents/{id}/report?format={}", WireFormat::Json.as_str()))?;
        print_reply(&rep);
    } else {
        print!("{}", c.get_text(&format!("/v1/incidents/{id}/report?format={}", WireFormat::Markdown.as_str()))?);
    }
    Ok(())
}

pub(crate) fn verify(cli: &Cli, anchor: bool, expect_head: Option<&Anchor>) -> Result<(), Failure> {
    let path = match expect_head {
        Some(a) => format!("/v1/verify?expect_head={a}"),
        None => "/v1/verify".to_string(),
    };
    let v: VerifyReport = Client::from_cli(cli)?.get(&path)?;
    let head = Anchor { seq: v.head_seq, hash: v.head.clone() };
    if cli.json {
        let mut out = serde_json::to_value(&v).unwrap_or_default();
        if let Some(o) = out.as_object_mut() {
            o.insert("anchor".into(), head.to_string().into());
        }
        print_reply(&out);
    } else {
        if anchor {
            println!("{head}");
        }
        if v.problems.is_empty() {
            let checked = match expect_head {
                Some(a) => format!("; event {} still has the anchored hash", a.seq),
                None => String::new(),
            };
            let short = &v.head[..24.min(v.head.len())];
            println!("journal intact: {} events, head {}:{short}{checked}", v.events, v.head_seq);
        } else {
            for p in &v.problems {
                eprintln!("tampered: {p}");
            }
        }
    }
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(format!("the journal fails verification ({} problem(s))", v.problems.len())))
    }
}

/// The first 12 characters of a hash, or `-`.
fn short(h: Option<&str>) -> String {
    h.map(|h| h.get(..12).unwrap_or(h).to_string()).unwrap_or_else(|| "-".into())
}

pub(crate) fn status(cli: &Cli) -> Result<(), Failure> {
    let v: StatusReply = Client::from_cli(cli)?.get("/v1/status")?;
    if cli.json {
        print_reply(&v);
        return Ok(());
    }
    let r = &v.reload;
    println!("crisis {} — {}", v.version, if v.ready { "ready" } else { "NOT READY" });
    println!("  config {}; state {}; listening {}", v.config, v.state_dir.display(), v.listen);
    let a = &r.applied;
    println!("  applied generation {} (set {}), loaded {}", a.generation, short(Some(&a.set_hash)), a.loaded_at);
    for f in &a.files {
        println!("    {} {}", short(Some(&f.sha256)), f.path.display());
    }
    let d = &r.on_disk;
    if d.differs {
        println!(
            "  on disk: set {} — DIFFERS from the applied generation{}",
            short(d.set_hash.as_deref()),
            d.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    } else {
        println!("  on disk: set {} (in sync)", short(d.set_hash.as_deref()));
    }
    if let Some(l) = &r.last_attempt {
        println!("  last reload: {} by {} at {} in {} ms", wire_name(&l.outcome), l.trigger, l.at, l.duration_ms);
    }
    for e in &r.errors {
        println!("  error: {e}");
    }
    println!("  watcher: {}{}", r.watcher.mode, if r.watcher.healthy { "" } else { " (unhealthy)" });
    if let Some(c) = &r.cluster {
        match (c.generation, &c.published_by) {
            (Some(n), Some(by)) => println!("  cluster generation {n}, published by {by}"),
            _ => println!("  cluster generation: none serving here"),
        }
        for d in &c.drift {
            println!("    drift: {} {}", d.path, wire_name(&d.kind));
        }
        if let Some(e) = &c.error {
            println!("    error: {e}");
        }
    }
    println!("  drill scheduler: {}", if v.scheduler { "this node" } else { "another node" });
    println!("  plugins:");
    for p in &v.plugins {
        let state = match (p.quarantined, p.quarantine_ends_at) {
            (true, Some(end)) => {
                format!("QUARANTINED until {}", end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }
            (true, None) => "QUARANTINED".to_string(),
            (false, _) => String::new(),
        };
        println!("    {} {} {} {state}", p.name, wire_name(&p.world), short(Some(&p.sha256)));
    }
    println!("  open incidents: {}", v.open_incidents);
    let o = &v.outbox;
    let depth: Vec<String> = o
        .depth
        .iter()
        .map(|(t, n)| match o.oldest_age_seconds.get(t) {
            Some(age) => format!("{t} {n} (oldest {age:.0} s)"),
            None => format!("{t} {n}"),
        })
        .collect();
    println!(
        "  outbox: {}",
        if depth.is_empty() { "empty".to_string() } else { format!("pending {}", depth.join(", ")) }
    );
    let rate: Vec<String> =
        o.executed_last_minute.iter().filter(|(_, n)| **n > 0).map(|(t, n)| format!("{t} {n}")).collect();
    if !rate.is_empty() {
        println!("  sent in the last minute: {}", rate.join(", "));
    }
    for b in o.breakers.iter().filter(|b| b.state != "closed") {
        println!(
            "    breaker {}: {}{}",
            b.lane,
            b.state.to_uppercase(),
            b.until.as_ref().map(|u| format!(" until {u}")).unwrap_or_default()
        );
    }
    println!("  dead letters: {}", o.dead_letter_count);
    for d in &o.dead_letters {
        println!(
            "    {} {} ({}): {}",
            wire_name(&d.kind),
            d.id,
            if d.incident_id.is_empty() { "?" } else { &d.incident_id },
            d.reason
        );
    }
    println!("  nodes:");
    for n in &v.nodes {
        let mut holds = vec![format!("{} intents", n.intents), format!("{} timers", n.timers)];
        holds.extend(n.holds.iter().cloned());
        println!(
            "    {}{} {} heartbeat {:.1} s ago, {}; holds {}",
            n.id,
            if n.this { " (this)" } else { "" },
            n.address,
            n.heartbeat_age_seconds,
            if n.left {
                "left"
            } else if n.alive {
                "alive"
            } else {
                "DEAD"
            },
            holds.join(", ")
        );
    }
    Ok(())
}

/// `crisis retry INTENT-ID`: re-drives a dead-lettered side effect.
pub(crate) fn retry(cli: &Cli, intent: &str, actor: &Actor) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let v: RetryReply = c.post(&format!("/v1/intents/{intent}/retry"), &ActorBody { by: actor.or_env(&c) })?;
    if cli.json {
        print_reply(&v);
    } else {
        println!("{} is back in the outbox of {}", v.invocation_id, v.incident);
    }
    Ok(())
}

/// `crisis reload`: synchronous; exit 2 when the new generation is rejected.
pub(crate) fn reload(cli: &Cli) -> Result<(), Failure> {
    let v: ReloadAttempt = Client::from_cli(cli)?.post("/v1/reload", &EmptyBody {})?;
    let rejected = v.outcome == Outcome::Rejected;
    if cli.json {
        print_reply(&v);
    } else {
        println!(
            "{}: generation {} (set {}) in {} ms",
            wire_name(&v.outcome),
            v.generation,
            v.set_hash.get(..12).unwrap_or("-"),
            v.duration_ms
        );
        for e in &v.errors {
            eprintln!("{e}");
        }
        if rejected {
            eprintln!("the previous generation keeps serving; fix the errors above and run `crisis reload` again");
        }
    }
    if rejected { Err(Failure::new(2, "")) } else { Ok(()) }
}
