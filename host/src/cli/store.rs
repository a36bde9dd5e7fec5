//! `crisis store migrate --to postgres`: moves a daemon's SQLite journal
//! into an empty PostgreSQL database, offline, and proves the move by
//! verifying both chains and comparing their heads.

use super::Cli;
use super::output::{Failure, print_json};
use crate::config::state_dir::{StateDir, journal_key_from_secret};
use crate::config::{self, Config, StoreBackend};
use crate::daemon::lock::StateDirLock;
use crate::incident::clock::{Clock, SystemClock, fmt_ms};
use crate::store::{JournalKey, PgStore, SqliteStore, Store, VerifyReport};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIGRATE_HELP: &str = "\
What it does, in order:
  1. takes the state directory's lock, so no daemon can start on it meanwhile
     (a daemon already running there is a refusal: stop it first);
  2. verifies the SQLite journal's chain with its key, and refuses a broken one;
  3. copies every table (events with the same seq and hashes, incidents,
     timers, intents with pending ones still pending, pinned playbook
     versions, key-value state, tokens, counters) into the PostgreSQL
     database in one transaction, refusing a database that has any rows;
  4. verifies the PostgreSQL chain with the same key and prints both heads,
     which must be equal.

The PostgreSQL URL holds a password, so it is never an argument: it is the
value of a [secrets] entry (env or file), named either by --url-secret (a
secret declared in this --config) or by the [store] url = \"secret:NAME\" of
--target-config (the crisis.toml the daemon will run with on PostgreSQL).

The chain stays keyed with this state directory's journal.key (or the
journal_key secret): every daemon that runs on the database needs that same
key, so copy journal.key (mode 0600) into each node's state_dir.

Example:
  crisis --config crisis.toml store migrate --to postgres --target-config crisis-pg.toml";

/// `crisis store` subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Copy this configuration's SQLite journal into an empty PostgreSQL
    /// database (offline), verifying the chain before and after.
    #[command(after_help = MIGRATE_HELP)]
    Migrate(MigrateArgs),
}

/// Where `crisis store migrate` copies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// A PostgreSQL database (15 is tested), UTF8, empty.
    Postgres,
}

/// Arguments of `crisis store migrate`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["target_config", "url_secret"])))]
pub struct MigrateArgs {
    /// The backend to copy the journal into.
    #[arg(long, value_enum)]
    to: Backend,
    /// The crisis.toml the daemon will run with on PostgreSQL: its
    /// [store] url = "secret:NAME" and [secrets.NAME] give the database.
    #[arg(long, value_name = "FILE")]
    target_config: Option<PathBuf>,
    /// A [secrets] entry of this --config whose value is the PostgreSQL URL
    /// (postgres://USER:PASSWORD@HOST/DB or host=... dbname=...).
    #[arg(long, value_name = "NAME")]
    url_secret: Option<String>,
}

/// Runs `crisis store ...`.
pub(crate) fn run(cli: &Cli, cmd: &StoreCmd) -> Result<(), Failure> {
    match cmd {
        StoreCmd::Migrate(a) => migrate(cli, a),
    }
}

/// One side of the migration as printed.
#[derive(Debug, Serialize)]
struct Side {
    backend: &'static str,
    /// The SQLite file, or host/database of PostgreSQL (never the URL).
    location: String,
    events: i64,
    head_seq: i64,
    head: String,
}

impl Side {
    fn new(backend: &'static str, location: String, v: &VerifyReport) -> Side {
        Side { backend, location, events: v.events, head_seq: v.head_seq, head: v.head.clone() }
    }

    fn anchor(&self) -> String {
        format!("{}:{}", self.head_seq, self.head)
    }
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Migrated {
    from: Side,
    to: Side,
    heads_equal: bool,
    /// Rows copied per table, the journal's events first.
    tables: Vec<Table>,
    /// Where the chain key is, which every node on the database needs.
    journal_key: String,
    note: String,
}

#[derive(Debug, Serialize)]
struct Table {
    table: String,
    rows: u64,
}

fn config_failure(which: &str) -> impl FnOnce(Vec<crate::diag::Diagnostic>) -> Failure + '_ {
    move |d| Failure::diagnostics(format!("{which} is invalid; fix the errors above"), d)
}

