//! Stage: `GET /api/client/v2.0/app/{app}/functions/call?baas_request=…[&baas_at=…]`, a
//! `watch` change stream. Input: the access token (`Authorization: Bearer`, as realm-web sends
//! it, or the `baas_at` query parameter, as realm-core does), the base64 request body
//! ([`crate::watch::request`]). Output: before the stream, the usual JSON errors (401
//! `InvalidSession` for a bad or expired token, so clients refresh and retry; 404
//! `ServiceNotFound`; 403 `NoMatchingRuleFound` for a namespace without rules or the reserved
//! database; 400 for a malformed request; 429 `TooManyRequests` beyond the cap on open
//! streams); then `200 text/event-stream`: the events the user may see
//! ([`crate::watch::view`]), a keep-alive comment after each quiet interval.
//!
//! A stream ends, with an `event: error` first:
//! * `InvalidSession` when the access token that opened it expires (the client watches again
//!   with a refreshed token);
//! * `ChangeStreamHistoryLost` when it fell behind the feed's buffer (events would be lost);
//! * `ServiceUnavailable` when the server shuts down;
//! * `InvalidParameter` when the client's filter fails to evaluate on an event.
//!
//! It also ends when the client goes away. The user and the rules are read once, when the
//! stream opens (`%%user`, custom user data, `%%request` with `action: "watch"`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bson::{Document, doc, oid::ObjectId};
use rolegate::ops::Operation;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};

use crate::accounts::RESERVED_DATABASE;
use crate::error::ApiError;
use crate::feed::FeedEvent;
use crate::http::{LogFields, bearer, blocking};
use crate::state::AppState;
use crate::tokens::now;
use crate::watch::request::{WatchRequest, decode};
use crate::watch::sse;
use crate::watch::streams::StreamSlot;
use crate::watch::view::Watcher;

use super::caller::caller_context;
use super::finish;

/// The query parameters.
#[derive(Debug, Deserialize)]
struct WatchQuery {
    baas_request: Option<String>,
    baas_at: Option<String>,
}

/// The handler.
pub async fn watch(
    State(state): State<Arc<AppState>>,
    Path(app_id): Path<String>,
    request: Request,
) -> Response {
    let mut fields = LogFields::default();
    let result = open(&state, &app_id, request, &mut fields).await;
    finish(fields, result)
}

async fn open(
    state: &Arc<AppState>,
    app_id: &str,
    request: Request,
    fields: &mut LogFields,
) -> Result<Response, ApiError> {
    state.check_app(app_id)?;
    let Query(query) = Query::<WatchQuery>::try_from_uri(request.uri())
        .map_err(|_| ApiError::bad_request("the query string cannot be read"))?;
    let token = match bearer(request.headers()) {
        Ok(t) => t,
        Err(e) => query.baas_at.clone().filter(|t| !t.is_empty()).ok_or(e)?,
    };
    let claims = state.tokens.verify_access(&token)?;
    fields.user = Some(claims.sub.clone());
    let user_id = ObjectId::parse_str(&claims.sub)
        .map_err(|_| ApiError::invalid_session("token subject is not a user id"))?;
    let parameter = query
        .baas_request
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("`baas_request` is missing"))?;
    let watch = WatchRequest::from_body(&decode(parameter)?)?;
    fields.operation = Some(format!("watch {}", watch.namespace));
    if !state
        .rules
        .rule_set()
        .data_sources
        .contains_key(&watch.service)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ServiceNotFound",
            "service not found",
        ));
    }
    if watch.namespace.database == RESERVED_DATABASE {
        tracing::warn!(user = %claims.sub, "a watch of the reserved database was refused");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "NoMatchingRuleFound",
            "no rules govern this collection",
        ));
    }
    let slot = state.streams.open().ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "too many change streams are open; try again later",
        )
    })?;
    let http = super::functions::http_request(&request);
    let watcher = blocking(state, move |s| watcher(s, user_id, watch, &http)).await?;
    let events = state.feed.subscribe();
    let remaining = u64::try_from(claims.exp.saturating_sub(now())).unwrap_or(0);
    let expiry = tokio::time::Instant::now() + Duration::from_secs(remaining);
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(stream(
        watcher,
        events,
        tx,
        slot,
        expiry,
        state.streams.keep_alive,
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(Frames(rx)),
    )
        .into_response())
}

/// The user's watcher: the stored user and custom data, the collection's rules, the request
/// context (as a `functions/call` builds it, with `action: "watch"`).
fn watcher(
    state: &AppState,
    user_id: ObjectId,
    watch: WatchRequest,
    http: &Document,
) -> Result<Watcher, ApiError> {
    // The collection is resolved as a `find` on it would be (`service/db.coll`, else `db.coll`).
    let find = Operation::from_body(&doc! {
        "name": "find",
        "arguments": [{"database": &watch.namespace.database, "collection": &watch.namespace.collection}],
        "service": &watch.service,
    })
    .map_err(|e| ApiError::from_op(&e))?;
    let (collection, context) = caller_context(state, user_id, &find, http, Some("watch"))?;
    // A collection no role governs is refused as a `find` on it is.
    collection
        .prepare(&context)
        .plan_operation(&find)
        .map_err(|e| ApiError::from_op(&e))?;
    Watcher::new(collection, context, watch.namespace, watch.selector)
}

/// Runs one stream until it ends; each frame goes to `tx` (the response body).
async fn stream(
    watcher: Watcher,
    mut events: broadcast::Receiver<Arc<FeedEvent>>,
    tx: mpsc::Sender<Bytes>,
    mut slot: StreamSlot,
    expiry: tokio::time::Instant,
    keep_alive: Duration,
) {
    let send = |frame: String| {
        let tx = tx.clone();
        async move { tx.send(Bytes::from(frame)).await.is_ok() }
    };
    let session = match watcher.session() {
        Ok(s) => s,
        Err(e) => {
            send(sse::error(e.code, &e.message)).await;
            return;
        }
    };
    if !send(sse::OPENED.to_string()).await {
        return;
    }
    let expired = tokio::time::sleep_until(expiry);
    tokio::pin!(expired);
    let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
    let end = loop {
        let frame = tokio::select! {
            biased;
            () = tx.closed() => return,
            () = slot.closed() => break sse::error("ServiceUnavailable", "the server is shutting down"),
            () = &mut expired => break sse::error("InvalidSession", "the access token expired"),
            received = events.recv() => match received {
                Ok(event) => match session.view(&event) {
                    Ok(Some(doc)) => match rolegate::mql::bson_to_canonical_json(&bson::Bson::Document(doc)) {
                        Ok(json) => sse::event(&json.to_string()),
                        Err(e) => {
                            tracing::error!(detail = %e, "a change event cannot be written as Extended JSON");
                            break sse::error("InternalServerError", "internal server error");
                        }
                    },
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::debug!(detail = %e, "a watch filter failed");
                        break sse::error("InvalidParameter", "the filter cannot be evaluated on a change event");
                    }
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "a change stream fell behind and was closed");
                    break sse::error("ChangeStreamHistoryLost", "the change stream fell behind; watch again");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = quiet.tick() => sse::KEEP_ALIVE.to_string(),
        };
        if !send(frame).await {
            return;
        }
        quiet.reset();
    };
    send(end).await;
}

/// The response body: the frames a stream task sends.
struct Frames(mpsc::Receiver<Bytes>);

impl futures_core::Stream for Frames {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}
