//! `/v1/tokens`: create (the secret is in the reply, once), list (never a
//! secret) and revoke API tokens. Admins only; the gate checks that. Each
//! change is stored first, then put in the gate's map, so it holds from the
//! next request on.

use super::AppState;
use super::api_types::{ApiError, CreateTokenBody, CreatedToken, TokenInfo};
use super::tokens::{Caller, generate, hash_secret, state_at};
use crate::store::{TokenKind, TokenRow};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use std::sync::Arc;

/// The token routes, merged under the `/v1` gate.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/tokens", post(create).get(list)).route("/v1/tokens/{id}/revoke", post(revoke))
}

/// The longest lifetime a token may be given (ten years), so `expires_at` cannot overflow.
const MAX_EXPIRES_SECS: u64 = 10 * 366 * 24 * 3600;

fn info(row: &TokenRow, now: i64) -> TokenInfo {
    TokenInfo {
        id: row.id.clone(),
        kind: row.kind,
        subject: row.subject.clone(),
        role: row.role,
        state: state_at(row, now),
        created_at: row.created_at,
        created_by: row.created_by.clone(),
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        revoked_by: row.revoked_by.clone(),
    }
}

/// A person's token must name a roster person: the error names the roster file.
fn check_person(st: &AppState, person: &str) -> Result<(), ApiError> {
    let g = st.engine.generation();
    if g.config.roster.people.contains_key(person) {
        return Ok(());
    }
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let Some(file) = &g.config.roster_path else {
        return Err(ApiError::new(
            unprocessable,
            format!(
                "no roster is configured, so `{person}` is no roster person: set roster = \"roster.toml\" in crisis.toml and list the person there"
            ),
        ));
    };
    let nearby = crate::diag::nearby(person, g.config.roster.people.keys().map(String::as_str));
    Err(ApiError::new(
        unprocessable,
        format!(
            "no person `{person}` in the roster {}: add them under [people.{person}] there and run `crisis reload`, or use an id it lists",
            file.display()
        ),
    )
    .with_nearby(nearby))
}

/// An intake source's name: what logs and `created_by` show for it.
fn check_intake_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("intake name `{name}` is not usable: use 1 to 64 of a-z, 0-9, - and _ (e.g. alertmanager)"),
    ))
}

async fn create(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<CreateTokenBody>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let Json(b) = body?;
    let (kind, subject, role, expires) = match b {
        CreateTokenBody::Person { person, role, expires_in_secs } => {
            check_person(&st, &person)?;
            (TokenKind::Person, person, Some(role), expires_in_secs)
        }
        CreateTokenBody::Intake { name, expires_in_secs } => {
            check_intake_name(&name)?;
            (TokenKind::Intake, name, None, expires_in_secs)
        }
    };
    if expires.is_some_and(|s| s == 0 || s > MAX_EXPIRES_SECS) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a token's lifetime must be between 1 second and 10 years (e.g. --expires 90d)",
        ));
    }
    let now = st.tokens.now();
    let (id, secret) = generate();
    let row = TokenRow {
        id,
        secret_sha256: hash_secret(&secret),
        kind,
        subject,
        role,
        created_at: now,
        created_by: caller.label(),
        expires_at: expires.map(|s| now + (s as i64) * 1000),
        revoked_at: None,
        revoked_by: None,
    };
    let (store, stored) = (st.engine.store().clone(), row.clone());
    tokio::task::spawn_blocking(move || store.put_token(&stored))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    st.tokens.insert(row.clone());
    tracing::info!(
        "{} created API token {} ({:?} {}{})",
        caller.label(),
        row.id,
        row.kind,
        row.subject,
        row.role.map(|r| format!(", role {r}")).unwrap_or_default()
    );
    Ok((StatusCode::CREATED, Json(CreatedToken { token: info(&row, now), secret })))
}

async fn list(State(st): State<Arc<AppState>>) -> Json<Vec<TokenInfo>> {
    let now = st.tokens.now();
    Json(st.tokens.list().iter().map(|r| info(r, now)).collect())
}

async fn revoke(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    let now = st.tokens.now();
    let by = caller.label();
    // The gate's map first: the token is refused from this instant, even if storing fails.
    match st.tokens.revoke(&id, now, &by) {
        None => {
            let nearby = crate::diag::nearby(&id, st.tokens.ids().iter().map(String::as_str));
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no API token `{id}`; see `crisis token list`"))
                .with_nearby(nearby));
        }
        Some(false) => return Err(ApiError::new(StatusCode::CONFLICT, format!("API token {id} is already revoked"))),
        Some(true) => {}
    }
    let (store, tid, tby) = (st.engine.store().clone(), id.clone(), by.clone());
    tokio::task::spawn_blocking(move || store.revoke_token(&tid, now, &tby))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    tracing::info!("{by} revoked API token {id}");
    let row = st
        .tokens
        .list()
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::internal("revoked token vanished"))?;
    Ok(Json(info(&row, now)))
}
