//! Recorded cases for `crisis plugin test`: parsing, the stub upstream that
//! answers a notifier's outgoing HTTP inside the host, and the comparison of
//! what happened with what the case expects.
//!
//! A case is one JSON file (or a directory holding `case.json`):
//!
//! ```json
//! { "world": "notifier", "export": "send", "mode": "drill",
//!   "input": { "config": { "url": "https://hooks.example.com/crisis" } },
//!   "requests": [ { "method": "POST", "host": "hooks.example.com", "path": "/crisis",
//!                   "headers": { "content-type": "application/json" },
//!                   "json": { "kind": "crisis.notification" },
//!                   "respond": { "status": 503, "body": "busy" } } ],
//!   "expect": { "err": "transient", "message_contains": "answered 503" } }
//! ```
//!
//! `input` is merged over the world's fixture as for `crisis plugin call`.
//! Requests are matched in order; the n-th request gets the n-th `respond`
//! (default 200 with an empty body). A request beyond those recorded is
//! answered 500 and fails the case.

use crate::cli::fixture::{fixture, merge};
use crate::plugin::{PluginCallError, RunMode, StubAnswer, StubFailure, StubRequest, StubUpstream, World};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One recorded case, as written in its file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Case {
    /// What the case shows, for the reader.
    #[serde(default)]
    pub(super) description: String,
    pub(super) world: World,
    /// notifier: `send`; appeasement: `compose`; drill: `plan` or `score`; classifier: `classify`.
    #[serde(default)]
    export: Option<String>,
    /// Drill unless the case says `live`; outgoing HTTP is stubbed either way.
    #[serde(default = "drill")]
    pub(super) mode: RunMode,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    pub(super) requests: Vec<ExpectedRequest>,
    pub(super) expect: Expect,
}

fn drill() -> RunMode {
    RunMode::Drill
}

/// An outgoing request the plugin must make, and the stub's answer to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectedRequest {
    method: Option<String>,
    host: Option<String>,
    /// Path with query, exactly as sent.
    path: Option<String>,
    /// Header values that must be present (names case-insensitive).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A subset the body, parsed as JSON, must contain.
    json: Option<Value>,
    #[serde(default)]
    respond: Respond,
}

/// The stub upstream's answer to one request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Respond {
    status: Option<u16>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A string is sent as is; any other JSON value is sent as JSON.
    body: Option<Value>,
    /// Simulate a transport failure instead of answering.
    fail: Option<StubFailure>,
}

/// How the call must end.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Expect {
    /// The call succeeds and its value contains this JSON subset (`{}`: any object).
    ok: Option<Value>,
    /// The call fails this way.
    err: Option<ErrKind>,
    /// Text the error message must contain.
    message_contains: Option<String>,
}

/// The ways a call can fail, as a case names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum ErrKind {
    Config,
    Denied,
    Transient,
    Permanent,
    Timeout,
    Crashed,
    ResourceExhausted,
}

impl std::fmt::Display for ErrKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::cli::output::wire_name(self))
    }
}

/// The case files a `--case` path names: the file itself, or in a directory
/// every `*.json` file and every subdirectory with a `case.json`, by name.
pub(super) fn case_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(format!("{}: no such case file or directory", path.display()));
    }
    let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut files = Vec::new();
    for e in entries {
        let p = e.map_err(|e| format!("{}: {e}", path.display()))?.path();
        if p.is_dir() && p.join("case.json").is_file() {
            files.push(p.join("case.json"));
        } else if p.is_file() && p.extension().is_some_and(|x| x == "json") {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no cases (*.json files or directories with case.json)", path.display()));
    }
    Ok(files)
}

impl Case {
    /// Read and check one case file; the error names the file and what to fix.
    pub(super) fn load(path: &Path) -> Result<Case, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let case: Case = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let bad = |m: String| Err(format!("{}: {m}", path.display()));
        if !(case.input.is_object() || case.input.is_null()) {
            return bad("`input` must be a JSON object (as for `crisis plugin call --input`)".into());
        }
        match (&case.expect.ok, &case.expect.err) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return bad("`expect` needs exactly one of `ok` (a JSON subset) or `err` (an error kind)".into()),
        }
        if case.expect.ok.is_some() && case.expect.message_contains.is_some() {
            return bad("`expect.message_contains` goes with `err`, not `ok`".into());
        }
        let allowed: &[&str] = match case.world {
            World::Notifier => &["send"],
            World::Appeasement => &["compose"],
            World::Drill => &["plan", "score"],
            World::Classifier => &["classify"],
        };
        if let Some(e) = &case.export
            && !allowed.contains(&e.as_str())
        {
            return bad(format!("export `{e}` is not one of world {}: use {}", case.world, allowed.join(" or ")));
        }
        if case.world != World::Notifier && !case.requests.is_empty() {
            return bad(format!("world {} has no network: `requests` is only for notifiers", case.world));
        }
        Ok(case)
    }

    /// The full call input: the case's input over the world's fixture, the
    /// export as the drill `op`, and a grant for any host unless one is given.
    pub(super) fn call_input(&self) -> Value {
        let mut merged = fixture(self.world);
        if self.input.is_object() {
            merge(&mut merged, self.input.clone());
        }
        if self.world == World::Drill
            && let Some(op) = &self.export
        {
            merged["op"] = json!(op);
        }
        if merged.get("grant").is_none() {
            merged["grant"] = json!({ "allowed_hosts": ["*"] });
        }
        merged
    }

    /// The stub upstream for one run of this case.
    pub(super) fn stub(&self) -> CaseStub {
        CaseStub { responses: self.requests.iter().map(|r| r.respond.clone()).collect(), seen: Mutex::default() }
    }
}

