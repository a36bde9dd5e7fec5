//! Builds the guest plugins in `../plugins` for `wasm32-wasip2` and copies
//! the components into `OUT_DIR`, where `src/plugin/builtin.rs` embeds the
//! built-ins with `include_bytes!` and tests find the fixtures.
//!
//! Why a nested cargo: the guests are a separate workspace for another
//! target. The nested build gets a clean environment (no `CARGO_*`,
//! `RUSTFLAGS` or target-dir settings leaking from this build, which would
//! point it at the host's target or flags) and its own target directory
//! under `OUT_DIR`, so it never contends for the outer build's lock.
//! `rerun-if-changed` lists the guest sources, so a host rebuild with no
//! plugin change does not run the nested build at all.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (cargo packages, built in one cargo invocation). The SDK has one feature
/// per world and cargo unifies features within one build, so each world is
/// built on its own.
const GROUPS: &[&[&str]] = &[
    &["webhook-notify", "sms-gateway", "fixture-probe"],
    &["appease-script", "fixture-chaos"],
    &["drill-sim", "fixture-appease-http", "fixture-future-api", "fixture-api-0-1-1"],
    &["keyword-classifier", "fixture-classify-http"],
];

/// Components embedded in the binary (file stem in the guest target dir).
const BUILTINS: &[&str] = &["webhook_notify", "sms_gateway", "appease_script", "drill_sim", "keyword_classifier"];
/// Components used only by tests.
const FIXTURES: &[&str] = &[
    "fixture_probe",
    "fixture_chaos",
    "fixture_appease_http",
    "fixture_future_api",
    "fixture_api_0_1_1",
    "fixture_classify_http",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts"));
    let plugins = manifest_dir.join("..").join("plugins");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let guest_target = out_dir.join("guest-target");

    for rel in [
        "Cargo.toml",
        "Cargo.lock",
        "wit",
        "sdk",
        "webhook-notify",
        "sms-gateway",
        "appease-script",
        "drill-sim",
        "keyword-classifier",
        "fixtures",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(rel).display());
    }
    println!("cargo:rerun-if-env-changed=CRISIS_PLUGINS_OFFLINE");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for group in GROUPS {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&plugins)
            .arg("build")
            .arg("--release")
            .arg("--locked")
            .arg("--target=wasm32-wasip2")
            .arg("--target-dir")
            .arg(&guest_target);
        if env::var_os("CRISIS_PLUGINS_OFFLINE").is_some() {
            cmd.arg("--offline");
        }
        for p in *group {
            cmd.arg("-p").arg(p);
        }
        clean_env(&mut cmd);
        let output = cmd.output().unwrap_or_else(|e| {
            panic!("could not run `{cargo}` to build the guest plugins in {}: {e}", plugins.display())
        });
        if !output.status.success() {
            panic!(
                "building guest plugins {group:?} for wasm32-wasip2 failed (in {}).\n\
                 Fix the guest code or run the same build by hand:\n  \
                 cd plugins && cargo build --release --target wasm32-wasip2 -p {}\n\n{}",
                plugins.display(),
                group.join(" -p "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    let built = guest_target.join("wasm32-wasip2").join("release");
    for name in BUILTINS.iter().chain(FIXTURES) {
        let src = built.join(format!("{name}.wasm"));
        let dst = out_dir.join(format!("{name}.wasm"));
        copy_if_changed(&src, &dst);
    }
    println!("cargo:rustc-env=CRISIS_PLUGIN_FIXTURE_DIR={}", out_dir.display());
}

/// Remove the outer build's settings from the nested cargo's environment.
fn clean_env(cmd: &mut Command) {
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let leaks = (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_NET_OFFLINE")
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_LINKER"
                    | "DEBUG"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "NUM_JOBS"
            );
        if leaks {
            cmd.env_remove(key);
        }
    }
}

fn copy_if_changed(src: &Path, dst: &Path) {
    let bytes =
        std::fs::read(src).unwrap_or_else(|e| panic!("guest component {} missing after build: {e}", src.display()));
    if std::fs::read(dst).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(dst, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", dst.display()));
    }
}
