//! The connection thread: the one plain thread that owns the blocking
//! client, and the caller's handle that sends it jobs and waits for answers.
//! The URL (it holds a password) stays inside the client's config: messages
//! name only the host and database.

use super::Result;
use ::postgres::{Client, NoTls, Statement};
use anyhow::Context;
use std::collections::HashMap;
use std::sync::mpsc;

/// A job run on the connection thread.
pub(super) type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The caller's side of the connection thread.
pub(super) struct Conn {
    pub(super) jobs: mpsc::Sender<Job>,
    /// Host and database, for messages: never the URL, which holds the password.
    pub(super) target: String,
}

/// The connection thread's side: the client, and what it needs to reconnect.
pub(super) struct Session {
    pub(super) client: Client,
    pub(super) config: ::postgres::Config,
    /// Statements this connection has prepared, by their text: a cached one
    /// runs in one round trip instead of two (parse, then bind and execute).
    statements: HashMap<String, Statement>,
}

impl Session {
    /// Reconnects a client the server dropped. Only called between
    /// transactions: reconnecting inside one would run its remaining
    /// statements outside it.
    pub(super) fn ensure_open(&mut self) -> Result<()> {
        if self.client.is_closed() {
            self.client = connect(&self.config)?;
            self.statements.clear();
        }
        Ok(())
    }

    /// `sql` prepared on this connection, once per connection.
    pub(super) fn prepared(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

pub(super) fn connect(config: &::postgres::Config) -> Result<Client> {
    let mut client = config.connect(NoTls)?;
    // Acknowledge nothing before the server has made it durable, whatever the server default.
    client.batch_execute("SET synchronous_commit = on; SET client_min_messages = warning")?;
    Ok(client)
}

/// "host/db" for messages; the user and password are left out on purpose.
pub(super) fn describe(config: &::postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            ::postgres::config::Host::Tcp(name) => name.clone(),
            ::postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or("(default database)"))
}

impl Conn {
    /// Connects on a new plain thread of its own, which then runs every job sent to it.
    pub(super) fn open(config: ::postgres::Config, name: &str) -> Result<Conn> {
        let target = describe(&config);
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel(1);
        std::thread::Builder::new().name(name.into()).spawn(move || {
            let mut session = match connect(&config) {
                Ok(client) => Session { client, config, statements: HashMap::new() },
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            for job in queue {
                job(&mut session);
            }
        })?;
        ready
            .recv()
            .map_err(|_| anyhow::anyhow!("the PostgreSQL connection thread ended early"))?
            .with_context(|| format!("cannot connect to journal database {target}"))?;
        Ok(Conn { jobs, target })
    }

    /// Runs `f` with the whole session (client and prepared statements) as it is, inside whatever transaction is open.
    pub(super) fn session<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.job(f)
    }

    /// Runs `f` on the connection thread as it is (inside whatever transaction is open).
    pub(super) fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.job(move |s| f(&mut s.client))
    }

    /// Runs `f` on its own, outside any transaction, reconnecting first if the server dropped the connection.
    pub(super) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.job(move |s| {
            s.ensure_open()?;
            f(&mut s.client)
        })
    }

    fn job<R: Send + 'static>(&self, f: impl FnOnce(&mut Session) -> Result<R> + Send + 'static) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        let lost = || anyhow::anyhow!("the connection thread of journal database {} has stopped", self.target);
        self.jobs.send(job).map_err(|_| lost())?;
        rx.recv().map_err(|_| lost())?.with_context(|| format!("journal database {}", self.target))
    }
}
