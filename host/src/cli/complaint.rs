//! `crisis complaint ...`: record a customer complaint, list, show, assign,
//! escalate and resolve complaints, and summarise them.

use super::Cli;
use super::client::Client;
use super::incident::Actor;
use super::output::{Failure, print_reply, table};
use crate::daemon::complaints::{ComplaintAction, ComplaintDetail, ComplaintIntake, ComplaintReport};
use crate::incident::clock::fmt_ms;
use crate::incident::complaint::Complaint;
use clap::Subcommand;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `crisis complaint` subcommands.
#[derive(Debug, Subcommand)]
pub enum ComplaintCmd {
    /// Record a complaint (POST /v1/intake/complaints): it is classified, and the
    /// customer's first response is composed and recorded before this returns.
    Add {
        /// The customer's id in the customer source (never their phone or e-mail).
        #[arg(long, required_unless_present = "file")]
        customer: Option<String>,
        /// Where the customer complained: phone, sms, email or social.
        #[arg(long, required_unless_present = "file")]
        channel: Option<String>,
        /// What the customer said (`-` reads it from standard input).
        #[arg(long, required_unless_present = "file")]
        text: Option<String>,
        /// The category when you know it: product-quality, service-attitude, service-process, price or other.
        #[arg(long)]
        category: Option<String>,
        /// A label, e.g. --label product=router (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = super::incident::parse_kv)]
        labels: Vec<(String, String)>,
        /// Post this JSON file instead ({"customer", "channel", "text", "category", "labels"}).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["customer", "channel", "text"])]
        file: Option<PathBuf>,
        /// Names this complaint (your ticket id, a UUID): running the command again with
        /// the same key after a timeout returns the complaint already recorded instead
        /// of recording it twice, and the customer gets one first response.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// List complaints, oldest first.
    List {
        /// Only those received within this long, e.g. 7d or 12h.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
    },
    /// Show one complaint with its journal events.
    Show {
        /// The complaint id, e.g. CMP-7.
        id: String,
    },
    /// Name the person who works on a complaint.
    Assign {
        /// The complaint id.
        id: String,
        /// The roster person id.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Report a complaint to the superior rota ([complaints] superior_rota).
    Escalate {
        /// The complaint id.
        id: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Resolve a complaint with a note; the follow-up goes out after [complaints] follow_up.
    Resolve {
        /// The complaint id.
        id: String,
        /// What was done about it.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Counts per category, channel and state, first-response p50/p95, misses, escalations.
    Report {
        /// The window, e.g. 7d (default: everything).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
    },
}

fn intake_body(cmd: &ComplaintCmd) -> Result<ComplaintIntake, Failure> {
    let ComplaintCmd::Add { customer, channel, text, category, labels, file, .. } = cmd else {
        return Err(Failure::invalid("not an add command"));
    };
    if let Some(path) = file {
        let raw = std::fs::read_to_string(path)
            .map_err(|e| Failure::invalid(format!("cannot read {}: {e}", path.display())))?;
        return serde_json::from_str(&raw).map_err(|e| {
            Failure::invalid(format!(
                "{}:{}:{}: not a complaint: {e}; write {{\"customer\": ID, \"channel\": C, \"text\": T}}",
                path.display(),
                e.line(),
                e.column()
            ))
        });
    }
    let mut text = text.clone().unwrap_or_default();
    if text == "-" {
        text = std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::invalid(format!("cannot read the text from standard input: {e}")))?;
    }
    Ok(ComplaintIntake {
        customer: customer.clone().unwrap_or_default(),
        channel: channel.clone().unwrap_or_default(),
        text,
        category: category.clone(),
        labels: labels.iter().cloned().collect::<BTreeMap<_, _>>(),
    })
}

fn line(c: &Complaint) -> Vec<String> {
    vec![
        c.id.clone(),
        fmt_ms(c.received_at),
        c.customer.clone(),
        c.channel.to_string(),
        c.category.to_string(),
        c.state.to_string(),
        c.first_response_ms().map_or_else(
            || if c.first_response_missed { "missed".into() } else { "-".into() },
            |ms| format!("{:.1}s", ms as f64 / 1000.0),
        ),
    ]
}

fn query(since: &Option<String>) -> String {
    since.as_ref().map(|s| format!("?since={s}")).unwrap_or_default()
}

/// Runs `crisis complaint ...`.
pub(crate) fn run(cli: &Cli, cmd: &ComplaintCmd) -> Result<(), Failure> {
    let c = Client::from_cli(cli)?;
    let done = |x: &Complaint, what: &str| {
        if cli.json {
            print_reply(x);
        } else {
            println!("{} {what} ({}, {}, {})", x.id, x.category, x.channel, x.state);
        }
    };
    match cmd {
        ComplaintCmd::Add { idempotency_key, .. } => {
            let body = intake_body(cmd)?;
            let headers: Vec<(&str, &str)> = idempotency_key.iter().map(|k| ("Idempotency-Key", k.as_str())).collect();
            let (status, x): (u16, Complaint) = c.post_with("/v1/intake/complaints", &body, &headers)?;
            if status == 200 {
                done(&x, "was already recorded under this idempotency key; nothing new recorded");
            } else {
                done(&x, "recorded; first response on its way");
            }
        }
        ComplaintCmd::List { since } => {
            let all: Vec<Complaint> = c.get(&format!("/v1/complaints{}", query(since)))?;
            if cli.json {
                print_reply(&all);
            } else {
                let rows: Vec<Vec<String>> = all.iter().map(line).collect();
                print!(
                    "{}",
                    table(&["ID", "RECEIVED", "CUSTOMER", "CHANNEL", "CATEGORY", "STATE", "FIRST RESPONSE"], &rows)
                );
            }
        }
        ComplaintCmd::Show { id } => {
            let d: ComplaintDetail = c.get(&format!("/v1/complaints/{id}"))?;
            if cli.json {
                print_reply(&d);
                return Ok(());
            }
            let x = &d.complaint;
            print!(
                "{}",
                table(&["ID", "RECEIVED", "CUSTOMER", "CHANNEL", "CATEGORY", "STATE", "FIRST RESPONSE"], &[line(x)])
            );
            println!("text: {}", x.text);
            for (k, v) in [
                ("incident", &x.incident),
                ("assignee", &x.assignee),
                ("escalated to", &x.escalated_to),
                ("resolution", &x.resolution),
            ] {
                if let Some(v) = v {
                    println!("{k}: {v}");
                }
            }
            for e in &d.events {
                println!("{}  {}", fmt_ms(e.at), e.kind);
            }
        }
        ComplaintCmd::Assign { id, to, actor } => {
            let body = ComplaintAction { person: Some(to.clone()), note: None, by: actor.or_env(&c) };
            let x: Complaint = c.post(&format!("/v1/complaints/{id}/assign"), &body)?;
            done(&x, &format!("assigned to {to}"));
        }
        ComplaintCmd::Escalate { id, actor } => {
            let body = ComplaintAction { by: actor.or_env(&c), ..Default::default() };
            let x: Complaint = c.post(&format!("/v1/complaints/{id}/escalate"), &body)?;
            done(&x, &format!("escalated to {}", x.escalated_to.as_deref().unwrap_or("nobody")));
        }
        ComplaintCmd::Resolve { id, note, actor } => {
            let body = ComplaintAction { note: Some(note.clone()), person: None, by: actor.or_env(&c) };
            let x: Complaint = c.post(&format!("/v1/complaints/{id}/resolve"), &body)?;
            done(&x, "resolved; the follow-up is scheduled");
        }
        ComplaintCmd::Report { since } => {
            let r: ComplaintReport = c.get(&format!("/v1/complaint-report{}", query(since)))?;
            if cli.json {
                print_reply(&r);
                return Ok(());
            }
            let secs = |ms: Option<i64>| ms.map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
            println!("complaints since {}: {}", fmt_ms(r.since), r.total);
            for (title, map) in [("category", &r.by_category), ("channel", &r.by_channel), ("state", &r.by_state)] {
                let parts: Vec<String> = map.iter().map(|(k, n)| format!("{k} {n}")).collect();
                println!("by {title}: {}", parts.join(", "));
            }
            println!(
                "first response: p50 {}, p95 {}, missed {}, plain-template fallbacks {}",
                secs(r.first_response_p50_ms),
                secs(r.first_response_p95_ms),
                r.first_response_missed,
                r.template_fallbacks
            );
            println!("escalated {}, resolved {}, followed up {}", r.escalated, r.resolved, r.followed_up);
        }
    }
    Ok(())
}
