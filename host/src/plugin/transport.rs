//! Connections to vetted receivers: connect, TLS, one HTTP/1.1 exchange, and
//! a pool that keeps each connection open for the next call.
//!
//! Why a pool: a notifier paging through one receiver hundreds of times a
//! second would otherwise pay a TCP (and TLS) handshake per call, on both
//! ends. A kept connection is used again only for the same plugin, scheme,
//! host name and vetted address, so the policy checks made for each new
//! request (host patterns, address vetting) still decide where it goes.
//!
//! A connection the receiver closes while idle is noticed by its connection
//! task and never handed out again; one found closed as a request is handed
//! to it gives the request back unsent, and the request goes out on a new
//! connection instead. The receiver may also close it just as the request is
//! written, with nothing answered: such a request is sent once more on a new
//! connection only if it may be repeated (an idempotent method, or an
//! `Idempotency-Key` header, as Go's HTTP client decides); otherwise the
//! caller sees the error, as with a fresh connection. An idle connection past
//! its time is closed at the next request to any destination.

use super::pattern::Scheme;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::Error as HttpError;
use wasmtime_wasi_http::io::TokioIo;

/// How long a connection may wait unused before it is closed. Below the
/// keep-alive of common servers, so the receiver rarely closes first.
const IDLE_FOR: Duration = Duration::from_secs(4);

/// Idle connections kept per destination; more are closed when they finish.
const MAX_IDLE_PER_DESTINATION: usize = 32;

/// A failed exchange: the wasi-http error code for the guest and a message
/// for the call's record.
pub(crate) type ExchangeError = (HttpError, String);

/// Where one request goes, after the policy checks.
pub(crate) struct Destination<'a> {
    pub(crate) plugin: &'a str,
    pub(crate) scheme: Scheme,
    /// The host name: the TLS server name and part of the pool key.
    pub(crate) host: &'a str,
    /// Addresses that passed vetting, tried in order.
    pub(crate) addrs: &'a [SocketAddr],
}

/// A response read in full.
pub(crate) struct Reply {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    plugin: String,
    scheme: Scheme,
    host: String,
    addr: SocketAddr,
}

struct IdleConn {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// Open connections kept between calls, and the TLS client settings.
/// Why one per host: every call of every notifier shares it.
#[derive(Default)]
pub(crate) struct Transport {
    idle: Mutex<HashMap<PoolKey, Vec<IdleConn>>>,
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    /// Connections opened, for tests and the benchmark.
    opened: std::sync::atomic::AtomicU64,
}

impl Transport {
    /// Connections opened so far. Why: shows that calls share connections.
    #[cfg(test)]
    pub(crate) fn connections_opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends `req` to `dest` and reads the response (at most `response_cap`
    /// bytes of body), all before `deadline`: on a kept connection when one
    /// is open, else on a new one.
    pub(crate) async fn exchange(
        &self,
        dest: &Destination<'_>,
        mut req: http::Request<Full<Bytes>>,
        deadline: Instant,
        response_cap: usize,
    ) -> Result<Reply, ExchangeError> {
        let replayable = replayable(&req);
        'kept: for addr in dest.addrs {
            let key = self.key(dest, *addr);
            while let Some(mut sender) = self.take(&key) {
                if !matches!(tokio::time::timeout(left(deadline), sender.ready()).await, Ok(Ok(()))) {
                    continue;
                }
                let copy = if replayable { Some(copy_of(&req)) } else { None };
                match self.send(&mut sender, req, deadline, response_cap).await {
                    Ok(reply) => {
                        self.put(key, sender);
                        return Ok(reply);
                    }
                    Err(Unsent(back)) => req = back,
                    // Closed by the receiver as the request went out, nothing
                    // answered: sent once more, on a new connection, so a
                    // receiver that drops every request sees it twice at most.
                    Err(Closed(e)) => match copy {
                        Some(copy) => {
                            req = copy;
                            break 'kept;
                        }
                        None => return Err(e),
                    },
                    Err(Failed(e)) => return Err(e),
                }
            }
        }
        let (addr, mut sender) = self.connect(dest, deadline).await?;
        match self.send(&mut sender, req, deadline, response_cap).await {
            Ok(reply) => {
                self.put(self.key(dest, addr), sender);
                Ok(reply)
            }
            Err(Unsent(_)) => {
                Err((HttpError::HttpProtocolError, "the connection closed before the request was sent".into()))
            }
            Err(Closed(e) | Failed(e)) => Err(e),
        }
    }

