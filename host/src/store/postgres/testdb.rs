//! A throwaway PostgreSQL cluster for tests: one per test process, started
//! at first use in a temporary directory, listening only on a unix socket
//! there, each test in a database of its own.
//!
//! The server refuses to run as root, so when the tests run as root the
//! cluster is owned and run by the `postgres` user. A watchdog process stops
//! the server and removes the directory once the test process has exited (a
//! static's destructor never runs). Without server binaries the tests say
//! they are skipped, or fail when `CRISIS_REQUIRE_POSTGRES=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

struct Cluster {
    /// Holds the unix socket.
    dir: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);

/// Where the server binaries are: the Debian PostgreSQL 15 directory, else the PATH.
fn bin(name: &str) -> Option<PathBuf> {
    let debian = Path::new("/usr/lib/postgresql/15/bin").join(name);
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A command run as the cluster's owner: `postgres` when we are root, else ourselves.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn start() -> Result<Cluster, String> {
    let (initdb, pg_ctl) = match (bin("initdb"), bin("pg_ctl")) {
        (Some(i), Some(p)) => (i, p),
        _ => {
            return Err(
                "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/15/bin or on PATH".into()
            );
        }
    };
    let dir = tempfile::Builder::new().prefix("crisis-pg-").tempdir().map_err(|e| e.to_string())?.keep();
    if is_root() {
        let out = Command::new("id").args(["-u", "postgres"]).output().map_err(|e| e.to_string())?;
        let uid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "tests run as root and there is no `postgres` user to run the server".to_string())?;
        std::os::unix::fs::chown(&dir, Some(uid), None).map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let mut init = as_owner(&initdb);
    init.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
    run(init, "initdb")?;
    // The watchdog outlives this process: once it is gone, stop the server and remove its files.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {owner}{pg_ctl} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        owner = if is_root() { "runuser -u postgres -- " } else { "" },
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the watchdog: {e}"))?;
    let opts = format!("-k {} -c listen_addresses='' -c fsync=off -c max_connections=200", dir.display());
    let mut ctl = as_owner(&pg_ctl);
    ctl.arg("-D").arg(&data).arg("-l").arg(dir.join("server.log")).args(["-w", "-o", &opts, "start"]);
    run(ctl, "pg_ctl start")?;
    Ok(Cluster { dir })
}

/// A connection string for a fresh, empty database; `None` (after saying
/// why) when no server can be started and PostgreSQL is not required.
pub(crate) fn database() -> Option<String> {
    let cluster = match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(why) => {
            if std::env::var("CRISIS_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("CRISIS_REQUIRE_POSTGRES=1 but no PostgreSQL server could be started: {why}");
            }
            eprintln!("skipped: PostgreSQL tests need a server: {why}");
            return None;
        }
    };
    let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
    let admin = format!("host={} user=postgres dbname=postgres", cluster.dir.display());
    let mut c = ::postgres::Client::connect(&admin, ::postgres::NoTls).expect("connect to the test cluster");
    c.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
    Some(format!("host={} user=postgres dbname={name}", cluster.dir.display()))
}

/// Runs SQL straight on a test database, as someone tampering with it would.
pub(crate) fn exec(url: &str, sql: &str) {
    let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).expect("connect to the test database");
    c.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}
