//! End-to-end: per-person tokens act as their person with their role's
//! powers, approvals need the playbook's approver (refusals are journaled),
//! intake tokens reach intake only, revocation holds from the next request,
//! and no secret is kept in the state directory.
use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;

/// One API call with `token`; the status and the JSON reply.
fn call(d: &Daemon, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let auth = format!("Bearer {token}");
    let mut r = match body {
        Some(b) => agent.post(&d.url(path)).header("Authorization", &auth).send_json(b).unwrap(),
        None if method == "GET" => agent.get(&d.url(path)).header("Authorization", &auth).call().unwrap(),
        None => agent.post(&d.url(path)).header("Authorization", &auth).send_json(json!({})).unwrap(),
    };
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The CLI against `d` with `CRISIS_TOKEN` (or none) and a `HOME` of `home`.
fn cli_with(d: &Daemon, home: &Path, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--config").arg(&d.config).args(args).current_dir(d.dir.path());
    cmd.env_remove("CRISIS_CONFIG").env_remove("CRISIS_TOKEN").env_remove("CRISIS_API").env("NO_COLOR", "1");
    cmd.env("HOME", home).env("USER", "nobody-in-the-roster");
    if let Some(t) = token {
        cmd.env("CRISIS_TOKEN", t);
    }
    cmd.output().unwrap().into()
}

/// Creates a token with the bootstrap token and returns its id and secret.
fn create(d: &Daemon, args: &[&str]) -> (String, String) {
    let mut a = vec!["token", "create"];
    a.extend_from_slice(args);
    let v = d.json(&a);
    (v["token"]["id"].as_str().unwrap().to_string(), v["secret"].as_str().unwrap().to_string())
}

fn events(d: &Daemon, id: &str) -> Vec<Value> {
    let (code, v) = call(d, "GET", &format!("/v1/incidents/{id}/events"), d.token().trim(), None);
    assert_eq!(code, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files(&p, out) } else { out.push(p) }
    }
}

