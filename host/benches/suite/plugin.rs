//! The plugin call floor: a crisis call of the built-in `drill-sim` next to
//! bare wasmtime doing the same work. The baseline of the row is the
//! strongest bare setup (the crisis engine's pooling allocator, `InstancePre`,
//! typed exports); the on-demand allocator with a dynamic call is kept as a
//! second, informational row.

use super::*;
use crisis::plugin::EngineOptions;

/// The `simulate` export of the plugin WIT, as typed host bindings.
mod floor {
    wasmtime::component::bindgen!({
        path: "../plugins/wit/crisis-plugin@0.1.0",
        inline: "
            package bench:floor;
            world floor {
                export crisis:plugin/simulate@0.1.2;
            }
        ",
        world: "bench:floor/floor",
        exports: { default: async },
    });
}

/// Store state of the bare baselines: WASI only, as crisis links it.
struct BareState {
    ctx: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl BareState {
    fn new() -> BareState {
        BareState { ctx: wasmtime_wasi::WasiCtx::builder().build(), table: Default::default() }
    }
}

impl wasmtime_wasi::WasiView for BareState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// `component` linked against WASI (async), with every other import a trap.
fn bare_pre(engine: &wasmtime::Engine, bytes: &[u8]) -> wasmtime::component::InstancePre<BareState> {
    let component = wasmtime::component::Component::new(engine, bytes).unwrap();
    let mut linker = wasmtime::component::Linker::<BareState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    linker.define_unknown_imports_as_traps(&component).unwrap();
    linker.instantiate_pre(&component).unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A bare wasmtime 48 instantiate + dynamic call with the on-demand allocator.
struct Bare {
    rt: tokio::runtime::Runtime,
    pre: wasmtime::component::InstancePre<BareState>,
    engine: wasmtime::Engine,
}

impl Bare {
    fn new(bytes: &[u8]) -> Bare {
        // Defaults, except the GC proposals the workspace's wasmtime build has no collector for
        // (the crisis engine turns them off the same way).
        let mut cfg = wasmtime::Config::new();
        cfg.wasm_gc(false);
        cfg.wasm_function_references(false);
        cfg.gc_support(false);
        let engine = wasmtime::Engine::new(&cfg).unwrap();
        Bare { rt: current_thread(), pre: bare_pre(&engine, bytes), engine }
    }

    fn call_score(&self) {
        use wasmtime::component::Val;
        self.rt.block_on(async {
            let mut store = wasmtime::Store::new(&self.engine, BareState::new());
            let inst = self.pre.instantiate_async(&mut store).await.unwrap();
            let iface = inst.get_export_index(&mut store, None, "crisis:plugin/simulate@0.1.0").unwrap();
            let f = inst.get_export_index(&mut store, Some(&iface), "score").unwrap();
            let func = inst.get_func(&mut store, f).unwrap();
            let inv = Val::Record(vec![
                ("invocation-id".into(), Val::String("bench".into())),
                ("incident-id".into(), Val::String("DRL-1".into())),
                ("mode".into(), Val::Enum("drill".into())),
                ("budget-ms".into(), Val::U32(5000)),
                ("now-unix-ms".into(), Val::U64(0)),
            ]);
            let mut out = [Val::Bool(false)];
            func.call_async(&mut store, &[inv, Val::String("[]".into())], &mut out).await.unwrap();
            assert!(matches!(out[0], Val::Result(Ok(_))), "{:?}", out[0]);
        });
    }
}

/// The strongest bare setup: the crisis engine's configuration (pooling
/// allocator with copy-on-write memory images, same pool sizes) without
/// the epoch deadline checks, the export indices resolved once
/// (`FloorPre` over `InstancePre`) and a typed call in a fresh store.
struct Pooled {
    rt: tokio::runtime::Runtime,
    pre: floor::FloorPre<BareState>,
    engine: wasmtime::Engine,
}

impl Pooled {
    fn new(bytes: &[u8]) -> Pooled {
        let mut cfg = crisis::plugin::engine_config(&EngineOptions::default());
        // The deadline is part of what the crisis row pays for; the floor has none.
        cfg.epoch_interruption(false);
        let engine = wasmtime::Engine::new(&cfg).unwrap();
        let pre = floor::FloorPre::new(bare_pre(&engine, bytes)).unwrap();
        Pooled { rt: current_thread(), pre, engine }
    }

    fn call_score(&self) {
        use floor::crisis::plugin::types::{Invocation as Inv, RunMode as Mode};
        self.rt.block_on(async {
            let mut store = wasmtime::Store::new(&self.engine, BareState::new());
            let inst = self.pre.instantiate_async(&mut store).await.unwrap();
            let inv = Inv {
                invocation_id: "bench".into(),
                incident_id: "DRL-1".into(),
                mode: Mode::Drill,
                budget_ms: 5000,
                now_unix_ms: 0,
            };
            let out = inst.crisis_plugin_simulate().call_score(&mut store, &inv, "[]").await.unwrap();
            assert!(out.is_ok(), "{out:?}");
        });
    }
}

#[expect(unsafe_code, reason = "the bare baseline deserializes a component it compiled itself, as wasmtime requires")]
pub(crate) fn plugin_rows(c: &mut Option<Criterion>, rows: &mut Vec<Row>) {
    let bytes = crisis::plugin::builtin_component("drill-sim").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(PluginHostConfig { cache_dir: Some(cache.path().to_path_buf()), ..Default::default() })
        .unwrap();
    assert!(host.pooling(), "the crisis host fell back to on-demand allocation; the floor would not be comparable");
    let inv = |mode| Invocation {
        invocation_id: "bench".into(),
        incident_id: "DRL-1".into(),
        mode,
        now_unix_ms: 0,
        budget_ms: None,
    };
    let drill_inv = inv(RunMode::Drill);
    let crisis_ns = time(c, "plugin_call/crisis_fresh_store", || {
        host.drill_score("drill-sim", &drill_inv, "[]").unwrap();
    });
    let pooled = Pooled::new(bytes);
    let pooled_ns = time(c, "plugin_call/bare_pooling_typed", || pooled.call_score());
    rows.push(row(
        "plugin call (fresh store, limits, deadline, linking)",
        crisis_ns / 1000.0,
        "µs",
        "bare wasmtime, pooling + CoW, InstancePre, typed call, fresh store",
        pooled_ns / 1000.0,
        "≤ 1.1× bare pooling",
        crisis_ns <= 1.1 * pooled_ns,
    ));
    let bare = Bare::new(bytes);
    let bare_ns = time(c, "plugin_call/bare_wasmtime", || bare.call_score());
    rows.push(row(
        "plugin call (fresh store), against the on-demand allocator",
        crisis_ns / 1000.0,
        "µs",
        "bare wasmtime, on-demand allocator, dynamic call",
        bare_ns / 1000.0,
        "(informational)",
        true,
    ));

    let grant = PluginGrant {
        limits: crisis::plugin::LimitOverrides { warm_calls: Some(1_000_000), ..Default::default() },
        ..Default::default()
    };
    host.set_grant("drill-sim", &grant).unwrap();
    let live = inv(RunMode::Live);
    let warm_ns = time(c, "plugin_call/crisis_warm_instance", || {
        host.drill_score("drill-sim", &live, "[]").unwrap();
    });
    rows.push(row(
        "plugin call, warm instance",
        warm_ns / 1000.0,
        "µs",
        "bare wasmtime, pooling + CoW, InstancePre, typed call, fresh store",
        pooled_ns / 1000.0,
        "(informational)",
        true,
    ));

    let load_ns = time(c, "plugin_load/crisis_from_cache", || {
        host.inspect(bytes).unwrap();
    });
    let pre = bare.engine.precompile_component(bytes).unwrap();
    let bare_load_ns = time(c, "plugin_load/bare_deserialize", || {
        // SAFETY: bytes produced just above by this engine.
        let _ = unsafe { wasmtime::component::Component::deserialize(&bare.engine, &pre) }.unwrap();
    });
    rows.push(row(
        "plugin load from compile cache (incl. checks + describe)",
        load_ns / 1e6,
        "ms",
        "bare deserialize of the precompiled component",
        bare_load_ns / 1e6,
        "(informational)",
        true,
    ));
}
