//! Stage: the session. Input: `GET /api/client/v2.0/auth/profile` (access token),
//! `POST /api/client/v2.0/auth/session` (refresh token: a new access token, with the custom
//! user data read again) and `DELETE` on the same path (refresh token: logout, the session is
//! deleted). Output: the profile, `{access_token}` (201), or 204. The app comes from the token
//! (these routes carry no app id). A token that is missing, expired, tampered, of another
//! kind, of a closed session or of a disabled user: 401 `InvalidSession`; a failed logout says "failed to find
//! refresh token", which realm-web ignores.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bson::oid::ObjectId;

use crate::accounts;
use crate::error::ApiError;
use crate::http::{LogFields, bearer, blocking};
use crate::state::AppState;

use super::auth::user_data;
use super::finish;

fn user_id(sub: &str) -> Result<ObjectId, ApiError> {
    ObjectId::parse_str(sub)
        .map_err(|_| ApiError::invalid_session("token subject is not a user id"))
}

/// `GET /api/client/v2.0/auth/profile`.
pub async fn profile(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut fields = LogFields {
        user: None,
        operation: Some("profile".to_string()),
    };
    let result = async {
        let claims = state.tokens.verify_access(&bearer(&headers)?)?;
        fields.user = Some(claims.sub.clone());
        let id = user_id(&claims.sub)?;
        blocking(&state, move |s| {
            let user = accounts::active_user(&s.store, id)?;
            Ok(Json(accounts::profile(&user, &s.settings.app_id)))
        })
        .await
    }
    .await;
    finish(fields, result)
}

/// `POST /api/client/v2.0/auth/session`: a new access token.
pub async fn refresh(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut fields = LogFields {
        user: None,
        operation: Some("refresh".to_string()),
    };
    let result = async {
        let claims = state.tokens.verify_refresh(&bearer(&headers)?, true)?;
        fields.user = Some(claims.sub.clone());
        let id = user_id(&claims.sub)?;
        blocking(&state, move |s| {
            if accounts::session(&s.store, &claims.baas_id, id)?.is_none() {
                return Err(ApiError::invalid_session("the session is closed"));
            }
            let user = accounts::active_user(&s.store, id)?;
            let token =
                s.tokens
                    .access(&claims.sub, &claims.baas_device_id, user_data(s, &user)?)?;
            Ok((
                StatusCode::CREATED,
                Json(serde_json::json!({"access_token": token})),
            ))
        })
        .await
    }
    .await;
    finish(fields, result)
}

/// `DELETE /api/client/v2.0/auth/session`: logout.
pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut fields = LogFields {
        user: None,
        operation: Some("logout".to_string()),
    };
    let not_found = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidSession",
            "invalid session: failed to find refresh token",
        )
    };
    let result = async {
        let token = bearer(&headers)?;
        let claims = state
            .tokens
            .verify_refresh(&token, false)
            .map_err(|_| not_found())?;
        fields.user = Some(claims.sub.clone());
        let id = user_id(&claims.sub).map_err(|_| not_found())?;
        let closed = blocking(&state, move |s| {
            accounts::close_session(&s.store, &claims.baas_id, id)
        })
        .await?;
        if closed {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(not_found())
        }
    }
    .await;
    finish(fields, result)
}
