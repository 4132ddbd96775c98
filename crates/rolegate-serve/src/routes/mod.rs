//! Stage: the HTTP routes. Input: requests under `/api/client/v2.0` (App Services' client
//! API) and `/health`. Output: the [`router`], with CORS, the origin check, and one log line
//! per request (method, path, status, user, operation, outcome code, latency; never bodies,
//! document values, tokens or query strings).
//!
//! | Route | Module |
//! |---|---|
//! | `GET /api/client/v2.0/app/{app}/location` | [`location`] |
//! | `POST …/app/{app}/auth/providers/{provider}/login`, `…/local-userpass/register` | [`auth`] |
//! | `GET /api/client/v2.0/auth/profile`, `POST`/`DELETE /api/client/v2.0/auth/session` | [`session`] |
//! | `POST …/app/{app}/functions/call` | [`functions`] |
//! | `GET …/app/{app}/functions/call?baas_request=…` (`watch`) | [`watch`] |
//! | `POST`/`GET /api/client/v2.0/auth/api_keys`, `GET`/`DELETE …/{id}`, `PUT …/{id}/enable`, `…/disable` | [`api_keys`] |
//! | `GET /health` | here |

pub mod api_keys;
pub mod auth;
pub mod caller;
pub mod functions;
pub mod location;
pub mod session;
pub mod watch;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{ApiError, ErrorCode};
use crate::http::LogFields;
use crate::state::AppState;

/// The prefix of every client route.
pub const CLIENT: &str = "/api/client/v2.0";

/// The server's routes on `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let app = format!("{CLIENT}/app/{{app_id}}");
    let routes = Router::new()
        .route("/health", get(health))
        .route(&format!("{app}/location"), get(location::location))
        .route(
            &format!("{app}/auth/providers/{{provider}}/login"),
            post(auth::login),
        )
        .route(
            &format!("{app}/auth/providers/{{provider}}/register"),
            post(auth::register),
        )
        .route(&format!("{CLIENT}/auth/profile"), get(session::profile))
        .route(
            &format!("{CLIENT}/auth/session"),
            post(session::refresh).delete(session::logout),
        )
        .route(
            &format!("{app}/functions/call"),
            post(functions::call).get(watch::watch),
        )
        .route(
            &format!("{CLIENT}/auth/api_keys"),
            post(api_keys::create).get(api_keys::list),
        )
        .route(
            &format!("{CLIENT}/auth/api_keys/{{key_id}}"),
            get(api_keys::get).delete(api_keys::delete),
        )
        .route(
            &format!("{CLIENT}/auth/api_keys/{{key_id}}/enable"),
            put(api_keys::enable),
        )
        .route(
            &format!("{CLIENT}/auth/api_keys/{{key_id}}/disable"),
            put(api_keys::disable),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            log_and_check_origin,
        ))
        .layer(cors(&state.settings.allowed_origins));
    routes.with_state(state)
}

/// `GET /health`: `{"status": "ok"}`.
async fn health() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Any other route: 404.
async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "route not found").into_response()
}

/// CORS: the app's `allowed_request_origins`, or every origin when it lists none (App
/// Services' rule). Bearer tokens, not cookies: no credentials mode.
fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(std::time::Duration::from_secs(600))
}

/// Refuses a request whose `Origin` the app does not allow (403, as App Services blocked
/// them), then logs the request's one line.
async fn log_and_check_origin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let allowed = &state.settings.allowed_origins;
    let refused_origin = !allowed.is_empty()
        && request
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|o| !allowed.iter().any(|a| a.as_bytes() == o.as_bytes()));
    let response = if refused_origin {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "OriginNotAllowed",
            "requests from this origin are not allowed",
        )
        .into_response()
    } else {
        next.run(request).await
    };
    let fields = response
        .extensions()
        .get::<LogFields>()
        .cloned()
        .unwrap_or_default();
    let outcome = response
        .extensions()
        .get::<ErrorCode>()
        .map_or("ok", |c| c.0);
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        user = fields.user.as_deref().unwrap_or("-"),
        operation = fields.operation.as_deref().unwrap_or("-"),
        outcome,
        latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

/// The response of a handler's result, with the log fields attached.
pub fn finish<T: IntoResponse>(fields: LogFields, result: Result<T, ApiError>) -> Response {
    let mut response = match result {
        Ok(ok) => ok.into_response(),
        Err(e) => e.into_response(),
    };
    response.extensions_mut().insert(fields);
    response
}
