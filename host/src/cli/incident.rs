//! Commands that run incidents through the daemon: trigger, ack, assign,
//! approve, step, update, outcome, resolve, timeline, report, verify, status.

use super::client::Client;
use super::output::{print_json, table, Failure};
use super::Cli;
use crate::incident::clock::fmt_ms;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `--as PERSON`: who is acting, recorded in the journal.
#[derive(Debug, Args, Clone)]
pub struct Actor {
    /// Who is acting (a roster person id). Default: $CRISIS_USER, else $USER.
    #[arg(long = "as", value_name = "PERSON")]
    pub by: Option<String>,
}

impl Actor {
    fn or_env(&self) -> Option<String> {
        self.by.clone().or_else(|| std::env::var("CRISIS_USER").ok()).or_else(|| std::env::var("USER").ok())
    }
}

#[derive(Debug, Subcommand)]
pub enum IncidentCmd {
    /// List incidents, newest first.
    List {
        /// Only incidents that are not yet resolved.
        #[arg(long)]
        open: bool,
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

fn parse_kv(s: &str) -> Result<(String, String), String> {
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
    pub severity: Option<String>,
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

pub fn trigger(cli: &Cli, a: &TriggerArgs) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let body = json!({
        "playbook": a.playbook,
        "title": a.title,
        "severity": a.severity,
        "scope": a.scope,
        "fields": a.fields.iter().cloned().collect::<BTreeMap<_, _>>(),
        "labels": a.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
        "dedup_key": a.dedup_key,
        "source": "cli",
        "by": a.actor.or_env().unwrap_or_default(),
    });
    let v = c.post("/v1/incidents", &body)?;
    if cli.json {
        print_json(&v);
        return Ok(());
    }
    let inc = &v["incident"];
    if v["deduped"].as_bool() == Some(true) {
        println!("attached to open incident {} (same dedup key {}); it has now had {} duplicate trigger(s)", inc["id"].as_str().unwrap_or(""), inc["dedup_key"], inc["attached"]);
    } else {
        println!("opened {} — {} ({}, playbook {}), phase {}", s(inc, "id"), s(inc, "title"), s(inc, "severity"), s(inc, "playbook_id"), s(inc, "phase"));
    }
    Ok(())
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn incident(cli: &Cli, cmd: &IncidentCmd) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    match cmd {
        IncidentCmd::List { open } => {
            let v = c.get(&format!("/v1/incidents?open={open}"))?;
            if cli.json {
                print_json(&v);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| vec![s(i, "id"), s(i, "status"), s(i, "phase"), s(i, "severity"), s(i, "playbook"), fmt_ms(i["opened_at"].as_i64().unwrap_or(0)), s(i, "title")])
                        .collect()
                })
                .unwrap_or_default();
            if rows.is_empty() {
                println!("no incidents");
            } else {
                print!("{}", table(&["ID", "STATUS", "PHASE", "SEV", "PLAYBOOK", "OPENED", "TITLE"], &rows));
            }
            Ok(())
        }
        IncidentCmd::Show { id } => {
            let v = c.get(&format!("/v1/incidents/{id}"))?;
            if cli.json {
                print_json(&v);
            } else {
                print!("{}", describe(&v));
            }
            Ok(())
        }
    }
}

/// A readable view of an incident's state.
fn describe(v: &Value) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{} — {}{}", s(v, "id"), s(v, "title"), if s(v, "mode") == "drill" { " [DRILL]" } else { "" });
    let _ = writeln!(o, "  status {}, phase {}, {} {}, playbook {}", s(v, "status"), s(v, "phase"), s(v, "severity"), s(v, "category"), s(v, "playbook_id"));
    if let Some(k) = v["dedup_key"].as_str() {
        let _ = writeln!(o, "  dedup key {k} ({} duplicate trigger(s) attached)", v["attached"]);
    }
    if let Some(roles) = v["roles"].as_object() {
        let r: Vec<String> = roles.iter().map(|(k, p)| format!("{k} {}", p.as_str().unwrap_or(""))).collect();
        let _ = writeln!(o, "  roles: {}", if r.is_empty() { "none yet".into() } else { r.join(", ") });
    }
    let _ = writeln!(o, "  acknowledged: {}", v["acked_by"].as_str().map(|b| format!("by {b} at {}", fmt_ms(v["acked_at"].as_i64().unwrap_or(0)))).unwrap_or_else(|| "no".into()));
    let _ = writeln!(o, "phases:");
    for p in ["report", "activate", "assign", "act", "track", "outcome"] {
        let t = &v["phases"][p];
        let e = t["entered"].as_i64().map(fmt_ms).unwrap_or_else(|| "—".into());
        let c = t["completed"].as_i64().map(fmt_ms).unwrap_or_else(|| "—".into());
        let _ = writeln!(o, "  {p:<9} entered {e:<21} completed {c}");
    }
    if let Some(steps) = v["steps"].as_object() {
        let _ = writeln!(o, "steps:");
        for (id, st) in steps {
            let _ = writeln!(o, "  {id:<24} {}{}", s(st, "status"), st["note"].as_str().map(|n| format!(" ({n})")).unwrap_or_default());
        }
    }
    if let Some(missed) = v["missed"].as_array().filter(|m| !m.is_empty()) {
        let _ = writeln!(o, "missed deadlines:");
        for m in missed {
            let _ = writeln!(o, "  {} (due {})", s(m, "what"), fmt_ms(m["due_at"].as_i64().unwrap_or(0)));
        }
    }
    o
}

