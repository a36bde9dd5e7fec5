//! `crisis playbook validate|list|show` on good and broken directories,
//! driving the real binary from the repository root as a user would.
use crate::common::*;

const EXAMPLE: &str = "examples/crisis.toml";
const SHIPPED: [&str; 5] =
    ["billing-error", "data-leak", "quality-complaint-surge", "service-outage", "social-media-crisis"];

/// The `path:line:col: message` lines of a run's stderr (everything but the summary).
fn diagnostics(r: &Run) -> Vec<&str> {
    r.stderr.lines().filter(|l| !l.starts_with("error: ")).collect()
}

#[track_caller]
fn assert_code(r: &Run, code: i32) {
    assert_eq!(r.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked"), "crashed:\n{}", r.stderr);
}

#[test]
fn version_prints() {
    let r = crisis(&["--version"]);
    assert_code(&r, 0);
    assert!(r.stdout.starts_with("crisis "), "{}", r.stdout);
    assert!(r.stdout.trim().ends_with(env!("CARGO_PKG_VERSION")), "{}", r.stdout);
}

#[test]
fn shipped_playbooks_are_valid_with_the_embedded_default_config() {
    // No --config and no ./crisis.toml at the repo root: the embedded default is used.
    assert!(!repo().join("crisis.toml").exists());
    let r = crisis(&["playbook", "validate", "playbooks/"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim(), "ok: 5 playbooks valid");
    // With no path, the configured directory is validated.
    let r = crisis(&["playbook", "validate"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim(), "ok: 5 playbooks valid");
}

#[test]
fn shipped_playbooks_are_valid_with_the_example_config() {
    let r = crisis(&["--config", EXAMPLE, "playbook", "validate", "playbooks/"]);
    assert_code(&r, 0);
    assert_eq!(r.stdout.trim(), "ok: 5 playbooks valid");
    // The example config's own playbook path (../playbooks, relative to examples/).
    let r = crisis(&["--config", EXAMPLE, "playbook", "validate"]);
    assert_code(&r, 0);
    // From another working directory, config-relative paths still resolve.
    let r = crisis_in(&repo().join("examples"), &["--config", "crisis.toml", "playbook", "validate"]);
    assert_code(&r, 0);
}

#[test]
fn one_broken_file_prints_every_error_with_its_position() {
    let r = crisis(&["--config", EXAMPLE, "playbook", "validate", "tests/fixtures/broken-one"]);
    assert_code(&r, 2);
    let p = "tests/fixtures/broken-one/outage.toml";
    let expected = [
        format!("{p}:6:12: unknown severity `sev0`: expected one of sev1, sev2, sev3, sev4, sev5"),
        format!("{p}:16:10: bad duration `2 minutes-ish`: "),
        format!(
            "{p}:24:13: `rota:night-shift` does not resolve: add a [rotas.NAME] table in the roster (known: cs-duty, cs-manager, eu-duty, sre-oncall)"
        ),
        format!(
            "{p}:52:8: unknown step kind `notfy`: expected one of dispatch, allocate, appease, notify, manual, approval"
        ),
        format!(
            "{p}:65:11: unknown notification target `superior` in [track] notify: declare [targets.superior] in crisis.toml (known: customers, departments, oncall, pr, regulator, status-page, superiors)"
        ),
        format!("{p}:75:12: unknown time zone `Asia/Peking`: use an IANA name like Asia/Shanghai or Europe/Berlin"),
    ];
    let got = diagnostics(&r);
    assert_eq!(got.len(), expected.len(), "{}", r.stderr);
    for (g, e) in got.iter().zip(&expected) {
        assert!(g.starts_with(e.as_str()), "expected `{e}`\n     got `{g}`");
    }
    assert!(r.stderr.ends_with("error: 6 problems in 1 file\n"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn several_broken_files_are_reported_at_once() {
    let r = crisis(&["--config", EXAMPLE, "playbook", "validate", "tests/fixtures/broken-many"]);
    assert_code(&r, 2);
    let d = "tests/fixtures/broken-many";
    // One expected diagnostic (prefix) per problem, in output order (by file, then position).
    let expected = [
        format!("{d}/bad-cron-tz.toml:74:12: bad cron schedule `0 10 * * TUESDAY`: "),
        format!("{d}/bad-cron-tz.toml:75:12: unknown time zone `Mars/Olympus`"),
        format!("{d}/bad-duration.toml:38:10: bad duration `10 mims`: "),
        format!("{d}/bad-severity-category.toml:5:12: unknown complaint category `pricing`"),
        format!("{d}/bad-severity-category.toml:6:12: unknown severity `critical`"),
        format!("{d}/cycle.toml:47:10: `after` forms a cycle: appease -> dispatch -> sign-off -> tell -> appease"),
        format!(
            "{d}/dup-id-b.toml:3:6: duplicate playbook id `same-id`: already used by {d}/dup-id-a.toml:3:6; ids are unique across files"
        ),
        format!("{d}/empty.toml:1:1: empty playbook: "),
        format!("{d}/missing-refs.toml:29:24: `rota:night-managers` does not resolve"),
        format!(
            "{d}/missing-refs.toml:43:10: unknown plugin `sms-blaster`: use a built-in or declare [plugins.sms-blaster] in crisis.toml"
        ),
        format!("{d}/missing-refs.toml:53:11: unknown notification target `twitter` in step `tell` notify"),
        format!("{d}/unknown-key.toml:7:1: unknown key `summry` in [playbook]: remove it or check its spelling"),
        format!("{d}/wrong-type.toml:27:14: [assign]: invalid type: integer `5`, expected a string"),
    ];
    let got = diagnostics(&r);
    assert_eq!(got.len(), expected.len(), "{}", r.stderr);
    for (g, e) in got.iter().zip(&expected) {
        assert!(g.starts_with(e.as_str()), "expected `{e}`\n     got `{g}`");
    }
    assert!(r.stderr.ends_with("error: 13 problems in 10 files\n"), "{}", r.stderr);
}

#[test]
fn broken_and_valid_directories_together_fail_as_one_set() {
    let r = crisis(&["--config", EXAMPLE, "playbook", "validate", "playbooks", "tests/fixtures/broken-one"]);
    assert_code(&r, 2);
    assert!(r.stderr.ends_with("error: 6 problems in 6 files\n"), "{}", r.stderr);
}

#[test]
fn a_directory_without_playbooks() {
    let r = crisis(&["playbook", "validate", "tests/fixtures/no-playbooks"]);
    assert_code(&r, 2);
    assert_eq!(
        diagnostics(&r),
        ["tests/fixtures/no-playbooks:1:1: no playbooks here: a playbook directory holds *.toml files"]
    );
}

#[test]
fn a_missing_path() {
    let r = crisis(&["playbook", "validate", "playbooks/no-such.toml"]);
    assert_code(&r, 2);
    assert_eq!(diagnostics(&r), ["playbooks/no-such.toml:1:1: no such file or directory"]);
}

#[test]
fn non_utf8_and_empty_files_are_reported_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(repo().join("tests/fixtures/valid/base.toml")).unwrap();
    // A Latin-1 "é" (0xE9) right after `name = "Base playbook` on line 3: column 22.
    let mut bytes = base.replacen("Base playbook\"", "Base playbook\u{1}\"", 1).into_bytes();
    let at = bytes.iter().position(|b| *b == 1).unwrap();
    bytes[at] = 0xE9;
    std::fs::write(dir.path().join("latin1.toml"), bytes).unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    std::fs::write(dir.path().join("ok.toml"), base.replacen("id = \"base\"", "id = \"fine\"", 1)).unwrap();
    let r = crisis(&["--config", EXAMPLE, "playbook", "validate", dir.path().to_str().unwrap()]);
    assert_code(&r, 2);
    let got = diagnostics(&r);
    let p = dir.path().display();
    assert_eq!(
        got,
        [
            format!(
                "{p}/empty.toml:1:1: empty playbook: a playbook needs a [playbook] table and the six phases [report], [activate], [assign], [[act]], [track], [outcome]"
            ),
            format!("{p}/latin1.toml:3:22: file is not valid UTF-8: save it as UTF-8 text"),
        ]
    );
}

#[test]
fn an_inline_secret_in_the_config_is_refused() {
    let r = crisis(&["--config", "tests/fixtures/config/inline-secret.toml", "playbook", "validate"]);
    assert_code(&r, 2);
    let c = "tests/fixtures/config/inline-secret.toml";
    assert_eq!(
        diagnostics(&r),
        [
            format!(
                "{c}:7:57: inline secret in `token`: reference a secret with \"secret:NAME\" and declare [secrets.NAME] with env or file"
            ),
            format!(
                "{c}:21:9: inline secret `chat-token`: secrets are never written in crisis.toml; use env = \"VAR\" or file = \"PATH\""
            ),
        ]
    );
    assert!(r.stderr.ends_with("error: the configuration is invalid; fix the errors above\n"), "{}", r.stderr);
    // The secret's value is never echoed back.
    assert!(!r.stderr.contains("hunter2") && !r.stderr.contains("xoxb-not-a-real-token"), "{}", r.stderr);
}

#[test]
fn validate_json_parses() {
    let r = crisis(&["--json", "playbook", "validate", "playbooks"]);
    assert_code(&r, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    assert_eq!(v["valid"], true);
    assert_eq!(v["files"], 5);
    assert_eq!(v["playbooks"], serde_json::json!(SHIPPED));
    assert_eq!(v["set_hash"].as_str().unwrap().len(), 64);
    assert_eq!(v["errors"], serde_json::json!([]));

    let r = crisis(&["--json", "--config", EXAMPLE, "playbook", "validate", "tests/fixtures/broken-many"]);
    assert_code(&r, 2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON on failure too");
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"], 10);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 13);
    assert!(errors.iter().all(|e| e.as_str().unwrap().starts_with("tests/fixtures/broken-many/")), "{errors:?}");
}

#[test]
fn list_shows_every_shipped_playbook() {
    let r = crisis(&["playbook", "list"]);
    assert_code(&r, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("SEVERITY") && lines[0].contains("CATEGORY"),
        "{}",
        r.stdout
    );
    let ids: Vec<&str> = lines[1..].iter().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(ids, SHIPPED);
    let leak = lines.iter().find(|l| l.starts_with("data-leak ")).unwrap();
    assert!(leak.contains("sev1") && leak.contains("Customer data leak"), "{leak}");

    let r = crisis(&["--json", "playbook", "list"]);
    assert_code(&r, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for row in rows {
        assert!(row["drill_schedule"].is_string(), "every shipped playbook is drilled: {row}");
        assert_eq!(row["hash"].as_str().unwrap().len(), 64);
    }
}

#[test]
fn show_prints_all_six_phases() {
    let r = crisis(&["playbook", "show", "data-leak"]);
    assert_code(&r, 0);
    for phase in ["1 report:", "2 activate:", "3 assign:", "4 act:", "5 track:", "6 outcome:", "drill:"] {
        assert!(r.stdout.contains(phase), "missing {phase}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("regulator-notice [notify]"), "{}", r.stdout);
    assert!(r.stdout.contains("drill: schedule 0 14 1 */3 * (Europe/Berlin), clock x60"), "{}", r.stdout);

    let r = crisis(&["--json", "playbook", "show", "service-outage"]);
    assert_code(&r, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["id"], "service-outage");
    assert_eq!(v["report"]["within"], "2m");
    assert_eq!(v["assign"]["commander"], "rota:cs-duty");
    assert!(v["act"].as_array().unwrap().iter().any(|s| s["kind"] == "appease" && s["channel"] == "sms"));
}

#[test]
fn show_unknown_id_exits_3_with_nearby_ids() {
    let r = crisis(&["playbook", "show", "data-leek"]);
    assert_code(&r, 3);
    assert!(r.stdout.is_empty());
    let msg = r.stderr.trim();
    assert!(msg.starts_with("error: no playbook `data-leek`; playbooks: data-leak"), "{msg}");

    let r = crisis(&["--json", "playbook", "show", "outage"]);
    assert_code(&r, 3);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["code"], 3);
    assert!(v["error"].as_str().unwrap().contains("service-outage"), "{v}");
}

#[test]
fn list_and_show_refuse_an_invalid_set() {
    let r = crisis(&["--config", "tests/fixtures/config/inline-secret.toml", "playbook", "list"]);
    assert_code(&r, 2);
}
