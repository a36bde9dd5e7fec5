//! One plugin call in a fresh (or warm) sandboxed store: limits, epoch
//! deadline, outer timeout, output capture, and the mapping of every way a
//! call can end to a [`PluginCallError`].
//!
//! Kept apart from `host.rs` so the host's bookkeeping (registry, grants,
//! quarantine) and the per-call sandbox can be read separately; this file
//! knows nothing of the registry beyond the version it is handed.

use super::api::*;
use super::bindings::v0_1_0::exports::crisis::plugin::meta;
use super::classifier::types::{self as classify_types, Classification, ComplaintInput};
use super::convert;
use super::egress::{EgressContext, EgressHooks};
use super::engine::EPOCH_TICK;
use super::error::PluginCallError;
use super::grant::ResolvedGrant;
use super::limits::{Limits, StoreLimiter};
use super::registry::PluginVersion;
use super::state::{CapturePipe, DrillClock, Hooks, LogSink, NoEgress, StoreState};
use super::warm::WarmInstance;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

/// A counting semaphore for blocking callers.
pub(crate) struct CallSlots {
    free: Mutex<usize>,
    cv: std::sync::Condvar,
}

pub(crate) struct CallSlot<'a>(&'a CallSlots);

impl CallSlots {
    pub(crate) fn new(n: usize) -> Self {
        CallSlots { free: Mutex::new(n.max(1)), cv: std::sync::Condvar::new() }
    }
    pub(crate) fn acquire(&self) -> CallSlot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        CallSlot(self)
    }
}

impl Drop for CallSlot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

/// What a call does, with its inputs.
pub(crate) enum CallKind {
    Describe,
    Send(Invocation, Notification),
    Compose(Invocation, IncidentInfo, CustomerRef),
    Plan(Invocation, IncidentInfo, Vec<(String, String)>),
    Score(Invocation, String),
    Classify(Invocation, ComplaintInput),
}

impl CallKind {
    fn now_unix_ms(&self) -> Option<u64> {
        match self {
            CallKind::Describe => None,
            CallKind::Send(i, _)
            | CallKind::Compose(i, _, _)
            | CallKind::Plan(i, _, _)
            | CallKind::Score(i, _)
            | CallKind::Classify(i, _) => Some(i.now_unix_ms),
        }
    }
}

pub(crate) enum CallValue {
    Describe(PluginDescription),
    Send(Receipt),
    Compose(Vec<ComposedMessage>),
    Plan(Scenario),
    Score(Vec<Criterion>),
    Classify(Classification),
}

pub(crate) struct RunOutput {
    pub(crate) value: CallValue,
    pub(crate) http: Vec<HttpRecord>,
    pub(crate) logs: Vec<LogLine>,
}

/// Extra grace beyond the budget for the outer timeout (host waits).
const OUTER_GRACE: Duration = Duration::from_millis(50);

/// Time kept back from a call's budget when the host waits on the network,
/// so the guest still has time to turn a slow upstream into a transient
/// error of its own instead of being stopped mid-wait.
pub(crate) const HOST_WAIT_MARGIN: Duration = Duration::from_millis(500);

/// How long host HTTP waits (DNS, connect, TLS, send, response head and
/// body) may take in total within a call of `budget`: the budget less
/// [`HOST_WAIT_MARGIN`], but never less than half the budget, so a small
/// budget still leaves the network time to answer.
pub(crate) fn host_wait_budget(budget: Duration) -> Duration {
    budget.saturating_sub(HOST_WAIT_MARGIN.min(budget / 2))
}

/// What one call borrows from the host.
pub(crate) struct CallEnv<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) rt: &'a tokio::runtime::Runtime,
    pub(crate) slots: &'a CallSlots,
    /// Answers outgoing HTTP in place of the network (`crisis plugin test`).
    pub(crate) stub: Option<Arc<dyn super::stub::StubUpstream>>,
    /// Connections to receivers, kept between calls.
    pub(crate) transport: &'a Arc<super::transport::Transport>,
}