fn print_incident(cli: &Cli, v: &Value, what: &str) {
    if cli.json {
        print_json(v);
    } else {
        println!("{} {what}; status {}, phase {}", s(v, "id"), s(v, "status"), s(v, "phase"));
    }
}

pub fn ack(cli: &Cli, id: &str, actor: &Actor) -> Result<(), Failure> {
    let v = Client::from_cli(cli)?.post(&format!("/v1/incidents/{id}/ack"), &json!({"as": actor.by}))?;
    print_incident(cli, &v, &format!("acknowledged by {}", v["acked_by"].as_str().unwrap_or("")));
    Ok(())
}

pub fn assign(cli: &Cli, id: &str, role: Role, to: &str, actor: &Actor) -> Result<(), Failure> {
    let role = format!("{role:?}").to_lowercase();
    let v = Client::from_cli(cli)?.post(&format!("/v1/incidents/{id}/assign"), &json!({"role": role, "to": to, "as": actor.or_env()}))?;
    print_incident(cli, &v, &format!("{role} is now {to}"));
    Ok(())
}

pub fn approve(cli: &Cli, id: &str, step: Option<&str>, actor: &Actor) -> Result<(), Failure> {
    let by = actor.or_env().ok_or_else(|| Failure::invalid("say who approves: --as PERSON"))?;
    let v = Client::from_cli(cli)?.post(&format!("/v1/incidents/{id}/approve"), &json!({"step": step, "as": by}))?;
    print_incident(cli, &v, &format!("{} approved by {by}", step.map(|s| format!("step {s}")).unwrap_or_else(|| "activation".into())));
    Ok(())
}

pub fn step(cli: &Cli, id: &str, step: &str, verb: StepVerb, note: Option<&str>, actor: &Actor) -> Result<(), Failure> {
    let action = match verb {
        StepVerb::Done => "done",
        StepVerb::Skip => "skip",
    };
    let v = Client::from_cli(cli)?.post(&format!("/v1/incidents/{id}/steps/{step}"), &json!({"action": action, "note": note, "as": actor.or_env()}))?;
    print_incident(cli, &v, &format!("step {step} {action}"));
    Ok(())
}

pub fn update(cli: &Cli, id: &str, note: &str, actor: &Actor) -> Result<(), Failure> {
    let v = Client::from_cli(cli)?.post(&format!("/v1/incidents/{id}/updates"), &json!({"note": note, "as": actor.or_env()}))?;
    print_incident(cli, &v, "updated");
    Ok(())
}

pub fn outcome(cli: &Cli, id: &str, cause: &str, process: &str, aftermath: &str, actor: &Actor) -> Result<(), Failure> {
    let v = Client::from_cli(cli)?.post(
        &format!("/v1/incidents/{id}/outcome"),
        &json!({"cause": cause, "process": process, "aftermath": aftermath, "as": actor.or_env()}),
    )?;
    print_incident(cli, &v, "outcome recorded");
    Ok(())
}

pub fn resolve(cli: &Cli, id: &str, actor: &Actor) -> Result<(), Failure> {
    let v = Client::from_cli(cli)?.post(&format!("/v1/incidents/{id}/resolve"), &json!({"as": actor.or_env()}))?;
    print_incident(cli, &v, "resolved");
    Ok(())
}

