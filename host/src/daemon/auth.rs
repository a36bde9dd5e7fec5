//! The API bearer token: written to `state_dir/api.token` (0600), checked in
//! constant time by one middleware in front of every `/v1` route.

use super::api_types::ApiError;
use crate::config::state_dir::StateDir;
use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Reuses the existing token (so CLI sessions survive restarts) or writes a new one.
pub fn ensure_token(state_dir: &Path) -> anyhow::Result<String> {
    let dir = StateDir::new(state_dir);
    let path = dir.token_file();
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            restrict(&path)?;
            return Ok(t);
        }
    }
    let token: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        hex::encode(bytes)
    };
    let tmp = dir.token_tmp();
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(token.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    restrict(&path)?;
    Ok(token)
}

fn restrict(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The token the `/v1` gate expects. Why: the middleware's own state, so the
/// gate does not need the whole daemon to run.
#[derive(Clone)]
pub(crate) struct ApiToken(Arc<str>);

impl ApiToken {
    /// The gate's state for `token`.
    pub(crate) fn new(token: &str) -> Self {
        ApiToken(Arc::from(token))
    }
}

/// The `/v1` gate: passes requests that carry `Authorization: Bearer <token>`,
/// answers 401 (with `WWW-Authenticate: Bearer`) to the rest.
pub(crate) async fn require_token(State(expected): State<ApiToken>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if token_matches(&expected.0, t) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong API token: use the token in state_dir/api.token").into_response(),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "missing API token: send Authorization: Bearer <state_dir/api.token>").into_response(),
    }
}

/// Compares without leaking where the first difference is.
pub fn token_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    /// Serves `/v1/x` behind the gate on a loopback port and returns its address.
    async fn gated() -> std::net::SocketAddr {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/v1/x", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(ApiToken::new("s3cret"), require_token));
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
