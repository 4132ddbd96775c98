//! Stage: `POST /api/client/v2.0/app/{app}/functions/call`. Input: the access token and the
//! body `{"name", "arguments", "service"}` (canonical or relaxed Extended JSON). Output: the
//! operation's result as canonical Extended JSON, or an error.
//!
//! * A body with a `service` that is one of the app's data sources is a MongoDB action: it runs
//!   through [`rolegate::ops::execute`] on the app's data store ([`crate::data`]), on a
//!   blocking thread, as the token's user (401 `InvalidSession` when it is disabled or gone),
//!   in the request context `rolegate call` builds ([`super::caller`]; `%%request` with
//!   `httpMethod`, `remoteIPAddress` = the TCP peer, `httpUserAgent`, `httpReferrer`). Its
//!   committed writes are published on the change feed ([`crate::feed`]) for `watch`.
//!   Operations that write run one at a time ([`AppState::writes`]), so concurrent updates of
//!   one document never fail with `WriteConflict`.
//! * Any operation on the reserved database (`$rolegate`, the accounts) is refused as a
//!   namespace without rules (403 `NoMatchingRuleFound`) before the rules run: the app's
//!   default rule never reaches it.
//! * Another service: 404 `ServiceNotFound`. No service: the app's own function, which this
//!   server does not run: 501 `FunctionExecutionError` naming it when the app defines it
//!   (and it is not private), else 404 `FunctionNotFound`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bson::{Bson, Document, doc, oid::ObjectId};
use rolegate::ops::{OpEnv, Operation, execute};

use crate::accounts::RESERVED_DATABASE;
use crate::error::ApiError;
use crate::feed::PublishingStore;
use crate::http::{LogFields, bearer, blocking, body_bytes, document};
use crate::state::AppState;

use super::caller::caller_context;
use super::finish;

/// The handler.
pub async fn call(
    State(state): State<Arc<AppState>>,
    Path(app_id): Path<String>,
    request: Request,
) -> Response {
    let mut fields = LogFields::default();
    let result = call_inner(&state, &app_id, request, &mut fields).await;
    finish(fields, result)
}

async fn call_inner(
    state: &Arc<AppState>,
    app_id: &str,
    request: Request,
    fields: &mut LogFields,
) -> Result<Response, ApiError> {
    state.check_app(app_id)?;
    let claims = state.tokens.verify_access(&bearer(request.headers())?)?;
    fields.user = Some(claims.sub.clone());
    let user_id = ObjectId::parse_str(&claims.sub)
        .map_err(|_| ApiError::invalid_session("token subject is not a user id"))?;
    let http = http_request(&request);
    let body = document(&body_bytes(state, request.into_body()).await?)?;
    let service = match body.get("service") {
        None | Some(Bson::Null) => return Err(function_call(state, &body, fields)),
        Some(Bson::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::bad_request("`service` must be a string")),
    };
    if !state.rules.rule_set().data_sources.contains_key(&service) {
        fields.operation = Some("call to an unknown service".to_string());
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ServiceNotFound",
            "service not found",
        ));
    }
    let op = Operation::from_body(&body).map_err(|e| ApiError::from_op(&e))?;
    fields.operation = Some(format!("{} {}", op.name(), op.namespace()));
    if op.namespace().database == RESERVED_DATABASE {
        tracing::warn!(user = %claims.sub, "an operation on the reserved database was refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "NoMatchingRuleFound",
            "no rules govern this collection",
        ));
    }
    // One writing operation at a time (`AppState::writes`): the permit moves into the
    // blocking work and is released when the write is done.
    let permit = if op.writes() {
        let writes = Arc::clone(&state.writes);
        Some(
            writes
                .acquire_owned()
                .await
                .map_err(|_| ApiError::internal("the write semaphore is closed"))?,
        )
    } else {
        None
    };
    let json = blocking(state, move |s| {
        let _permit = permit;
        run(s, user_id, &op, &http)
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response())
}

/// The operation, as the user, on the store: its result as canonical Extended JSON. This is
/// the whole of a call's work after HTTP (the token checked, the body parsed, the write
/// permit taken): it loads the user and their custom data, builds the request context,
/// prepares and executes. Public so that the load test's baseline (`benches/direct.rs`)
/// times exactly this.
pub fn run(
    state: &AppState,
    user_id: ObjectId,
    op: &Operation,
    http: &Document,
) -> Result<serde_json::Value, ApiError> {
    let (collection, context) = caller_context(state, user_id, op, http, None)?;
    let request = collection.prepare(&context);
    // Committed writes are published on the change feed (`watch`).
    let mut store = PublishingStore::new(&*state.data, &state.feed, op.replaces());
    let decided =
        execute(&request, op, &mut store, &mut OpEnv::new()).map_err(|e| ApiError::from_op(&e))?;
    rolegate::mql::bson_to_canonical_json(&decided.result)
        .map_err(|e| ApiError::internal(&format!("result: {e}")))
}

/// `%%request`'s HTTP part: the method, the TCP peer's address, the user agent and referrer.
pub(super) fn http_request(request: &Request) -> Document {
    let mut http = doc! {"httpMethod": request.method().as_str()};
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        http.insert("remoteIPAddress", peer.ip().to_string());
    }
    for (name, key) in [
        (header::USER_AGENT, "httpUserAgent"),
        (header::REFERER, "httpReferrer"),
    ] {
        if let Some(v) = request.headers().get(name).and_then(|v| v.to_str().ok()) {
            http.insert(key, v);
        }
    }
    http
}

/// A call of the app's own function (no `service`): not run by this server.
fn function_call(state: &AppState, body: &Document, fields: &mut LogFields) -> ApiError {
    let name: String = body
        .get_str("name")
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect();
    fields.operation = Some(format!("function {name}"));
    match state.rules.rule_set().functions.get(&name) {
        Some(f) if !f.private => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "FunctionExecutionError",
            format!("function '{name}' cannot run: this server does not run functions yet"),
        ),
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "FunctionNotFound",
            format!("function not found: '{name}'"),
        ),
    }
}