    fn key(&self, dest: &Destination<'_>, addr: SocketAddr) -> PoolKey {
        PoolKey { plugin: dest.plugin.to_string(), scheme: dest.scheme, host: dest.host.to_string(), addr }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Vec<IdleConn>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used open connection to `key`; expired and closed
    /// ones are dropped on the way.
    fn take(&self, key: &PoolKey) -> Option<SendRequest<Full<Bytes>>> {
        let mut pool = self.pool();
        let conns = pool.get_mut(key)?;
        conns.retain(|c| c.since.elapsed() < IDLE_FOR && !c.sender.is_closed());
        let got = conns.pop().map(|c| c.sender);
        if conns.is_empty() {
            pool.remove(key);
        }
        got
    }

    fn put(&self, key: PoolKey, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut pool = self.pool();
        // Keys of destinations no longer called would otherwise stay forever.
        pool.retain(|_, v| {
            v.retain(|c| c.since.elapsed() < IDLE_FOR && !c.sender.is_closed());
            !v.is_empty()
        });
        let conns = pool.entry(key).or_default();
        if conns.len() < MAX_IDLE_PER_DESTINATION {
            conns.push(IdleConn { sender, since: Instant::now() });
        }
    }

    /// Connects to the first vetted address that answers, with TLS for https.
    async fn connect(
        &self,
        dest: &Destination<'_>,
        deadline: Instant,
    ) -> Result<(SocketAddr, SendRequest<Full<Bytes>>), ExchangeError> {
        let mut last_err = None;
        let mut stream = None;
        for addr in dest.addrs {
            match tokio::time::timeout(left(deadline), tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    stream = Some((*addr, s));
                    break;
                }
                Ok(Err(e)) => last_err = Some((HttpError::ConnectionRefused, format!("connect to {addr}: {e}"))),
                Err(_) => {
                    last_err = Some((HttpError::ConnectionTimeout, format!("connect to {addr} timed out")));
                    break;
                }
            }
        }
        let Some((addr, tcp)) = stream else {
            return Err(last_err.unwrap_or((HttpError::ConnectionRefused, "no address to connect to".into())));
        };
        self.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let tcp = QuickAck(tcp);
        let sender = if dest.scheme == Scheme::Https {
            let connector = tokio_rustls::TlsConnector::from(self.tls_config()?);
            let name = rustls::pki_types::ServerName::try_from(dest.host.to_string())
                .map_err(|e| (HttpError::TlsProtocolError, format!("TLS server name `{}`: {e}", dest.host)))?;
            let tls = tokio::time::timeout(left(deadline), connector.connect(name, tcp))
                .await
                .map_err(|_| (HttpError::ConnectionTimeout, "TLS handshake timed out".to_string()))?
                .map_err(|e| (HttpError::TlsProtocolError, format!("TLS handshake with `{}`: {e}", dest.host)))?;
            handshake(TokioIo::new(tls), deadline).await?
        } else {
            handshake(TokioIo::new(tcp), deadline).await?
        };
        Ok((addr, sender))
    }

    /// The TLS client settings (web PKI roots), built on first use.
    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, ExchangeError> {
        self.tls
            .get_or_init(|| {
                let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                    .map_err(|e| format!("TLS setup: {e}"))
            })
            .clone()
            .map_err(|e| (HttpError::TlsProtocolError, e))
    }

    /// One request on `sender` and its whole response.
    async fn send(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        req: http::Request<Full<Bytes>>,
        deadline: Instant,
        response_cap: usize,
    ) -> Result<Reply, SendError> {
        let resp = match tokio::time::timeout(left(deadline), sender.try_send_request(req)).await {
            Err(_) => {
                return Err(Failed((HttpError::HttpResponseTimeout, "no response within the call's budget".into())));
            }
            Ok(Err(mut e)) => {
                return Err(match e.take_message() {
                    Some(req) => Unsent(req),
                    None => {
                        let err = e.into_error();
                        let closed = closed_unanswered(&err);
                        let failed = (HttpError::HttpProtocolError, format!("sending the request: {err}"));
                        if closed { Closed(failed) } else { Failed(failed) }
                    }
                });
            }
            Ok(Ok(resp)) => resp,
        };
        let (parts, body) = resp.into_parts();
        let collected =
            tokio::time::timeout(left(deadline), Limited::new(body, response_cap).collect()).await.map_err(|_| {
                Failed((HttpError::ConnectionReadTimeout, "response body not read within the call's budget".into()))
            })?;
        let body = match collected {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(Failed((
                    HttpError::HttpResponseBodySize(Some(response_cap as u64)),
                    format!("response body larger than {response_cap} bytes"),
                )));
            }
            Err(e) => return Err(Failed((HttpError::HttpProtocolError, format!("reading the response: {e}")))),
        };
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }
}

