//! Outbound HTTP policy for notifiers: allow-list ∩ grant, post-DNS address
//! checks, secret injection, drill capture, and no ambient authority.
//! Every server here is a loopback server the test starts itself.

use crate::plugin_support::*;
use crisis::plugin::test_fixtures as fx;
use crisis::plugin::*;

fn probe_host(grant: PluginGrant) -> PluginHost {
    let host = host_with(&[("probe", grant)]);
    host.reload("probe", &fx::bytes(fx::PROBE)).expect("probe fixture loads");
    host
}

fn report(out: &CallOutcome<Receipt>) -> serde_json::Value {
    serde_json::from_str(&out.value.detail).expect("probe returns a JSON report")
}

/// The pattern a loopback test server needs: cleartext and its port are
/// never implied by a bare host name.
fn lo(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn grant(allowed: &[&str], private: &[&str]) -> PluginGrant {
    PluginGrant {
        allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
        allow_private: private.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn host_not_on_the_allow_list_is_denied_and_nothing_is_sent() {
    let server = TestServer::start(200, "ok");
    let host = probe_host(grant(&["hooks.example.com"], &["localhost"]));
    let url = format!("http://localhost:{}/hook", server.port);
    let out = host.notify("probe", &inv("e1", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    let r = report(&out);
    assert!(r["http"]["error"].as_str().unwrap().contains("denied"), "{r}");
    assert_eq!(out.http.len(), 1);
    match &out.http[0].disposition {
        HttpDisposition::Denied { reason } => {
            assert!(reason.contains("localhost") && reason.contains("allowed_hosts"), "{reason}")
        }
        d => panic!("expected Denied, got {d:?}"),
    }
    assert!(server.requests().is_empty());
}

#[test]
fn an_empty_grant_denies_all_egress() {
    let server = TestServer::start(200, "ok");
    let host = probe_host(PluginGrant::default());
    let url = format!("http://127.0.0.1:{}/", server.port);
    let out = host.notify("probe", &inv("e2", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    match &out.http[0].disposition {
        HttpDisposition::Denied { reason } => {
            assert!(reason.contains("granted no outbound hosts"), "{reason}")
        }
        d => panic!("expected Denied, got {d:?}"),
    }
    assert!(server.requests().is_empty());
}

#[test]
fn name_resolving_to_loopback_is_refused_after_dns_unless_granted_private() {
    let server = TestServer::start(200, "hello");
    let url = format!("http://localhost:{}/x", server.port);
    // Allowed by name, but it resolves to 127.0.0.1 / ::1.
    let host = probe_host(grant(&[&format!("http://localhost:{}", server.port)], &[]));
    let out = host.notify("probe", &inv("e3", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    match &out.http[0].disposition {
        HttpDisposition::Denied { reason } => {
            assert!(reason.contains("loopback") && reason.contains("allow_private"), "{reason}")
        }
        d => panic!("expected Denied after DNS, got {d:?}"),
    }
    assert!(report(&out)["http"]["error"].as_str().unwrap().contains("denied"));
    assert!(server.requests().is_empty(), "nothing reached the server");

    // Granting the name as private lets the same request through.
    let named = format!("http://localhost:{}", server.port);
    host.set_grant("probe", &grant(&[&named], &[&named])).unwrap();
    let out = host.notify("probe", &inv("e4", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    assert_eq!(out.http[0].disposition, HttpDisposition::Sent { status: 200 });
    assert_eq!(report(&out)["http"]["status"], 200);
    assert_eq!(report(&out)["http"]["body"], "hello");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/x");
}

#[test]
fn injected_secret_reaches_the_server_and_is_never_visible_to_the_guest() {
    const SECRET: &str = "s3cr3t-token-value-1234567890";
    let var = "CRISIS_TEST_PROBE_SECRET_TOKEN";
    if !in_child_with_env(
        concat!(module_path!(), "::injected_secret_reaches_the_server_and_is_never_visible_to_the_guest"),
        &[(var, SECRET)],
    ) {
        return;
    }
    let server = TestServer::start(200, "ok");
    let mut g = grant(&[&lo(server.port)], &[&lo(server.port)]);
    g.inject.push(InjectRule {
        host: lo(server.port),
        header: "X-Api-Token".into(),
        secret: SecretRef::Env(var.into()),
        prefix: Some("Token ".into()),
        name: Some("api-token".into()),
        basic_user: None,
    });
    let host = probe_host(g);
    let url = format!("http://127.0.0.1:{}/s", server.port);
    let out = host
        .notify("probe", &inv("e5", RunMode::Live), &note(), &target(&[("url", &url), ("secret_name", "api-token")]))
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("x-api-token"), Some(format!("Token {SECRET}").as_str()));
    assert_eq!(reqs[0].header("x-probe"), Some("1"), "guest headers pass through");

    // The guest got a handle (name + host), never the value.
    let r = report(&out);
    assert_eq!(r["secret"]["name"], "api-token");
    assert_eq!(r["secret"]["for"], lo(server.port));
    let everything = format!("{} {:?} {:?}", out.value.detail, out.http, out.logs);
    assert!(!everything.contains(SECRET), "secret leaked into the outcome: {everything}");
    assert!(out.http[0].headers.iter().any(|(k, v)| k == "x-api-token" && v == "[secret redacted]"));

    // No ambient authority: no env vars, no files.
    assert_eq!(r["env"], serde_json::json!([]), "{r}");
    assert!(r["root"].as_str().is_some_and(|s| s.starts_with("error")), "no preopens: {r}");
    assert!(r["passwd"].as_str().is_some_and(|s| s.starts_with("error")), "no files: {r}");

    // Asking for a secret that is not granted is a denied plugin error, not a crash.
    let out = host
        .notify("probe", &inv("e6", RunMode::Live), &note(), &target(&[("url", &url), ("secret_name", "other")]))
        .unwrap();
    assert!(report(&out)["secret"].as_str().unwrap().contains("Denied"), "{}", out.value.detail);
}

#[test]
fn drill_mode_records_requests_and_does_not_send_them() {
    let server = TestServer::start(200, "real");
    let host = probe_host(grant(&[&lo(server.port)], &[&lo(server.port)]));
    let url = format!("http://127.0.0.1:{}/drill", server.port);
    let out = host.notify("probe", &inv("d1", RunMode::Drill), &note(), &target(&[("url", &url)])).unwrap();
    assert!(server.requests().is_empty(), "a drill must not reach the endpoint");
    assert_eq!(out.http.len(), 1);
    let rec = &out.http[0];
    assert_eq!(rec.disposition, HttpDisposition::Captured);
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.url, url);
    assert!(rec.body_bytes > 0 && rec.body_preview.contains("d1"), "{rec:?}");
    let r = report(&out);
    assert_eq!(r["http"]["status"], 200);
    assert!(r["http"]["body"].as_str().unwrap().contains("\"drill\":true"));

    // A drill still respects the allow-list: captured only if it would be allowed.
    let out = host
        .notify("probe", &inv("d2", RunMode::Drill), &note(), &target(&[("url", "https://not-granted.example/x")]))
        .unwrap();
    assert!(matches!(out.http[0].disposition, HttpDisposition::Denied { .. }));

    // An explicit drill allow-list entry sends for real.
    let mut g = grant(&[&lo(server.port)], &[&lo(server.port)]);
    g.drill_allow = vec![lo(server.port)];
    host.set_grant("probe", &g).unwrap();
    let out = host.notify("probe", &inv("d3", RunMode::Drill), &note(), &target(&[("url", &url)])).unwrap();
    assert_eq!(out.http[0].disposition, HttpDisposition::Sent { status: 200 });
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn declared_hosts_intersect_with_the_grant() {
    let server = TestServer::start(200, "ok");
    // The plugin declares only hooks.example.com; the operator grants 127.0.0.1.
    let mut g = grant(&[&lo(server.port)], &[&lo(server.port)]);
    g.config.insert("declared_hosts".into(), "hooks.example.com".into());
    let host = probe_host(g);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let out = host.notify("probe", &inv("x1", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    match &out.http[0].disposition {
        HttpDisposition::Denied { reason } => assert!(reason.contains("declares"), "{reason}"),
        d => panic!("expected Denied, got {d:?}"),
    }
    assert!(server.requests().is_empty());
}

#[test]
fn oversized_response_is_cut_off_with_a_clear_error() {
    let big: &'static str = Box::leak("x".repeat(64 * 1024).into_boxed_str());
    let server = TestServer::start(200, big);
    let mut g = grant(&[&lo(server.port)], &[&lo(server.port)]);
    g.limits.max_response_bytes = Some(1024);
    let host = probe_host(g);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let out = host.notify("probe", &inv("big", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    match &out.http[0].disposition {
        HttpDisposition::Failed { error } => {
            assert!(error.contains("max_response_bytes"), "{error}")
        }
        d => panic!("expected Failed, got {d:?}"),
    }
}

#[test]
fn the_daemon_can_supply_resolved_secrets() {
    let server = TestServer::start(200, "ok");
    let host = probe_host(PluginGrant::default());
    let mut g = grant(&[&lo(server.port)], &[&lo(server.port)]);
    g.inject.push(InjectRule {
        host: lo(server.port),
        header: "Authorization".into(),
        secret: SecretRef::File("/nonexistent/only-the-daemon-knows".into()),
        prefix: Some("Bearer ".into()),
        name: None,
        basic_user: None,
    });
    host.set_grant_with_secrets("probe", &g, &|r| {
        assert_eq!(r, &SecretRef::File("/nonexistent/only-the-daemon-knows".into()));
        Ok(SecretValue::new("from-daemon"))
    })
    .unwrap();
    let url = format!("http://127.0.0.1:{}/", server.port);
    let out = host.notify("probe", &inv("ds", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    assert_eq!(server.requests()[0].header("authorization"), Some("Bearer from-daemon"));
    assert!(out.http[0].headers.iter().any(|(k, v)| k == "authorization" && v == "[secret redacted]"));
    // The file-based resolver would have failed with a message naming the file.
    let err = host.set_grant("probe", &g).unwrap_err();
    assert!(err.to_string().contains("only-the-daemon-knows"), "{err}");
}
