//! Sandbox limits: deadlines, memory, traps and quarantine, output capture,
//! world/import checks and the compiled-component cache.

use crate::plugin_support::*;
use crisis::plugin::test_fixtures as fx;
use crisis::plugin::*;
use std::time::{Duration, Instant};

fn chaos_host(limits: LimitOverrides) -> PluginHost {
    let host = host_with(&[("chaos", PluginGrant { limits, ..Default::default() })]);
    host.reload("chaos", &fx::bytes(fx::CHAOS)).expect("chaos fixture loads");
    host
}

#[test]
fn infinite_loop_times_out_within_budget_and_next_call_succeeds() {
    let host = chaos_host(LimitOverrides { timeout_ms: Some(300), ..Default::default() });
    let start = Instant::now();
    let err = host.compose("chaos", &inv("i-loop", RunMode::Live), &incident(), &customer("loop")).unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, PluginCallError::Timeout { budget_ms: 300, .. }), "{err:?}");
    // Budget plus a few ticks; generous for a loaded 2-core CI box.
    assert!(elapsed < Duration::from_millis(300) + Duration::from_secs(3), "took {elapsed:?}");
    let ok = host.compose("chaos", &inv("i-ok", RunMode::Live), &incident(), &customer("fine")).unwrap();
    assert_eq!(ok.value.len(), 1);
    assert!(ok.value[0].body.starts_with("ok i-ok inc-1 fine"), "{:?}", ok.value);
}