fn migrate(cli: &Cli, a: &MigrateArgs) -> Result<(), Failure> {
    let Backend::Postgres = a.to;
    let cfg = config::discover(cli.config.as_deref()).map_err(config_failure("the configuration"))?;
    if let StoreBackend::Postgres { .. } = cfg.store {
        return Err(Failure::invalid(
            "this configuration already keeps its journal in PostgreSQL ([store] url); give the --config of the daemon whose journal is in SQLite (no [store] url), and name the database with --target-config or --url-secret",
        ));
    }
    let state = StateDir::new(&cfg.state_dir);
    let journal = state.journal();
    if !journal.is_file() {
        return Err(Failure::not_found(format!(
            "there is no SQLite journal at {}: check state_dir in the configuration ({})",
            journal.display(),
            cfg.state_dir.display()
        )));
    }
    let _lock = StateDirLock::acquire(&cfg.state_dir, &fmt_ms(SystemClock.now_ms())).map_err(|e| {
        Failure::failed(format!(
            "{e}: the migration runs offline, so that the journal cannot change while it is copied"
        ))
    })?;
    let (url, target) = target_url(&cfg, a)?;
    let (key, key_place) = source_key(&cfg)?;
    if let Some(t) = &target {
        check_target_key(t, &key)?;
    }

    let source = SqliteStore::open(&cfg.state_dir)
        .and_then(|s| s.with_key(key.clone(), false))
        .map_err(|e| Failure::failed(format!("cannot open the SQLite journal {}: {e:#}", journal.display())))?;
    let before =
        source.verify(None).map_err(|e| Failure::failed(format!("cannot verify the SQLite journal: {e:#}")))?;
    drop(source);
    if !before.problems.is_empty() {
        return Err(Failure::failed(format!(
            "the SQLite journal {} does not verify, so it is not migrated (a copy would carry the damage): {}; `crisis verify` on the daemon shows the same",
            journal.display(),
            before.problems.join("; ")
        )));
    }
    let from = Side::new("sqlite", journal.display().to_string(), &before);
    if !cli.json {
        println!("verified the SQLite journal: {} events, head {}", from.events, from.anchor());
    }

    PgStore::refuse_unless_empty(&url).map_err(|e| Failure::failed(format!("nothing was migrated: {e:#}")))?;
    let pg = PgStore::connect(&url).map_err(|e| Failure::failed(format!("{e:#}")))?;
    let database = pg.database();
    if !cli.json {
        println!("copying into PostgreSQL {database} in one transaction ...");
    }
    let copied = pg
        .import_sqlite(&journal, progress())
        .map_err(|e| Failure::failed(format!("nothing was migrated into {database}: {e:#}")))?;
    let pg = pg.with_key(key, false).map_err(|e| Failure::failed(format!("{e:#}")))?;
    let after = pg.verify(None).map_err(|e| Failure::failed(format!("cannot verify the copy in {database}: {e:#}")))?;
    let to = Side::new("postgres", database.clone(), &after);
    let heads_equal = to.anchor() == from.anchor();
    let note = format!(
        "the chain is keyed with {key_place}: every daemon running on {database} needs that same key, so copy it (mode 0600) into each node's state_dir, or give each node the same journal_key secret; a node with another key cannot extend or verify the chain"
    );
    let out = Migrated {
        tables: copied.into_iter().map(|(table, rows)| Table { table, rows }).collect(),
        from,
        to,
        heads_equal,
        journal_key: key_place,
        note,
    };
    if cli.json {
        print_json(&out);
    } else {
        let tables: Vec<String> = out.tables.iter().map(|t| format!("{} {}", t.table, t.rows)).collect();
        println!("copied {}", tables.join(", "));
        println!("verified the PostgreSQL journal: {} events, head {}", out.to.events, out.to.anchor());
        println!("sqlite   head {}", out.from.anchor());
        println!("postgres head {}", out.to.anchor());
        println!("note: {}", out.note);
    }
    if !after.problems.is_empty() {
        return Err(Failure::failed(format!(
            "the copy in {database} does not verify: {}; drop that database and migrate again",
            after.problems.join("; ")
        )));
    }
    if !out.heads_equal {
        return Err(Failure::failed(format!(
            "the heads differ (sqlite {}, postgres {}): drop the database {database} and migrate again",
            out.from.anchor(),
            out.to.anchor()
        )));
    }
    if !cli.json {
        println!(
            "migrated: start the daemon with [store] url = \"secret:NAME\" naming this database; journal.db is left as it was"
        );
    }
    Ok(())
}

