//! Stage: user API key management. Input: `POST`/`GET /api/client/v2.0/auth/api_keys`
//! (`{name}` to create), `GET`/`DELETE …/api_keys/{id}`, `PUT …/api_keys/{id}/enable` and
//! `…/disable`, each with the user's **refresh token** as bearer (as realm-web and realm-core
//! send it). Output: `{_id, key, name, disabled}` (201; the only time the key is shown), the
//! user's keys (`[{_id, name, disabled}]`), one key, or 204.
//!
//! The refresh token must be valid, its session open and its user enabled (else 401
//! `InvalidSession`); the app must enable the `api-key` provider (else 404
//! `AuthProviderNotFound`). A key id that is not the user's is 404 `APIKeyNotFound`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bson::oid::ObjectId;

use crate::accounts;
use crate::api_keys;
use crate::error::ApiError;
use crate::http::{LogFields, bearer, blocking, body_bytes, document};
use crate::state::AppState;

use super::finish;

/// The user of a management request: a valid refresh token of an open session of an enabled
/// user, on an app that enables `api-key`.
async fn owner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    fields: &mut LogFields,
) -> Result<ObjectId, ApiError> {
    let claims = state.tokens.verify_refresh(&bearer(headers)?, true)?;
    fields.user = Some(claims.sub.clone());
    if !state.settings.api_key {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "AuthProviderNotFound",
            "authentication provider not found or not enabled",
        ));
    }
    let id = ObjectId::parse_str(&claims.sub)
        .map_err(|_| ApiError::invalid_session("token subject is not a user id"))?;
    blocking(state, move |s| {
        if accounts::session(&s.store, &claims.baas_id, id)?.is_none() {
            return Err(ApiError::invalid_session("the session is closed"));
        }
        accounts::active_user(&s.store, id)?;
        Ok(id)
    })
    .await
}

fn fields(operation: &str) -> LogFields {
    LogFields {
        user: None,
        operation: Some(operation.to_string()),
    }
}

/// `POST /api/client/v2.0/auth/api_keys`: a new key.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut fields = fields("create api key");
    let result = async {
        let user = owner(&state, &headers, &mut fields).await?;
        let body = document(&body_bytes(&state, body).await?)?;
        let name = match body.get("name") {
            Some(bson::Bson::String(s)) => s.clone(),
            _ => return Err(ApiError::bad_request("`name` must be a string")),
        };
        let (key, secret) =
            blocking(&state, move |s| api_keys::create(&s.store, user, &name)).await?;
        Ok((StatusCode::CREATED, Json(key.to_json(Some(&secret)))))
    }
    .await;
    finish(fields, result)
}

/// `GET /api/client/v2.0/auth/api_keys`: the user's keys.
pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut fields = fields("list api keys");
    let result = async {
        let user = owner(&state, &headers, &mut fields).await?;
        let keys = blocking(&state, move |s| api_keys::list(&s.store, user)).await?;
        let json: Vec<serde_json::Value> = keys.iter().map(|k| k.to_json(None)).collect();
        Ok(Json(serde_json::Value::Array(json)))
    }
    .await;
    finish(fields, result)
}

/// `GET /api/client/v2.0/auth/api_keys/{id}`: one key.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fields = fields("get api key");
    let result = async {
        let user = owner(&state, &headers, &mut fields).await?;
        let key = blocking(&state, move |s| api_keys::get(&s.store, user, &key_id)).await?;
        Ok(Json(key.to_json(None)))
    }
    .await;
    finish(fields, result)
}

/// `DELETE /api/client/v2.0/auth/api_keys/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fields = fields("delete api key");
    let result = async {
        let user = owner(&state, &headers, &mut fields).await?;
        blocking(&state, move |s| api_keys::delete(&s.store, user, &key_id)).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    finish(fields, result)
}

/// `PUT /api/client/v2.0/auth/api_keys/{id}/enable`.
pub async fn enable(
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    switch(state, key_id, headers, false).await
}

/// `PUT /api/client/v2.0/auth/api_keys/{id}/disable`.
pub async fn disable(
    State(state): State<Arc<AppState>>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    switch(state, key_id, headers, true).await
}

async fn switch(
    state: Arc<AppState>,
    key_id: String,
    headers: HeaderMap,
    disabled: bool,
) -> Response {
    let mut fields = fields(if disabled {
        "disable api key"
    } else {
        "enable api key"
    });
    let result = async {
        let user = owner(&state, &headers, &mut fields).await?;
        blocking(&state, move |s| {
            api_keys::set_disabled(&s.store, user, &key_id, disabled)
        })
        .await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    finish(fields, result)
}