#[test]
fn guest_parked_in_a_host_wait_is_stopped_too() {
    let host = chaos_host(LimitOverrides { timeout_ms: Some(300), ..Default::default() });
    let start = Instant::now();
    let err = host.compose("chaos", &inv("i-sleep", RunMode::Live), &incident(), &customer("sleep")).unwrap_err();
    assert!(matches!(err, PluginCallError::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
}

#[test]
fn memory_bomb_fails_cleanly_and_next_call_succeeds() {
    let host = chaos_host(LimitOverrides { memory_mb: Some(16), ..Default::default() });
    let err = host.compose("chaos", &inv("i-bomb", RunMode::Live), &incident(), &customer("bomb")).unwrap_err();
    match &err {
        PluginCallError::ResourceExhausted { detail, .. } => {
            assert!(detail.contains("16 MiB"), "{detail}")
        }
        other => panic!("expected ResourceExhausted, got {other:?}"),
    }
    assert!(err.to_string().contains("memory_mb"), "message says what to do: {err}");
    host.compose("chaos", &inv("i-after", RunMode::Live), &incident(), &customer("fine")).unwrap();
}

#[test]
fn trap_is_crashed_and_repeated_traps_quarantine_the_version() {
    let host = chaos_host(LimitOverrides::default());
    for i in 0..3 {
        let err =
            host.compose("chaos", &inv(&format!("t{i}"), RunMode::Live), &incident(), &customer("trap")).unwrap_err();
        match err {
            PluginCallError::Crashed { trap, .. } => {
                assert!(trap.contains("fixture trap requested"), "guest panic message is reported: {trap}")
            }
            other => panic!("expected Crashed, got {other:?}"),
        }
    }
    let status = host.list().into_iter().find(|s| s.name == "chaos").unwrap();
    assert!(status.quarantined, "{status:?}");
    assert_eq!(status.crashes, 3);
    // Even a call that would succeed is refused now.
    let err = host.compose("chaos", &inv("t-next", RunMode::Live), &incident(), &customer("fine")).unwrap_err();
    assert!(matches!(err, PluginCallError::Quarantined { crashes: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("quarantined"));
    // Reloading the same bytes does not lift it; a new version does.
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    assert!(host.compose("chaos", &inv("t-same", RunMode::Live), &incident(), &customer("fine")).is_err());
    host.reload("chaos", &with_custom_section(fx::bytes(fx::CHAOS), "v2")).unwrap();
    host.compose("chaos", &inv("t-new", RunMode::Live), &incident(), &customer("fine")).unwrap();
}

#[test]
fn unquarantine_lifts_the_quarantine() {
    let host = host_with(&[]);
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    for i in 0..3 {
        let _ = host.compose("chaos", &inv(&format!("u{i}"), RunMode::Live), &incident(), &customer("trap"));
    }
    assert!(host.list()[0].quarantined);
    host.unquarantine("chaos").unwrap();
    host.compose("chaos", &inv("u-ok", RunMode::Live), &incident(), &customer("fine")).unwrap();
}

#[test]
fn guest_output_is_captured_and_capped() {
    let host = chaos_host(LimitOverrides { max_log_bytes: Some(4096), ..Default::default() });
    let out = host.compose("chaos", &inv("i-spam", RunMode::Live), &incident(), &customer("spam")).unwrap();
    let stdout: Vec<_> = out.logs.iter().filter(|l| l.source == LogSource::Stdout).collect();
    assert_eq!(stdout.len(), 1);
    assert!(stdout[0].message.len() < 4096 + 200, "capped: {}", stdout[0].message.len());
    assert!(stdout[0].message.contains("truncated"), "truncation is marked");
}

#[test]
fn appeasement_importing_wasi_http_is_refused_at_load_naming_the_import() {
    let host = host_with(&[]);
    let err = host.reload("bad", &fx::bytes(fx::APPEASE_HTTP)).unwrap_err();
    match &err {
        LoadError::ForbiddenImport { world, import, .. } => {
            assert_eq!(*world, World::Appeasement);
            assert!(import.starts_with("wasi:http/"), "{import}");
        }
        other => panic!("expected ForbiddenImport, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("wasi:http/") && msg.contains("appeasement"), "{msg}");
    assert!(host.list().is_empty(), "nothing was registered");
    assert!(matches!(host.inspect(&fx::bytes(fx::APPEASE_HTTP)), Err(LoadError::ForbiddenImport { .. })));
}

#[test]
fn calling_a_plugin_as_the_wrong_world_is_denied_and_unknown_names_are_not_found() {
    let host = host_with(&[]);
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    let err = host.notify("chaos", &inv("w", RunMode::Live), &note(), &NotifyTarget::default()).unwrap_err();
    assert!(matches!(err, PluginCallError::Denied { .. }), "{err:?}");
    let err = host.compose("nope", &inv("w", RunMode::Live), &incident(), &customer("x")).unwrap_err();
    assert!(matches!(err, PluginCallError::NotFound { .. }), "{err:?}");
}

#[test]
fn garbage_and_precompiled_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(PluginHostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        load_builtins: false,
        ..Default::default()
    })
    .unwrap();
    assert!(matches!(host.reload("x", b"not wasm at all"), Err(LoadError::Invalid(_))));
    let core_module = b"\0asm\x01\0\0\0";
    let err = host.reload("x", core_module).unwrap_err();
    assert!(err.to_string().contains("core WebAssembly module, not a component"), "{err}");
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    let cwasm = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("cache entry written");
    let err = host.reload("y", &std::fs::read(cwasm).unwrap()).unwrap_err();
    assert!(matches!(err, LoadError::Precompiled), "{err:?}");
    assert!(err.to_string().contains(".cwasm"));
}

#[test]
fn cache_skips_second_compile() {
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        || PluginHostConfig { cache_dir: Some(dir.path().to_path_buf()), load_builtins: false, ..Default::default() };
    let first = PluginHost::new(cfg()).unwrap();
    first.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    assert_eq!(first.cache_stats(), CacheStats { compiles: 1, hits: 0 });
    drop(first);
    let second = PluginHost::new(cfg()).unwrap();
    second.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    assert_eq!(second.cache_stats(), CacheStats { compiles: 0, hits: 1 });
    // And the cached code runs.
    second.compose("chaos", &inv("c", RunMode::Live), &incident(), &customer("fine")).unwrap();
    // Different bytes compile again.
    second.reload("chaos", &with_custom_section(fx::bytes(fx::CHAOS), "other")).unwrap();
    assert_eq!(second.cache_stats().compiles, 1);
}

#[test]
fn inspect_reports_world_imports_capabilities_and_describe() {
    let host = host_with(&[]);
    let wasm = builtin_component("webhook-notify").unwrap();
    let i = host.inspect(wasm).unwrap();
    assert_eq!(i.world, World::Notifier);
    assert!(i.api_version.starts_with("0.1."));
    assert!(i.imports.iter().any(|n| n.starts_with("wasi:http/outgoing-handler@0.2")), "{:?}", i.imports);
    assert!(i.imports.iter().any(|n| n.starts_with("crisis:plugin/host@0.1")));
    assert!(i.exports.iter().any(|n| n.starts_with("crisis:plugin/notify@0.1")));
    assert!(i.capabilities.iter().any(|c| c.starts_with("outbound-http")));
    assert_eq!(i.describe.name, "webhook-notify");
    assert_eq!(i.sha256.len(), 64);
    let a = host.inspect(builtin_component("appease-script").unwrap()).unwrap();
    assert_eq!(a.world, World::Appeasement);
    assert!(!a.capabilities.iter().any(|c| c.starts_with("outbound-http")));
}

#[test]
fn builtins_load_by_default_and_list_shows_them() {
    let host = PluginHost::new(PluginHostConfig {
        engine: EngineOptions { pool_instances: 16, pool_memories: 32, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    let list = host.list();
    let names: Vec<_> = list.iter().map(|s| (s.name.as_str(), s.world)).collect();
    assert_eq!(
        names,
        vec![
            ("appease-script", World::Appeasement),
            ("drill-sim", World::Drill),
            ("keyword-classifier", World::Classifier),
            ("sms-gateway", World::Notifier),
            ("webhook-notify", World::Notifier)
        ]
    );
    assert!(list.iter().all(|s| s.source == PluginSource::Builtin && !s.quarantined));
    assert!(host.pooling(), "pooling allocator reserved on this machine");
}

#[test]
fn on_demand_allocation_works_when_pooling_is_off() {
    let host = PluginHost::new(PluginHostConfig {
        load_builtins: false,
        engine: EngineOptions { pooling: false, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    assert!(!host.pooling());
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    host.compose("chaos", &inv("od", RunMode::Live), &incident(), &customer("fine")).unwrap();
}

#[test]
fn drills_on_a_virtual_clock_show_the_guest_the_virtual_time() {
    let host = host_with(&[]);
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    let base: u128 = 1_000_000_000_000; // 2001-09-09
    let mut i = inv("vc", RunMode::Drill);
    i.now_unix_ms = base as u64;
    let out = host.compose("chaos", &i, &incident(), &customer("clock")).unwrap();
    let t: u128 = out.value[0].body.strip_prefix("clock ").unwrap().parse().unwrap();
    assert!(t >= base && t < base + 60_000, "guest saw {t}");
    // Live calls see the real clock.
    let out = host.compose("chaos", &inv("rc", RunMode::Live), &incident(), &customer("clock")).unwrap();
    let t: u128 = out.value[0].body.strip_prefix("clock ").unwrap().parse().unwrap();
    assert!(t > 1_700_000_000_000, "guest saw {t}");
}

fn count(host: &PluginHost, id: &str) -> u32 {
    let out = host.compose("chaos", &inv(id, RunMode::Live), &incident(), &customer("count")).unwrap();
    out.value[0].body.strip_prefix("count ").unwrap().parse().unwrap()
}

#[test]
fn fresh_instance_per_call_by_default() {
    let host = chaos_host(LimitOverrides::default());
    assert_eq!((count(&host, "a"), count(&host, "b"), count(&host, "c")), (1, 1, 1));
}

#[test]
fn warm_instances_are_reused_then_retired_after_n_calls_or_any_trap() {
    let host = chaos_host(LimitOverrides { warm_calls: Some(3), ..Default::default() });
    // One instance serves three calls, then a new one starts.
    let seq: Vec<u32> = (0..4).map(|i| count(&host, &format!("w{i}"))).collect();
    assert_eq!(seq, vec![1, 2, 3, 1]);
    // A trap retires the instance: the next call starts fresh.
    assert!(matches!(
        host.compose("chaos", &inv("wt", RunMode::Live), &incident(), &customer("trap")),
        Err(PluginCallError::Crashed { .. })
    ));
    assert_eq!(count(&host, "after-trap"), 1);
    // A timeout does too, and the deadline is re-armed for reused instances.
    let mut i = inv("wl", RunMode::Live);
    i.budget_ms = Some(200);
    assert!(matches!(host.compose("chaos", &i, &incident(), &customer("loop")), Err(PluginCallError::Timeout { .. })));
    // The loop ran on the warm instance (count was 1), so it was retired.
    assert_eq!(count(&host, "after-loop"), 1, "timed-out instance retired");
    assert_eq!(count(&host, "again"), 2, "deadline re-armed on the reused instance");
    // Drill calls never use warm instances.
    let out = host.compose("chaos", &inv("wd", RunMode::Drill), &incident(), &customer("count")).unwrap();
    assert_eq!(out.value[0].body, "count 1");
}

#[test]
fn a_burst_larger_than_the_instance_pool_waits_instead_of_failing() {
    let host = std::sync::Arc::new(
        PluginHost::new(PluginHostConfig {
            load_builtins: false,
            engine: EngineOptions { pool_instances: 2, pool_memories: 4, ..Default::default() },
            ..Default::default()
        })
        .unwrap(),
    );
    host.reload("chaos", &fx::bytes(fx::CHAOS)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let h = host.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    h.compose("chaos", &inv(&format!("b{t}-{i}"), RunMode::Live), &incident(), &customer("fine"))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("every call in the burst succeeds");
    }
    let st = &host.list()[0];
    assert_eq!((st.calls, st.crashes, st.quarantined), (40, 0, false));
}

#[test]
fn a_component_for_a_future_api_version_is_refused_clearly() {
    let host = host_with(&[]);
    let err = host.reload("future", &fx::bytes(fx::FUTURE_API)).unwrap_err();
    match &err {
        LoadError::UnsupportedVersion { found } => assert!(found.contains("@0.2.0"), "{found}"),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert!(err.to_string().contains("unsupported API version"), "{err}");
}
