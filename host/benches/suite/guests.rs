//! Interpreted guests: the Python (componentize-py) and JavaScript
//! (componentize-js) example notifiers, warm and fresh, next to the built-in
//! Rust `webhook-notify` doing the same call (one POST to a loopback
//! receiver); their load from the compile cache next to a bare read and
//! deserialize of the same cache entry; and how often the same bytes were
//! compiled. `examples/build.sh` builds them (a no-op when up to date); a
//! component whose toolchain is absent skips its rows with the reason.

use super::outbox::Receiver;
use super::*;
use crisis::plugin::api::{Category, IncidentInfo, Notification, NotifyTarget, Severity};
use crisis::plugin::{EngineOptions, LimitOverrides};

/// An example notifier: component file stem, plugin name, warm-call goal in ms.
const GUESTS: &[(&str, &str, &str, f64)] =
    &[("python", "python_notifier", "python-notifier", 0.5), ("js", "js_notifier", "js-notifier", 0.2)];

/// The Rust notifier every guest is compared with.
const RUST: &str = "webhook-notify";

/// The example component built by `examples/build.sh TARGET`, or why it is not there.
fn build(target: &str, stem: &str) -> Result<PathBuf, String> {
    let out = std::env::var_os("CRISIS_EXAMPLES_OUT").map_or_else(|| repo().join("target/examples"), PathBuf::from);
    let run = Command::new(repo().join("examples/build.sh"))
        .arg(target)
        .env("CRISIS_EXAMPLES_OUT", &out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run examples/build.sh: {e}"))?;
    if !run.status.success() {
        let err = String::from_utf8_lossy(&run.stderr);
        return Err(err.lines().last().unwrap_or("examples/build.sh failed").to_string());
    }
    let path = out.join(format!("{stem}.wasm"));
    if path.is_file() { Ok(path) } else { Err(format!("examples/build.sh left no {}", path.display())) }
}

fn note() -> Notification {
    Notification {
        incident: IncidentInfo {
            id: "INC-1".into(),
            title: "Checkout down".into(),
            playbook_id: "service-outage".into(),
            severity: Severity::Sev2,
            category: Category::ServiceProcess,
            phase: "act".into(),
            summary: "Checkout is failing".into(),
            labels: vec![("service".into(), "checkout".into())],
        },
        target: "superiors".into(),
        subject: "Checkout down".into(),
        body_text: "Checkout is failing for customers in eu-west.".into(),
        params: vec![],
    }
}

/// Cleartext to the loopback receiver, with `warm_calls` when given.
fn grant(port: u16, warm: Option<u32>) -> PluginGrant {
    let hosts = vec![format!("http://127.0.0.1:{port}")];
    PluginGrant {
        allowed_hosts: hosts.clone(),
        allow_private: hosts,
        limits: LimitOverrides { warm_calls: warm, ..Default::default() },
        ..Default::default()
    }
}

fn host(cache: &Path, port: u16) -> PluginHost {
    let mut cfg = PluginHostConfig { cache_dir: Some(cache.to_path_buf()), ..Default::default() };
    for (_, _, name, _) in GUESTS {
        cfg.grants.insert(name.to_string(), grant(port, None));
    }
    cfg.grants.insert(RUST.into(), grant(port, None));
    PluginHost::new(cfg).unwrap()
}

/// The cache entry crisis wrote for `bytes`.
fn cache_entry(cache: &Path, bytes: &[u8]) -> PathBuf {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with(&sha) && p.extension().unwrap_or_default() == "cwasm"
        })
        .expect("the first load wrote a cache entry")
}

