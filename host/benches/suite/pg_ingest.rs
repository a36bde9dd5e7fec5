//! Durable trigger ingest with three daemons sharing one PostgreSQL
//! database (8 clients spread over the nodes) against raw PostgreSQL
//! single-row inserts, one commit each, from the same number of clients on
//! the same server: rate ratio, p50 and p99. The server is the bench's own
//! (the tests' cluster runs without fsync): fsync on, unix socket only, so
//! both sides pay for real flushes. Skipped, saying why, without server binaries.

use super::*;
use std::sync::Mutex;

/// A throwaway PostgreSQL server with fsync on; stopped and removed on drop.
struct Server {
    dir: PathBuf,
    pg_ctl: PathBuf,
}

fn pg_bin(name: &str) -> Option<PathBuf> {
    let debian = Path::new("/usr/lib/postgresql/15/bin").join(name);
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// A command run as the server's owner: `postgres` when we are root (the server refuses root).
fn as_owner(program: &Path) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Server {
    fn start() -> Result<Server, String> {
        let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
            return Err(
                "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/15/bin or on PATH".into()
            );
        };
        let dir = tempfile::Builder::new().prefix("crisis-bench-pg-").tempdir().unwrap().keep();
        if rustix::process::geteuid().is_root() {
            let ok = Command::new("chown").arg("postgres").arg(&dir).status().map_err(|e| e.to_string())?;
            if !ok.success() {
                return Err("running as root and there is no `postgres` user to run the server".into());
            }
        }
        let server = Server { dir: dir.clone(), pg_ctl: pg_ctl.clone() };
        let data = dir.join("data");
        let out = as_owner(&initdb)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let opts = format!("-k {} -c listen_addresses='' -c fsync=on -c max_connections=100", dir.display());
        let out = as_owner(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-o", &opts, "start"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("pg_ctl start failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(server)
    }

    /// A new, empty database and its connection string.
    fn database(&self, name: &str) -> String {
        let admin = format!("host={} user=postgres dbname=postgres", self.dir.display());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        format!("host={} user=postgres dbname={name}", self.dir.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_owner(&self.pg_ctl).arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Concurrent clients on each side.
const CLIENTS: usize = 8;
/// Daemons sharing the database.
const NODES: usize = 3;

/// (per second, p50 ms, p99 ms) of `count` calls of `f(client, i)` spread over `CLIENTS` threads.
fn drive(count: usize, f: impl Fn(usize, usize) + Sync) -> (f64, f64, f64) {
    let latencies = Mutex::new(Vec::with_capacity(count));
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (f, latencies) = (&f, &latencies);
            s.spawn(move || {
                let mut mine = Vec::new();
                for i in (c..count).step_by(CLIENTS) {
                    let t = Instant::now();
                    f(c, i);
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let rate = count as f64 / t.elapsed().as_secs_f64();
    let mut l = latencies.into_inner().unwrap();
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
    (rate, pct(0.5), pct(0.99))
}

/// Raw inserts of an opened-event-sized row, one transaction each, `CLIENTS` connections.
fn raw_postgres(url: &str, count: usize) -> (f64, f64, f64) {
    let mut setup = postgres::Client::connect(url, postgres::NoTls).unwrap();
    setup.batch_execute(
        "CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, incident_id TEXT, at BIGINT, kind TEXT, data TEXT, prev_hash TEXT, hash TEXT)",
    ).unwrap();
    let data = serde_json::json!({"kind": "opened", "playbook_id": "service-outage", "fields": {"nature": "bench", "scope": "bench"}}).to_string();
    let clients: Vec<Mutex<postgres::Client>> = (0..CLIENTS)
        .map(|_| {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            c.batch_execute("SET synchronous_commit = on").unwrap();
            Mutex::new(c)
        })
        .collect();
    drive(count, |c, i| {
        let mut client = clients[c].lock().unwrap();
        let mut tx = client.transaction().unwrap();
        tx.execute(
            "INSERT INTO events (incident_id, at, kind, data, prev_hash, hash) VALUES ($1, $2, 'opened', $3, '', '')",
            &[&format!("INC-{i}"), &(i as i64), &data],
        )
        .unwrap();
        tx.commit().unwrap();
    })
}

/// Three daemons on the database at `url`, each with its own state directory and the same journal key.
fn nodes(url: &str) -> Vec<(Daemon, tempfile::TempDir, String)> {
    let key: [u8; 32] = rand::random();
    (0..NODES)
        .map(|_| {
            let (dir, config, port) = setup_dir_with("[store]\nurl = \"secret:pg\"\n[secrets.pg]\nfile = \"pg-url\"\n");
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::write(dir.path().join("pg-url"), url).unwrap();
            std::fs::set_permissions(dir.path().join("pg-url"), std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::DirBuilder::new().mode(0o700).create(dir.path().join("state")).unwrap();
            let key_file = dir.path().join("state/journal.key");
            std::fs::write(&key_file, key).unwrap();
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
            let (d, _) = start(&config, dir.path(), port);
            let token = std::fs::read_to_string(dir.path().join("state/api.token")).unwrap().trim().to_string();
            (d, dir, token)
        })
        .collect()
}

/// The three-node ingest row and its latency row.
pub(crate) fn pg_ingest_rows(rows: &mut Vec<Row>, full: bool) {
    let server = match Server::start() {
        Ok(s) => s,
        Err(why) => {
            println!("skipped: trigger ingest on PostgreSQL: {why}");
            return;
        }
    };
    let crisis_db = server.database("crisis");
    let count = if full { 6_000 } else { 48 };
    let raw = raw_postgres(&server.database("raw"), count);
    let nodes = nodes(&crisis_db);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let crisis = drive(count, |c, i| {
        let (d, _, token) = &nodes[c % NODES];
        let body = serde_json::json!({
            "playbook": "service-outage",
            "fields": { "nature": "bench", "time": "now", "scope": "bench", "consequences": "bench" },
            "labels": { "service": format!("pg-{i}"), "region": "eu" },
        });
        let r = agent
            .post(&format!("http://127.0.0.1:{}/v1/incidents", d.port))
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(&body)
            .unwrap();
        assert!(r.status().is_success(), "trigger on node {} answered {}", c % NODES, r.status());
    });
    rows.push(row(
        &format!(
            "trigger ingest, {NODES} daemons on one PostgreSQL, {CLIENTS} clients over the nodes (durable), per second"
        ),
        crisis.0,
        "/s",
        &format!("raw PostgreSQL single-row inserts, one commit each, {CLIENTS} clients"),
        raw.0,
        "≥ 0.5× raw",
        crisis.0 >= 0.5 * raw.0,
    ));
    rows.push(row(
        &format!(
            "trigger ingest latency p99 on {NODES} PostgreSQL daemons (p50 {:.2} ms; raw insert p50 {:.2} ms)",
            crisis.1, raw.1
        ),
        crisis.2,
        "ms",
        "raw insert p99",
        raw.2,
        "< 10 ms",
        crisis.2 < 10.0,
    ));
    drop(nodes);
    drop(server);
}
