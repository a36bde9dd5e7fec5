//! Send budgets: messages over a target's `rate` or `daily` budget wait in
//! the outbox (journaled) and go out when the budget allows; none is lost.
use crate::common::*;
use crisis::drill::{self, DrillOptions, Extensions};
use crisis::incident::effects::{EffectKind, EffectOutcome, Executor, IntentPayload};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// A drill's "real world": no customer message may ever reach it.
struct NoCustomers;

impl Executor for NoCustomers {
    fn execute(&self, _id: &str, p: &IntentPayload) -> EffectOutcome {
        assert_eq!(p.kind, EffectKind::Notify, "a drill customer message reached the executor");
        EffectOutcome::sent("delivered")
    }
}

/// `n` affected customers reachable on `channel`.
fn customers(path: &Path, n: usize, channel: &str) {
    let mut csv = String::from("id,name,segment,tier,locale,channel,phone,email\n");
    for i in 0..n {
        writeln!(csv, "c{i:04},Customer {i},affected,standard,en,{channel},+1-555-{i:04},c{i}@example.com").unwrap();
    }
    std::fs::write(path, csv).unwrap();
}

/// The `mass-apology` drill to 500 customers, its appease step on `channel`, with `budgets`
/// (TOML) appended to the config.
fn mass_apology(channel: &str, budgets: &str) -> drill::DrillOutcome {
    let dir = tempfile::tempdir().unwrap();
    let f = repo().join("tests/fixtures/budget");
    customers(&dir.path().join("customers.csv"), 500, channel);
    // The appease step names the channel its messages go on.
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir(&playbooks).unwrap();
    for e in std::fs::read_dir(f.join("playbooks")).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        std::fs::write(
            playbooks.join(e.file_name()),
            text.replace("channel = \"email\"", &format!("channel = \"{channel}\"")),
        )
        .unwrap();
    }
    let cfg = format!(
        "playbooks = {:?}\nroster = {:?}\ncustomers = \"customers.csv\"\nstate_dir = \"state\"\n\
         [targets.superiors]\nplugin = \"log\"\ndrill_safe = true\n[targets.oncall]\nplugin = \"log\"\ndrill_safe = true\n{budgets}",
        playbooks,
        f.join("roster.toml"),
    );
    std::fs::write(dir.path().join("crisis.toml"), cfg).unwrap();
    let config = crisis::config::load(&dir.path().join("crisis.toml")).unwrap_or_else(|d| panic!("{d:?}"));
    let g = crisis::incident::loader::load(config, 1, 0).generation.expect("the fixture loads");
    let opts = DrillOptions::virtual_in_memory("budget-1", 1);
    drill::run(&g, "mass-apology", opts, Arc::new(NoCustomers), &Extensions::default()).unwrap()
}

/// Every customer message went exactly once, at most 100 in any minute,
/// over at least four minutes; returns how many wait notes name `budget`.
fn five_hundred_at_100_a_minute(out: &drill::DrillOutcome, budget: &str) -> usize {
    let mut sent: Vec<i64> = Vec::new();
    let mut who = std::collections::BTreeSet::new();
    for e in out.events.iter().filter(|e| e.kind == "effect_result" && e.data["customer"].is_string()) {
        assert_eq!(e.data["ok"], true, "{:?}", e.data);
        assert!(e.data["detail"].as_str().unwrap().starts_with(drill::contain::CAPTURED), "{:?}", e.data);
        who.insert(e.data["customer"].as_str().unwrap().to_string());
        sent.push(e.at);
    }
    assert_eq!((sent.len(), who.len()), (500, 500), "every customer's message exactly once");
    sent.sort();
    for (i, t) in sent.iter().enumerate() {
        let in_minute = sent[i..].iter().take_while(|u| **u < t + 60_000).count();
        assert!(in_minute <= 100, "{in_minute} messages in the minute from {t}");
    }
    let span = sent[499] - sent[0];
    assert!(span >= 4 * 60_000, "500 at 100/min took only {span} ms of drill time");
    let needle = format!("waiting for budget of {budget} (100/min) until");
    out.events.iter().filter(|e| e.kind == "note" && e.data["note"].as_str().unwrap_or("").contains(&needle)).count()
}

#[test]
fn five_hundred_messages_at_100_a_minute_take_four_minutes_of_drill_time_and_none_is_lost() {
    let out = mass_apology("email", "[targets.customers]\nplugin = \"log\"\nrate = \"100/min\"\n");
    let waits = five_hundred_at_100_a_minute(&out, "target `customers`");
    assert_eq!(waits, 400, "each message past the first hundred says it waits");
}

#[test]
fn five_hundred_sms_through_a_channel_at_100_a_minute_take_four_minutes_and_none_is_lost() {
    // The target has a looser budget of its own; the channel's is the one that binds.
    let budgets =
        "[targets.customers]\nplugin = \"log\"\nrate = \"400/min\"\n[budgets.channel.sms]\nrate = \"100/min\"\n";
    let out = mass_apology("sms", budgets);
    let waits = five_hundred_at_100_a_minute(&out, "channel `sms`");
    assert_eq!(waits, 400, "each message past the first hundred says it waits for the channel");
    // Messages on another channel do not count against the sms budget.
    let out = mass_apology("email", budgets);
    let spread = out.events.iter().filter(|e| e.kind == "effect_result" && e.data["customer"].is_string());
    assert_eq!(spread.count(), 500);
    assert!(!out.events.iter().any(|e| e.data["note"].as_str().unwrap_or("").contains("channel `sms`")));
}

fn customer_intents(d: &Daemon, id: &str) -> (usize, usize) {
    let evs = d.events(id);
    let waiting = evs
        .iter()
        .filter(|e| e["kind"] == "note" && e["data"]["note"].as_str().unwrap_or("").contains("(2/day) until"))
        .count();
    let sent = evs.iter().filter(|e| e["kind"] == "effect_result" && e["data"]["customer"].is_string()).count();
    (waiting, sent)
}

fn open_and_act(d: &Daemon, service: &str) -> String {
    let v = d.json(&[
        "trigger",
        "outage",
        "--scope",
        "EU",
        "--field",
        "nature=500",
        "--label",
        &format!("service={service}"),
        "--label",
        "region=eu",
    ]);
    let id = v["incident"]["id"].as_str().unwrap().to_string();
    d.wait_for("the assign phase", || d.json(&["incident", "show", &id])["phase"] == "assign");
    d.ok(&["ack", &id, "--as", "alice"]);
    d.ok(&["step", &id, "dispatch", "done", "--as", "alice"]);
    id
}

#[test]
fn the_daily_budget_is_kept_across_a_restart() {
    let targets = LOG_TARGETS
        .replace("[targets.customers]\nplugin = \"log\"\n", "[targets.customers]\nplugin = \"log\"\ndaily = 2\n");
    let mut d = Daemon::start("engine", &targets);
    // Three affected customers, two a day: two go, the third waits for the next UTC day.
    let first = open_and_act(&d, "checkout");
    d.wait_for("two sent and one waiting", || customer_intents(&d, &first) == (1, 2));
    d.restart();
    // The day's count is in the store: after the restart nothing more goes today.
    let second = open_and_act(&d, "search");
    d.wait_for("all three of the second incident waiting", || customer_intents(&d, &second) == (3, 0));
    assert_eq!(customer_intents(&d, &first).1, 2, "the held message stays held after the restart");
}
