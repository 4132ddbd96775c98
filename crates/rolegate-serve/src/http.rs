//! Stage: request plumbing shared by the routes. Input: a request's headers and body. Output:
//! the bearer token, the body as a BSON document (canonical or relaxed Extended JSON, read
//! within the size limit), and synchronous work run on a blocking thread.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use bson::Document;

use crate::error::ApiError;
use crate::state::AppState;

/// The `Authorization: Bearer <token>` token (401 "must authenticate first" without one).
pub fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::must_authenticate)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::must_authenticate)?;
    Ok(token.to_string())
}

/// The body's bytes, at most `state.max_body_bytes` (else 413).
pub async fn body_bytes(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BadRequest",
                "request body too large",
            )
        })
}

/// The body as a document: JSON (serde_json's nesting limit guards the parse), then Extended
/// JSON to BSON (depth-checked without recursion). An empty body is `{}`.
pub fn document(bytes: &[u8]) -> Result<Document, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document::new());
    }
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::bad_request("the body is not JSON"))?;
    rolegate::mql::document_from_json(&json).map_err(|e| {
        ApiError::bad_request(format!("the body is not an Extended JSON document: {e}"))
    })
}

/// Runs `work` on a blocking thread (the store and password hashing are synchronous).
pub async fn blocking<T, F>(state: &Arc<AppState>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|e| ApiError::internal(&format!("a blocking task failed: {e}")))?
}

/// What the request log records besides the method, path, status and latency: the user and
/// the operation (never document values or secrets). Handlers put it in the response's
/// extensions.
#[derive(Debug, Clone, Default)]
pub struct LogFields {
    /// The user id.
    pub user: Option<String>,
    /// The operation (`find taskboard.tasks`) or auth action.
    pub operation: Option<String>,
}
