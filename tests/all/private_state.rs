//! The state directory is private to the daemon's user: 0700, every file in
//! it 0600, a group- or world-writable one refused at start, and compiled
//! plugin code in its cache loaded only with a valid MAC.
use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every entry under `dir`, depth first.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            walk(&p, out);
        }
    }
}

#[test]
fn a_fresh_state_dir_is_0700_and_every_file_in_it_0600() {
    let d = Daemon::start("engine", LOG_TARGETS);
    // Journal writes (and so the WAL) happen for an incident.
    d.json(&["trigger", "outage", "--scope", "EU shoppers", "--field", "nature=checkout 500s"]);
    let state = d.dir.path().join("state");
    assert_eq!(mode(&state), 0o700);
    let mut all = Vec::new();
    walk(&state, &mut all);
    let names: Vec<String> = all.iter().map(|p| p.strip_prefix(&state).unwrap().display().to_string()).collect();
    for must in ["journal.db", "journal.db-wal", "api.token", "cache.key", "daemon.lock"] {
        assert!(names.iter().any(|n| n == must), "{must} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".cwasm.mac")), "{names:?}");
    for p in &all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{} has mode {:04o}", p.display(), mode(p));
    }
}

#[test]
fn a_group_or_world_writable_state_dir_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/engine"), dir.path());
    let config = write_config(dir.path(), free_port(), LOG_TARGETS);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = refused_start(dir.path(), &config);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let state = state.display().to_string();
    for part in [state.as_str(), "owned by uid", "mode 0777", "not writable by group or others", "chmod 0700"] {
        assert!(r.stderr.contains(part), "{part:?} missing from: {}", r.stderr);
    }
    assert!(!dir.path().join("state/journal.db").exists(), "nothing is written into a refused state_dir");
}

/// Runs `crisis daemon` expecting it to exit at once; a daemon that starts
/// instead is killed after 30 s and the test fails rather than hangs.
fn refused_start(dir: &Path, config: &Path) -> Run {
    let mut child = std::process::Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "daemon"])
        .current_dir(dir)
        .env_remove("CRISIS_CONFIG")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out: Run = child.wait_with_output().unwrap().into();
            panic!("the daemon started on an unsafe state_dir: {}", out.stderr);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap().into()
}

/// Notices to `superiors` go through the webhook-notify plugin to `port`.
fn webhook_config(port: u16) -> String {
    format!(
        "[plugins.webhook-notify]\nallowed_hosts = [\"http://localhost:{port}\"]\nallow_private = [\"http://localhost:{port}\"]\n\
         [targets.superiors]\nplugin = \"webhook-notify\"\nconfig = {{ url = \"http://localhost:{port}/superiors\" }}\n\
         [targets.departments]\nplugin = \"log\"\n[targets.customers]\nplugin = \"log\"\n[targets.oncall]\nplugin = \"log\"\n"
    )
}

#[test]
fn a_planted_compiled_plugin_is_refused_and_recompiled() {
    let server = TestServer::start(200);
    let mut d = Daemon::start("engine", &webhook_config(server.port));
    let cache = d.dir.path().join("state/plugin-cache");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 3, "the built-ins are cached: {entries:?}");
    let mac = |p: &Path| PathBuf::from(format!("{}.mac", p.display()));
    d.kill9();
    // Garbage under a valid name, keeping the genuine MAC file.
    std::fs::write(&entries[0], b"not compiled code at all").unwrap();
    // Another genuine entry's bytes and MAC under a second valid name.
    std::fs::copy(&entries[2], &entries[1]).unwrap();
    std::fs::copy(mac(&entries[2]), mac(&entries[1])).unwrap();
    // A third with no MAC file at all.
    std::fs::remove_file(mac(&entries[2])).unwrap();
    d.restart();
    let log = d.log();
    for e in &entries[..3] {
        let name = e.file_name().unwrap().to_str().unwrap();
        assert!(
            log.lines().any(|l| l.contains("refusing compiled plugin cache entry") && l.contains(name)),
            "{name} not refused; log:\n{log}"
        );
    }
    assert!(log.contains("no MAC file") && log.contains("MAC does not match"), "{log}");
    // Recompiled, and the entries verify again.
    for e in &entries[..3] {
        assert!(e.exists() && mac(e).exists(), "{} rewritten", e.display());
    }
    // And the plugins work: a notice goes out through webhook-notify.
    d.json(&["trigger", "outage", "--scope", "EU shoppers", "--field", "nature=checkout 500s"]);
    d.wait_for("the notice through webhook-notify", || server.requests().iter().any(|r| r.path == "/superiors"));
    let refusals = |log: &str| log.matches("refusing compiled plugin cache entry").count();
    d.restart();
    assert_eq!(refusals(&d.log()), refusals(&log), "recompiled entries are trusted on the next start");
}
