//! Capabilities are imports: which world a component implements, and
//! whether its imports fit that world, decided at load time.
//!
//! Why at load: an appeasement script that imports `wasi:http` must be
//! refused when the operator deploys it, with the import named, not fail
//! mid-incident. The linkers below only contain what each world may use,
//! so even a bug in this check could not hand out network access.

use super::api::World;
use super::bindings::v0_1_0::crisis::plugin::{host, types};
use super::error::LoadError;
use super::state::StoreState;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

/// What a component looks like from outside.
#[derive(Debug, Clone)]
pub(crate) struct ComponentShape {
    pub world: World,
    pub api_version: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    }
}

/// Determine the world and check every import against it.
pub(crate) fn analyze(engine: &Engine, component: &Component) -> Result<ComponentShape, LoadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();

    let mut worlds = Vec::new();
    let mut api_version = None;
    let mut has_meta = false;
    for e in &exports {
        let (name, version) = split_version(e);
        let Some(iface) = name.strip_prefix("crisis:plugin/") else { continue };
        let version = version.unwrap_or("");
        if !version.starts_with("0.1.") {
            return Err(LoadError::UnsupportedVersion { found: e.clone() });
        }
        api_version.get_or_insert_with(|| version.to_string());
        match iface {
            "meta" => has_meta = true,
            "notify" => worlds.push(World::Notifier),
            "appease" => worlds.push(World::Appeasement),
            "simulate" => worlds.push(World::Drill),
            "classify" => worlds.push(World::Classifier),
            _ => {}
        }
    }
    let world = match (worlds.as_slice(), has_meta) {
        ([w], true) => *w,
        ([], _) | (_, false) => {
            return Err(LoadError::NoWorld {
                exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
            });
        }
        (many, _) => {
            return Err(LoadError::SeveralWorlds(many.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ")));
        }
    };

    for i in &imports {
        check_import(world, i)?;
    }
    Ok(ComponentShape { world, api_version: api_version.unwrap_or_default(), imports, exports })
}

fn check_import(world: World, import: &str) -> Result<(), LoadError> {
    let (name, version) = split_version(import);
    let version = version.unwrap_or("");
    let forbidden =
        |hint: &str| LoadError::ForbiddenImport { world, import: import.to_string(), hint: hint.to_string() };
    if let Some(iface) = name.strip_prefix("crisis:plugin/") {
        if !version.starts_with("0.1.") {
            return Err(LoadError::UnsupportedVersion { found: import.to_string() });
        }
        return match iface {
            "host" | "types" => Ok(()),
            _ => Err(forbidden(" (not a host-provided crisis interface)")),
        };
    }
    let wasi_pkg = ["wasi:cli/", "wasi:clocks/", "wasi:random/", "wasi:io/", "wasi:filesystem/", "wasi:sockets/"];
    if wasi_pkg.iter().any(|p| name.starts_with(p)) {
        // Linked inert: no environment, no preopened directories, every
        // socket address and name lookup refused.
        return if version.starts_with("0.2.") { Ok(()) } else { Err(forbidden(" (only WASI 0.2.x is supported)")) };
    }
    if name == "wasi:http/outgoing-handler" || name == "wasi:http/types" {
        return match world {
            World::Notifier if version.starts_with("0.2.") => Ok(()),
            World::Notifier => Err(forbidden(" (only wasi:http 0.2.x is supported)")),
            _ => Err(forbidden(
                " (network access): only notifier plugins get outbound HTTP; appeasement, drill and classifier plugins work on the data the host gives them",
            )),
        };
    }
    Err(forbidden(""))
}

/// Linkers per capability set. Why two: the network-less worlds are linked
/// without `wasi:http` at all.
pub(crate) struct Linkers {
    pub base: Linker<StoreState>,
    pub notifier: Linker<StoreState>,
}

fn base_linker(engine: &Engine) -> wasmtime::Result<Linker<StoreState>> {
    let mut l = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut l)?;
    host::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut l, |s| s)?;
    types::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut l, |s| s)?;
    Ok(l)
}

impl Linkers {
    pub(crate) fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        let base = base_linker(engine)?;
        let mut notifier = base_linker(engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut notifier)?;
        Ok(Linkers { base, notifier })
    }

    pub(crate) fn for_world(&self, world: World) -> &Linker<StoreState> {
        match world {
            World::Notifier => &self.notifier,
            _ => &self.base,
        }
    }
}

/// Human-readable capabilities implied by a component's imports.
pub(crate) fn capabilities(imports: &[String]) -> Vec<String> {
    let mut caps = vec!["host: log, config, secret handles".to_string()];
    let has = |p: &str| imports.iter().any(|i| i.starts_with(p));
    if has("wasi:http/") {
        caps.push("outbound-http (allow-list ∩ grant; secrets injected by the host)".into());
    }
    if has("wasi:sockets/") {
        caps.push("wasi:sockets (linked inert: every address refused)".into());
    }
    if has("wasi:filesystem/") {
        caps.push("wasi:filesystem (linked inert: no directories)".into());
    }
    if has("wasi:cli/environment") {
        caps.push("wasi:cli/environment (empty)".into());
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_refused_outside_notifier_and_names_the_import() {
        let err = check_import(World::Appeasement, "wasi:http/outgoing-handler@0.2.6").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("wasi:http/outgoing-handler@0.2.6"), "{msg}");
        assert!(msg.contains("appeasement"), "{msg}");
        assert!(check_import(World::Notifier, "wasi:http/outgoing-handler@0.2.6").is_ok());
        assert!(check_import(World::Drill, "wasi:keyvalue/store@0.2.0").is_err());
        assert!(check_import(World::Drill, "wasi:cli/environment@0.2.9").is_ok());
        assert!(matches!(
            check_import(World::Drill, "crisis:plugin/host@0.2.0"),
            Err(LoadError::UnsupportedVersion { .. })
        ));
    }
}
