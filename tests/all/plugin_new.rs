//! `crisis plugin new`: a generated project builds with its own `build.sh`
//! and passes `crisis plugin test` as generated, in Rust (every world),
//! Python and JavaScript (notifier); the README's crisis.toml loads it; bad
//! names, worlds and directories are refused without writing anything.
//!
//! Python and JavaScript builds reuse the toolchains `examples/build.sh`
//! installs (`make test` runs it first). When they are missing the test says
//! so and skips, unless `CI` or `CRISIS_REQUIRE_EXAMPLES=1` is set: then it fails.

use crate::common::{Run, bin, repo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo target directory of this test build.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf()
}

/// Runs `crisis ARGS` in `dir` against this repository's SDKs.
fn crisis(dir: &Path, args: &[&str]) -> Run {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CRISIS_CONFIG")
        .env("CRISIS_REPO", repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run crisis")
        .into()
}

/// `crisis plugin new` into `dir/NAME`, checked to succeed; returns the project.
fn new_project(dir: &Path, name: &str, world: &str, lang: &str) -> PathBuf {
    let r = crisis(dir, &["plugin", "new", name, "--world", world, "--lang", lang]);
    assert_eq!(r.code, 0, "plugin new {name}: {}\n{}", r.stdout, r.stderr);
    let project = dir.join(name);
    assert!(project.join("README.md").is_file() && project.join("build.sh").is_file(), "{}", r.stdout);
    project
}

/// The generated one-command build, with `env`; returns the component.
fn build(project: &Path, name: &str, env: &[(&str, PathBuf)]) -> PathBuf {
    let mut cmd = Command::new(project.join("build.sh"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let r: Run = cmd.output().expect("run build.sh").into();
    assert_eq!(r.code, 0, "{}/build.sh failed:\n{}\n{}", project.display(), r.stdout, r.stderr);
    let wasm = project.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "build.sh wrote no {}", wasm.display());
    wasm
}

/// `crisis plugin test FILE` with the default `cases/` beside it: every generated case passes.
fn cases_pass(project: &Path, wasm: &Path) {
    let cache = target_dir().join("tmp").join("plugin-cache");
    let r =
        crisis(project, &["plugin", "test", wasm.to_str().unwrap(), "--json", "--cache-dir", cache.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout));
    let cases = std::fs::read_dir(project.join("cases")).unwrap().count();
    assert!(cases >= 2, "at least two recorded cases");
    assert_eq!((v["passed"].as_u64(), v["failed"].as_u64()), (Some(cases as u64), Some(0)), "{v}");
}

/// Rust builds share one target directory, so the SDK's dependencies compile once.
fn rust_env() -> Vec<(&'static str, PathBuf)> {
    vec![("CARGO_TARGET_DIR", target_dir().join("plugin-new"))]
}

/// A toolchain `examples/build.sh` installs: the first candidate that exists,
/// or `None` after saying why the test skips (a failure in CI).
fn toolchain(what: &str, var: &str, candidates: Vec<PathBuf>) -> Option<PathBuf> {
    let given = std::env::var_os(var).map(PathBuf::from);
    let all: Vec<PathBuf> = given.into_iter().chain(candidates).collect();
    if let Some(found) = all.iter().find(|p| p.exists()) {
        return Some(found.clone());
    }
    let tried: Vec<String> = all.iter().map(|p| p.display().to_string()).collect();
    let why = format!("{what} not found (tried {}); run examples/build.sh or set {var}", tried.join(", "));
    let required = std::env::var_os("CI").is_some() || std::env::var("CRISIS_REQUIRE_EXAMPLES").as_deref() == Ok("1");
    assert!(!required, "{why}");
    eprintln!("skipping: {why}");
    None
}

fn examples_out() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::env::var_os("CRISIS_EXAMPLES_OUT").map(PathBuf::from).into_iter().collect();
    v.extend([repo().join("target/examples"), target_dir().join("examples")]);
    v
}

#[test]
fn rust_notifier_builds_passes_its_cases_and_loads_with_the_readme_config() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "hello-notify", "notifier", "rust");
    let wasm = build(&project, "hello-notify", &rust_env());
    cases_pass(&project, &wasm);

    // The README's crisis.toml, as written, declares and grants the plugin from plugin_dir.
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let loading = &readme[readme.find("## Loading it into the daemon").expect("a loading section")..];
    let start = loading.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let toml = &loading[start..start + loading[start..].find("```").unwrap()];
    let load = dir.path().join("load");
    std::fs::create_dir_all(load.join("plugins.d")).unwrap();
    std::fs::copy(&wasm, load.join("plugins.d/hello-notify.wasm")).unwrap();
    std::fs::write(load.join("crisis.toml"), toml).unwrap();
    let r = crisis(&load, &["--config", "crisis.toml", "plugin", "list", "--json", "--no-cache"]);
    assert_eq!(r.code, 0, "{toml}\n{}\n{}", r.stdout, r.stderr);
    let rows: Value = serde_json::from_str(&r.stdout).unwrap();
    let row = rows.as_array().unwrap().iter().find(|r| r["name"] == "hello-notify").expect("listed");
    assert_eq!((&row["world"], &row["error"]), (&Value::from("notifier"), &Value::Null), "{row}");
    assert_eq!(row["effective_hosts"], serde_json::json!(["hooks.example.com"]), "{row}");
}

