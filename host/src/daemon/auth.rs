//! The API bearer token: written to `state_dir/api.token` (0600), checked in
//! constant time by one middleware in front of every `/v1` route.

use super::api_types::ApiError;
use super::AppState;
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

/// The `/v1` gate: passes requests that carry `Authorization: Bearer <token>`,
/// answers 401 (with `WWW-Authenticate: Bearer`) to the rest.
pub(crate) async fn require_token(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if token_matches(&st.token, t) => next.run(req).await,
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
}
