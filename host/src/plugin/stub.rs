//! A stand-in upstream for a call's outgoing HTTP, answered inside the host.
//!
//! When a call carries a [`StubUpstream`], every request that passes the
//! egress allow-list (declared hosts ∩ grant) and the size limits is handed
//! to it instead of the network or the drill capture, in live and drill mode
//! alike: nothing leaves the machine. Requests the policy refuses are refused
//! exactly as without a stub, so a recorded case can check a `denied` answer.

/// One outgoing request as the stub sees it: what the plugin sent, with
/// secret header values the host would inject or redact already replaced.
#[derive(Debug, Clone)]
pub struct StubRequest {
    /// HTTP method as sent, e.g. `POST`.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host name, lowercase, without port.
    pub host: String,
    /// Port (explicit or the scheme's default).
    pub port: u16,
    /// Path and query, e.g. `/hooks/x?team=ops`.
    pub path: String,
    /// Headers in order, sensitive values redacted.
    pub headers: Vec<(String, String)>,
    /// The whole request body.
    pub body: Vec<u8>,
}

/// What the stub answers: a response, or a transport failure the plugin sees
/// as the matching wasi:http error code.
#[derive(Debug, Clone)]
pub enum StubAnswer {
    /// An upstream response.
    Response {
        /// HTTP status.
        status: u16,
        /// Response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: Vec<u8>,
    },
    /// The upstream could not be reached.
    Fail(StubFailure),
}

/// Transport failures a stub can simulate. Why typed: each maps to one
/// wasi:http error code, which plugins turn into a `transient` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StubFailure {
    /// The connection was refused.
    ConnectionRefused,
    /// The connection timed out.
    ConnectionTimeout,
    /// The host name did not resolve.
    DnsError,
}

/// Answers outgoing requests of a call inside the host. Why: `crisis plugin
/// test` replays recorded upstream answers without any network.
pub trait StubUpstream: Send + Sync {
    /// The answer to one request that passed the egress policy.
    fn answer(&self, request: StubRequest) -> StubAnswer;
}
