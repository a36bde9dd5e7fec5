//! `crisis plugin new NAME --world W --lang L`: writes a plugin project that
//! builds with one command (`./build.sh`) and passes `crisis plugin test` as
//! generated. The project uses the SDK of its language from a crisis
//! repository checkout, and the toolchains `examples/build.sh` installs there
//! (a componentize-py venv, componentize-js in node_modules), so nothing new is
//! downloaded for Python or JavaScript.
//!
//! The repository is `CRISIS_REPO` when set, else the one this binary was
//! built from. The templates are embedded; `{{key}}` markers are replaced.

use crate::cli::output::{Failure, print_json};
use crate::plugin::World;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Arguments of `crisis plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin name: lowercase letters, digits and single dashes, starting with a letter.
    name: String,
    /// The world the plugin implements.
    #[arg(long, value_parser = ["notifier", "appeasement", "drill", "classifier"])]
    world: String,
    /// The language: rust (every world), python or js (notifier only, for now).
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to create the project (must not exist or be empty). Default: ./NAME.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The languages a plugin project can be created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Lang {
    /// The Rust SDK (plugins/sdk), built with cargo for wasm32-wasip2.
    Rust,
    /// The Python SDK (plugins/sdk-python), built with componentize-py.
    Python,
    /// The JavaScript SDK (plugins/sdk-js), built with componentize-js.
    Js,
}

impl Lang {
    fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// One file of a project: its path inside the project and its template.
struct Template {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> Template {
    Template { path, text, executable: false }
}

const fn script(path: &'static str, text: &'static str) -> Template {
    Template { path, text, executable: true }
}

const README: &str = include_str!("templates/README.md");
const GITIGNORE_RUST: &str = "/target\n/*.wasm\n";
const GITIGNORE_PYTHON: &str = "/*.wasm\n__pycache__/\n";
const GITIGNORE_JS: &str = "/*.wasm\n/sdk/\n";
const RUST_TOOLCHAIN: &str = include_str!("../../../../rust-toolchain.toml");

const NOTIFIER_CASES: &[Template] = &[
    file("cases/delivered.json", include_str!("templates/cases/notifier/delivered.json")),
    file("cases/upstream-503-transient.json", include_str!("templates/cases/notifier/upstream-503-transient.json")),
    file("cases/missing-url-config.json", include_str!("templates/cases/notifier/missing-url-config.json")),
];
const APPEASEMENT_CASES: &[Template] = &[
    file("cases/affected-vip-email.json", include_str!("templates/cases/appeasement/affected-vip-email.json")),
    file("cases/unaffected-nothing.json", include_str!("templates/cases/appeasement/unaffected-nothing.json")),
];
const DRILL_CASES: &[Template] = &[
    file("cases/plan-default.json", include_str!("templates/cases/drill/plan-default.json")),
    file("cases/score-outcome.json", include_str!("templates/cases/drill/score-outcome.json")),
    file("cases/score-bad-journal-config.json", include_str!("templates/cases/drill/score-bad-journal-config.json")),
];
const CLASSIFIER_CASES: &[Template] = &[
    file("cases/refund-price.json", include_str!("templates/cases/classifier/refund-price.json")),
    file("cases/no-keyword-other.json", include_str!("templates/cases/classifier/no-keyword-other.json")),
];

const RUST_COMMON: &[Template] = &[
    file("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
    file("rust-toolchain.toml", RUST_TOOLCHAIN),
    file(".gitignore", GITIGNORE_RUST),
    script("build.sh", include_str!("templates/rust/build.sh")),
];
const PYTHON: &[Template] = &[
    file("app.py", include_str!("templates/python/app.py")),
    file(".gitignore", GITIGNORE_PYTHON),
    script("build.sh", include_str!("templates/python/build.sh")),
];
const JS: &[Template] = &[
    file("plugin.js", include_str!("templates/js/plugin.js")),
    file("build.mjs", include_str!("templates/js/build.mjs")),
    file(".gitignore", GITIGNORE_JS),
    script("build.sh", include_str!("templates/js/build.sh")),
];

const RUST_NOTES: &str = "Needs Rust with the `wasm32-wasip2` target: `rust-toolchain.toml` pins the crisis toolchain \
and adds it. `build.sh` runs `cargo build --release --target wasm32-wasip2`; set `CARGO_TARGET_DIR` to share \
compiled dependencies between projects. `Cargo.toml` depends on the SDK at `{{repo}}/plugins/sdk` (edit the path \
if the repository moves); `Cargo.lock` starts as the SDK's own, so the versions it is tested with are used.";
const PYTHON_NOTES: &str = "`build.sh` runs componentize-py with the crisis Python SDK on its path. It uses the \
componentize-py that `examples/build.sh python` installs in the crisis repository \
(`$CRISIS_REPO/target/examples/py-venv/bin/componentize-py`). Environment: `CRISIS_REPO` (default `{{repo}}`), \
`COMPONENTIZE_PY` (another componentize-py 0.25.1).";
const JS_NOTES: &str = "`build.sh` copies the crisis JS SDK into `sdk/` and runs componentize-js (`build.mjs`). It \
uses the componentize-js that `examples/build.sh js` installs in the crisis repository \
(`$CRISIS_REPO/examples/js-notifier/node_modules`). Environment: `CRISIS_REPO` (default `{{repo}}`), \
`CRISIS_JS_NODE_MODULES` (another node_modules with @bytecodealliance/componentize-js), `NODE`.";

const NOTIFIER_GRANT: &str = "allowed_hosts = [\"hooks.example.com\"]   # the hosts the plugin may reach\n\n\
[targets.superiors]\nplugin = \"{{name}}\"\nconfig = { url = \"https://hooks.example.com/crisis\" }";

/// What `plugin new` wrote, for `--json`.
#[derive(Debug, Serialize)]
struct Created {
    dir: PathBuf,
    name: String,
    world: World,
    lang: Lang,
    files: Vec<String>,
    build: String,
    test: String,
}

pub(super) fn new(json: bool, args: &NewArgs) -> Result<(), Failure> {
    check_name(&args.name).map_err(Failure::invalid)?;
    let world: World = args.world.parse().map_err(Failure::invalid)?;
    let files = templates(world, args.lang)?;
    let repo = repo()?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    check_dir(&dir)?;

    let vars = [
        ("{{name}}", args.name.clone()),
        ("{{crate}}", args.name.replace('-', "_")),
        ("{{world}}", world.as_str().to_string()),
        ("{{lang}}", args.lang.as_str().to_string()),
        ("{{repo}}", repo.display().to_string()),
    ];
    let fill = |text: &str| vars.iter().fold(text.to_string(), |t, (k, v)| t.replace(k, v));
    let readme = README
        .replace("{{lang_title}}", lang_title(args.lang))
        .replace("{{build_notes}}", notes(args.lang))
        .replace("{{grant_example}}", if world == World::Notifier { NOTIFIER_GRANT } else { "" });

    let mut written = Vec::new();
    let write = |rel: &str, text: &str, executable: bool| -> Result<(), Failure> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_failure(parent, &e))?;
        }
        std::fs::write(&path, text).map_err(|e| io_failure(&path, &e))?;
        if executable {
            make_executable(&path)?;
        }
        Ok(())
    };
    for t in &files {
        write(t.path, &fill(t.text), t.executable)?;
        written.push(t.path.to_string());
    }
    write("README.md", &fill(&readme), false)?;
    written.push("README.md".into());
    if args.lang == Lang::Rust {
        // The SDK's own lock: the dependency versions it is tested with, resolvable offline.
        if let Ok(lock) = std::fs::read_to_string(repo.join("plugins/Cargo.lock")) {
            write("Cargo.lock", &lock, false)?;
            written.push("Cargo.lock".into());
        }
    }

    let wasm = format!("{}.wasm", args.name);
    let created = Created {
        dir: dir.clone(),
        name: args.name.clone(),
        world,
        lang: args.lang,
        files: written,
        build: format!("{}/build.sh", dir.display()),
        test: format!("crisis plugin test {}", dir.join(&wasm).display()),
    };
    if json {
        print_json(&created);
    } else {
        println!("created {} ({} {} plugin) in {}", args.name, lang_title(args.lang), world, dir.display());
        for f in &created.files {
            println!("  {f}");
        }
        println!("next:\n  {}\n  {}\n  then see {}/README.md to load it", created.build, created.test, dir.display());
    }
    Ok(())
}

/// The project files for a world and language; python and js have notifier SDKs only.
fn templates(world: World, lang: Lang) -> Result<Vec<&'static Template>, Failure> {
    let cases = match world {
        World::Notifier => NOTIFIER_CASES,
        World::Appeasement => APPEASEMENT_CASES,
        World::Drill => DRILL_CASES,
        World::Classifier => CLASSIFIER_CASES,
    };
    const RUST_NOTIFIER: Template = file("src/lib.rs", include_str!("templates/rust/notifier.rs"));
    const RUST_APPEASEMENT: Template = file("src/lib.rs", include_str!("templates/rust/appeasement.rs"));
    const RUST_DRILL: Template = file("src/lib.rs", include_str!("templates/rust/drill.rs"));
    const RUST_CLASSIFIER: Template = file("src/lib.rs", include_str!("templates/rust/classifier.rs"));
    let mut files: Vec<&'static Template> = match (lang, world) {
        (Lang::Rust, World::Notifier) => RUST_COMMON.iter().chain([&RUST_NOTIFIER]).collect(),
        (Lang::Rust, World::Appeasement) => RUST_COMMON.iter().chain([&RUST_APPEASEMENT]).collect(),
        (Lang::Rust, World::Drill) => RUST_COMMON.iter().chain([&RUST_DRILL]).collect(),
        (Lang::Rust, World::Classifier) => RUST_COMMON.iter().chain([&RUST_CLASSIFIER]).collect(),
        (Lang::Python, World::Notifier) => PYTHON.iter().collect(),
        (Lang::Js, World::Notifier) => JS.iter().collect(),
        (lang, world) => {
            return Err(Failure::invalid(format!(
                "--world {world} is not yet supported for --lang {}; use --lang rust (the {} SDK covers notifiers only)",
                lang.as_str(),
                lang_title(lang)
            )));
        }
    };
    files.extend(cases);
    Ok(files)
}

/// A plugin name is also a file stem, a cargo package and a TOML key: keep it plain.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        return Ok(());
    }
    Err(format!(
        "invalid plugin name `{name}`: use 1-64 lowercase letters, digits and single dashes, \
         starting with a letter and not ending with a dash (e.g. `team-chat`)"
    ))
}

/// The project directory may be new or empty; anything in it is never overwritten.
fn check_dir(dir: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::invalid(format!(
            "{} already exists and is not empty; choose another --dir or remove it first",
            dir.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(Failure::invalid(format!("{} exists and is not a directory; choose another --dir", dir.display())))
        }
        Err(e) => Err(io_failure(dir, &e)),
    }
}

/// The crisis repository whose SDKs and toolchains the project uses.
fn repo() -> Result<PathBuf, Failure> {
    let (repo, from_env) = match std::env::var_os("CRISIS_REPO").filter(|v| !v.is_empty()) {
        Some(r) => (PathBuf::from(r), true),
        None => (Path::new(env!("CARGO_MANIFEST_DIR")).join(".."), false),
    };
    let repo = repo.canonicalize().unwrap_or(repo);
    if repo.join("plugins/sdk/Cargo.toml").is_file() && repo.join("plugins/wit").is_dir() {
        return Ok(repo);
    }
    let origin = if from_env { "CRISIS_REPO" } else { "the repository this binary was built from" };
    Err(Failure::not_found(format!(
        "no crisis repository (plugins/sdk, plugins/wit) at {} ({origin}); set CRISIS_REPO to a crisis checkout",
        repo.display()
    )))
}

fn lang_title(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    }
}

fn notes(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => RUST_NOTES,
        Lang::Python => PYTHON_NOTES,
        Lang::Js => JS_NOTES,
    }
}

fn io_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::failed(format!("cannot write {}: {e}", path.display()))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|e| io_failure(path, &e))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<(), Failure> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_plain() {
        for good in ["a", "team-chat", "notify2", "x-1-y"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Team", "1abc", "-a", "a-", "a--b", "a_b", "a.b", "a/b", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn python_and_js_refuse_worlds_without_an_sdk() {
        for lang in [Lang::Python, Lang::Js] {
            for world in [World::Appeasement, World::Drill, World::Classifier] {
                let Err(e) = templates(world, lang) else { panic!("{lang:?} {world}") };
                let msg = format!("{e:?}");
                assert!(msg.contains("not yet supported") && msg.contains("use --lang rust"), "{msg}");
            }
            assert!(templates(World::Notifier, lang).is_ok());
        }
    }

    #[test]
    fn every_template_is_filled_and_every_world_has_two_cases() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for world in [World::Notifier, World::Appeasement, World::Drill, World::Classifier] {
                let Ok(files) = templates(world, lang) else { continue };
                assert!(files.iter().filter(|t| t.path.starts_with("cases/")).count() >= 2, "{lang:?} {world}");
                assert!(files.iter().any(|t| t.path == "build.sh" && t.executable));
                for t in files.iter().filter(|t| t.path.ends_with(".json")) {
                    let v: serde_json::Value = serde_json::from_str(t.text).expect(t.path);
                    assert_eq!(v["world"], world.as_str(), "{}", t.path);
                }
            }
        }
    }
}