#[test]
fn rust_appeasement_drill_and_classifier_build_and_pass_their_cases() {
    let dir = tempfile::tempdir().unwrap();
    for (name, world) in [("apology", "appeasement"), ("fire-drill", "drill"), ("complaint-sorter", "classifier")] {
        let project = new_project(dir.path(), name, world, "rust");
        let wasm = build(&project, name, &rust_env());
        cases_pass(&project, &wasm);
        let r = crisis(&project, &["plugin", "inspect", wasm.to_str().unwrap(), "--no-cache", "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["world"], world, "{v}");
    }
}

#[test]
fn python_notifier_builds_with_the_examples_venv_and_passes_its_cases() {
    let venvs = examples_out().into_iter().map(|d| d.join("py-venv/bin/componentize-py")).collect();
    let Some(cpy) = toolchain("componentize-py (the examples venv)", "COMPONENTIZE_PY", venvs) else { return };
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "py-notify", "notifier", "python");
    let wasm = build(&project, "py-notify", &[("COMPONENTIZE_PY", cpy)]);
    cases_pass(&project, &wasm);
}

#[test]
fn js_notifier_builds_with_the_examples_node_modules_and_passes_its_cases() {
    let modules = vec![repo().join("examples/js-notifier/node_modules")];
    let Some(modules) =
        toolchain("componentize-js (examples/js-notifier/node_modules)", "CRISIS_JS_NODE_MODULES", modules)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "js-notify", "notifier", "js");
    let wasm = build(&project, "js-notify", &[("CRISIS_JS_NODE_MODULES", modules)]);
    cases_pass(&project, &wasm);
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("taken");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "mine").unwrap();
    let r =
        crisis(dir.path(), &["plugin", "new", "ok-name", "--world", "notifier", "--lang", "rust", "--dir", "taken"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("taken already exists and is not empty"), "{}", r.stderr);
    let left: Vec<_> = std::fs::read_dir(&existing).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["keep.txt"]);
    assert_eq!(std::fs::read_to_string(existing.join("keep.txt")).unwrap(), "mine");

    let r = crisis(dir.path(), &["plugin", "new", "Bad_Name", "--world", "notifier", "--lang", "rust"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("invalid plugin name `Bad_Name`"), "{}", r.stderr);

    let r = crisis(dir.path(), &["plugin", "new", "p", "--world", "pager", "--lang", "rust"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("invalid value 'pager'") && r.stderr.contains("notifier"), "{}", r.stderr);

    let r = crisis(dir.path(), &["plugin", "new", "p", "--world", "drill", "--lang", "python"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--world drill is not yet supported for --lang python; use --lang rust"), "{}", r.stderr);

    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["taken"], "nothing but the pre-existing directory");

    // An empty directory is fine to fill.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let r = crisis(dir.path(), &["plugin", "new", "fresh", "--world", "notifier", "--lang", "js", "--dir", "empty"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dir.path().join("empty/plugin.js").is_file() && dir.path().join("empty/cases/delivered.json").is_file());
}
