//! Per-call store state: WASI context, HTTP hooks, limiter, captured output
//! and the `crisis:plugin/host` import.
//!
//! Why per call: a fresh `Store` per invocation means no state leaks between
//! calls or incidents, a trap poisons nothing, and a hot reload needs no
//! draining.

use super::api::{LogLine, LogSource};
use super::bindings::v0_1_0::crisis::plugin::{host, types};
use super::egress::EgressHooks;
use super::grant::ResolvedGrant;
use super::limits::StoreLimiter;
use super::secret::SecretHandle;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Size-capped sink for `host.log` lines and guest stdout/stderr.
pub(crate) struct LogSink {
    lines: Vec<LogLine>,
    bytes: usize,
    cap: usize,
    truncated: bool,
}

impl LogSink {
    pub(crate) fn new(cap: usize) -> Self {
        LogSink { lines: Vec::new(), bytes: 0, cap, truncated: false }
    }

    fn push(&mut self, source: LogSource, level: &str, message: &str) -> bool {
        if self.truncated {
            return false;
        }
        let room = self.cap.saturating_sub(self.bytes);
        let mut msg = message.to_string();
        if msg.len() > room {
            let mut cut = room;
            while cut > 0 && !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
            msg.push_str(" …[truncated: per-call log limit reached]");
            self.truncated = true;
        }
        self.bytes += msg.len();
        self.lines.push(LogLine { source, level: level.to_string(), message: msg });
        true
    }

    pub(crate) fn into_lines(self) -> Vec<LogLine> {
        self.lines
    }
}

/// A stdout/stderr pipe that keeps at most `cap` bytes and silently drops
/// the rest (a guest must not crash because it printed too much).
#[derive(Clone)]
pub(crate) struct CapturePipe {
    buf: Arc<Mutex<(Vec<u8>, bool)>>,
    cap: usize,
}

impl CapturePipe {
    pub(crate) fn new(cap: usize) -> Self {
        CapturePipe { buf: Arc::new(Mutex::new((Vec::new(), false))), cap }
    }
    /// Contents and whether output was dropped.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        std::mem::take(&mut *self.buf.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl tokio::io::AsyncWrite for CapturePipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut g = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.cap.saturating_sub(g.0.len());
        let take = room.min(data.len());
        g.0.extend_from_slice(&data[..take]);
        if take < data.len() {
            g.1 = true;
        }
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl StdoutStream for CapturePipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// The guest's wall clock in drills: the invocation's (possibly virtual)
/// time plus real time elapsed in this call. Why: a drill on a virtual clock
/// must not show the guest today's date in its messages.
pub(crate) struct DrillClock {
    pub base_unix_ms: u64,
    pub started: std::time::Instant,
}

impl wasmtime_wasi::HostWallClock for DrillClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.base_unix_ms) + self.started.elapsed()
    }
}

/// Hooks for stores without network: every request is refused. (The
/// linker for those worlds has no `wasi:http`, so this is belt and braces.)
pub(crate) struct NoEgress;

impl wasmtime_wasi_http::WasiHttpHooks for NoEgress {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

pub(crate) enum Hooks {
    Egress(EgressHooks),
    None(NoEgress),
}

/// The `T` in `Store<T>` for every plugin call.
pub(crate) struct StoreState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http: WasiHttpCtx,
    pub hooks: Hooks,
    pub limiter: StoreLimiter,
    pub plugin: String,
    pub invocation_id: String,
    pub config: BTreeMap<String, String>,
    pub grant: Arc<ResolvedGrant>,
    pub logs: LogSink,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let hooks: &mut dyn wasmtime_wasi_http::WasiHttpHooks = match &mut self.hooks {
            Hooks::Egress(h) => h,
            Hooks::None(h) => h,
        };
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks }
    }
}

impl StoreState {
    /// Record captured stdout/stderr as log lines and forward to tracing,
    /// scrubbed of the call's secrets and contact details.
    pub(crate) fn absorb_output(&mut self, source: LogSource, bytes: &[u8], dropped: bool) {
        if bytes.is_empty() && !dropped {
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        let mut text = self.grant.scrub.scrub(text.trim_end());
        if dropped {
            text.push_str("\n…[output truncated by the host]");
        }
        let stream = match source {
            LogSource::Stdout => "stdout",
            _ => "stderr",
        };
        tracing::debug!(plugin = %self.plugin, invocation = %self.invocation_id, stream, output = %text, "plugin output");
        self.logs.push(source, "info", &text);
    }
}

impl types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: host::Level, message: String) {
        let lvl = match level {
            host::Level::Trace => "trace",
            host::Level::Debug => "debug",
            host::Level::Info => "info",
            host::Level::Warn => "warn",
            host::Level::Error => "error",
        };
        // Scrubbed before it is kept or logged: a plugin may log what it sends.
        let message = self.grant.scrub.scrub(&message);
        let (plugin, inv) = (&self.plugin, &self.invocation_id);
        if self.logs.push(LogSource::Log, lvl, &message) {
            let msg: String = message.chars().take(2000).collect();
            match level {
                host::Level::Trace => tracing::trace!(plugin = %plugin, invocation = %inv, "{msg}"),
                host::Level::Debug => tracing::debug!(plugin = %plugin, invocation = %inv, "{msg}"),
                host::Level::Info => tracing::info!(plugin = %plugin, invocation = %inv, "{msg}"),
                host::Level::Warn => tracing::warn!(plugin = %plugin, invocation = %inv, "{msg}"),
                host::Level::Error => tracing::error!(plugin = %plugin, invocation = %inv, "{msg}"),
            }
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn get_secret(&mut self, name: String) -> Result<Resource<SecretHandle>, types::PluginError> {
        let Some(rule) = self.grant.inject.iter().find(|r| r.name == name) else {
            return Err(types::PluginError::Denied(format!(
                "no secret named `{name}` is granted to plugin `{}`; add an inject rule with name = \"{name}\" to [plugins.{}]",
                self.plugin, self.plugin
            )));
        };
        let handle = SecretHandle { name: rule.name.clone(), host: rule.host.as_str().to_string() };
        self.table.push(handle).map_err(|e| types::PluginError::Denied(format!("too many secret handles: {e}")))
    }

    fn hmac_sha256(
        &mut self,
        secret_name: String,
        key_template: String,
        message_template: String,
    ) -> Result<Vec<u8>, types::PluginError> {
        let Some(secret) = self.grant.sign_secrets.get(&secret_name) else {
            return Err(types::PluginError::Denied(format!(
                "no signing secret named `{secret_name}` is granted to plugin `{}`; add it to sign_secrets in [plugins.{}]",
                self.plugin, self.plugin
            )));
        };
        super::secret::hmac_sha256(secret, &key_template, &message_template).map_err(|_| {
            types::PluginError::Config(format!(
                "hmac-sha256 with secret `{secret_name}`: neither the key nor the message template contains `{}`",
                super::secret::SECRET_PLACEHOLDER
            ))
        })
    }
}

impl host::HostSecret for StoreState {
    fn name(&mut self, this: Resource<SecretHandle>) -> String {
        self.table.get(&this).map(|s| s.name.clone()).unwrap_or_default()
    }

    fn injected_for(&mut self, this: Resource<SecretHandle>) -> String {
        self.table.get(&this).map(|s| s.host.clone()).unwrap_or_default()
    }

    fn drop(&mut self, rep: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
