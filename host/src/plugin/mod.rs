//! The WebAssembly plugin host.
//!
//! Plugins are components implementing one world of `crisis:plugin@0.1.x`
//! (`plugins/wit/`): `notifier`, `appeasement`, `drill` or `classifier`. This module
//! compiles them (with an on-disk cache), checks their imports against their
//! world, runs each call in a fresh sandboxed store with CPU, memory and
//! output limits, enforces the outbound HTTP policy (allow-list ∩ grant,
//! post-DNS address checks, secret injection, drill capture), quarantines
//! crashing versions and hot-swaps new versions atomically.
//!
//! Entry point: [`PluginHost`]. Types for callers: [`api`]. Operator
//! grants: [`PluginGrant`]. See `docs/plugins.md` for authors.
//!
//! Layout: `engine.rs` (Engine, pooling, epoch ticker), `limits.rs`,
//! `cache.rs`, `capabilities.rs` (world/import checks, linkers),
//! `pattern.rs` (host patterns), `addr.rs` (address ranges refused by
//! default), `egress.rs` (HTTP hook), `transport.rs` (connections to
//! receivers, kept between calls), `scrub.rs` (secrets and contact
//! details removed from call output), `secret.rs`, `state.rs` (store state,
//! host import), `bindings.rs` (one module per WIT version), `convert.rs`,
//! `warm.rs`, `classifier.rs` (complaint classification), `registry.rs`, `quarantine.rs` (fault breaker with backoff), `call.rs` (one sandboxed call), `host.rs`
//! (`PluginHost`), `stage.rs` (grants and plugins swapped in together),
//! `adhoc.rs` (inspect/call of unregistered files), `stub.rs` (an upstream
//! answered inside the host, for `crisis plugin test`),
//! `builtin.rs`.
//!
//! The host wraps wasmtime only: it never names the incident engine or the
//! configuration; the daemon adapts both to it.

mod addr;
mod adhoc;
pub mod api;
mod bindings;
mod builtin;
mod cache;
mod call;
mod capabilities;
pub mod classifier;
mod convert;
mod egress;
mod engine;
mod error;
mod grant;
mod host;
mod indices;
mod limits;
mod pattern;
mod quarantine;
mod registry;
mod scrub;
mod secret;
mod stage;
mod state;
mod stub;
mod transport;
mod warm;

pub use api::*;
pub use builtin::builtin_component;
pub use cache::CacheStats;
pub use classifier::{BUILTIN_CLASSIFIER, Classification, ComplaintInput};
pub(crate) use egress::origin;
pub use engine::{EPOCH_TICK, EngineOptions, engine_config};
pub use error::{LoadError, PluginCallError, PluginError};
pub use grant::{GrantError, InjectRule, PluginGrant, SecretRef, SecretValue};
pub use host::{HostInitError, PluginHost, PluginHostConfig, ReloadOutcome, UnquarantineError};
pub use limits::{LimitCaps, LimitOverrides, Limits};
pub use registry::{ManifestPlugin, PluginManifest, ScanError, ScanReport};
pub(crate) use scrub::Scrubber;
pub use stage::{DeclaredFile, StagedPlugins};
pub use stub::{StubAnswer, StubFailure, StubRequest, StubUpstream};

/// Paths of the test-only fixture components built by `host/build.rs`.
/// Why public but hidden: integration tests in `host/tests/` only see the
/// library's public API; the fixtures are not embedded in the binary.
#[doc(hidden)]
pub mod test_fixtures {
    use std::path::PathBuf;

    /// Notifier that reports env/files/secret visibility and posts to config `url`.
    pub const PROBE: &str = "fixture_probe";
    /// Appeasement that loops/bombs/traps/sleeps/spams by customer id.
    pub const CHAOS: &str = "fixture_chaos";
    /// Appeasement that imports wasi:http (must be refused).
    pub const APPEASE_HTTP: &str = "fixture_appease_http";
    /// Component built against a future `crisis:plugin@0.2.0` (must be refused).
    pub const FUTURE_API: &str = "fixture_future_api";
    /// Appeasement built against the published 0.1.1 WIT (must keep loading).
    pub const API_0_1_1: &str = "fixture_api_0_1_1";
    /// Classifier that imports wasi:http (must be refused).
    pub const CLASSIFY_HTTP: &str = "fixture_classify_http";

    /// Path of a fixture or built-in component by file stem.
    pub fn path(stem: &str) -> PathBuf {
        PathBuf::from(env!("CRISIS_PLUGIN_FIXTURE_DIR")).join(format!("{stem}.wasm"))
    }

    /// Bytes of a fixture or built-in component by file stem.
    pub fn bytes(stem: &str) -> Vec<u8> {
        let p = path(stem);
        std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {} missing: {e}", p.display()))
    }
}
