//! The built-in plugins, run through the real host: webhook-notify against a
//! loopback server, appease-script in zh-CN and en, drill-sim plan and score.

use crate::plugin_support::*;
use crisis::plugin::*;

fn builtin_host(grants: &[(&str, PluginGrant)]) -> PluginHost {
    let mut cfg = PluginHostConfig {
        engine: EngineOptions { pool_instances: 16, pool_memories: 32, ..Default::default() },
        ..Default::default()
    };
    for (n, g) in grants {
        cfg.grants.insert(n.to_string(), g.clone());
    }
    PluginHost::new(cfg).unwrap()
}

/// Grants cleartext to the given loopback ports: a bare host name would
/// mean https on 443 only.
fn webhook_grant(ports: &[u16]) -> PluginGrant {
    let hosts: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    PluginGrant { allowed_hosts: hosts.clone(), allow_private: hosts, ..Default::default() }
}

#[test]
fn webhook_notify_posts_generic_json_with_idempotency_key() {
    let server = TestServer::start(200, "accepted");
    let host = builtin_host(&[("webhook-notify", webhook_grant(&[server.port]))]);
    let url = format!("http://127.0.0.1:{}/hooks/crisis", server.port);
    let out =
        host.notify("webhook-notify", &inv("inv-json-1", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap();
    assert_eq!(out.value.http_status, Some(200));
    assert_eq!(out.value.provider_id.as_deref(), Some("req-42"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hooks/crisis"));
    assert_eq!(r.header("idempotency-key"), Some("inv-json-1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["kind"], "crisis.notification");
    assert_eq!(body["invocation_id"], "inv-json-1");
    assert_eq!(body["incident"]["id"], "inc-1");
    assert_eq!(body["incident"]["severity"], "sev2");
    assert_eq!(body["incident"]["category"], "service-process");
    assert_eq!(body["incident"]["labels"]["service"], "checkout");
    assert_eq!(body["mode"], "live");
    assert_eq!(out.plugin.name, "webhook-notify");
    let st = host.list().into_iter().find(|s| s.name == "webhook-notify").unwrap();
    assert_eq!(
        st.effective_hosts,
        vec![format!("http://127.0.0.1:{}", server.port)],
        "declared `*` defers to the grant"
    );
    assert_eq!(st.calls, 1);
}

#[test]
fn a_file_in_plugin_dir_cannot_shadow_a_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let host = builtin_host(&[]);
    let builtin_sha = host.list().into_iter().find(|s| s.name == "drill-sim").unwrap().sha256;
    // An operator's own appeasement script under a built-in's name (a different world even).
    let path = dir.path().join("drill-sim.wasm");
    std::fs::write(&path, crisis::plugin::test_fixtures::bytes(crisis::plugin::test_fixtures::CHAOS)).unwrap();
    let rep = host.scan_dir(Some(dir.path()));
    assert!(rep.loaded.is_empty(), "{rep:?}");
    assert_eq!(rep.errors.len(), 1, "{rep:?}");
    assert_eq!(rep.errors[0].path, path);
    assert!(rep.errors[0].message.contains("drill-sim.wasm") && rep.errors[0].message.contains("built-in"), "{rep:?}");
    let st = host.list().into_iter().find(|s| s.name == "drill-sim").unwrap();
    assert_eq!((st.source, st.sha256, st.world), (PluginSource::Builtin, builtin_sha.clone(), World::Drill));
    // Nor under a manifest name.
    std::fs::remove_file(&path).unwrap();
    let other = dir.path().join("mine.wasm");
    std::fs::write(&other, crisis::plugin::test_fixtures::bytes(crisis::plugin::test_fixtures::CHAOS)).unwrap();
    std::fs::write(dir.path().join("mine.toml"), "[plugin]\nname = \"webhook-notify\"\n").unwrap();
    let rep = host.scan_dir(Some(dir.path()));
    assert!(rep.loaded.is_empty() && rep.errors.len() == 1, "{rep:?}");
    assert!(rep.errors[0].message.contains("mine.wasm") && rep.errors[0].message.contains("webhook-notify"), "{rep:?}");
    let st = host.list().into_iter().find(|s| s.name == "webhook-notify").unwrap();
    assert_eq!(st.source, PluginSource::Builtin);
}

#[test]
fn webhook_notify_posts_slack_payloads() {
    let server = TestServer::start(200, "ok");
    let host = builtin_host(&[("webhook-notify", webhook_grant(&[server.port]))]);
    let url = format!("http://127.0.0.1:{}/services/T0/B0/x", server.port);
    host.notify(
        "webhook-notify",
        &inv("inv-slack", RunMode::Live),
        &note(),
        &target(&[("url", &url), ("format", "slack"), ("channel", "#incidents")]),
    )
    .unwrap();
    let body: serde_json::Value = serde_json::from_str(&server.requests()[0].body).unwrap();
    assert!(body["text"].as_str().unwrap().starts_with("[SEV2] Checkout down"), "{body}");
    assert_eq!(body["channel"], "#incidents");
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(body["blocks"][2]["elements"][0]["text"].as_str().unwrap().contains("service-outage"));
}

#[test]
fn webhook_notify_maps_status_codes_and_config_errors() {
    let s503 = TestServer::start(503, "busy");
    let s400 = TestServer::start(400, "bad");
    let host = builtin_host(&[("webhook-notify", webhook_grant(&[s503.port, s400.port]))]);
    let url = format!("http://127.0.0.1:{}/", s503.port);
    let err = host.notify("webhook-notify", &inv("a", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap_err();
    assert!(
        matches!(&err, PluginCallError::Plugin { error: PluginError::Transient(m), .. } if m.contains("503")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.http_records().len(), 1, "the failed call's request is reported for the journal");
    assert_eq!(err.http_records()[0].disposition, HttpDisposition::Sent { status: 503 });
    let url = format!("http://127.0.0.1:{}/", s400.port);
    let err = host.notify("webhook-notify", &inv("b", RunMode::Live), &note(), &target(&[("url", &url)])).unwrap_err();
    assert!(matches!(&err, PluginCallError::Plugin { error: PluginError::Permanent(_), .. }), "{err:?}");
    assert!(!err.is_retryable());
    let err = host.notify("webhook-notify", &inv("c", RunMode::Live), &note(), &target(&[])).unwrap_err();
    assert!(
        matches!(&err, PluginCallError::Plugin { error: PluginError::Config(m), .. } if m.contains("url")),
        "{err:?}"
    );
    let err = host
        .notify("webhook-notify", &inv("d", RunMode::Live), &note(), &target(&[("url", "https://elsewhere.example/")]))
        .unwrap_err();
    assert!(matches!(&err, PluginCallError::Plugin { error: PluginError::Denied(_), .. }), "{err:?}");
}

#[test]
fn webhook_notify_in_a_drill_is_captured() {
    let server = TestServer::start(200, "ok");
    let host = builtin_host(&[("webhook-notify", webhook_grant(&[server.port]))]);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let out = host.notify("webhook-notify", &inv("dr", RunMode::Drill), &note(), &target(&[("url", &url)])).unwrap();
    assert_eq!(out.http[0].disposition, HttpDisposition::Captured);
    assert!(out.http[0].body_preview.contains("\"invocation_id\":\"dr\""), "{}", out.http[0].body_preview);
    assert!(out.http[0].body_bytes > out.http[0].body_preview.len(), "preview is capped, size is exact");
    assert!(out.http[0].headers.iter().any(|(k, v)| k == "idempotency-key" && v == "dr"));
    assert!(server.requests().is_empty());
}

#[test]
fn appease_script_composes_zh_cn_for_vip_and_en_for_standard() {
    let host = builtin_host(&[]);
    let mut inc = incident();
    inc.category = Category::ProductQuality;
    let vip = CustomerRef {
        id: "c-001".into(),
        segment: "affected".into(),
        tier: "vip".into(),
        locale: "zh-CN".into(),
        channel: Channel::Sms,
    };
    let out = host.compose("appease-script", &inv("ap1", RunMode::Live), &inc, &vip).unwrap();
    let m = &out.value[0];
    assert_eq!(m.locale, "zh-CN");
    assert_eq!(m.channel, Channel::Sms);
    assert!(m.body.starts_with("尊敬的贵宾客户"), "{}", m.body);
    assert!(m.body.contains("质量问题"), "category shapes the text: {}", m.body);
    assert!(m.body.contains("inc-1"));
    assert!(m.compensation.as_deref().is_some_and(|c| m.body.contains(c)), "VIP gets compensation: {m:?}");

    let mut inc3 = incident();
    inc3.severity = Severity::Sev3;
    inc3.category = Category::Price;
    let std_en = CustomerRef {
        id: "c-002".into(),
        segment: "all".into(),
        tier: "standard".into(),
        locale: "en-GB".into(),
        channel: Channel::Email,
    };
    let out = host.compose("appease-script", &inv("ap2", RunMode::Live), &inc3, &std_en).unwrap();
    let m = &out.value[0];
    assert_eq!(m.locale, "en");
    assert!(m.subject.as_deref().unwrap().contains("Checkout down"));
    assert!(m.body.starts_with("Hello,"), "{}", m.body);
    assert!(m.body.contains("billing"), "{}", m.body);
    assert!(m.body.contains("want to let you know"), "non-affected segment gets a heads-up: {}", m.body);
    assert_eq!(m.compensation, None);
}

#[test]
fn drill_sim_plans_the_scenario_and_scores_the_journal() {
    let host = builtin_host(&[]);
    let params =
        vec![("failing_step".to_string(), "notify-customers".to_string()), ("pace".to_string(), "0.5".to_string())];
    let plan = host.drill_plan("drill-sim", &inv("dp", RunMode::Drill), &incident(), &params).unwrap().value;
    let kinds: Vec<_> = plan.injects.iter().map(|i| i.kind).collect();
    for k in [
        InjectKind::Alert,
        InjectKind::ComplaintBurst,
        InjectKind::DuplicateAlert,
        InjectKind::NoAck,
        InjectKind::Ack,
        InjectKind::StepFailure,
        InjectKind::StepDone,
        InjectKind::Outcome,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing from {kinds:?}");
    }
    assert_eq!(plan.injects[0].at_offset_ms, 0);
    assert!(plan.injects.windows(2).all(|w| w[0].at_offset_ms <= w[1].at_offset_ms), "sorted by time");
    let fail = plan.injects.iter().find(|i| i.kind == InjectKind::StepFailure).unwrap();
    assert_eq!(fail.target.as_deref(), Some("notify-customers"));
    assert_eq!(fail.at_offset_ms, 300_000, "pace 0.5 halves 600 s");
    assert_eq!(plan.severity, Severity::Sev2);

    let good =
        r#"[{"kind":"incident.opened"},{"kind":"alert.deduplicated"},{"kind":"escalation.fired"},{"kind":"ack"}]"#;
    let crit = host.drill_score("drill-sim", &inv("ds", RunMode::Drill), good).unwrap().value;
    assert_eq!(crit.len(), 2);
    assert!(crit.iter().all(|c| c.points == c.max_points), "{crit:?}");
    let bad = r#"[{"kind":"incident.opened"},{"kind":"incident.opened"}]"#;
    let crit = host.drill_score("drill-sim", &inv("ds2", RunMode::Drill), bad).unwrap().value;
    assert!(crit.iter().all(|c| c.points == 0), "{crit:?}");
    assert!(crit[0].note.contains("dedup_key"));
    let err = host.drill_score("drill-sim", &inv("ds3", RunMode::Drill), "not json").unwrap_err();
    assert!(matches!(err, PluginCallError::Plugin { error: PluginError::Config(_), .. }), "{err:?}");
}

#[test]
fn call_json_runs_one_call_for_the_cli() {
    let host = builtin_host(&[]);
    let wasm = builtin_component("appease-script").unwrap();
    let out = host
        .call_json(
            wasm,
            World::Appeasement,
            r#"{"incident": {"id": "inc-9", "title": "Late deliveries", "severity": "sev1", "category": "service-process"},
                "customer": {"id": "c-7", "tier": "vip", "locale": "en", "channel": "email", "segment": "affected"}}"#,
            RunMode::Live,
        )
        .unwrap();
    assert_eq!(out["world"], "appeasement");
    assert_eq!(out["plugin"], "appease-script");
    assert!(out["value"][0]["body"].as_str().unwrap().contains("inc-9"), "{out}");
    let drill = host
        .call_json(builtin_component("drill-sim").unwrap(), World::Drill, r#"{"op": "plan"}"#, RunMode::Drill)
        .unwrap();
    assert!(drill["value"]["injects"].as_array().unwrap().len() >= 8);
    let err = host.call_json(wasm, World::Notifier, "{}", RunMode::Live).unwrap_err();
    assert!(matches!(err, PluginCallError::Load { source: LoadError::WrongWorld { .. }, .. }), "{err:?}");
    let err = host.call_json(wasm, World::Appeasement, r#"{"custmer": {}}"#, RunMode::Live).unwrap_err();
    assert!(matches!(err, PluginCallError::Input { .. }), "{err:?}");
}
