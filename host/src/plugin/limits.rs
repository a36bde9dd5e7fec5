//! Per-call limits and the per-store resource limiter.
//!
//! Why: a plugin is untrusted code. CPU time is bounded by epoch deadlines
//! (see `engine.rs`), memory and tables by the limiter below, outbound bytes
//! by the egress hook, and captured output by the log sink. A grant can
//! override the defaults up to the host caps.

use super::api::World;
use serde::Deserialize;
use std::time::Duration;

/// Limit overrides in a grant (`limits = { timeout_ms = 5000 }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitOverrides {
    /// Wall-clock budget for one call, including outbound HTTP.
    pub timeout_ms: Option<u64>,
    /// Linear memory per call (all memories of the component together).
    pub memory_mb: Option<u64>,
    /// Largest request body the plugin may send.
    pub max_request_bytes: Option<u64>,
    /// Largest response body the host reads for the plugin.
    pub max_response_bytes: Option<u64>,
    /// Captured log/stdout/stderr bytes per call.
    pub max_log_bytes: Option<u64>,
    /// Reuse one instance for up to this many live calls (default 0: a fresh
    /// instance per call). For interpreted guests (Python, JS) whose
    /// instantiation costs milliseconds. Guest globals persist between those
    /// calls; an instance is retired after any trap, timeout or limit hit.
    pub warm_calls: Option<u32>,
}

/// Effective limits for one plugin. Why a struct: computed once at load and
/// carried with the plugin version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline for one call, outbound HTTP included.
    pub call_budget: Duration,
    /// Deadline for instantiation plus `meta.describe` at load.
    pub init_budget: Duration,
    /// Linear memory allowed per call, summed over all the component's memories.
    pub memory_bytes: usize,
    /// Largest size any one table may grow to, in elements.
    pub table_elements: usize,
    /// Most core instances one store (one call) may create.
    pub instances: usize,
    /// Most tables one store may hold.
    pub tables: usize,
    /// Most linear memories one store may hold (interpreted guests use several).
    pub memories: usize,
    /// Largest outbound request body the plugin may send, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body the host reads for the plugin, in bytes.
    pub max_response_bytes: usize,
    /// Captured log/stdout/stderr bytes kept per call; the rest is cut with a marker.
    pub max_log_bytes: usize,
    /// 0 = fresh instance per call; N = reuse an instance for up to N live calls.
    pub warm_calls: u32,
}

/// Upper bounds an override cannot exceed. Why: the operator's grant can
/// loosen limits, but not past what this machine can afford.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCaps {
    /// Longest call budget a grant may set (default 60 s).
    pub max_timeout: Duration,
    /// Most linear memory a grant may give one call (default 256 MiB).
    pub max_memory_bytes: usize,
    /// Largest request or response body limit a grant may set (default 16 MiB).
    pub max_body_bytes: usize,
    /// Largest per-call captured-output limit a grant may set (default 1 MiB).
    pub max_log_bytes: usize,
    /// Most live calls a grant may let one warm instance serve (default 10 000).
    pub max_warm_calls: u32,
}

impl Default for LimitCaps {
    fn default() -> Self {
        LimitCaps {
            max_timeout: Duration::from_secs(60),
            max_memory_bytes: 256 << 20,
            max_body_bytes: 16 << 20,
            max_log_bytes: 1 << 20,
            max_warm_calls: 10_000,
        }
    }
}

impl Limits {
    /// Defaults per world. Why different: notifiers wait on networks,
    /// appeasement is pure text work and runs per customer.
    pub fn for_world(world: World) -> Limits {
        let (budget, mem) = match world {
            World::Notifier => (Duration::from_secs(10), 64 << 20),
            World::Appeasement => (Duration::from_secs(2), 32 << 20),
            World::Drill => (Duration::from_secs(5), 64 << 20),
            // Runs once per complaint on the intake path: short text work.
            World::Classifier => (Duration::from_secs(1), 32 << 20),
        };
        Limits {
            call_budget: budget,
            init_budget: Duration::from_secs(1),
            memory_bytes: mem,
            table_elements: 20_000,
            instances: 64,
            tables: 32,
            memories: 16,
            max_request_bytes: 1 << 20,
            max_response_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
            warm_calls: 0,
        }
    }

    /// Apply a grant's overrides, clamped to the caps.
    pub fn with_overrides(mut self, o: &LimitOverrides, caps: &LimitCaps) -> Limits {
        if let Some(ms) = o.timeout_ms {
            self.call_budget = Duration::from_millis(ms.max(1)).min(caps.max_timeout);
        }
        if let Some(mb) = o.memory_mb {
            self.memory_bytes = ((mb.max(1) as usize) << 20).min(caps.max_memory_bytes);
        }
        if let Some(b) = o.max_request_bytes {
            self.max_request_bytes = (b as usize).min(caps.max_body_bytes);
        }
        if let Some(b) = o.max_response_bytes {
            self.max_response_bytes = (b as usize).min(caps.max_body_bytes);
        }
        if let Some(b) = o.max_log_bytes {
            self.max_log_bytes = (b as usize).min(caps.max_log_bytes);
        }
        if let Some(n) = o.warm_calls {
            self.warm_calls = n.min(caps.max_warm_calls);
        }
        self
    }
}

/// The store's `ResourceLimiter`. It remembers *why* growth was refused, so
/// a guest that aborts after a failed allocation (Rust does) is reported as
/// `ResourceExhausted`, not as a generic crash.
pub(crate) struct StoreLimiter {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    /// Total linear memory across the component's memories.
    memory_in_use: usize,
    pub(crate) exhausted: Option<String>,
}

impl StoreLimiter {
    /// Start a new call on a reused store: keep the memory accounting (the
    /// memory is still allocated), forget the previous call's refusal.
    pub(crate) fn reset_call(&mut self) {
        self.exhausted = None;
    }

    pub(crate) fn new(l: &Limits) -> Self {
        StoreLimiter {
            memory_bytes: l.memory_bytes,
            table_elements: l.table_elements,
            instances: l.instances,
            tables: l.tables,
            memories: l.memories,
            memory_in_use: 0,
            exhausted: None,
        }
    }
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        if self.memory_in_use.saturating_add(growth) > self.memory_bytes {
            self.exhausted = Some(format!(
                "linear memory limit of {} MiB reached (asked to grow to {} MiB)",
                self.memory_bytes >> 20,
                (self.memory_in_use + growth) >> 20
            ));
            return Ok(false);
        }
        self.memory_in_use += growth;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.exhausted = Some(format!("table limit of {} elements reached", self.table_elements));
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
    fn tables(&self) -> usize {
        self.tables
    }
    fn memories(&self) -> usize {
        self.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_clamped_to_caps() {
        let caps = LimitCaps::default();
        let l = Limits::for_world(World::Appeasement).with_overrides(
            &LimitOverrides { timeout_ms: Some(3_600_000), memory_mb: Some(4096), ..Default::default() },
            &caps,
        );
        assert_eq!(l.call_budget, caps.max_timeout);
        assert_eq!(l.memory_bytes, caps.max_memory_bytes);
    }

    #[test]
    fn limiter_refuses_growth_past_limit_and_says_why() {
        use wasmtime::ResourceLimiter;
        let mut lim = StoreLimiter::new(&Limits { memory_bytes: 2 << 20, ..Limits::for_world(World::Drill) });
        assert!(lim.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!lim.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert!(lim.exhausted.as_deref().unwrap().contains("2 MiB"));
    }
}
