//! The console's templates and embedded assets. Templates are minijinja
//! files whose names end in `.html`, so every value is HTML-escaped unless
//! the code marks it safe; only the already-rendered page body is.

use super::{AppState, html};
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("board.html", include_str!("templates/board.html")),
    ("incident.html", include_str!("templates/incident.html")),
    ("playbooks.html", include_str!("templates/playbooks.html")),
    ("drills.html", include_str!("templates/drills.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// The files under `/console/assets/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("console.css", "text/css; charset=utf-8", include_str!("assets/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("assets/console.js")),
];

/// The parsed templates. Why: parsed once per daemon, not per request.
pub(super) struct Templates(Environment<'static>);

impl Templates {
    /// Parses the embedded templates; a broken one is a build mistake the unit tests catch.
    pub(super) fn new() -> Templates {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            if let Err(e) = env.add_template(name, text) {
                tracing::error!("console template {name} does not parse: {e}");
            }
        }
        Templates(env)
    }

    fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, minijinja::Error> {
        self.0.get_template(name)?.render(ctx)
    }
}

/// Who is signed in, as the layout shows them: their name and the CSRF token of the sign-out form.
pub(super) struct Viewer {
    pub label: String,
    pub csrf: String,
}

/// A whole page: `template` rendered with `ctx`, inside the layout with the
/// navigation, the person signed in and the sign-out form.
pub(super) fn page<S: Serialize>(
    st: &AppState,
    signed: Option<Viewer>,
    template: &str,
    title: &str,
    ctx: S,
) -> Result<String, Response> {
    let t = &st.console.templates;
    let body = t.render(template, ctx).map_err(template_failed)?;
    t.render(
        "layout.html",
        minijinja::context! {
            title => title,
            body => minijinja::Value::from_safe_string(body),
            person => signed.as_ref().map(|v| v.label.clone()),
            csrf => signed.map(|v| v.csrf),
        },
    )
    .map_err(template_failed)
}

/// A rendered page as a reply, or the error page if it could not be rendered.
pub(super) fn reply(r: Result<String, Response>) -> Response {
    match r {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => e,
    }
}

fn template_failed(e: minijinja::Error) -> Response {
    tracing::error!("console template failed: {e:#}");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<!doctype html><title>console error</title><p>The page could not be rendered; the daemon log says why.</p>"
            .into(),
    )
}

/// A page saying what went wrong and what to do, with `status`.
pub(super) fn error_page(st: &AppState, signed: Option<Viewer>, status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    match page(st, signed, "error.html", title, minijinja::context! { status => status.as_u16(), message => message }) {
        Ok(body) => html(status, body),
        Err(e) => e,
    }
}

/// `GET /console/assets/{name}`: the embedded CSS and JavaScript.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, ctype, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such console asset\n").into_response();
    };
    let mut r = ([(header::CONTENT_TYPE, *ctype)], *body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// The bytes the console embeds in the binary (assets and templates). Why
/// public: the console's size budget is checked by a unit test and reported
/// by the benchmark suite.
pub fn assets_size() -> usize {
    ASSETS.iter().map(|(_, _, b)| b.len()).sum::<usize>() + TEMPLATES.iter().map(|(_, t)| t.len()).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_the_assets_stay_small() {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            env.add_template(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(assets_size() < 300 * 1024, "{} bytes", assets_size());
    }

    #[test]
    fn values_are_escaped_and_the_body_is_not_escaped_twice() {
        let t = Templates::new();
        let out = t
            .render("error.html", minijinja::context! { status => 422, message => "<script>alert(1)</script>" })
            .unwrap();
        assert!(out.contains("&lt;script&gt;alert(1)&lt;"), "{out}");
        assert!(!out.contains("<script>alert"), "{out}");
        let page = t
            .render(
                "layout.html",
                minijinja::context! { title => "t", body => minijinja::Value::from_safe_string(out.clone()) },
            )
            .unwrap();
        assert!(page.contains(&out), "{page}");
    }
}
