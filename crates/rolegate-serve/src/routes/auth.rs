//! Stage: logins and registration. Input: `POST …/app/{app}/auth/providers/{provider}/login`
//! (`local-userpass`: `{username, password}`; `anon-user`: `{}`; `custom-token`: `{token}`;
//! `api-key`: `{key}`; each with `options.device`, canonical Extended JSON) and `…/local-userpass/register` (`{email,
//! password}`). Output: `{access_token, refresh_token, user_id, device_id}` for a login; 201
//! for a registration (confirmed at once: only apps with `autoConfirm` may register).
//!
//! A provider the app does not enable (or this server does not speak) is 404
//! `AuthProviderNotFound`; a wrong email or password is 401 `InvalidPassword` ("invalid
//! username/password", the same for both); an invalid custom token or API key (unknown or
//! disabled) is 401 `AuthError`; a disabled user is 401 `UserDisabled` (after its credentials
//! are checked, so that the answer tells nothing to whoever lacks them); identity linking
//! (`?link=true`) is refused.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use bson::{Bson, Document, oid::ObjectId};
use rolegate::ops::attach_custom_data;

use crate::accounts;
use crate::api_keys;
use crate::data::Shared;
use crate::error::ApiError;
use crate::http::{LogFields, blocking, body_bytes, document};
use crate::state::AppState;

use super::finish;

/// Which provider a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Userpass,
    Anonymous,
    CustomToken,
    ApiKey,
}

/// What a login presents.
enum Credentials {
    Password(String, String),
    Anonymous,
    Token(String),
    Key(String),
}

fn provider(state: &AppState, name: &str) -> Result<Provider, ApiError> {
    match name {
        "local-userpass" if state.settings.userpass.is_some() => Ok(Provider::Userpass),
        "anon-user" if state.settings.anonymous => Ok(Provider::Anonymous),
        "custom-token" if state.custom_token.is_some() => Ok(Provider::CustomToken),
        "api-key" if state.settings.api_key => Ok(Provider::ApiKey),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "AuthProviderNotFound",
            "authentication provider not found or not enabled",
        )),
    }
}

fn string_field(body: &Document, key: &str) -> Result<String, ApiError> {
    match body.get(key) {
        Some(Bson::String(s)) => Ok(s.clone()),
        _ => Err(ApiError::bad_request(format!("`{key}` must be a string"))),
    }
}

/// `POST …/auth/providers/{provider}/login`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    Path((app_id, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let mut fields = LogFields {
        user: None,
        operation: Some(format!(
            "login {}",
            name.chars().take(40).collect::<String>()
        )),
    };
    let result = login_inner(&state, &app_id, &name, request, &mut fields).await;
    finish(fields, result)
}

async fn login_inner(
    state: &Arc<AppState>,
    app_id: &str,
    name: &str,
    request: Request,
    fields: &mut LogFields,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.check_app(app_id)?;
    let provider = provider(state, name)?;
    if request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "link=true"))
    {
        return Err(ApiError::bad_request(
            "linking identities is not supported by this server",
        ));
    }
    let body = document(&body_bytes(state, request.into_body()).await?)?;
    let device = match body
        .get_document("options")
        .and_then(|o| o.get_document("device"))
    {
        Ok(d) => d.clone(),
        Err(_) => Document::new(),
    };
    let sent_device = match device.get("deviceId") {
        Some(Bson::ObjectId(o)) if o.bytes() != [0; 12] => Some(*o),
        _ => None,
    };
    let credentials = match provider {
        Provider::Userpass => Credentials::Password(
            string_field(&body, "username")?,
            string_field(&body, "password")?,
        ),
        Provider::Anonymous => Credentials::Anonymous,
        Provider::CustomToken => Credentials::Token(string_field(&body, "token")?),
        Provider::ApiKey => Credentials::Key(string_field(&body, "key")?),
    };
    let hashes = matches!(credentials, Credentials::Password(..));
    let permit = hashing_permit(state, hashes).await?;
    let answer = blocking(state, move |s| {
        let _permit = permit;
        let user_id = match credentials {
            Credentials::Password(email, password) => {
                accounts::check_password(&s.store, &email, &password)?
            }
            Credentials::Anonymous => accounts::create_anonymous(&s.store)?,
            Credentials::Token(token) => {
                let verifier = s
                    .custom_token
                    .as_ref()
                    .ok_or_else(|| ApiError::internal("custom-token login without a verifier"))?;
                let verified = verifier.verify(&token)?;
                accounts::custom_token_user(&s.store, &verified.sub, &verified.metadata)?
            }
            Credentials::Key(key) => api_keys::login(&s.store, &key)?,
        };
        start_session(s, user_id, sent_device, &device)
    })
    .await?;
    fields.user = answer
        .get("user_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    Ok(Json(answer))
}

