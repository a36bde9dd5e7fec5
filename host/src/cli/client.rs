//! The CLI's HTTP client for the daemon's API.
//!
//! The address and token come from `CRISIS_API` / `CRISIS_TOKEN`, or from the
//! configuration (`listen` and `state_dir/api.token`).

use super::output::Failure;
use super::Cli;
use crate::config;
use serde_json::Value;
use std::time::Duration;

pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// Finds the daemon the way the CLI was configured to.
    pub fn from_cli(cli: &Cli) -> Result<Client, Failure> {
        let env_api = std::env::var("CRISIS_API").ok().filter(|s| !s.is_empty());
        let env_token = std::env::var("CRISIS_TOKEN").ok().filter(|s| !s.is_empty());
        let (base, token) = match (env_api, env_token) {
            (Some(a), Some(t)) => (a, Some(t)),
            (api, tok) => {
                let cfg = config::discover(cli.config.as_deref())
                    .map_err(|d| Failure::diagnostics("the configuration is invalid; fix the errors above", d))?;
                let token = tok.or_else(|| {
                    std::fs::read_to_string(cfg.state_dir.join(crate::daemon::auth::TOKEN_FILE)).ok().map(|t| t.trim().to_string())
                });
                (api.unwrap_or_else(|| format!("http://{}", cfg.listen)), token)
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Client { base: base.trim_end_matches('/').to_string(), token, agent })
    }

    fn unreachable(&self, e: ureq::Error) -> Failure {
        Failure::new(
            4,
            format!("cannot reach the crisis daemon at {} ({e}); start it with `crisis daemon` or `make run`", self.base),
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
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let msg = v.get("error").and_then(|e| e.as_str()).map(str::to_string).unwrap_or(text.trim().to_string());
        Err(match status {
            404 => Failure::not_found(msg),
            400 | 422 => Failure::invalid(msg),
            401 => Failure::failed(format!("{msg} (the CLI reads the token from state_dir/api.token or CRISIS_TOKEN)")),
            _ => Failure::failed(msg),
        })
    }

    /// GET returning text.
    pub fn get_text(&self, path: &str) -> Result<String, Failure> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", &a);
        }
        let resp = req.call().map_err(|e| self.unreachable(e))?;
        self.handle(resp)
    }

    /// GET returning JSON.
    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        let t = self.get_text(path)?;
        serde_json::from_str(&t).map_err(|e| Failure::failed(format!("the daemon sent invalid JSON: {e}")))
    }

    /// POST a JSON body, returning JSON.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", &a);
        }
        let resp = req.send_json(body).map_err(|e| self.unreachable(e))?;
        let t = self.handle(resp)?;
        serde_json::from_str(&t).map_err(|e| Failure::failed(format!("the daemon sent invalid JSON: {e}")))
    }
}
