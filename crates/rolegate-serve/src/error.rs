//! Stage: errors as clients read them. Input: whatever refused a request (a token, a body, the
//! rules, the store). Output: an [`ApiError`]: an HTTP status and the App Services error body
//! `{"error": <client-safe message>, "error_code": <Code>, "link": ""}` with
//! `Content-Type: application/json` exactly (realm-core parses no other). The detailed reason
//! never reaches the client: the constructors that take one log it (`tracing`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rolegate::ops::OpError;

/// A refused request: the status, the code and the client-safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The App Services error code (`InvalidSession`, `NoMatchingRuleFound`, ...).
    pub code: &'static str,
    /// The client-safe message.
    pub message: String,
}

/// The code of a refused request, kept in the response's extensions for the request log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl ApiError {
    /// An error with its status, code and client-safe message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A missing, expired, tampered or revoked token: 401 `InvalidSession` (realm-web and
    /// realm-core refresh the access token and retry once on it).
    pub fn invalid_session(detail: &str) -> ApiError {
        tracing::info!(reason = detail, "invalid session");
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidSession",
            "invalid session",
        )
    }

    /// No `Authorization: Bearer` header: 401 `InvalidSession`, "must authenticate first".
    pub fn must_authenticate() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidSession",
            "must authenticate first",
        )
    }

    /// A body the server cannot read: 400 `BadRequest` with a client-safe message (it may
    /// describe the body, never stored data).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// A failure of the server itself: 500 `InternalServerError`; `detail` goes to the log.
    pub fn internal(detail: &str) -> ApiError {
        tracing::error!(detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "internal server error",
        )
    }

    /// An operation's error: its client-safe code and message, with the status App Services
    /// answered it with (403 for no rule, 409 for a write conflict, 500 when the store failed,
    /// else 400). The detailed view may quote rules and stored values, so it goes to the log at
    /// `debug` level only (off under the default `info`: per-request logs carry no document
    /// values); `RUST_LOG=rolegate_serve=debug` shows it.
    pub fn from_op(e: &OpError) -> ApiError {
        let client = e.client_error();
        let status = match client.code {
            "NoMatchingRuleFound" => StatusCode::FORBIDDEN,
            "WriteConflict" => StatusCode::CONFLICT,
            "InternalServerError" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        tracing::debug!(code = client.code, detail = e.detail(), "operation refused");
        ApiError::new(status, client.code, client.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.message,
            "error_code": self.code,
            "link": "",
        });
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}