/// Answers the n-th request with the n-th recorded response and keeps every
/// request for the comparison.
pub(super) struct CaseStub {
    responses: Vec<Respond>,
    pub(super) seen: Mutex<Vec<StubRequest>>,
}

impl StubUpstream for CaseStub {
    fn answer(&self, request: StubRequest) -> StubAnswer {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.push(request);
        let Some(r) = self.responses.get(seen.len() - 1) else {
            let body = format!("crisis plugin test: no response recorded for request {}", seen.len());
            return StubAnswer::Response { status: 500, headers: Vec::new(), body: body.into_bytes() };
        };
        if let Some(f) = r.fail {
            return StubAnswer::Fail(f);
        }
        let mut headers: Vec<(String, String)> = r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let body = match &r.body {
            None => Vec::new(),
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(v) => {
                if !r.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                v.to_string().into_bytes()
            }
        };
        StubAnswer::Response { status: r.status.unwrap_or(200), headers, body }
    }
}

/// Every difference between the requests the case expects and those made.
pub(super) fn compare_requests(expected: &[ExpectedRequest], seen: &[StubRequest]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (want, got)) in expected.iter().zip(seen).enumerate() {
        let n = i + 1;
        let mut field = |name: &str, want: &Option<String>, got: &str, ci: bool| {
            if let Some(w) = want
                && !(if ci { w.eq_ignore_ascii_case(got) } else { w == got })
            {
                out.push(format!("request {n}: {name}: expected `{w}`, got `{got}`"));
            }
        };
        field("method", &want.method, &got.method, true);
        field("host", &want.host, &got.host, true);
        field("path", &want.path, &got.path, false);
        for (name, value) in &want.headers {
            match got.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                Some((_, v)) if v == value => {}
                Some((_, v)) => out.push(format!("request {n}: header {name}: expected `{value}`, got `{v}`")),
                None => out.push(format!("request {n}: header {name}: expected `{value}`, but it was not sent")),
            }
        }
        if let Some(subset) = &want.json {
            match serde_json::from_slice::<Value>(&got.body) {
                Ok(body) => {
                    out.extend(json_subset("$", subset, &body).into_iter().map(|d| format!("request {n}: body {d}")))
                }
                Err(e) => out.push(format!(
                    "request {n}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&got.body[..got.body.len().min(200)])
                )),
            }
        }
    }
    for (i, want) in expected.iter().enumerate().skip(seen.len()) {
        let what = [&want.method, &want.host, &want.path].iter().filter_map(|v| v.as_deref()).collect::<Vec<_>>();
        out.push(format!("request {}: expected `{}`, but the plugin made no such request", i + 1, what.join(" ")));
    }
    for (i, got) in seen.iter().enumerate().skip(expected.len()) {
        out.push(format!(
            "request {}: unexpected `{} {}://{}{}` (the case records {} requests; it was answered 500)",
            i + 1,
            got.method,
            got.scheme,
            got.host,
            got.path,
            expected.len()
        ));
    }
    out
}

/// Where `got` does not contain `want`: objects key by key (extra keys are
/// fine), arrays element by element with the same length, the rest equal.
pub(super) fn json_subset(at: &str, want: &Value, got: &Value) -> Vec<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .flat_map(|(k, wv)| match g.get(k) {
                Some(gv) => json_subset(&format!("{at}.{k}"), wv, gv),
                None => vec![format!("{at}.{k}: expected {wv}, but it is missing")],
            })
            .collect(),
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            w.iter().zip(g).enumerate().flat_map(|(i, (wv, gv))| json_subset(&format!("{at}[{i}]"), wv, gv)).collect()
        }
        (Value::Array(w), Value::Array(g)) => {
            vec![format!("{at}: expected an array of {} items, got {}: {got}", w.len(), g.len())]
        }
        _ if want == got => Vec::new(),
        _ => vec![format!("{at}: expected {want}, got {got}")],
    }
}

