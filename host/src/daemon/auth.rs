//! The API bearer token: written to `state_dir/api.token` (0600), checked in
//! constant time by one middleware in front of every `/v1` route.

use super::api_types::ApiError;
use super::tokens::{Action, TokenRegistry, token_matches};
use crate::config::state_dir::{PrivateFile, StateDir, read_private, write_private};
use anyhow::Context;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

/// Reuses the existing token (so CLI sessions survive restarts) or writes a
/// new one. A token file whose mode or owner was changed (or that was replaced
/// by a symlink) may have been read by others: it is replaced, loudly, by a
/// new token rather than quietly tightened.
pub(crate) fn ensure_token(state_dir: &Path) -> anyhow::Result<String> {
    let dir = StateDir::new(state_dir);
    let path = dir.token_file();
    match read_private(&path).with_context(|| format!("cannot read {}", path.display()))? {
        PrivateFile::Private(bytes) => {
            let t = String::from_utf8_lossy(&bytes).trim().to_string();
            if t.len() >= 32 {
                return Ok(t);
            }
        }
        PrivateFile::Exposed { mode, owner } => tracing::warn!(
            "{} has mode {mode:04o} and owner uid {owner}, so others may have read it: replacing it with a new token (CLI users re-read the file)",
            path.display()
        ),
        PrivateFile::Missing => {}
    }
    let token: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        hex::encode(bytes)
    };
    write_private(&dir.token_tmp(), &path, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// A bearer secret a gate expects (the probes' `metrics_token`). Why: the
/// middleware's own state, so the gate does not need the whole daemon to run.
#[derive(Clone)]
pub(crate) struct ApiToken(Arc<str>);

impl ApiToken {
    /// The gate's state for `token`.
    pub(crate) fn new(token: &str) -> Self {
        ApiToken(Arc::from(token))
    }
}

/// The `/v1` gate: a request needs `Authorization: Bearer <token>` with a
/// known, unexpired, unrevoked token (else 401 with `WWW-Authenticate:
/// Bearer`) whose role allows what it asks (else 403 saying why). The
/// [`Caller`] is handed on to the handler as a request extension.
pub(crate) async fn require_token(State(tokens): State<Arc<TokenRegistry>>, mut req: Request, next: Next) -> Response {
    match bearer(&req).map(|t| tokens.authenticate(t)) {
        Some(Ok(caller)) => {
            if let Err(why) = caller.may(Action::of(req.method(), req.uri().path())) {
                return ApiError::new(StatusCode::FORBIDDEN, why).into_response();
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Some(Err(rejected)) => ApiError::new(StatusCode::UNAUTHORIZED, rejected.message()).into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API token: send Authorization: Bearer <state_dir/api.token>",
        )
        .into_response(),
    }
}

/// Who may read `/metrics`, `/healthz` and `/readyz`: loopback peers, and
/// other peers that send the `metrics_token` when one is configured. Why:
/// the probes tell an outsider what is going on (incident counts by playbook,
/// readiness) and cost work on every request.
#[derive(Clone)]
pub(crate) struct ProbeAccess(Option<ApiToken>);

impl ProbeAccess {
    /// The probes' gate state; `token` is the resolved `metrics_token`.
    pub(crate) fn new(token: Option<&str>) -> Self {
        ProbeAccess(token.map(ApiToken::new))
    }
}

/// Whether a probe request from `peer` carrying `bearer` is answered.
pub(crate) fn probe_allowed(peer: IpAddr, bearer: Option<&str>, token: Option<&str>) -> bool {
    // `::ffff:127.0.0.1` is how an IPv4 loopback peer of a `[::]` socket looks.
    if peer.to_canonical().is_loopback() {
        return true;
    }
    matches!((token, bearer), (Some(t), Some(b)) if token_matches(t, b))
}

/// The probes' gate: loopback peers pass; others pass with the metrics token
/// (401 without or with a wrong one) or, when none is configured, get 403.
pub(crate) async fn probe_gate(
    State(access): State<ProbeAccess>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let bearer = bearer(&req);
    let token = access.0.as_ref().map(|t| &*t.0);
    if probe_allowed(peer.ip(), bearer, token) {
        return next.run(req).await;
    }
    match token {
        None => ApiError::new(
            StatusCode::FORBIDDEN,
            "the health and metrics endpoints answer loopback peers only; set metrics_token = \"secret:NAME\" in crisis.toml to let other peers in with that bearer token",
        )
        .into_response(),
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "send Authorization: Bearer <metrics_token> to read this endpoint from another host").into_response(),
    }
}

/// The bearer token of a request, if any.
fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_token(dir.path()).unwrap();
        let b = ensure_token(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(StateDir::new(dir.path()).token_file()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(token_matches(&a, &a.clone()));
        assert!(!token_matches(&a, &b[1..]));
    }

    #[test]
    fn a_loosened_token_file_is_replaced_not_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_token(dir.path()).unwrap();
        let path = StateDir::new(dir.path()).token_file();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let b = ensure_token(dir.path()).unwrap();
        assert_ne!(a, b);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(ensure_token(dir.path()).unwrap(), b);
    }

    #[test]
    fn probes_answer_loopback_and_token_holders_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for local in ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"] {
            assert!(probe_allowed(ip(local), None, None), "{local}");
        }
        for remote in ["10.0.0.7", "192.168.1.2", "::ffff:10.0.0.7", "2001:db8::1", "0.0.0.0"] {
            assert!(!probe_allowed(ip(remote), None, None), "{remote}");
            assert!(!probe_allowed(ip(remote), Some("m3trics"), None), "{remote}: no token configured");
            assert!(!probe_allowed(ip(remote), None, Some("m3trics")), "{remote}");
            assert!(!probe_allowed(ip(remote), Some("m3tric"), Some("m3trics")), "{remote}");
            assert!(probe_allowed(ip(remote), Some("m3trics"), Some("m3trics")), "{remote}");
        }
    }

    /// Serves `/v1/x` behind the gate on a loopback port and returns its address.
    async fn gated() -> std::net::SocketAddr {
        use axum::routing::get;
        let app =
            axum::Router::new().route("/v1/x", get(|| async { "ok" })).layer(axum::middleware::from_fn_with_state(
                Arc::new(TokenRegistry::new("s3cret", Vec::new(), Arc::new(crate::incident::clock::SystemClock))),
                require_token,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn gate_passes_the_token_and_refuses_the_rest() {
        let addr = gated().await;
        let results = tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let call = |auth: Option<&str>| {
                let mut req = agent.get(format!("http://{addr}/v1/x"));
                if let Some(a) = auth {
                    req = req.header("Authorization", a);
                }
                let mut r = req.call().unwrap();
                let www = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), www, r.body_mut().read_to_string().unwrap())
            };
            [call(Some("Bearer s3cret")), call(Some("Bearer s3cres")), call(None)]
        })
        .await
        .unwrap();
        assert_eq!((results[0].0, results[0].2.as_str()), (200, "ok"));
        for (status, www, body) in &results[1..] {
            assert_eq!(*status, 401);
            assert_eq!(www.as_deref(), Some("Bearer"));
            let b: crate::daemon::api_types::ErrorBody = serde_json::from_str(body).unwrap();
            assert!(b.error.contains("API token"), "{body}");
        }
    }
}
