//! Console sign-in: a person's API token buys a session whose random id is
//! the only thing the browser keeps (an `HttpOnly`, `SameSite=Strict`
//! cookie, `Secure` when the daemon serves TLS). Sessions are held in memory:
//! a daemon restart signs everyone out. Each session has its own CSRF token,
//! which every console form carries and every POST must send back.

use super::{AppState, html};
use crate::daemon::tokens::{Caller, Grant, token_matches};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a session lasts after sign-in, in milliseconds.
pub(super) const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// The session cookie's name.
const COOKIE: &str = "crisis_console";
/// The sign-in form's own double-submit cookie: there is no session yet to hold its CSRF token.
const LOGIN_COOKIE: &str = "crisis_console_login";

/// One signed-in browser.
#[derive(Clone)]
struct Session {
    caller: Caller,
    csrf: String,
    expires_at: i64,
}

/// Every live session by id.
#[derive(Default)]
pub(super) struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `caller` at `now`; returns its id and CSRF token.
    fn create(&self, caller: Caller, now: i64) -> (String, String) {
        let (id, csrf) = (random_hex(), random_hex());
        let mut map = self.lock();
        map.retain(|_, s| s.expires_at > now);
        map.insert(id.clone(), Session { caller, csrf: csrf.clone(), expires_at: now + SESSION_TTL_MS });
        (id, csrf)
    }

    /// The session `id` at `now`, if it exists and has not expired.
    fn get(&self, id: &str, now: i64) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session `id`.
    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// 32 random bytes as hex: session ids and CSRF tokens.
fn random_hex() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// The value of cookie `name` in a request's headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the console; `value: None` deletes the cookie.
fn set_cookie(name: &str, value: Option<&str>, path: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let (v, age) = match value {
        Some(v) => (v, max_age_s),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={v}; Path={path}; Max-Age={age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The signed-in person of a console request. Why: every console handler
/// takes it, so no page or action can be reached without a live session.
pub(super) struct Signed {
    /// Whom the session's token speaks for, with its role.
    pub caller: Caller,
    /// The session's CSRF token, put into every form.
    pub csrf: String,
    /// The session id, so a stream can notice the session ending.
    pub session: String,
}

impl Signed {
    /// Refuses a POST whose form did not send this session's CSRF token.
    pub(super) fn check_csrf(&self, st: &AppState, given: &str) -> Result<(), Response> {
        if !given.is_empty() && token_matches(&self.csrf, given) {
            return Ok(());
        }
        Err(super::render::error_page(
            st,
            Some(self.viewer()),
            StatusCode::FORBIDDEN,
            "this form was sent without the console's CSRF token (or with an old one): reload the page and try again",
        ))
    }

    /// Who the person is, for the page header.
    pub(super) fn viewer(&self) -> super::render::Viewer {
        super::render::Viewer { label: self.caller.label(), csrf: self.csrf.clone() }
    }

    /// Whether the session and its token still hold.
    pub(super) fn alive(&self, st: &AppState) -> bool {
        session_of(st, &self.session).is_some()
    }
}

/// The live session `id`: not expired, and its token neither revoked nor expired.
fn session_of(st: &AppState, id: &str) -> Option<Session> {
    let s = st.console.sessions.get(id, st.tokens.now())?;
    if let Some(token) = &s.caller.token
        && st.tokens.still_valid(token).is_err()
    {
        st.console.sessions.remove(id);
        return None;
    }
    Some(s)
}

impl FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let id = cookie(&parts.headers, COOKIE).unwrap_or_default();
        match session_of(st, id) {
            Some(s) => Ok(Signed { caller: s.caller, csrf: s.csrf, session: id.to_string() }),
            None => Err(Redirect::to("/console/login").into_response()),
        }
    }
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// The sign-in page with a fresh double-submit token, and `problem` if any.
fn login_form(st: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
    let nonce = random_hex();
    let body = super::render::page(
        st,
        None,
        "login.html",
        "Sign in",
        minijinja::context! { csrf => nonce, problem => problem },
    );
    let mut r = match body {
        Ok(b) => html(status, b),
        Err(e) => return e,
    };
    let c = set_cookie(LOGIN_COOKIE, Some(&nonce), "/console/login", 3600, st.console.secure);
    r.headers_mut().append(header::SET_COOKIE, c);
    r
}

/// `GET /console/login`.
pub(super) async fn login_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if session_of(&st, cookie(&headers, COOKIE).unwrap_or_default()).is_some() {
        return Redirect::to("/console").into_response();
    }
    login_form(&st, StatusCode::OK, None)
}

/// `POST /console/login`: the token is checked like a `/v1` bearer token.
pub(super) async fn login(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Form(f) = match form {
        Ok(f) => f,
        Err(r) => {
            return login_form(
                &st,
                r.status(),
                Some(&format!("the sign-in form could not be read: {}", r.body_text())),
            );
        }
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !token_matches(expected, &f.csrf) {
        let why = "the sign-in form was not sent from this console's sign-in page (missing CSRF token or cookie): reload the page and try again";
        return login_form(&st, StatusCode::FORBIDDEN, Some(why));
    }
    let token = f.token.trim();
    if token.is_empty() {
        let why = "enter your API token: `crisis token create YOU` prints one; an admin may use state_dir/api.token";
        return login_form(&st, StatusCode::UNPROCESSABLE_ENTITY, Some(why));
    }
    let caller = match st.tokens.authenticate(token) {
        Ok(c) => c,
        Err(rejected) => return login_form(&st, StatusCode::UNAUTHORIZED, Some(&rejected.message())),
    };
    if let Grant::Intake { name } = &caller.grant {
        let why =
            format!("that is the intake token of `{name}`, which acts for no person: sign in with a person's token");
        return login_form(&st, StatusCode::FORBIDDEN, Some(&why));
    }
    tracing::info!(
        "console: {} signed in with token {}",
        caller.label(),
        caller.token.as_deref().unwrap_or(crate::daemon::tokens::BOOTSTRAP)
    );
    let (id, _) = st.console.sessions.create(caller, st.tokens.now());
    let mut r = Redirect::to("/console").into_response();
    let secure = st.console.secure;
    let h = r.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(COOKIE, Some(&id), "/console", SESSION_TTL_MS / 1000, secure));
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, None, "/console/login", 0, secure));
    r
}

/// The sign-out form's field.
#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`: ends the session and drops the cookie.
pub(super) async fn logout(
    State(st): State<Arc<AppState>>,
    signed: Signed,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let given = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(r) = signed.check_csrf(&st, &given) {
        return r;
    }
    st.console.sessions.remove(&signed.session);
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, set_cookie(COOKIE, None, "/console", 0, st.console.secure));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::default();
        let (id, csrf) = s.create(Caller::bootstrap(), 1_000);
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        assert!(s.get(&id, 1_000 + SESSION_TTL_MS - 1).is_some());
        assert!(s.get(&id, 1_000 + SESSION_TTL_MS).is_none());
        let (id, _) = s.create(Caller::bootstrap(), 1_000);
        s.remove(&id);
        assert!(s.get(&id, 1_001).is_none());
    }

    #[test]
    fn cookies_are_read_by_name_and_set_strict() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; crisis_console=abc; b=2"));
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "crisis"), None);
        let c = set_cookie(COOKIE, Some("abc"), "/console", 60, true);
        assert_eq!(
            c.to_str().unwrap(),
            "crisis_console=abc; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        let gone = set_cookie(COOKIE, None, "/console", 60, false);
        assert_eq!(gone.to_str().unwrap(), "crisis_console=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict");
    }
}
