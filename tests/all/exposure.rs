//! Network exposure is explicit: a non-loopback `listen` needs TLS or
//! `insecure_listen`, the probes answer loopback peers (or holders of the
//! metrics token), and the CLI talks to a TLS daemon.
use crate::common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A daemon started on a config written by the test; killed on drop.
struct Proc {
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Proc {
        let log = dir.join("daemon.log");
        let f = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["--config", config.to_str().unwrap(), "daemon"])
            .current_dir(dir)
            .env_remove("CRISIS_CONFIG")
            .env("NO_COLOR", "1")
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc { child: cmd.spawn().unwrap(), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fixture with a full config (whose `listen` the test chooses).
fn setup(listen: &str, extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/engine"), dir.path());
    let config = dir.path().join("crisis.toml");
    std::fs::write(
        &config,
        format!("state_dir = \"state\"\nlisten = \"{listen}\"\nplaybooks = \"playbooks\"\nroster = \"roster.toml\"\ncustomers = \"customers.csv\"\n{extra}\n{LOG_TARGETS}"),
    )
    .unwrap();
    (dir, config)
}

/// One plain HTTP/1.0 GET from `to`: (status, body).
fn get(to: SocketAddr, path: &str, bearer: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).ok()?;
    let auth = bearer.map(|b| format!("Authorization: Bearer {b}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\n{auth}\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default()))
}

/// A non-loopback address of this machine: the source address of a route
/// to a public address (a UDP connect sends nothing).
fn non_loopback_address() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_non_loopback_listen_without_tls_is_refused_at_start() {
    let (dir, config) = setup(&format!("0.0.0.0:{}", free_port()), "");
    let r = crisis_in(dir.path(), &["--config", config.to_str().unwrap(), "daemon"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not a loopback address"), "{}", r.stderr);
    assert!(r.stderr.contains("[tls]") && r.stderr.contains("insecure_listen = true"), "{}", r.stderr);
}

#[test]
fn probes_answer_loopback_and_other_peers_only_with_the_metrics_token() {
    let port = free_port();
    let (dir, config) = setup(
        &format!("0.0.0.0:{port}"),
        "insecure_listen = true\nmetrics_token = \"secret:metrics\"\n[secrets.metrics]\nenv = \"CRISIS_TEST_METRICS\"\n",
    );
    let d = Proc::start(dir.path(), &config, &[("CRISIS_TEST_METRICS", "m3trics-t0ken")]);
    let lo = SocketAddr::from(([127, 0, 0, 1], port));
    d.wait_for("healthz on loopback", || get(lo, "/healthz", None).is_some_and(|(s, _)| s == 200));
    assert!(d.log().contains("insecure_listen = true"), "the start warns: {}", d.log());
    let (s, body) = get(lo, "/metrics", None).unwrap();
    assert_eq!(s, 200);
    assert!(body.contains("crisis_ready 1"), "{body}");
    let Some(ip) = non_loopback_address() else {
        println!("skipped the non-loopback half: this machine has no non-loopback address");
        return;
    };
    let remote = SocketAddr::new(ip, port);
    for path in ["/metrics", "/healthz", "/readyz"] {
        let (s, body) = get(remote, path, None).unwrap();
        assert_eq!(s, 401, "{path} from {ip} without the token: {body}");
        assert_eq!(get(remote, path, Some("wrong")).unwrap().0, 401, "{path}");
        assert_eq!(get(remote, path, Some("m3trics-t0ken")).unwrap().0, 200, "{path} with the token");
    }
}

#[test]
fn the_open_incident_gauge_follows_the_engine() {
    let mut d = Daemon::start("engine", LOG_TARGETS);
    let port = d.port;
    let open = || {
        let (_, body) = get(SocketAddr::from(([127, 0, 0, 1], port)), "/metrics", None).unwrap();
        body.lines()
            .filter(|l| l.starts_with("crisis_incidents_open{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
            .sum::<i64>()
    };
    assert_eq!(open(), 0);
    d.json(&["trigger", "outage", "--scope", "EU shoppers", "--field", "nature=checkout 500s"]);
    d.wait_for("one open incident", || open() == 1);
    d.restart();
    assert_eq!(open(), 1, "counted from the journal at start");
}

#[test]
fn the_cli_talks_to_a_tls_daemon() {
    let port = free_port();
    let (dir, config) = setup(
        &format!("0.0.0.0:{port}"),
        "[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\nca = \"tls/cert.pem\"\n",
    );
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    std::fs::write(dir.path().join("tls/cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls/key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let d = Proc::start(dir.path(), &config, &[]);
    let cfg = config.to_str().unwrap();
    d.wait_for("the CLI over https", || crisis_in(dir.path(), &["--config", cfg, "status"]).code == 0);
    assert!(d.log().contains(&format!("listening on https://0.0.0.0:{port}")), "{}", d.log());
    let v = crisis_in(
        dir.path(),
        &["--config", cfg, "--json", "trigger", "outage", "--scope", "EU", "--field", "nature=x"],
    );
    assert_eq!(v.code, 0, "{}", v.stderr);
    // Plain HTTP gets no answer from the TLS port.
    let plain = get(SocketAddr::from(([127, 0, 0, 1], port)), "/healthz", None);
    assert!(plain.as_ref().is_none_or(|(s, _)| *s != 200), "{plain:?}");
    // Without the CA the certificate is not trusted.
    let api = format!("https://127.0.0.1:{port}");
    let r = Command::new(bin())
        .args(["status"])
        .current_dir(dir.path())
        .env_remove("CRISIS_CONFIG")
        .env("CRISIS_API", &api)
        .env("CRISIS_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(4), "{}", String::from_utf8_lossy(&r.stderr));
    // CRISIS_CA makes the same call work.
    let token = std::fs::read_to_string(dir.path().join("state/api.token")).unwrap();
    let r = Command::new(bin())
        .args(["status"])
        .current_dir(dir.path())
        .env_remove("CRISIS_CONFIG")
        .env("CRISIS_API", &api)
        .env("CRISIS_TOKEN", token.trim())
        .env("CRISIS_CA", dir.path().join("tls/cert.pem"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
}
