//! Hot swap: in-flight calls finish on the old version, a broken file keeps
//! the last good version, directory scans load, skip and unload.

use crate::plugin_support::*;
use crisis::plugin::test_fixtures as fx;
use crisis::plugin::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn reload_mid_call_finishes_the_old_call_on_the_old_version() {
    // The slow call posts to a server that answers only when the test says
    // so: the swap provably happens while that call is in flight.
    let (server, release) = TestServer::start_gated(200, "late");
    let lo = format!("http://127.0.0.1:{}", server.port);
    let grant = PluginGrant { allowed_hosts: vec![lo.clone()], allow_private: vec![lo], ..Default::default() };
    let host = Arc::new(host_with(&[("probe", grant)]));
    let v1 = with_custom_section(fx::bytes(fx::PROBE), "v1");
    let v2 = with_custom_section(fx::bytes(fx::PROBE), "v2");
    let ReloadOutcome::Swapped(r1) = host.reload("probe", &v1).unwrap() else { panic!("first load swaps") };

    let h = host.clone();
    let url = format!("http://127.0.0.1:{}/slow", server.port);
    let slow = std::thread::spawn(move || {
        h.notify("probe", &inv("slow", RunMode::Live), &note(), &target(&[("url", &url), ("tag", "slow")]))
    });
    // Wait until the slow call's request has reached the server.
    for _ in 0..1000 {
        if !server.requests().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.requests().len(), 1, "the slow call is in flight");

    let ReloadOutcome::Swapped(r2) = host.reload("probe", &v2).unwrap() else { panic!("new bytes swap") };
    assert_ne!(r1.sha256, r2.sha256);
    assert!(!slow.is_finished(), "the slow call is still waiting for its response");
    let fast = host.notify("probe", &inv("fast", RunMode::Live), &note(), &target(&[("tag", "fast")])).unwrap();
    assert_eq!(fast.plugin.sha256, r2.sha256, "new calls use the new version");
    assert_eq!(host.list()[0].sha256, r2.sha256);

    release.send(()).unwrap();
    let slow = slow.join().unwrap().expect("the in-flight call completes");
    assert_eq!(slow.plugin.sha256, r1.sha256, "the in-flight call finished on the old version");
    assert!(slow.value.detail.contains("\"tag\":\"slow\""));
    assert!(slow.value.detail.contains("\"body\":\"late\""), "{}", slow.value.detail);

    // Same bytes again: nothing to do.
    assert!(matches!(host.reload("probe", &v2).unwrap(), ReloadOutcome::Unchanged(_)));
}

#[test]
fn scan_dir_loads_keeps_last_good_on_broken_file_and_unloads_removed() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(PluginHostConfig {
        plugin_dir: Some(dir.path().to_path_buf()),
        load_builtins: false,
        ..Default::default()
    })
    .unwrap();
    let path = dir.path().join("chaos.wasm");
    std::fs::write(&path, fx::bytes(fx::CHAOS)).unwrap();
    let rep = host.scan_dir(None);
    assert_eq!(rep.loaded, vec!["chaos"]);
    assert!(rep.errors.is_empty(), "{rep:?}");
    let good_sha = host.list()[0].sha256.clone();
    assert_eq!(host.list()[0].source, PluginSource::File(path.clone()));

    let rep = host.scan_dir(None);
    assert_eq!(rep.unchanged, vec!["chaos"]);

    // A broken write keeps the last good version running.
    std::fs::write(&path, b"\0asm truncated").unwrap();
    let rep = host.scan_dir(None);
    assert_eq!(rep.errors.len(), 1, "{rep:?}");
    assert_eq!(rep.errors[0].plugin, "chaos");
    let st = &host.list()[0];
    assert_eq!(st.sha256, good_sha);
    assert!(st.last_error.as_deref().is_some_and(|e| e.contains("not a valid WebAssembly component")), "{st:?}");
    host.compose("chaos", &inv("still", RunMode::Live), &incident(), &customer("ok")).unwrap();

    // A wrong-world file named like the running plugin is refused too.
    std::fs::write(&path, fx::bytes(fx::APPEASE_HTTP)).unwrap();
    let rep = host.scan_dir(None);
    assert!(rep.errors[0].message.contains("wasi:http"), "{rep:?}");
    assert_eq!(host.list()[0].sha256, good_sha);

    // Removing the file unloads the plugin.
    std::fs::remove_file(&path).unwrap();
    let rep = host.scan_dir(None);
    assert_eq!(rep.removed, vec!["chaos"]);
    assert!(host.list().is_empty());
}

#[test]
fn sidecar_manifest_names_pins_and_checks_the_world() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with(&[]);
    let bytes = fx::bytes(fx::CHAOS);
    std::fs::write(dir.path().join("c.wasm"), &bytes).unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[plugin]\nname = \"my-chaos\"\nworld = \"appeasement\"\nsha256 = \"0000\"\n",
    )
    .unwrap();
    let rep = host.scan_dir(Some(dir.path()));
    assert!(rep.errors[0].message.contains("sha256 mismatch"), "{rep:?}");

    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    std::fs::write(
        dir.path().join("c.toml"),
        format!("[plugin]\nname = \"my-chaos\"\nworld = \"notifier\"\nsha256 = \"{sha}\"\n"),
    )
    .unwrap();
    let rep = host.scan_dir(Some(dir.path()));
    assert!(rep.errors[0].message.contains("expected a `notifier`"), "{rep:?}");

    std::fs::write(
        dir.path().join("c.toml"),
        format!("[plugin]\nname = \"my-chaos\"\nworld = \"appeasement\"\nsha256 = \"{sha}\"\n"),
    )
    .unwrap();
    let rep = host.scan_dir(Some(dir.path()));
    assert_eq!(rep.loaded, vec!["my-chaos"], "{rep:?}");

    std::fs::write(dir.path().join("c.toml"), "[plugin]\nnmae = \"x\"\n").unwrap();
    let rep = host.scan_dir(Some(dir.path()));
    assert!(rep.errors[0].message.contains("nmae"), "unknown keys are errors: {rep:?}");
}
