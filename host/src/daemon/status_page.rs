//! The public status page: a read-only site on its own listener (off unless
//! `[status_page] listen` is set) showing what `status` targets published,
//! and nothing else. GET only, no token: everything here is public.
//!
//! Publications live in a [`StatusBoard`]: the `status` target's executor
//! adds a post under its invocation id (written to the store's key-value
//! table first, so a retried intent finds it and does not publish twice),
//! and the site reads the board from memory, so a busy page never waits on
//! the journal. Drill-mode intents are never published.
//!
//! Pages: `/` (HTML), `/index.json`, `/feed.atom`; the locale comes from
//! `?lang=`, then `Accept-Language`, then `[status_page] default_locale`.

mod view;

use crate::incident::Engine;
use crate::incident::status_post::StatusPost;
use crate::store::Store;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// Key prefix of publications in the store's key-value table.
const KV_PREFIX: &str = "status-page/post/";

/// How long browsers and proxies may reuse a page.
const CACHE_CONTROL: &str = "public, max-age=30";

const PAGE: &str = include_str!("status_page/page.html");
const FEED: &str = include_str!("status_page/feed.xml");

/// One publication as stored: when, for which incident (internal, never
/// shown) and what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Published {
    /// Unix milliseconds of publication.
    pub at: i64,
    /// The incident id; groups posts, never rendered.
    pub incident: String,
    /// The public text and component states.
    pub post: StatusPost,
}

/// Every publication, by invocation id: what the status page shows.
pub(crate) struct StatusBoard {
    store: Arc<dyn Store>,
    posts: RwLock<BTreeMap<String, Published>>,
}

impl StatusBoard {
    /// Loads the posts published before this start.
    pub(crate) fn load(store: Arc<dyn Store>) -> anyhow::Result<Arc<StatusBoard>> {
        let mut posts = BTreeMap::new();
        for (key, value) in store.kv_prefix(KV_PREFIX)? {
            let id = key.trim_start_matches(KV_PREFIX).to_string();
            match serde_json::from_str::<Published>(&value) {
                Ok(p) => {
                    posts.insert(id, p);
                }
                Err(e) => tracing::error!("status page post {id} in the store is unreadable and not shown: {e}"),
            }
        }
        Ok(Arc::new(StatusBoard { store, posts: RwLock::new(posts) }))
    }

    /// Publishes `post` under invocation id `id`; `false` when that id was
    /// already published (a retried intent), which changes nothing.
    pub(crate) fn publish(&self, id: &str, incident: &str, post: &StatusPost, at: i64) -> anyhow::Result<bool> {
        if self.posts.read().unwrap_or_else(|p| p.into_inner()).contains_key(id) {
            return Ok(false);
        }
        let p = Published { at, incident: incident.to_string(), post: post.clone() };
        self.store.kv_put(&format!("{KV_PREFIX}{id}"), &serde_json::to_string(&p)?)?;
        self.posts.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), p);
        Ok(true)
    }

    /// Every post in publication order.
    fn snapshot(&self) -> Vec<(String, Published)> {
        let mut v: Vec<(String, Published)> =
            self.posts.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, p)| (k.clone(), p.clone())).collect();
        v.sort_by(|a, b| a.1.at.cmp(&b.1.at).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// What the site's handlers share.
struct Site {
    board: Arc<StatusBoard>,
    engine: Arc<Engine>,
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// The words of the page itself, in the locales crisis ships; other locales get English.
fn ui(locale: &str) -> BTreeMap<&'static str, &'static str> {
    let zh = locale.split('-').next().is_some_and(|l| l.eq_ignore_ascii_case("zh"));
    let pairs: [(&str, &str, &str); 14] = [
        ("operational", "Operational", "正常运行"),
        ("maintenance", "Under maintenance", "维护中"),
        ("degraded", "Degraded performance", "性能下降"),
        ("partial-outage", "Partial outage", "部分中断"),
        ("major-outage", "Major outage", "严重中断"),
        ("all_ok", "All systems operational", "所有系统运行正常"),
        ("not_ok", "Some systems are affected", "部分系统受到影响"),
        ("components", "Components", "组件"),
        ("active", "Current incidents", "当前事件"),
        ("no_active", "No current incidents.", "当前没有事件。"),
        ("history", "Past incidents", "历史事件"),
        ("no_history", "No incidents in this period.", "此期间没有事件。"),
        ("resolved", "Resolved", "已解决"),
        ("feed", "Subscribe (Atom feed)", "订阅（Atom 源）"),
    ];
    pairs.into_iter().map(|(k, en, zh_text)| (k, if zh { zh_text } else { en })).collect()
}

impl Site {
    fn view(&self, q: &LangQuery, headers: &HeaderMap) -> view::View {
        let g = self.engine.generation();
        let cfg = &g.config.status_page;
        let posts = self.board.snapshot();
        let have = view::locales(&posts, &cfg.default_locale);
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        let locale = view::negotiate(q.lang.as_deref(), accept, &have, &cfg.default_locale);
        view::build(cfg, &posts, &locale, self.engine.now())
    }
}

/// Renders a template; a failure is logged and becomes a 500 for the visitor.
fn render(name: &str, source: &'static str, ctx: minijinja::Value) -> Result<String, Box<Response>> {
    // The template names end in .html and .xml, which turns on escaping of every value.
    let mut env = minijinja::Environment::new();
    env.add_template(name, source).and_then(|_| env.get_template(name)?.render(ctx)).map_err(|e| {
        tracing::error!("cannot render the status page {name}: {e}");
        Box::new(
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "the status page cannot be rendered; see the daemon log")
                .into_response(),
        )
    })
}

fn respond(content_type: &'static str, locale: &str, body: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"),
    );
    if let Ok(v) = HeaderValue::from_str(locale) {
        h.insert(header::CONTENT_LANGUAGE, v);
    }
    r
}

async fn html(State(site): State<Arc<Site>>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let v = site.view(&q, &headers);
    let ctx = minijinja::context! { ui => ui(&v.locale), page => &v };
    match render("page.html", PAGE, ctx) {
        Ok(body) => respond("text/html; charset=utf-8", &v.locale, body),
        Err(r) => *r,
    }
}

async fn json(State(site): State<Arc<Site>>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let v = site.view(&q, &headers);
    match serde_json::to_string_pretty(&v) {
        Ok(body) => respond("application/json", &v.locale, body),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn atom(State(site): State<Arc<Site>>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let v = site.view(&q, &headers);
    let ctx = minijinja::context! { ui => ui(&v.locale), page => &v };
    match render("feed.xml", FEED, ctx) {
        Ok(body) => respond("application/atom+xml; charset=utf-8", &v.locale, body),
        Err(r) => *r,
    }
}

/// The site's routes: GET (and HEAD) only; any other method gets 405.
fn router(site: Arc<Site>) -> Router {
    Router::new().route("/", get(html)).route("/index.json", get(json)).route("/feed.atom", get(atom)).with_state(site)
}

/// Serves the page on `addr` (over TLS when `tls` is given) until `stop` is raised.
pub(crate) async fn serve(
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    board: Arc<StatusBoard>,
    engine: Arc<Engine>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} for the status page: {e} (change [status_page] listen in crisis.toml)")
    })?;
    tracing::info!(
        "public status page on {}://{}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?
    );
    let app = router(Arc::new(Site { board, engine }));
    let graceful = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    Ok(match tls {
        Some(acceptor) => {
            let listener = super::tls::TlsListener::spawn(listener, acceptor)?;
            tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(graceful).into_future())
        }
        None => tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(graceful).into_future()),
    })
}
