//! The CLI's HTTP client for the daemon's API.
//!
//! The address comes from `CRISIS_API`, or from the configuration (`listen`,
//! `https` when `[tls]` is set). The token is `CRISIS_TOKEN`, else the
//! person's own `~/.config/crisis/token` (refused if group or others may
//! read it), else the state directory's bootstrap `api.token`. A daemon with a self-signed or private-CA
//! certificate is trusted through `CRISIS_CA` or `[tls] ca`. Bodies and
//! replies are the daemon's own `api_types`; error replies decode into its
//! `ApiError`, whose status gives the exit code.

use super::Cli;
use super::output::Failure;
use crate::config;
use crate::config::state_dir::StateDir;
use crate::daemon::api_types::{ApiError, ErrorBody};
use axum::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

pub(crate) struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// Finds the daemon the way the CLI was configured to.
    pub(crate) fn from_cli(cli: &Cli) -> Result<Client, Failure> {
        let env_api = std::env::var("CRISIS_API").ok().filter(|s| !s.is_empty());
        let env_token = match std::env::var("CRISIS_TOKEN").ok().filter(|s| !s.is_empty()) {
            Some(t) => Some(t),
            None => user_token()?,
        };
        let env_ca = std::env::var_os("CRISIS_CA").filter(|s| !s.is_empty()).map(std::path::PathBuf::from);
        let (base, token, ca) = match (env_api, env_token) {
            (Some(a), Some(t)) => (a, Some(t), env_ca),
            (api, tok) => {
                let cfg = config::discover(cli.config.as_deref())
                    .map_err(|d| Failure::diagnostics("the configuration is invalid; fix the errors above", d))?;
                let token = tok.or_else(|| {
                    std::fs::read_to_string(StateDir::new(&cfg.state_dir).token_file())
                        .ok()
                        .map(|t| t.trim().to_string())
                });
                let ca = env_ca.or_else(|| cfg.tls.as_ref().and_then(|t| t.ca.clone()));
                (api.unwrap_or_else(|| local_url(&cfg)), token, ca)
            }
        };
        let mut agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30)));
        if let Some(ca) = ca {
            let pem = std::fs::read(&ca).map_err(|e| {
                Failure::failed(format!("cannot read the CA certificate {} (CRISIS_CA or [tls] ca): {e}", ca.display()))
            })?;
            let cert = ureq::tls::Certificate::from_pem(&pem).map_err(|e| {
                Failure::failed(format!("{} (CRISIS_CA or [tls] ca) is not a PEM certificate: {e}", ca.display()))
            })?;
            agent = agent.tls_config(
                ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&[cert])).build(),
            );
        }
        let agent: ureq::Agent = agent.build().into();
        Ok(Client { base: base.trim_end_matches('/').to_string(), token, agent })
    }

    /// Whether the CLI speaks with a person's (or intake) token rather than
    /// the bootstrap admin token: then the token says who acts.
    pub(crate) fn personal(&self) -> bool {
        self.token.as_deref().is_some_and(|t| t.starts_with(crate::daemon::tokens::SECRET_PREFIX))
    }

    fn unreachable(&self, e: ureq::Error) -> Failure {
        Failure::new(
            4,
            format!(
                "cannot reach the crisis daemon at {} ({e}); start it with `crisis daemon` or `make run`",
                self.base
            ),
        )
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn handle(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<String, Failure> {
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(text);
        }
        Err(failure(decode_error(status, &text)))
    }

    /// GET returning text.
    pub(crate) fn get_text(&self, path: &str) -> Result<String, Failure> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", &a);
        }
        let resp = req.call().map_err(|e| self.unreachable(e))?;
        self.handle(resp)
    }

    /// GET returning a typed reply.
    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        parse(&self.get_text(path)?)
    }

    /// POST a typed body, returning a typed reply.
    pub(crate) fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, Failure> {
        Ok(self.post_with(path, body, &[])?.1)
    }

    /// POST a typed body with extra request headers, returning the success
    /// status (some routes tell a replay from a new record by it) and the reply.
    pub(crate) fn post_with<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        headers: &[(&str, &str)],
    ) -> Result<(u16, T), Failure> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", &a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send_json(body).map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        Ok((status, parse(&self.handle(resp)?)?))
    }
}

