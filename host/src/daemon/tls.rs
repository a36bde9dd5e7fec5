//! HTTPS for the API: a listener that completes TLS handshakes before axum
//! sees a connection.
//!
//! Why not `axum-server`: this keeps one `axum::serve` path (graceful
//! shutdown, `ConnectInfo<SocketAddr>` for the intake limiter and the probe
//! gate) for plain and TLS listeners alike, with the `tokio-rustls` already in
//! the tree. Handshakes run in their own tasks, bounded in number and time, so
//! a client that stalls its handshake cannot hold up everyone else's accept.

use crate::config::TlsConfig;
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 128;

/// Builds the acceptor from `[tls]` (PEM certificate chain and key); errors
/// name the file that is wrong.
pub(crate) fn acceptor(cfg: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("[tls] cert = {}: cannot read a PEM certificate chain", cfg.cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "[tls] cert = {}: no certificate in the file", cfg.cert.display());
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .with_context(|| format!("[tls] key = {}: cannot read a PEM private key", cfg.key.display()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!("[tls] cert = {} and key = {} do not make a usable pair", cfg.cert.display(), cfg.key.display())
        })?;
    // The API speaks HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Connections whose TLS handshake completed, for `axum::serve`.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and handshakes in the background until the returned
    /// listener is dropped (when the server shuts down).
    pub(crate) fn spawn(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let (stream, peer) = tokio::select! {
                    () = tx.closed() => return,
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, as axum does.
                            tracing::warn!("cannot accept a connection: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                    drop(slot);
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ended (it only does once the server is gone).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
