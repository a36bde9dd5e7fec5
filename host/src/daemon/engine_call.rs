//! Engine calls from async handlers: the engine blocks on the journal, so
//! each call runs on the blocking pool and its refusal becomes an [`ApiError`].

use super::AppState;
use super::api_types::ApiError;
use crate::incident::{Engine, EngineError};
use axum::http::StatusCode;
use std::sync::Arc;

/// Runs an engine call on the blocking pool.
pub(super) async fn with_engine<T, F>(st: &AppState, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    run_on(st.engine.clone(), f).await
}

/// Runs an engine call on the blocking pool, on the given engine.
pub(super) async fn run_on<T, F>(engine: Arc<Engine>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("task failed: {e}")))?
        .map_err(ApiError::from)
}
