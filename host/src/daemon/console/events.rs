//! `GET /console/events`: Server-Sent Events telling open console pages
//! which incident the journal just changed, so they re-read themselves.
//! Each `change` event carries the incident id, the event kind and the
//! incident's journal position (never the note or a contact). A page that
//! fell too far behind gets one `reload` event instead of the ones it missed.
//! The stream ends when its session ends, its token is revoked or the
//! daemon shuts down (so open pages do not hold the shutdown up).

use super::AppState;
use super::session::Signed;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt;
use futures_util::stream::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The live stream of the signed-in person's console.
pub(super) async fn stream(
    State(st): State<Arc<AppState>>,
    signed: Signed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.console.changes.subscribe();
    let closing = st.console.closing.subscribe();
    let hello = Event::default().event("ready").data("live");
    let first = futures_util::stream::iter([Ok(hello)]);
    let changes =
        futures_util::stream::unfold((rx, closing, st, signed), |(mut rx, mut closing, st, signed)| async move {
            let got = tokio::select! {
                got = rx.recv() => got,
                _ = closing.wait_for(|c| *c) => return None,
            };
            let ev = match got {
                Ok(c) => Event::default().event("change").data(serde_json::to_string(&c).unwrap_or_default()),
                Err(RecvError::Lagged(n)) => Event::default().event("reload").data(format!("missed {n} changes")),
                Err(RecvError::Closed) => return None,
            };
            if !signed.alive(&st) {
                return None;
            }
            Some((Ok(ev), (rx, closing, st, signed)))
        });
    Sse::new(first.chain(changes)).keep_alive(KeepAlive::default())
}