/// Prints, on stderr, each table as it is finished and a long table's progress at most once a second.
fn progress() -> crate::store::postgres::ProgressFn {
    let mut last = Instant::now();
    Box::new(move |p| {
        if p.done == p.total {
            eprintln!("copied {}: {} rows", p.table, p.done);
        } else if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprintln!("copying {}: {} of {} rows", p.table, p.done, p.total);
        }
    })
}

/// The database URL (from a secret, never the command line), and the target
/// configuration when one was given.
fn target_url(cfg: &Config, a: &MigrateArgs) -> Result<(String, Option<Config>), Failure> {
    let read = |cfg: &Config, name: &str, whose: &str| -> Result<String, Failure> {
        let secret = cfg.secrets.get(name).ok_or_else(|| {
            Failure::invalid(format!(
                "{whose} declares no secret `{name}`: add [secrets.{name}] with env or file holding the PostgreSQL URL"
            ))
        })?;
        secret.read().map_err(|e| Failure::failed(format!("the PostgreSQL URL (secret `{name}`): {e}")))
    };
    match (&a.url_secret, &a.target_config) {
        (Some(name), _) => Ok((read(cfg, name, "the configuration")?, None)),
        (None, Some(path)) => {
            let target = config::load(path).map_err(config_failure("the --target-config"))?;
            let StoreBackend::Postgres { url_secret } = &target.store else {
                return Err(Failure::invalid(format!(
                    "{} has no [store] url: the target configuration must say url = \"secret:NAME\" for its PostgreSQL database",
                    path.display()
                )));
            };
            let url = read(&target, url_secret, &format!("{}", path.display()))?;
            Ok((url, Some(target)))
        }
        (None, None) => Err(Failure::invalid("name the database: --target-config FILE or --url-secret NAME")),
    }
}

/// The key the SQLite chain was written with, and where it is (for the
/// note). A missing key file is a refusal, never a new key: a new key could
/// not verify the journal.
fn source_key(cfg: &Config) -> Result<(JournalKey, String), Failure> {
    match &cfg.journal_key {
        Some(name) => Ok((secret_key(cfg, name)?, format!("the journal_key secret `{name}`"))),
        None => {
            let state = StateDir::new(&cfg.state_dir);
            let path = state.journal_key();
            if !path.exists() {
                return Err(Failure::failed(format!(
                    "there is no journal key at {}: restore the journal.key the journal was written with",
                    path.display()
                )));
            }
            let loaded = state.load_or_create_journal_key().map_err(Failure::failed)?;
            Ok((loaded.key, path.display().to_string()))
        }
    }
}

fn secret_key(cfg: &Config, name: &str) -> Result<JournalKey, Failure> {
    let secret = cfg.secrets.get(name).ok_or_else(|| {
        Failure::invalid(format!("journal_key names undeclared secret `{name}`: add [secrets.{name}]"))
    })?;
    let value = secret.read().map_err(|e| Failure::failed(format!("journal_key (secret `{name}`): {e}")))?;
    journal_key_from_secret(name, &value).map_err(Failure::failed)
}

/// A target configuration whose own key differs from the journal's would
/// start a daemon that cannot verify or extend the copied chain: refuse now.
fn check_target_key(target: &Config, key: &JournalKey) -> Result<(), Failure> {
    let (theirs, place) = match &target.journal_key {
        Some(name) => (secret_key(target, name)?, format!("the target's journal_key secret `{name}`")),
        None => {
            let path = StateDir::new(&target.state_dir).journal_key();
            if !key_file_exists(&path) {
                return Ok(());
            }
            let loaded = StateDir::new(&target.state_dir).load_or_create_journal_key().map_err(Failure::failed)?;
            (loaded.key, path.display().to_string())
        }
    };
    if &theirs != key {
        return Err(Failure::invalid(format!(
            "{place} differs from the key the SQLite journal was written with: the daemon on PostgreSQL could not verify the copied chain; give it the same key"
        )));
    }
    Ok(())
}

fn key_file_exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
