//! The process-wide wasmtime `Engine` and its epoch ticker.
//!
//! Why one engine: compiled code, the instance pool and the epoch counter
//! are per engine; every plugin shares them. Why epochs (not fuel): they
//! cost ~10% instead of 2-3x and still stop untrusted loops; a 10 ms tick
//! bounds how late a timeout can fire.

use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Epoch tick. Timeouts fire at most about one tick late.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine sizing. Why configurable: the daemon uses the defaults (sized for a
/// 2-core box serving one team); tests and embedders may shrink the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Use the pooling allocator (falls back to on-demand if it cannot reserve).
    pub pooling: bool,
    /// Component instances alive at once across all plugins (= concurrent calls).
    pub pool_instances: u32,
    /// Linear memories in the pool (components may have several each).
    pub pool_memories: u32,
    /// Largest linear memory any plugin can have (the per-plugin limit is lower).
    pub pool_max_memory_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { pooling: true, pool_instances: 64, pool_memories: 128, pool_max_memory_bytes: 256 << 20 }
    }
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(512 << 10);
    config.async_stack_size(2 << 20);
    // The workspace's wasmtime has the `gc` feature but no collector; plugin
    // components (Rust, componentize-py, componentize-js) need no GC types.
    config.wasm_gc(false);
    config.wasm_function_references(false);
    config.wasm_exceptions(false);
    config.gc_support(false);
    config
}

/// The configuration crisis runs plugins with: epoch deadlines, stack sizes,
/// no GC proposals and, when `opts.pooling`, the pooling allocator sized by
/// `opts` (linear memories start from copy-on-write images, wasmtime's
/// default). Why public: the benchmark's bare-wasmtime floor must use exactly
/// these settings, so the comparison measures crisis and not another engine.
pub fn engine_config(opts: &EngineOptions) -> Config {
    let mut config = base_config();
    if opts.pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(opts.pool_instances)
            .total_core_instances(opts.pool_instances * 8)
            .total_memories(opts.pool_memories)
            .total_tables(opts.pool_instances * 8)
            .total_stacks(opts.pool_instances)
            .max_memory_size(opts.pool_max_memory_bytes)
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20)
            .max_memories_per_module(4)
            .max_tables_per_module(8);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Build the engine: pooling first, on-demand if the pool's address-space
/// reservation fails (small-VA machines, strict overcommit, containers).
/// Returns whether pooling is in use.
pub(crate) fn build_engine(opts: &EngineOptions) -> wasmtime::Result<(Engine, bool)> {
    if opts.pooling {
        match Engine::new(&engine_config(opts)) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "pooling allocator unavailable (address-space reservation failed); using on-demand allocation"
            ),
        }
    }
    let engine = Engine::new(&base_config())?;
    Ok((engine, false))
}

/// Start the 10 ms epoch ticker. It holds only a weak reference, so it
/// stops by itself when the last clone of the engine is dropped. Why a
/// std thread: a tokio task can be starved by a busy runtime, and then
/// deadlines would never fire.
pub(crate) fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("crisis-plugin-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawn the plugin epoch ticker thread");
}

/// Stable hex digest of the engine's precompile compatibility hash. Why:
/// part of the cache key, so artifacts from another wasmtime version or
/// engine configuration are never deserialized.
pub(crate) fn compatibility_digest(engine: &Engine) -> String {
    use sha2::{Digest, Sha256};
    use std::hash::{Hash, Hasher};
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(h.0.finalize())
}