#[expect(unsafe_code, reason = "the baseline deserializes the cache entry this process's crisis host just wrote")]
pub(crate) fn guest_rows(c: &mut Option<Criterion>, rows: &mut Vec<Row>) {
    let mut guests = Vec::new();
    for (target, stem, name, goal) in GUESTS {
        match build(target, stem) {
            Ok(path) => guests.push((*name, *goal, std::fs::read(path).unwrap())),
            Err(why) => println!("plugin group: {name} rows skipped: {why}"),
        }
    }
    if guests.is_empty() {
        return;
    }
    let server = Receiver::start();
    // Measured: a fresh cache, so the first load is a real compile and the count below means something.
    // Smoke (`make test`): the compile cache the end-to-end tests share, which already holds these
    // components or keeps them for the tests, so the run compiles each at most once in all.
    let fresh_cache = tempfile::tempdir().unwrap();
    let cache = match c {
        Some(_) => fresh_cache.path().to_path_buf(),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"),
    };
    std::fs::create_dir_all(&cache).unwrap();
    let h = host(&cache, server.port);
    let target = NotifyTarget {
        config: [("url".to_string(), format!("http://127.0.0.1:{}/hook", server.port))].into(),
        ..Default::default()
    };
    let note = note();
    let live = Invocation {
        invocation_id: "bench".into(),
        incident_id: "INC-1".into(),
        mode: RunMode::Live,
        now_unix_ms: 0,
        budget_ms: None,
    };
    let call = |name: &str| {
        let out = h.notify(name, &live, &note, &target).unwrap();
        assert_eq!(out.value.http_status, Some(200), "{name}");
    };
    let compiles_before = h.cache_stats().compiles;
    let mut compile_s = Vec::new();
    for (name, _, bytes) in &guests {
        let t = Instant::now();
        h.reload(name, bytes).unwrap();
        compile_s.push(t.elapsed().as_secs_f64());
    }

    let rust_fresh = time(c, "guest_call/rust_fresh", || call(RUST));
    let fresh: Vec<f64> =
        guests.iter().map(|(n, _, _)| time(c, &format!("guest_call/{n}_fresh"), || call(n))).collect();
    for n in guests.iter().map(|g| g.0).chain([RUST]) {
        h.set_grant(n, &grant(server.port, Some(1_000_000))).unwrap();
    }
    let rust_warm = time(c, "guest_call/rust_warm", || call(RUST));
    for (i, (name, goal, _)) in guests.iter().enumerate() {
        let warm = time(c, &format!("guest_call/{name}_warm"), || call(name)) / 1e6;
        rows.push(row(
            &format!("{name} warm call (notify, one loopback POST)"),
            warm,
            "ms",
            "built-in Rust webhook-notify, same warm call",
            rust_warm / 1e6,
            &format!("≤ {goal} ms"),
            warm <= *goal,
        ));
        rows.push(row(
            &format!("{name} fresh call (notify, one loopback POST)"),
            fresh[i] / 1e6,
            "ms",
            "built-in Rust webhook-notify, same fresh call",
            rust_fresh / 1e6,
            "(informational)",
            true,
        ));
    }

    // The floor of a cache load: the crisis engine's configuration, the entry read and deserialized.
    let engine = wasmtime::Engine::new(&crisis::plugin::engine_config(&EngineOptions::default())).unwrap();
    for (i, (name, _, bytes)) in guests.iter().enumerate() {
        let load = time(c, &format!("guest_load/{name}_from_cache"), || {
            h.inspect(bytes).unwrap();
        });
        let entry = cache_entry(&cache, bytes);
        let bare = time(c, &format!("guest_load/{name}_bare_deserialize"), || {
            let code = std::fs::read(&entry).unwrap();
            // SAFETY: a crisis host compiled these bytes with this configuration into a directory only this
            // run writes (a private temporary one when measuring; the test runs' own cache under target/ in
            // smoke mode).
            let _ = unsafe { wasmtime::component::Component::deserialize(&engine, &code) }.unwrap();
        });
        rows.push(row(
            &format!("{name} load from compile cache (incl. checks + describe; first compile {:.1} s)", compile_s[i]),
            load / 1e6,
            "ms",
            "read + deserialize of the same cache entry",
            bare / 1e6,
            "(informational)",
            true,
        ));
    }

    // A restart: a second host on the same cache directory loads the same bytes again.
    let again = host(&cache, server.port);
    let again_before = again.cache_stats().compiles;
    for (name, _, bytes) in &guests {
        again.reload(name, bytes).unwrap();
    }
    let compiles = h.cache_stats().compiles - compiles_before + again.cache_stats().compiles - again_before;
    let n = guests.len() as f64;
    rows.push(row(
        &format!(
            "compiles of the same bytes ({} components: first load, cache loads, a second host on the cache)",
            guests.len()
        ),
        compiles as f64 / n,
        "per component",
        "one compile each",
        1.0,
        "≤ 1 per component (never a second compile)",
        compiles as usize <= guests.len(),
    ));
}
