//! Minimal blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! Every request goes through the host's egress policy: the destination must
//! be allowed by both the plugin's declared hosts and the operator's grant,
//! private addresses are refused unless granted, credentials are added by the
//! host, and in drills the host records the request and answers it itself.
//! A refusal by the host arrives here as [`HttpError::Denied`].

use super::wasi::http::outgoing_handler;
use super::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use super::wasi::io::streams::StreamError;

/// A response with its body read in full.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header, as UTF-8 (lossy).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Why a request did not produce a response.
#[derive(Debug)]
pub enum HttpError {
    /// The URL could not be parsed.
    InvalidUrl(String),
    /// The host's egress policy refused the request.
    Denied(String),
    /// The request failed in transit (DNS, connect, timeout, protocol).
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            HttpError::Denied(m) => write!(f, "denied by host: {m}"),
            HttpError::Transport(m) => write!(f, "transport error: {m}"),
        }
    }
}

fn map_error(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied => HttpError::Denied("request denied by the host's egress policy".into()),
        ErrorCode::DestinationIpProhibited => {
            HttpError::Denied("destination address is private/loopback and not granted".into())
        }
        ErrorCode::HttpRequestBodySize(n) => HttpError::Denied(format!("request body too large (limit {n:?})")),
        ErrorCode::HttpResponseBodySize(n) => HttpError::Denied(format!("response body too large (limit {n:?})")),
        other => HttpError::Transport(format!("{other:?}")),
    }
}

/// Split `scheme://authority/path?query`.
fn parse_url(url: &str) -> Result<(Scheme, String, String), HttpError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| HttpError::InvalidUrl(format!("`{url}` has no scheme (expected https://...)")))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(HttpError::InvalidUrl(format!("unsupported scheme `{other}`"))),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() {
        return Err(HttpError::InvalidUrl(format!("`{url}` has no host")));
    }
    let path = if path.starts_with('?') { format!("/{path}") } else { path };
    Ok((scheme, authority.to_string(), path))
}

/// Send one request and read the whole response.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, HttpError> {
    let (scheme, authority, path) = parse_url(url)?;
    let fields = Fields::new();
    for (k, v) in headers {
        fields
            .append(&k.to_string(), &v.as_bytes().to_vec())
            .map_err(|e| HttpError::InvalidUrl(format!("header `{k}` refused: {e:?}")))?;
    }
    let req = OutgoingRequest::new(fields);
    let m = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    req.set_method(&m).map_err(|_| HttpError::InvalidUrl(format!("bad method {method}")))?;
    req.set_scheme(Some(&scheme)).map_err(|_| HttpError::InvalidUrl("bad scheme".into()))?;
    req.set_authority(Some(&authority))
        .map_err(|_| HttpError::InvalidUrl(format!("bad host `{authority}`")))?;
    req.set_path_with_query(Some(&path))
        .map_err(|_| HttpError::InvalidUrl(format!("bad path `{path}`")))?;
    let out_body = req.body().map_err(|_| HttpError::Transport("request body already taken".into()))?;
    let future = outgoing_handler::handle(req, None).map_err(map_error)?;

    // Stream the body after handing the request to the host; a refused
    // request closes the stream, and the real reason comes from the future.
    if let Ok(stream) = out_body.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(out_body, None);

    let incoming = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let resp = incoming
        .map_err(|_| HttpError::Transport("response already taken".into()))?
        .map_err(map_error)?;
    let status = resp.status();
    let headers = resp.headers().entries();
    let mut data = Vec::new();
    let body = resp.consume().map_err(|_| HttpError::Transport("response body already taken".into()))?;
    {
        let stream = body.stream().map_err(|_| HttpError::Transport("response stream already taken".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(e.to_debug_string()));
                }
            }
        }
    }
    let _ = IncomingBody::finish(body);
    Ok(Response { status, headers, body: data })
}

/// POST a JSON body.
pub fn post_json(url: &str, headers: &[(&str, &str)], json: &str) -> Result<Response, HttpError> {
    let mut all: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request("POST", url, &all, json.as_bytes())
}