/// Every difference between how the call ended and what the case expects.
pub(super) fn compare_result(expect: &Expect, result: &Result<Value, PluginCallError>) -> Vec<String> {
    match (result, &expect.ok, expect.err) {
        (Ok(out), Some(want), _) => {
            json_subset("$", want, &out["value"]).into_iter().map(|d| format!("result {d}")).collect()
        }
        (Ok(out), None, Some(kind)) => vec![format!("result: expected error `{kind}`, got ok: {}", out["value"])],
        (Err(e), _, want) => {
            let (kind, message) = err_kind(e);
            let mut out = Vec::new();
            match want {
                None => out.push(format!("result: expected ok, got {}: {message}", describe_kind(kind))),
                Some(w) if Some(w) != kind => {
                    out.push(format!("result: expected error `{w}`, got {}: {message}", describe_kind(kind)))
                }
                Some(_) => {}
            }
            if let Some(text) = &expect.message_contains
                && want.is_some()
                && !message.contains(text.as_str())
            {
                out.push(format!("result: the error message does not contain `{text}`: {message}"));
            }
            out
        }
        (Ok(_), None, None) => Vec::new(),
    }
}

fn describe_kind(kind: Option<ErrKind>) -> String {
    kind.map_or_else(|| "an error the case cannot name".to_string(), |k| format!("error `{k}`"))
}

/// The kind and message of a failed call.
pub(super) fn err_kind(e: &PluginCallError) -> (Option<ErrKind>, String) {
    use crate::plugin::PluginError as P;
    let kind = match e {
        PluginCallError::Plugin { error, .. } => Some(match error {
            P::Config(_) => ErrKind::Config,
            P::Denied(_) => ErrKind::Denied,
            P::Transient(_) => ErrKind::Transient,
            P::Permanent(_) => ErrKind::Permanent,
        }),
        PluginCallError::Timeout { .. } => Some(ErrKind::Timeout),
        PluginCallError::Crashed { .. } => Some(ErrKind::Crashed),
        PluginCallError::ResourceExhausted { .. } => Some(ErrKind::ResourceExhausted),
        _ => None,
    };
    let message = match e {
        PluginCallError::Plugin { error, .. } => match error {
            P::Config(m) | P::Denied(m) | P::Transient(m) | P::Permanent(m) => m.clone(),
        },
        other => other.to_string(),
    };
    (kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_subset_reports_each_difference_by_path() {
        let got = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "extra": true});
        assert!(json_subset("$", &json!({"b": {"c": "x"}}), &got).is_empty());
        let d = json_subset("$", &json!({"a": 2, "b": {"d": [1], "e": null}}), &got);
        assert_eq!(
            d,
            vec![
                "$.a: expected 2, got 1".to_string(),
                "$.b.d: expected an array of 1 items, got 2: [1,2]".to_string(),
                "$.b.e: expected null, but it is missing".to_string(),
            ]
        );
    }

    #[test]
    fn requests_are_compared_in_order_and_counted() {
        let want: Vec<ExpectedRequest> = serde_json::from_value(json!([
            {"method": "post", "host": "hooks.example.com", "path": "/x", "headers": {"Idempotency-Key": "i-1"},
             "json": {"kind": "k"}}
        ]))
        .unwrap();
        let req = |path: &str| StubRequest {
            method: "POST".into(),
            scheme: "https".into(),
            host: "hooks.example.com".into(),
            port: 443,
            path: path.into(),
            headers: vec![("idempotency-key".into(), "i-1".into())],
            body: br#"{"kind":"k","more":1}"#.to_vec(),
        };
        assert!(compare_requests(&want, &[req("/x")]).is_empty());
        let d = compare_requests(&want, &[req("/y"), req("/x")]);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("path: expected `/x`, got `/y`"), "{d:?}");
        assert!(d[1].starts_with("request 2: unexpected `POST https://hooks.example.com/x`"), "{d:?}");
        assert_eq!(compare_requests(&want, &[]).len(), 1);
    }

    #[test]
    fn the_stub_answers_in_order_then_500() {
        let case: Case = serde_json::from_value(json!({
            "world": "notifier",
            "requests": [{"respond": {"status": 503, "body": "busy"}}, {"respond": {"fail": "connection-refused"}}],
            "expect": {"err": "transient"}
        }))
        .unwrap();
        let stub = case.stub();
        let req = StubRequest {
            method: "GET".into(),
            scheme: "https".into(),
            host: "h".into(),
            port: 443,
            path: "/".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert!(
            matches!(stub.answer(req.clone()), StubAnswer::Response { status: 503, ref body, .. } if body == b"busy")
        );
        assert!(matches!(stub.answer(req.clone()), StubAnswer::Fail(StubFailure::ConnectionRefused)));
        assert!(matches!(stub.answer(req), StubAnswer::Response { status: 500, .. }));
        assert_eq!(stub.seen.lock().unwrap().len(), 3);
    }
}