/// The person's own token file, `~/.config/crisis/token`, if there is one.
fn user_token() -> Result<Option<String>, Failure> {
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else { return Ok(None) };
    read_user_token(&std::path::Path::new(&home).join(".config/crisis/token"))
}

/// Reads a token file that must be private to its owner: a token others
/// can read lets them act as its person, so such a file is refused.
fn read_user_token(path: &std::path::Path) -> Result<Option<String>, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::failed(format!("cannot read {}: {e}", path.display()))),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::failed(format!(
            "{} has mode {mode:03o}, so group or others may read your API token: run `chmod 600 {}` (and revoke the token if others could have read it)",
            path.display(),
            path.display()
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?;
    Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty()))
}

/// The daemon's own address as the configuration gives it: `https` with
/// `[tls]`, and loopback for a daemon listening on every address.
fn local_url(cfg: &config::Config) -> String {
    let mut addr = cfg.listen;
    if addr.ip().is_unspecified() {
        let lo: std::net::IpAddr =
            if addr.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        addr.set_ip(lo);
    }
    format!("{}://{addr}", if cfg.tls.is_some() { "https" } else { "http" })
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::failed(format!("the daemon sent an unexpected reply: {e}")))
}

/// An error reply as the daemon's `ApiError`; a body that is not one (a proxy,
/// an old daemon) becomes its text.
fn decode_error(status: u16, text: &str) -> ApiError {
    let body = serde_json::from_str::<ErrorBody>(text).unwrap_or_else(|_| ErrorBody {
        error: text.trim().to_string(),
        code: None,
        nearby: None,
        hint: None,
    });
    ApiError { status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body }
}

fn failure(e: ApiError) -> Failure {
    let mut msg = e.to_string();
    if e.status == StatusCode::UNAUTHORIZED {
        msg.push_str(
            " (the CLI reads the token from CRISIS_TOKEN, else ~/.config/crisis/token, else state_dir/api.token)",
        );
    }
    Failure::new(e.exit_code(), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_map_to_exit_codes() {
        let nf = decode_error(404, r#"{"error":"no incident `INC-9`","nearby":["INC-1"]}"#);
        assert_eq!(nf.body.nearby.as_deref(), Some(&["INC-1".to_string()][..]));
        assert_eq!(failure(nf).code, 3);
        assert_eq!(failure(decode_error(422, r#"{"error":"bad"}"#)).code, 2);
        assert_eq!(failure(decode_error(400, r#"{"error":"bad"}"#)).code, 2);
        assert_eq!(failure(decode_error(409, r#"{"error":"busy"}"#)).code, 1);
        let unauth = failure(decode_error(401, r#"{"error":"wrong API token"}"#));
        assert_eq!(unauth.code, 1);
        assert!(unauth.message.contains("CRISIS_TOKEN"), "{}", unauth.message);
        let proxy = failure(decode_error(502, "Bad Gateway\n"));
        assert_eq!((proxy.code, proxy.message.as_str()), (1, "Bad Gateway"));
        // `error` already carries the next step; the separate `hint` is for other front ends.
        let hinted = failure(decode_error(422, r#"{"error":"bad: try again","hint":"try again"}"#));
        assert_eq!(hinted.message, "bad: try again");
    }

    #[test]
    fn a_user_token_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        assert!(read_user_token(&path).unwrap().is_none());
        std::fs::write(&path, "crisis_0011aabb_x\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_user_token(&path).unwrap_err();
        assert!(e.message.contains("mode 640") && e.message.contains("chmod 600"), "{}", e.message);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_user_token(&path).unwrap().as_deref(), Some("crisis_0011aabb_x"));
    }
}