/// A permit to hash a password (`None` when no password is hashed): argon2's memory and time
/// make unbounded concurrent hashing a way to exhaust the server. The permit moves into the
/// blocking work, so a client that goes away does not release it while the hash runs.
async fn hashing_permit(
    state: &AppState,
    hashes: bool,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
    if !hashes {
        return Ok(None);
    }
    Arc::clone(&state.hashing)
        .acquire_owned()
        .await
        .map(Some)
        .map_err(|_| ApiError::internal("the hashing semaphore is closed"))
}

/// A login's answer: a device, a session, both tokens.
fn start_session(
    state: &AppState,
    user_id: ObjectId,
    sent_device: Option<ObjectId>,
    device_info: &Document,
) -> Result<serde_json::Value, ApiError> {
    let user = accounts::user(&state.store, user_id)?
        .ok_or_else(|| ApiError::internal("a login's user is not stored"))?;
    accounts::check_enabled(&user)?;
    let device = accounts::device(&state.store, user_id, sent_device, device_info)?;
    let session_id = accounts::new_session_id()?;
    let (uid, did) = (user_id.to_hex(), device.to_hex());
    let (refresh_token, expires) = state.tokens.refresh(&uid, &did, &session_id)?;
    accounts::open_session(&state.store, &session_id, user_id, device, expires)?;
    let access_token = state.tokens.access(&uid, &did, user_data(state, &user)?)?;
    Ok(serde_json::json!({
        "access_token": access_token,
        "refresh_token": refresh_token,
        "user_id": uid,
        "device_id": did,
    }))
}

/// The custom user data for the access token's `user_data` claim (relaxed Extended JSON; `{}`
/// when the app has none or the user has no document).
pub fn user_data(state: &AppState, user: &Document) -> Result<serde_json::Value, ApiError> {
    let mut rule_user = accounts::rule_user(user);
    attach_custom_data(
        state.rules.rule_set(),
        &mut Shared(&*state.data),
        &mut rule_user,
    )
    .map_err(|e| ApiError::internal(&format!("custom user data: {e}")))?;
    Ok(match rule_user.get_document("custom_data") {
        Ok(data) => rolegate::mql::document_to_json(data),
        Err(_) => serde_json::json!({}),
    })
}

/// `POST …/auth/providers/local-userpass/register`.
pub async fn register(
    State(state): State<Arc<AppState>>,
    Path((app_id, name)): Path<(String, String)>,
    body: Body,
) -> Response {
    let fields = LogFields {
        user: None,
        operation: Some("register".to_string()),
    };
    let result = register_inner(&state, &app_id, &name, body).await;
    finish(fields, result)
}

async fn register_inner(
    state: &Arc<AppState>,
    app_id: &str,
    name: &str,
    body: Body,
) -> Result<StatusCode, ApiError> {
    state.check_app(app_id)?;
    if provider(state, name)? != Provider::Userpass {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "route not found",
        ));
    }
    if !state
        .settings
        .userpass
        .as_ref()
        .is_some_and(|u| u.auto_confirm)
    {
        return Err(ApiError::bad_request(
            "this server confirms new users only automatically (`autoConfirm`); the app \
             confirms by email or a function",
        ));
    }
    let body = document(&body_bytes(state, body).await?)?;
    let email = string_field(&body, "email")?;
    let password = string_field(&body, "password")?;
    accounts::check_credentials(&email, &password)?;
    let permit = hashing_permit(state, true).await?;
    blocking(state, move |s| {
        let _permit = permit;
        accounts::register(&s.store, &email, &password)
    })
    .await?;
    Ok(StatusCode::CREATED)
}
