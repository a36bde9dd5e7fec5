//! Outbound HTTP policy for notifiers, enforced in wasmtime-wasi-http's
//! `send_request` hook.
//!
//! Order, for every request a guest makes:
//! 1. the destination must match the plugin's declared hosts **and** the
//!    operator grant (an empty grant denies everything);
//! 2. in drill mode, unless the host is on the grant's `drill_allow`, the
//!    request is recorded and answered with a synthetic 200: nothing leaves;
//! 3. the request body is read up to `max_request_bytes`;
//! 4. DNS is resolved by the host; loopback, private, link-local (incl. the
//!    169.254.169.254 metadata service), CGNAT, multicast and other special
//!    addresses (also as IPv4-mapped IPv6) are dropped unless the host is on
//!    `allow_private`; the connection goes to a vetted address, so DNS
//!    rebinding between check and connect is not possible;
//! 5. secret headers from the grant are added (replacing any the guest set);
//! 6. connect, send and read the response (capped at `max_response_bytes`),
//!    all before the host-wait deadline, which ends a margin before the
//!    call's budget; past it the guest gets a wasi-http timeout error code
//!    and still has time to answer with a transient error of its own.
//!
//! Per call, at most `max_in_flight` requests are past step 1 at once (more
//! wait for a slot, and are refused if the call's deadline passes first),
//! and the request and response bodies the host holds for the call never
//! exceed `max_buffered_bytes` together. Why: each request buffers bodies
//! outside the guest's `memory_mb` and holds a socket; without a per-call
//! cap one notifier could exhaust the daemon's memory and descriptors.
//!
//! Every request is recorded (secret header values redacted, every resolved
//! secret and contact detail scrubbed) and returned with the call's outcome;
//! the log only ever names `scheme://host[:port]`.

use super::addr::blocked_reason;
use super::api::{HttpDisposition, HttpRecord, RunMode};
use super::grant::{ResolvedGrant, ResolvedInject};
use super::pattern::{HostPattern, Scheme};
use super::stub::{StubAnswer, StubFailure, StubRequest, StubUpstream};
use super::transport::{Destination, Transport};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Everything the hook needs for one call. Why shared by `Arc`: the hook's
/// future runs on the runtime while the guest keeps the store.
pub(crate) struct EgressContext {
    pub plugin: String,
    pub declared: Vec<HostPattern>,
    pub grant: Arc<ResolvedGrant>,
    pub mode: RunMode,
    /// When every host wait of this call ends (before the call's own deadline).
    pub deadline: Instant,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub records: Arc<Mutex<Vec<HttpRecord>>>,
    /// This call's concurrency and buffer allowance.
    pub budget: EgressBudget,
    /// When set, answers every request that passes the policy instead of
    /// the network or the drill capture (`crisis plugin test`).
    pub stub: Option<Arc<dyn StubUpstream>>,
    /// Connections to receivers, kept between calls.
    pub transport: Arc<Transport>,
}

/// One call's allowance of concurrent requests and buffered body bytes.
/// Why per call: the caps bound what one invocation can make the host hold.
pub(crate) struct EgressBudget {
    slots: tokio::sync::Semaphore,
    max_in_flight: usize,
    buffered: Arc<AtomicUsize>,
    max_buffered: usize,
}

impl EgressBudget {
    /// The allowance a grant gives each call.
    pub(crate) fn for_grant(grant: &ResolvedGrant) -> EgressBudget {
        let max_in_flight = grant.max_in_flight.max(1);
        EgressBudget {
            slots: tokio::sync::Semaphore::new(max_in_flight),
            max_in_flight,
            buffered: Arc::new(AtomicUsize::new(0)),
            max_buffered: grant.max_buffered_bytes,
        }
    }

    /// Bytes still free in the buffer allowance.
    fn available(&self) -> usize {
        self.max_buffered.saturating_sub(self.buffered.load(Ordering::SeqCst))
    }