impl CallEnv<'_> {
    /// One call in a fresh store.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &self,
        v: &PluginVersion,
        grant: Arc<ResolvedGrant>,
        limits: &Limits,
        budget: Duration,
        mode: RunMode,
        invocation_id: &str,
        config: BTreeMap<String, String>,
        kind: CallKind,
    ) -> Result<RunOutput, PluginCallError> {
        let name = v.name.clone();
        let _slot = self.slots.acquire();
        let start = Instant::now();
        let deadline = start + budget;
        let records = Arc::new(Mutex::new(Vec::new()));
        let hooks = match v.world {
            World::Notifier => Hooks::Egress(EgressHooks {
                ctx: Arc::new(EgressContext {
                    plugin: name.clone(),
                    declared: v.declared.clone(),
                    grant: grant.clone(),
                    mode,
                    deadline: start + host_wait_budget(budget),
                    max_request_bytes: limits.max_request_bytes,
                    max_response_bytes: limits.max_response_bytes,
                    records: records.clone(),
                    budget: super::egress::EgressBudget::for_grant(&grant),
                    stub: self.stub.clone(),
                    transport: self.transport.clone(),
                }),
            }),
            _ => Hooks::None(NoEgress),
        };
        // Warm reuse only for live calls: a drill's virtual clock is part of
        // the WASI context, which is fixed when the store is made.
        let use_warm = limits.warm_calls > 0 && mode == RunMode::Live && !matches!(kind, CallKind::Describe);
        let reused = if use_warm { v.warm.lock().unwrap_or_else(|p| p.into_inner()).pop() } else { None };
        let (mut store, instance, stdout, stderr, prior_calls) = match reused {
            Some(w) => {
                let mut store = w.store;
                let d = store.data_mut();
                d.hooks = hooks;
                d.invocation_id = invocation_id.to_string();
                d.config = config;
                d.grant = grant;
                d.logs = LogSink::new(limits.max_log_bytes);
                d.limiter.reset_call();
                (store, Some(w.instance), w.stdout, w.stderr, w.calls)
            }
            None => {
                let stdout = CapturePipe::new(limits.max_log_bytes);
                let stderr = CapturePipe::new(limits.max_log_bytes);
                let mut b = WasiCtxBuilder::new();
                b.stdout(stdout.clone())
                    .stderr(stderr.clone())
                    .allow_tcp(false)
                    .allow_udp(false)
                    .allow_ip_name_lookup(false);
                if mode == RunMode::Drill
                    && let Some(base) = kind.now_unix_ms().filter(|ms| *ms != 0)
                {
                    b.wall_clock(DrillClock { base_unix_ms: base, started: start });
                }
                let state = StoreState {
                    wasi: b.build(),
                    table: ResourceTable::new(),
                    http: WasiHttpCtx::new(),
                    hooks,
                    limiter: StoreLimiter::new(limits),
                    plugin: name.clone(),
                    invocation_id: invocation_id.to_string(),
                    config,
                    grant,
                    logs: LogSink::new(limits.max_log_bytes),
                };
                let mut store = Store::new(self.engine, state);
                store.limiter(|s| &mut s.limiter);
                (store, None, stdout, stderr, 0)
            }
        };
        // Re-armed on every call, warm or fresh.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline { Ok(UpdateDeadline::Interrupt) } else { Ok(UpdateDeadline::Yield(1)) }
        });
        let budget_ms = budget.as_millis().min(u32::MAX as u128) as u32;
        let pre = v.pre.clone();
        let indices = &v.indices;
        let store_ref = &mut store;
        let fut = async move {
            let instance = match instance {
                Some(i) => i,
                None => pre.instantiate_async(&mut *store_ref).await?,
            };
            let value = match kind {
                CallKind::Describe => {
                    let g = meta::GuestIndices::new(&pre)?.load(&mut *store_ref, &instance)?;
                    Ok(CallValue::Describe(convert::description(g.call_describe(&mut *store_ref).await?)))
                }
                CallKind::Send(inv, note) => {
                    let g = indices.notifier()?.load(&mut *store_ref, &instance)?;
                    g.call_send(&mut *store_ref, &convert::invocation(&inv, budget_ms), &convert::notification(&note))
                        .await?
                        .map(|r| CallValue::Send(convert::receipt(r)))
                }
                CallKind::Compose(inv, inc, who) => {
                    let g = indices.appeasement()?.load(&mut *store_ref, &instance)?;
                    g.call_compose(
                        &mut *store_ref,
                        &convert::invocation(&inv, budget_ms),
                        &convert::incident(&inc),
                        &convert::customer(&who),
                    )
                    .await?
                    .map(|m| CallValue::Compose(m.into_iter().map(convert::message).collect()))
                }
                CallKind::Plan(inv, inc, params) => {
                    let g = indices.drill()?.load(&mut *store_ref, &instance)?;
                    g.call_plan(
                        &mut *store_ref,
                        &convert::invocation(&inv, budget_ms),
                        &convert::incident(&inc),
                        &params,
                    )
                    .await?
                    .map(|s| CallValue::Plan(convert::scenario(s)))
                }
                CallKind::Score(inv, journal) => {
                    let g = indices.drill()?.load(&mut *store_ref, &instance)?;
                    g.call_score(&mut *store_ref, &convert::invocation(&inv, budget_ms), &journal)
                        .await?
                        .map(|c| CallValue::Score(c.into_iter().map(convert::criterion).collect()))
                }
                CallKind::Classify(inv, complaint) => {
                    let g = indices.classifier()?.load(&mut *store_ref, &instance)?;
                    g.call_classify(
                        &mut *store_ref,
                        &convert::invocation(&inv, budget_ms),
                        &complaint.text,
                        classify_types::channel_to_wit(complaint.channel),
                        &complaint.locale,
                    )
                    .await?
                    .and_then(classify_types::from_wit)
                    .map(CallValue::Classify)
                }
            };
            Ok::<_, wasmtime::Error>((instance, value))
        };
        let outcome =
            self.rt.block_on(async { tokio::time::timeout(budget + 2 * EPOCH_TICK + OUTER_GRACE, fut).await });

        let (out_bytes, out_dropped) = stdout.take();
        let (err_bytes, err_dropped) = stderr.take();
        let stderr_text = String::from_utf8_lossy(&err_bytes).trim().to_string();
        let data = store.data_mut();
        data.absorb_output(LogSource::Stdout, &out_bytes, out_dropped);
        data.absorb_output(LogSource::Stderr, &err_bytes, err_dropped);
        let exhausted = data.limiter.exhausted.clone();
        let logs = std::mem::replace(&mut data.logs, LogSink::new(0)).into_lines();
        let http = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
        // Keep the instance only after a clean return (a plugin error is a
        // clean return) and while it has calls left; anything else retires it.
        let outcome = match outcome {
            Ok(Ok((instance, value))) => {
                if use_warm && exhausted.is_none() && prior_calls + 1 < limits.warm_calls {
                    let w = WarmInstance { store, instance, stdout, stderr, calls: prior_calls + 1 };
                    v.warm.lock().unwrap_or_else(|p| p.into_inner()).push(w);
                } else {
                    drop(store);
                }
                Ok(Ok(value))
            }
            Ok(Err(e)) => Ok(Err(e)),
            Err(e) => Err(e),
        };
        let budget_ms = budget.as_millis() as u64;

        match outcome {
            // The outer timeout only fires while the guest is parked in a host
            // wait (guest code is interrupted by the epoch deadline first).
            Err(_elapsed) => Err(PluginCallError::Timeout { plugin: name, budget_ms, in_guest: false, http }),
            Ok(Ok(Ok(value))) => Ok(RunOutput { value, http, logs }),
            Ok(Ok(Err(plugin_err))) => {
                Err(PluginCallError::Plugin { plugin: name, error: convert::plugin_error(plugin_err), http })
            }
            Ok(Err(err)) => {
                if let Some(detail) = exhausted {
                    return Err(PluginCallError::ResourceExhausted { plugin: name, detail });
                }
                match err.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => {
                        Err(PluginCallError::Timeout { plugin: name, budget_ms, in_guest: true, http })
                    }
                    Some(Trap::StackOverflow) => {
                        Err(PluginCallError::ResourceExhausted { plugin: name, detail: "wasm stack overflow".into() })
                    }
                    None if err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() => {
                        // Pool exhaustion is the host's capacity, not the plugin's fault.
                        Err(PluginCallError::Busy { plugin: name, detail: format!("{err:#}") })
                    }
                    _ => {
                        let mut trap = format!("{err:#}");
                        if !stderr_text.is_empty() {
                            let tail: String =
                                stderr_text.chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
                            trap.push_str(&format!(" (guest stderr: {tail})"));
                        }
                        Err(PluginCallError::Crashed { plugin: name, trap, http })
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_waits_end_a_margin_before_the_budget_but_keep_half_of_small_budgets() {
        let ms = Duration::from_millis;
        assert_eq!(host_wait_budget(ms(10_000)), ms(9_500));
        assert_eq!(host_wait_budget(ms(1_000)), ms(500));
        assert_eq!(host_wait_budget(ms(600)), ms(300));
        assert_eq!(host_wait_budget(ms(100)), ms(50));
        assert_eq!(host_wait_budget(ms(0)), ms(0));
        for b in [1u64, 7, 999, 1_001, 30_000] {
            let w = host_wait_budget(ms(b));
            assert!(w < ms(b).max(ms(1)) && w >= ms(b) / 2, "{b} ms -> {w:?}");
        }
    }
}