pub fn timeline(cli: &Cli, id: &str, follow: bool) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let mut after = 0i64;
    loop {
        let v = c.get(&format!("/v1/incidents/{id}/events?after={after}"))?;
        for e in v["events"].as_array().cloned().unwrap_or_default() {
            after = after.max(e["seq"].as_i64().unwrap_or(0));
            if cli.json {
                println!("{}", serde_json::to_string(&e).unwrap_or_default());
            } else {
                println!("{}  {}", fmt_ms(e["at"].as_i64().unwrap_or(0)), s(&e, "text"));
            }
        }
        if !follow || v["status"].as_str() == Some("closed") {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

pub fn report(cli: &Cli, id: &str, format: ReportFormat) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    if format == ReportFormat::Json || cli.json {
        print_json(&c.get(&format!("/v1/incidents/{id}/report?format=json"))?);
    } else {
        print!("{}", c.get_text(&format!("/v1/incidents/{id}/report?format=md"))?);
    }
    Ok(())
}

pub fn verify(cli: &Cli) -> Result<(), Failure> {
    let v = Client::from_cli(cli)?.get("/v1/verify")?;
    let problems: Vec<String> = v["problems"].as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect()).unwrap_or_default();
    if cli.json {
        print_json(&v);
    } else if problems.is_empty() {
        println!("journal intact: {} events, head {}", v["events"], &s(&v, "head")[..16.min(s(&v, "head").len())]);
    } else {
        for p in &problems {
            eprintln!("tampered: {p}");
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(Failure::failed(format!("the journal fails verification ({} problem(s))", problems.len()))) }
}

pub fn status(cli: &Cli) -> Result<(), Failure> {
    let v = Client::from_cli(cli)?.get("/v1/status")?;
    if cli.json {
        print_json(&v);
        return Ok(());
    }
    let r = &v["reload"];
    let short = |h: &Value| h.as_str().map(|h| h.get(..12).unwrap_or(h).to_string()).unwrap_or_else(|| "-".into());
    println!("crisis {} — {}", s(&v, "version"), if v["ready"].as_bool() == Some(true) { "ready" } else { "NOT READY" });
    println!("  config {}; state {}; listening {}", s(&v, "config"), s(&v, "state_dir"), s(&v, "listen"));
    let a = &r["applied"];
    println!("  applied generation {} (set {}), loaded {}", a["generation"], short(&a["set_hash"]), s(a, "loaded_at"));
    for f in a["files"].as_array().cloned().unwrap_or_default() {
        println!("    {} {}", short(&f["sha256"]), s(&f, "path"));
    }
    let d = &r["on_disk"];
    if d["differs"].as_bool() == Some(true) {
        println!("  on disk: set {} — DIFFERS from the applied generation{}", short(&d["set_hash"]), d["error"].as_str().map(|e| format!(" ({e})")).unwrap_or_default());
    } else {
        println!("  on disk: set {} (in sync)", short(&d["set_hash"]));
    }
    if let Some(l) = r["last_attempt"].as_object() {
        println!(
            "  last reload: {} by {} at {} in {} ms",
            l.get("outcome").and_then(|x| x.as_str()).unwrap_or(""),
            l.get("trigger").and_then(|x| x.as_str()).unwrap_or(""),
            l.get("at").and_then(|x| x.as_str()).unwrap_or(""),
            l.get("duration_ms").cloned().unwrap_or_default()
        );
    }
    for e in r["errors"].as_array().cloned().unwrap_or_default() {
        println!("  error: {}", e.as_str().unwrap_or(""));
    }
    println!("  watcher: {}{}", s(&r["watcher"], "mode"), if r["watcher"]["healthy"].as_bool() == Some(true) { "" } else { " (unhealthy)" });
    if let Some(plugins) = v["plugins"].as_array() {
        println!("  plugins:");
        for p in plugins {
            println!("    {} {} {} {}", s(p, "name"), s(p, "world"), short(&p["sha256"]), if p["quarantined"].as_bool() == Some(true) { "QUARANTINED" } else { "" });
        }
    }
    println!("  open incidents: {}", v["open_incidents"]);
    Ok(())
}

/// `crisis reload`: synchronous; exit 2 when the new generation is rejected.
pub fn reload(cli: &Cli) -> Result<(), Failure> {
    let v = Client::from_cli(cli)?.post("/v1/reload", &json!({}))?;
    let outcome = s(&v, "outcome");
    let errors: Vec<String> = v["errors"].as_array().map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect()).unwrap_or_default();
    if cli.json {
        print_json(&v);
    } else {
        println!("{outcome}: generation {} (set {}) in {} ms", v["generation"], &s(&v, "set_hash").get(..12).unwrap_or("-"), v["duration_ms"]);
        for e in &errors {
            eprintln!("{e}");
        }
        if outcome == "rejected" {
            eprintln!("the previous generation keeps serving; fix the errors above and run `crisis reload` again");
        }
    }
    if outcome == "rejected" { Err(Failure::new(2, "")) } else { Ok(()) }
}
