//! Unit tests of the parent module.
use super::*;

fn load_text(text: &str) -> Result<Config, Vec<Diagnostic>> {
    load_source(Source::new("crisis.toml", text), None, Path::new("."))
}

fn messages(r: Result<Config, Vec<Diagnostic>>) -> Vec<String> {
    r.err().unwrap().iter().map(|d| d.to_string()).collect()
}

#[test]
fn embedded_default_parses() {
    let c = load_source(Source::new("<default>", DEFAULT_CONFIG), None, Path::new("/nonexistent"));
    // The roster path will not exist under /nonexistent, but the file itself parses.
    let errs = c.err().unwrap();
    assert!(errs.iter().all(|d| d.message.contains("cannot read") || d.message.contains("does not exist")), "{errs:?}");
}

#[test]
fn inline_secret_is_refused_with_position() {
    let m = messages(load_text("[secrets.slack]\nvalue = \"xoxb-123\"\n"));
    assert_eq!(
        m,
        vec![
            "crisis.toml:2:9: inline secret `slack`: secrets are never written in crisis.toml; use env = \"VAR\" or file = \"PATH\""
        ]
    );
    let m = messages(load_text(
        "[targets.chat]\nplugin = \"webhook-notify\"\nconfig = { url = \"http://x\", token = \"abc\" }\n",
    ));
    assert!(m[0].starts_with("crisis.toml:3:38: inline secret in `token`"), "{m:?}");
}

#[test]
fn secret_references_resolve() {
    let ok = load_text(
        "[secrets.slack]\nenv = \"SLACK\"\n[targets.chat]\nplugin = \"webhook-notify\"\nconfig = { token = \"secret:slack\" }\n",
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    let m = messages(load_text("[targets.chat]\nplugin = \"webhook-notify\"\nconfig = { token = \"secret:nope\" }\n"));
    assert!(m[0].contains("unknown secret `nope`"), "{m:?}");
}

#[test]
fn targets_need_notifier_plugins() {
    let m = messages(load_text("[targets.x]\nplugin = \"appease-script\"\n[targets.y]\nplugin = \"nope\"\n"));
    assert!(m[0].starts_with("crisis.toml:2:10:") && m[0].contains("appeasement world"), "{m:?}");
    assert!(m[1].starts_with("crisis.toml:4:10:") && m[1].contains("unknown plugin `nope`"), "{m:?}");
}

#[test]
fn unknown_keys_and_bad_listen() {
    let m = messages(load_text("listen = \"nowhere\"\nstate_dri = \"x\"\n"));
    assert_eq!(m[0], "crisis.toml:1:10: bad listen address `nowhere`: write IP:PORT like 127.0.0.1:8707");
    assert_eq!(m[1], "crisis.toml:2:1: unknown key `state_dri` in crisis.toml: remove it or check its spelling");
}

#[test]
fn exposure_settings() {
    let m = messages(load_text("listen = \"0.0.0.0:8707\"\n"));
    assert!(
        m[0].starts_with("crisis.toml:1:10: listen = \"0.0.0.0:8707\" is not a loopback address")
            && m[0].contains("[tls]")
            && m[0].contains("insecure_listen = true"),
        "{m:?}"
    );
    let c = load_text("listen = \"0.0.0.0:8707\"\ninsecure_listen = true\n").unwrap();
    assert!(c.insecure_listen && c.tls.is_none());
    let c = load_text("listen = \"[::]:8707\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
    assert_eq!(c.tls.unwrap().cert, Path::new("./c.pem"));
    let m = messages(load_text("metrics_token = \"abc\"\n"));
    assert!(m[0].contains("inline secret in `metrics_token`"), "{m:?}");
    let m = messages(load_text("metrics_token = \"secret:nope\"\n"));
    assert!(m[0].contains("unknown secret `nope`"), "{m:?}");
    let c = load_text("metrics_token = \"secret:m\"\n[secrets.m]\nenv = \"M\"\n").unwrap();
    assert_eq!(c.metrics_token.as_deref(), Some("m"));
}

#[test]
fn precompiled_plugins_refused() {
    let m = messages(load_text("[plugins.fast]\nworld = \"notifier\"\nfile = \"fast.cwasm\"\n"));
    assert!(m[0].contains("never loaded"), "{m:?}");
}

#[test]
fn roster_errors_are_positioned_in_the_roster() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roster.toml"), "[people.a]\nname = \"A\"\n[rotas.r]\ntimezone = \"Mars/Olympus\"\nhandoff = \"9am\"\nstart = \"2026-01-05\"\nmembers = [\"a\", \"ghost\"]\n").unwrap();
    std::fs::write(dir.path().join("crisis.toml"), "roster = \"roster.toml\"\n").unwrap();
    let m: Vec<String> = load(&dir.path().join("crisis.toml"))
        .err()
        .unwrap()
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
        .collect();
    assert!(m.iter().any(|x| x.starts_with("4:12: unknown time zone `Mars/Olympus`")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("5:11: bad hand-off time")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("7:17: rota `r` member `ghost`")), "{m:?}");
}

#[test]
fn store_url_comes_from_a_secret_and_is_never_inline() {
    assert_eq!(load_text("").unwrap().store, StoreBackend::Sqlite);
    let m = messages(load_text("[store]\nurl = \"postgres://crisis:hunter2@db/crisis\"\n"));
    assert!(m[0].contains("inline URL in [store] url") && m[0].contains("secret:NAME"), "{m:?}");
    assert!(!m[0].contains("hunter2"), "the password is not echoed: {m:?}");
    let m = messages(load_text("[store]\nurl = \"secret:nope\"\n"));
    assert!(m[0].contains("unknown secret `nope`"), "{m:?}");
    let c = load_text("[store]\nurl = \"secret:pg\"\n[secrets.pg]\nenv = \"PG\"\n").unwrap();
    assert_eq!(c.store, StoreBackend::Postgres { url_secret: "pg".into() });
    let m = messages(load_text("[store]\nuri = \"secret:pg\"\n"));
    assert!(m[0].contains("unknown key `uri`"), "{m:?}");
}