/// Why a send did not produce a reply.
enum SendError {
    /// The connection was closed before the request was written: it can go
    /// out on another connection.
    Unsent(http::Request<Full<Bytes>>),
    /// The connection closed or was reset while the request was written or
    /// awaited, before any answer: the receiver may or may not have read it.
    Closed(ExchangeError),
    Failed(ExchangeError),
}
use SendError::{Closed, Failed, Unsent};

/// Whether `err` is a connection that ended before any part of an answer.
fn closed_unanswered(err: &hyper::Error) -> bool {
    use std::io::ErrorKind as K;
    let io_closed = std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| matches!(io.kind(), K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted));
    err.is_incomplete_message() || err.is_canceled() || io_closed
}

/// Whether a request may be sent again after a connection closed under it:
/// its method is idempotent, or it carries an idempotency key the receiver
/// uses to drop a repeat (the generic headers, and Twilio's, which the SMS
/// gateway sends).
fn replayable(req: &http::Request<Full<Bytes>>) -> bool {
    use http::Method as M;
    matches!(*req.method(), M::GET | M::HEAD | M::OPTIONS | M::TRACE | M::PUT | M::DELETE)
        || ["idempotency-key", "x-idempotency-key", "i-twilio-idempotency-token"]
            .iter()
            .any(|h| req.headers().contains_key(*h))
}