#[test]
fn approvals_need_the_approver_and_only_admins_act_for_others() {
    let d = Daemon::start("tokens", LOG_TARGETS);
    let home = tempfile::tempdir().unwrap();
    let (_, alice) = create(&d, &["alice"]);
    let (_, dana) = create(&d, &["dana", "--role", "approver"]);

    // A responder triggers as herself.
    let (code, v) =
        call(&d, "POST", "/v1/incidents", &alice, Some(json!({"playbook": "gate", "fields": {"nature": "n"}})));
    assert_eq!(code, 201, "{v}");
    let id = v["incident"]["id"].as_str().unwrap().to_string();
    let opened = &events(&d, &id)[0];
    assert_eq!(opened["data"]["by"], "alice", "{opened}");

    // Her token may not approve: the role is checked before the engine.
    let approve = format!("/v1/incidents/{id}/approve");
    let (code, v) = call(&d, "POST", &approve, &alice, Some(json!({})));
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("needs the approver role"), "{v}");
    // Nor may she name someone else.
    let (code, v) =
        call(&d, "POST", &format!("/v1/incidents/{id}/updates"), &alice, Some(json!({"note": "x", "as": "dana"})));
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("only an admin token may act for someone else"), "{v}");
    let r = cli_with(&d, home.path(), Some(&alice), &["update", &id, "--note", "x", "--as", "dana"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("only an admin token may act for someone else"), "{}", r.stderr);
    // Without --as the CLI acts as the token's person (not $USER).
    let r = cli_with(&d, home.path(), Some(&alice), &["update", &id, "--note", "looking"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(events(&d, &id).iter().any(|e| e["kind"] == "note" && e["data"]["by"] == "alice"));

    // An approver token whose person does not hold the playbook's approver is
    // refused by the engine with 403, and the refusal is journaled.
    let (_, bob_like) = create(&d, &["alice", "--role", "approver"]);
    let (code, v) = call(&d, "POST", &approve, &bob_like, Some(json!({})));
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["code"], "forbidden");
    assert!(
        v["error"].as_str().unwrap().contains("alice cannot approve the activation: it needs role:duty-manager"),
        "{v}"
    );
    let refused: Vec<Value> = events(&d, &id).into_iter().filter(|e| e["kind"] == "approval_refused").collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["data"]["what"], "activation");
    assert_eq!(refused[0]["data"]["by"], "alice");
    assert_eq!(refused[0]["data"]["needs"], "role:duty-manager");
    // The bootstrap admin acting for alice is refused the same way, and the acting is journaled.
    let r = d.cli(&["approve", &id, "--as", "alice"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("alice cannot approve the activation"), "{}", r.stderr);
    let evs = events(&d, &id);
    assert_eq!(evs.iter().filter(|e| e["kind"] == "approval_refused").count(), 2);
    let acting = evs.iter().find(|e| e["kind"] == "acting_for").unwrap();
    assert_eq!(
        (acting["data"]["by"].as_str(), acting["data"]["person"].as_str()),
        (Some("bootstrap-admin"), Some("alice"))
    );
    assert!(acting["text"].as_str().unwrap().contains("bootstrap-admin acting for alice"), "{acting}");

    // The duty manager's token approves, as herself, through the CLI.
    let r = cli_with(&d, home.path(), Some(&dana), &["approve", &id]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let approved: Vec<Value> = events(&d, &id).into_iter().filter(|e| e["kind"] == "approved").collect();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["data"]["by"], "dana");
}

#[test]
fn intake_tokens_reach_intake_only_and_revocation_holds_from_the_next_request() {
    let d = Daemon::start("tokens", LOG_TARGETS);
    let out = d.dir.path().join("am.token");
    let r = d.cli(&["token", "create", "--intake", "am", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("cannot be shown again"), "{}", r.stdout);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o640);
    let intake = std::fs::read_to_string(&out).unwrap().trim().to_string();
    assert!(!r.stdout.contains(&intake), "the secret went to the file only");
    // An existing file is never overwritten.
    let again = d.cli(&["token", "create", "--intake", "am2", "--out", out.to_str().unwrap()]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("never overwritten"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), intake);

    for (method, path) in [
        ("GET", "/v1/status"),
        ("GET", "/v1/incidents"),
        ("GET", "/v1/tokens"),
        ("GET", "/v1/drills"),
        ("POST", "/v1/incidents"),
        ("POST", "/v1/incidents/INC-1/ack"),
        ("POST", "/v1/incidents/INC-1/approve"),
        ("POST", "/v1/reload"),
        ("POST", "/v1/tokens"),
        ("POST", "/v1/intents/INC-1.1/retry"),
        ("POST", "/v1/drills/runs"),
    ] {
        let (code, v) = call(&d, method, path, &intake, None);
        assert_eq!(code, 403, "{method} {path}: {v}");
        assert!(v["error"].as_str().unwrap().contains("may only POST /v1/intake/*"), "{v}");
    }
    let event = json!({"playbook": "gate", "summary": "s", "fields": {"nature": "n"}, "dedup_key": "k1"});
    let (code, v) = call(&d, "POST", "/v1/intake/events", &intake, Some(event.clone()));
    assert_eq!(code, 202, "{v}");

    let list = d.json(&["token", "list"]);
    let tid =
        list.as_array().unwrap().iter().find(|t| t["subject"] == "am").unwrap()["id"].as_str().unwrap().to_string();
    d.ok(&["token", "revoke", &tid]);
    let (code, v) = call(&d, "POST", "/v1/intake/events", &intake, Some(event));
    assert_eq!(code, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("was revoked"), "{v}");
    // Revocation is stored: a restarted daemon still refuses it.
    let mut d = d;
    d.restart();
    let (code, _) = call(&d, "GET", "/v1/status", &intake, None);
    assert_eq!(code, 401);
}

#[test]
fn secrets_are_kept_nowhere_in_the_state_dir_and_never_listed() {
    let d = Daemon::start("tokens", LOG_TARGETS);
    let (_, alice) = create(&d, &["alice", "--expires", "90d"]);
    let (_, admin) = create(&d, &["dana", "--role", "admin"]);
    // Used once, so it went through every code path that could log it.
    let (code, _) = call(&d, "GET", "/v1/status", &alice, None);
    assert_eq!(code, 200);
    let (code, _) = call(&d, "GET", "/v1/tokens", &admin, None);
    assert_eq!(code, 200);
    let mut all = Vec::new();
    files(&d.dir.path().join("state"), &mut all);
    assert!(all.iter().any(|p| p.to_string_lossy().contains("journal")), "{all:?}");
    for f in all {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for s in [&alice, &admin] {
            let key = &s[s.len() - 64..];
            assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "{} holds a secret", f.display());
        }
    }
    assert!(!d.log().contains(&alice[alice.len() - 64..]), "the log holds a secret");
    for args in [&["token", "list"][..], &["--json", "token", "list"][..]] {
        let out = d.ok(args);
        assert!(out.contains("alice") && out.contains("dana"), "{out}");
        assert!(!out.contains(&alice[alice.len() - 64..]) && !out.contains(&admin[admin.len() - 64..]), "{out}");
        assert!(!out.contains("crisis_"), "{out}");
    }
    // A person not in the roster gets no token, and the error names the roster file.
    let r = d.cli(&["token", "create", "mallory"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no person `mallory` in the roster") && r.stderr.contains("roster.toml"), "{}", r.stderr);
}

#[test]
fn the_cli_reads_a_private_user_token_file_and_refuses_an_open_one() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start("tokens", LOG_TARGETS);
    let (_, alice) = create(&d, &["alice"]);
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".config/crisis/token");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, format!("{alice}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = cli_with(&d, home.path(), None, &["status"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The user's token is a responder's: reading works, reloading is refused.
    let r = cli_with(&d, home.path(), None, &["status"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = cli_with(&d, home.path(), None, &["reload"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("needs the admin role"), "{}", r.stderr);
}