    /// Account `n` bytes until the returned lease drops, or refuse if the
    /// allowance would be exceeded.
    fn reserve(&self, n: usize) -> Option<BufferLease> {
        let mut cur = self.buffered.load(Ordering::SeqCst);
        loop {
            let next = cur.checked_add(n).filter(|v| *v <= self.max_buffered)?;
            match self.buffered.compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Some(BufferLease { buffered: self.buffered.clone(), n }),
                Err(v) => cur = v,
            }
        }
    }
}

/// Bytes counted against a call's buffer allowance while this lives.
struct BufferLease {
    buffered: Arc<AtomicUsize>,
    n: usize,
}

impl Drop for BufferLease {
    fn drop(&mut self) {
        self.buffered.fetch_sub(self.n, Ordering::SeqCst);
    }
}

/// The `WasiHttpHooks` installed in every notifier store.
pub(crate) struct EgressHooks {
    pub ctx: Arc<EgressContext>,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send> {
        let ctx = self.ctx.clone();
        Box::new(async move {
            let resp = send(ctx, request).await?;
            Ok((resp, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

const SENSITIVE_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token", "api-key"];

fn full_body(bytes: Bytes) -> WasiBody {
    Full::new(bytes).map_err(|e: std::convert::Infallible| match e {}).boxed_unsync()
}

/// A response body that keeps its bytes counted until the guest drops it.
fn leased_body(bytes: Bytes, lease: BufferLease) -> WasiBody {
    Full::new(bytes)
        .map_frame(move |f| {
            let _held = &lease;
            f
        })
        .map_err(|e: std::convert::Infallible| match e {})
        .boxed_unsync()
}

fn preview(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(256)];
    String::from_utf8_lossy(cut).into_owned()
}

struct Pending {
    ctx: Arc<EgressContext>,
    record: HttpRecord,
}

impl Pending {
    fn finish(mut self, d: HttpDisposition) {
        // Log the origin only: paths and queries can carry tokens (e.g. chat
        // webhook URLs). The record, scrubbed, goes to the call outcome.
        let url = origin(&self.record.url);
        let scrub = &self.ctx.grant.scrub;
        let d = match d {
            HttpDisposition::Denied { reason } => HttpDisposition::Denied { reason: scrub.scrub(&reason) },
            HttpDisposition::Failed { error } => HttpDisposition::Failed { error: scrub.scrub(&error) },
            other => other,
        };
        // The origin stays readable; a secret URL's path and query do not.
        let rest = self.record.url.get(url.len()..).unwrap_or_default().to_string();
        self.record.url = if self.record.url.starts_with(&url) {
            format!("{url}{}", scrub.scrub(&rest))
        } else {
            scrub.scrub(&self.record.url)
        };
        self.record.body_preview = scrub.scrub(&self.record.body_preview);
        for (_, v) in &mut self.record.headers {
            *v = scrub.scrub(v);
        }
        match &d {
            HttpDisposition::Denied { reason } => {
                tracing::warn!(plugin = %self.ctx.plugin, destination = %url, reason = %reason, "plugin HTTP request denied")
            }
            HttpDisposition::Failed { error } => {
                tracing::info!(plugin = %self.ctx.plugin, destination = %url, error = %error, "plugin HTTP request failed")
            }
            _ => {
                tracing::debug!(plugin = %self.ctx.plugin, destination = %url, disposition = ?d, "plugin HTTP request")
            }
        }
        self.record.disposition = d;
        self.ctx.records.lock().unwrap_or_else(|p| p.into_inner()).push(self.record);
    }
}

/// `scheme://host[:port]` of a recorded URL: what logs and journals may show.
/// Why: the path, query and userinfo of a webhook URL are often its credential.
pub(crate) fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() { authority.to_string() } else { format!("{scheme}://{authority}") }
}

fn remaining(ctx: &EgressContext) -> std::time::Duration {
    ctx.deadline.saturating_duration_since(Instant::now())
}

async fn read_request_body(ctx: &EgressContext, body: WasiBody) -> Result<Bytes, (HttpError, String)> {
    let limit = ctx.max_request_bytes.min(ctx.budget.available());
    match tokio::time::timeout(remaining(ctx), Limited::new(body, limit).collect()).await {
        Err(_) => Err((HttpError::ConnectionWriteTimeout, "timed out reading the request body from the plugin".into())),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() && limit < ctx.max_request_bytes => Err((
            HttpError::HttpRequestBodySize(Some(limit as u64)),
            format!(
                "request body does not fit in what is left ({limit} bytes) of the call's buffer allowance of {} bytes ([plugins.{}] max_buffered_bytes)",
                ctx.budget.max_buffered, ctx.plugin
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err((
            HttpError::HttpRequestBodySize(Some(ctx.max_request_bytes as u64)),
            format!("request body larger than {} bytes (limits.max_request_bytes)", ctx.max_request_bytes),
        )),
        Ok(Err(e)) => Err((HttpError::HttpProtocolError, format!("reading request body: {e}"))),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

async fn send(ctx: Arc<EgressContext>, req: http::Request<WasiBody>) -> Result<http::Response<WasiBody>, HttpError> {
    let (parts, body) = req.into_parts();
    let uri = parts.uri.clone();
    let scheme_text = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let url = match uri.port_u16() {
        Some(p) => format!("{scheme_text}://{host}:{p}{path}"),
        None => format!("{scheme_text}://{host}{path}"),
    };
    let Some(scheme) = Scheme::parse(&scheme_text) else {
        let _ = read_request_body(&ctx, body).await;
        let record = HttpRecord {
            method: parts.method.to_string(),
            url,
            headers: Vec::new(),
            body_bytes: 0,
            body_preview: String::new(),
            disposition: HttpDisposition::Captured,
        };
        let reason = format!("scheme `{scheme_text}` is not allowed (only http and https)");
        Pending { ctx, record }.finish(HttpDisposition::Denied { reason });
        return Err(HttpError::HttpProtocolError);
    };
    let port = uri.port_u16().unwrap_or(scheme.default_port());
    let injected: Vec<_> = ctx.grant.inject.iter().filter(|r| r.host.matches(scheme, &host, port)).collect();
    let mut rec_headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(k, _)| !injected.iter().any(|r| r.header == **k))
        .map(|(k, v)| {
            let name = k.as_str().to_string();
            let value = if SENSITIVE_HEADERS.contains(&name.as_str()) {
                "[redacted]".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect();
    for r in &injected {
        rec_headers.push((r.header.as_str().to_string(), "[secret redacted]".into()));
    }
    let pending = Pending {
        ctx: ctx.clone(),
        record: HttpRecord {
            method: parts.method.to_string(),
            url: url.clone(),
            headers: rec_headers,
            body_bytes: 0,
            body_preview: String::new(),
            disposition: HttpDisposition::Captured,
        },
    };

    // 1. allow-list: declared ∩ granted.
    let declared = ctx.declared.iter().any(|p| p.matches(scheme, &host, port));
    let granted = ctx.grant.allowed_hosts.iter().any(|p| p.matches(scheme, &host, port));
    if !(declared && granted) {
        let reason = match (declared, granted) {
            (false, _) => format!("`{host}` is not among the hosts the plugin declares"),
            (true, false) if ctx.grant.allowed_hosts.is_empty() => format!(
                "the operator granted no outbound hosts; add `{host}` to allowed_hosts in [plugins.{}]",
                ctx.plugin
            ),
            (true, false) => format!(
                "`{}` is not in allowed_hosts of [plugins.{}] (a pattern without a scheme allows only https on port 443; write `http://{host}:{port}` to allow this)",
                origin(&url),
                ctx.plugin
            ),
            _ => unreachable!(),
        };
        // Take the body the guest is writing before refusing: some guests
        // (componentize-js) abort if their request body is never read.
        let _ = read_request_body(&ctx, body).await;
        pending.finish(HttpDisposition::Denied { reason });
        return Err(HttpError::HttpRequestDenied);
    }

    // At most `max_in_flight` requests of this call proceed at once; the
    // rest wait here, before any of their bytes are buffered.
    let _slot = match tokio::time::timeout(remaining(&ctx), ctx.budget.slots.acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            let reason = format!(
                "the call's deadline passed while {} requests were already in flight ([plugins.{}] max_in_flight)",
                ctx.budget.max_in_flight, ctx.plugin
            );
            pending.finish(HttpDisposition::Denied { reason });
            return Err(HttpError::HttpRequestDenied);
        }
    };

    let drill_real = ctx.grant.drill_allow.iter().any(|p| p.matches(scheme, &host, port));
    let mut pending = pending;
    let body = match read_request_body(&ctx, body).await {
        Ok(b) => b,
        Err((err, reason)) => {
            pending.finish(HttpDisposition::Denied { reason });
            return Err(err);
        }
    };
    let Some(_request_lease) = ctx.budget.reserve(body.len()) else {
        let reason = format!(
            "request body of {} bytes exceeds what is left of the call's buffer allowance of {} bytes ([plugins.{}] max_buffered_bytes)",
            body.len(),
            ctx.budget.max_buffered,
            ctx.plugin
        );
        pending.finish(HttpDisposition::Denied { reason });
        return Err(HttpError::HttpRequestBodySize(Some(ctx.budget.max_buffered as u64)));
    };
    pending.record.body_bytes = body.len();
    pending.record.body_preview = preview(&body);

    // A stub upstream answers in place of the network, in either mode.
    if let Some(stub) = &ctx.stub {
        let request = StubRequest {
            method: parts.method.to_string(),
            scheme: scheme.as_str().to_string(),
            host: host.clone(),
            port,
            path: path.clone(),
            headers: pending.record.headers.clone(),
            body: body.to_vec(),
        };
        return match stub.answer(request) {
            StubAnswer::Response { status, headers, body } => {
                pending.finish(HttpDisposition::Captured);
                let mut resp = http::Response::builder().status(status);
                for (k, v) in &headers {
                    resp = resp.header(k.as_str(), v.as_str());
                }
                resp.body(full_body(Bytes::from(body)))
                    .map_err(|e| HttpError::InternalError(Some(format!("stub response: {e}"))))
            }
            StubAnswer::Fail(f) => {
                pending.finish(HttpDisposition::Failed { error: format!("stub upstream: {f:?}") });
                Err(match f {
                    StubFailure::ConnectionRefused => HttpError::ConnectionRefused,
                    StubFailure::ConnectionTimeout => HttpError::ConnectionTimeout,
                    StubFailure::DnsError => HttpError::DnsError { rcode: None, info_code: None },
                })
            }
        };
    }

    // 2. drill capture.
    if ctx.mode == RunMode::Drill && !drill_real {
        pending.finish(HttpDisposition::Captured);
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("x-crisis-drill", "captured")
            .body(full_body(Bytes::from_static(br#"{"drill":true,"captured":true}"#)))
            .expect("static response");
        return Ok(resp);
    }

    // 4. DNS and address vetting.
    let lookup = tokio::time::timeout(remaining(&ctx), tokio::net::lookup_host((host.as_str(), port))).await;
    let addrs: Vec<SocketAddr> = match lookup {
        Err(_) => {
            pending.finish(HttpDisposition::Failed { error: format!("DNS lookup of `{host}` timed out") });
            return Err(HttpError::DnsTimeout);
        }
        Ok(Err(e)) => {
            pending.finish(HttpDisposition::Failed { error: format!("DNS lookup of `{host}` failed: {e}") });
            return Err(HttpError::DnsError { rcode: Some(e.to_string()), info_code: None });
        }
        Ok(Ok(a)) => a.collect(),
    };
    let private_ok = ctx.grant.allow_private.iter().any(|p| p.matches(scheme, &host, port));
    let mut refused = Vec::new();
    let usable: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match blocked_reason(a.ip()) {
            Some(why) if !private_ok => {
                refused.push(format!("{} ({why})", a.ip()));
                false
            }
            _ => true,
        })
        .collect();
    if usable.is_empty() {
        let reason = if refused.is_empty() {
            format!("`{host}` resolved to no address")
        } else {
            format!(
                "`{host}` resolves to {}; add it to allow_private in [plugins.{}] if this is intended",
                refused.join(", "),
                ctx.plugin
            )
        };
        pending.finish(HttpDisposition::Denied { reason });
        return Err(HttpError::DestinationIpProhibited);
    }

    // 5./6. connect to a vetted address, inject secrets, send.
    match send_vetted(&ctx, &parts, scheme, &host, &path, &usable, &injected, body).await {
        Ok((status, headers, body)) => {
            let Some(lease) = ctx.budget.reserve(body.len()) else {
                let reason = format!(
                    "response body of {} bytes exceeds what is left of the call's buffer allowance of {} bytes ([plugins.{}] max_buffered_bytes)",
                    body.len(),
                    ctx.budget.max_buffered,
                    ctx.plugin
                );
                pending.finish(HttpDisposition::Denied { reason });
                return Err(HttpError::HttpResponseBodySize(Some(ctx.budget.max_buffered as u64)));
            };
            pending.finish(HttpDisposition::Sent { status: status.as_u16() });
            let mut resp = http::Response::builder().status(status);
            for (k, v) in headers.iter() {
                resp = resp.header(k, v);
            }
            resp.body(leased_body(body, lease))
                .map_err(|e| HttpError::InternalError(Some(format!("building the response: {e}"))))
        }
        Err((err, msg)) => {
            pending.finish(HttpDisposition::Failed { error: msg });
            Err(err)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_vetted(
    ctx: &EgressContext,
    parts: &http::request::Parts,
    scheme: Scheme,
    host: &str,
    path: &str,
    addrs: &[SocketAddr],
    injected: &[&ResolvedInject],
    body: Bytes,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), (HttpError, String)> {
    let mut builder = http::Request::builder().method(parts.method.clone()).uri(path);
    for (k, v) in parts.headers.iter() {
        if injected.iter().any(|r| r.header == *k) {
            continue;
        }
        builder = builder.header(k, v);
    }
    if !parts.headers.contains_key(http::header::HOST) {
        builder = builder.header(http::header::HOST, host);
    }
    for r in injected {
        let v = http::HeaderValue::from_str(r.value.expose()).map_err(|_| {
            (HttpError::HttpRequestDenied, "an injected secret is not a valid header value".to_string())
        })?;
        builder = builder.header(r.header.clone(), v);
    }
    let req = builder
        .body(Full::new(body))
        .map_err(|e| (HttpError::HttpRequestUriInvalid, format!("building the request: {e}")))?;
    // The response may use what the request body (counted until it is sent)
    // leaves of the buffer allowance.
    let response_cap = ctx.max_response_bytes.min(ctx.budget.available());
    let dest = Destination { plugin: &ctx.plugin, scheme, host, addrs };
    match ctx.transport.exchange(&dest, req, ctx.deadline, response_cap).await {
        Ok(reply) => Ok((reply.status, reply.headers, reply.body)),
        Err((e @ HttpError::HttpResponseBodySize(_), _)) => Err((
            e,
            format!(
                "response body larger than {response_cap} bytes (limits.max_response_bytes, or what is left of [plugins.{}] max_buffered_bytes)",
                ctx.plugin
            ),
        )),
        Err(e) => Err(e),
    }
}