/// A second copy of a request (its body is shared, not copied).
fn copy_of(req: &http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let mut copy = http::Request::new(req.body().clone());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// A receiver connection that acknowledges what it reads at once.
///
/// Why: a receiver that writes an answer in two pieces (head, then body)
/// with Nagle's algorithm on holds the second piece until the first is
/// acknowledged; with delayed ACKs that is 40 ms per request on a kept
/// connection. Linux leaves quick-ACK mode on its own, so it is asked for
/// again after every read.
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        #[cfg(target_os = "linux")]
        if polled.is_ready() {
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The HTTP/1.1 handshake; the connection runs in a task of its own until
/// its sender is dropped or the receiver closes it.
async fn handshake<T>(io: TokioIo<T>, deadline: Instant) -> Result<SendRequest<Full<Bytes>>, ExchangeError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = tokio::time::timeout(left(deadline), hyper::client::conn::http1::handshake(io))
        .await
        .map_err(|_| (HttpError::ConnectionTimeout, "HTTP handshake timed out".to_string()))?
        .map_err(|e| (HttpError::HttpProtocolError, format!("HTTP handshake: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A loopback HTTP/1.1 server answering 200 `ok`; it closes each
    /// connection after `per_conn` responses, without saying so. Returns
    /// its address, the connections it accepted and those it closed.
    fn server(per_conn: usize) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (a, c) = (accepted.clone(), closed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                a.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                std::thread::spawn(move || {
                    let _closed = CountClose(c);
                    let mut out = stream.try_clone().unwrap();
                    let mut r = BufReader::new(stream);
                    for _ in 0..per_conn {
                        if !read_request(&mut r) {
                            return;
                        }
                        if out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted, closed)
    }

    /// Reads one request (head and body) from `r`; false once the client
    /// has closed the connection or sent something unreadable.
    fn read_request(r: &mut BufReader<std::net::TcpStream>) -> bool {
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).is_ok()
    }

    /// Counts a connection closed by the server when its thread ends.
    struct CountClose(Arc<AtomicUsize>);

    impl Drop for CountClose {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn request() -> http::Request<Full<Bytes>> {
        http::Request::builder()
            .method("POST")
            .uri("/hook")
            .header(http::header::HOST, "127.0.0.1")
            .header("idempotency-key", "inv-1")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    #[test]
    fn only_idempotent_or_keyed_requests_are_sent_again() {
        assert!(replayable(&request()));
        let mut post = request();
        post.headers_mut().remove("idempotency-key");
        assert!(!replayable(&post));
        *post.method_mut() = http::Method::PUT;
        assert!(replayable(&post));
        let copy = copy_of(&request());
        assert_eq!(copy.headers().get("idempotency-key").unwrap(), "inv-1");
        assert_eq!(copy.uri(), "/hook");
    }

    fn call(
        rt: &tokio::runtime::Runtime,
        t: &Transport,
        plugin: &str,
        addr: SocketAddr,
    ) -> Result<Reply, ExchangeError> {
        let addrs = [addr];
        let dest = Destination { plugin, scheme: Scheme::Http, host: "127.0.0.1", addrs: &addrs };
        rt.block_on(t.exchange(&dest, request(), Instant::now() + Duration::from_secs(5), 1024))
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
    }

    #[test]
    fn calls_in_turn_share_one_connection() {
        let rt = runtime();
        let (addr, accepted, _) = server(usize::MAX);
        let t = Transport::default();
        for _ in 0..5 {
            let reply = call(&rt, &t, "webhook-notify", addr).unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(&reply.body[..], b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(t.connections_opened(), 1);
    }

    #[test]
    fn another_plugin_never_gets_a_kept_connection() {
        let rt = runtime();
        let (addr, accepted, _) = server(usize::MAX);
        let t = Transport::default();
        call(&rt, &t, "webhook-notify", addr).unwrap();
        call(&rt, &t, "other-notifier", addr).unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_receiver_that_closes_after_each_answer_still_gets_every_keyed_request_once() {
        let rt = runtime();
        let (addr, accepted, closed) = server(1);
        let t = Transport::default();
        for i in 1..=5 {
            assert_eq!(call(&rt, &t, "webhook-notify", addr).unwrap().status, 200);
            // The kept connection is closed by the time the next call starts.
            let waited = Instant::now();
            while closed.load(Ordering::SeqCst) < i {
                assert!(waited.elapsed() < Duration::from_secs(5), "the server never closed");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Each request went out once, each on its own connection.
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn a_receiver_answering_in_two_writes_is_answered_on_one_kept_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut r = BufReader::new(stream);
                    loop {
                        if !read_request(&mut r) {
                            return;
                        }
                        if out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n").is_err()
                            || out.write_all(b"ok").is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        let rt = runtime();
        let t = Transport::default();
        for _ in 0..20 {
            assert_eq!(&call(&rt, &t, "webhook-notify", addr).unwrap().body[..], b"ok");
        }
        assert_eq!(t.connections_opened(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_receiver_connection_asks_for_quick_acks_after_each_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = runtime();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut client = QuickAck(tokio::net::TcpStream::connect(addr).await.unwrap());
            let (mut server, _) = listener.accept().await.unwrap();
            for _ in 0..3 {
                socket2::SockRef::from(&client.0).set_tcp_quickack(false).unwrap();
                server.write_all(b"head").await.unwrap();
                let mut buf = [0u8; 4];
                client.read_exact(&mut buf).await.unwrap();
                assert!(socket2::SockRef::from(&client.0).tcp_quickack().unwrap(), "quick ACKs after a read");
            }
        });
    }

    #[test]
    fn a_receiver_that_drops_every_request_gets_a_keyed_one_twice_at_most() {
        // Three connections answer once each and are kept; then the receiver
        // reads every request and closes without answering.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let answering = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (s, a) = (seen.clone(), answering.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, a) = (s.clone(), a.clone());
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut r = BufReader::new(stream);
                    loop {
                        if !read_request(&mut r) {
                            return;
                        }
                        if !a.load(Ordering::SeqCst) {
                            s.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        if out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let rt = runtime();
        let t = Transport::default();
        rt.block_on(async {
            let addrs = [addr];
            let dest = Destination { plugin: "webhook-notify", scheme: Scheme::Http, host: "127.0.0.1", addrs: &addrs };
            let deadline = Instant::now() + Duration::from_secs(5);
            let calls = (0..3).map(|_| t.exchange(&dest, request(), deadline, 1024));
            for reply in futures_util::future::join_all(calls).await {
                assert_eq!(reply.unwrap().status, 200);
            }
        });
        answering.store(false, Ordering::SeqCst);
        assert!(call(&rt, &t, "webhook-notify", addr).is_err());
        let seen = seen.load(Ordering::SeqCst);
        assert!((1..=2).contains(&seen), "the request reached the receiver {seen} times");
    }

    #[test]
    fn a_refused_connection_is_an_error_not_a_hang() {
        let rt = runtime();
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let t = Transport::default();
        let err = call(&rt, &t, "webhook-notify", addr).err().expect("nothing listens");
        assert!(matches!(err.0, HttpError::ConnectionRefused), "{}", err.1);
    }
}
