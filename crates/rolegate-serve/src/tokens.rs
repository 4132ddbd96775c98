//! Stage: tokens. Input: a user id, a device id, a session id and the custom user data, or a
//! bearer token. Output: HS256 JWTs as App Services clients read them, or the verified claims.
//!
//! Both tokens are JWTs (realm-core refuses a refresh token that is not one) with integer
//! `iat`/`exp`, `sub` (the user id), `aud` (the app id: a token of another app is refused),
//! `typ` (`access` or `refresh`: neither is accepted as the other) and `baas_device_id`. The
//! access token carries `user_data`, the custom user data as relaxed Extended JSON (clients
//! read `user.customData` from it); the refresh token carries `baas_id`, the session it
//! belongs to (revoked on logout). Verification allows no clock leeway.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id (24 hex digits).
    pub sub: String,
    /// `access`.
    pub typ: String,
    /// The app id.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The device id (24 hex digits).
    pub baas_device_id: String,
    /// The custom user data (relaxed Extended JSON; `{}` when none).
    pub user_data: serde_json::Value,
}

/// The claims of a refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// The user id.
    pub sub: String,
    /// `refresh`.
    pub typ: String,
    /// The app id.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// The device id.
    pub baas_device_id: String,
    /// The session id (the stored session's `_id`).
    pub baas_id: String,
}

/// Issues and verifies the tokens of one app.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    app_id: String,
    /// How long an access token lives.
    pub access_lifetime: Duration,
    /// How long a refresh token (and its session) lives.
    pub refresh_lifetime: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Tokens {
    /// Tokens signed with `key` for `app_id`.
    pub fn new(
        key: &[u8],
        app_id: &str,
        access_lifetime: Duration,
        refresh_lifetime: Duration,
    ) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            app_id: app_id.to_string(),
            access_lifetime,
            refresh_lifetime,
        }
    }

    /// A new access token.
    pub fn access(
        &self,
        user_id: &str,
        device_id: &str,
        user_data: serde_json::Value,
    ) -> Result<String, ApiError> {
        let iat = now();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            typ: "access".to_string(),
            aud: self.app_id.clone(),
            iat,
            exp: iat.saturating_add(seconds(self.access_lifetime)),
            baas_device_id: device_id.to_string(),
            user_data,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(&format!("cannot sign a token: {e}")))
    }

    /// A new refresh token for session `session_id`, and when it expires.
    pub fn refresh(
        &self,
        user_id: &str,
        device_id: &str,
        session_id: &str,
    ) -> Result<(String, i64), ApiError> {
        let iat = now();
        let exp = iat.saturating_add(seconds(self.refresh_lifetime));
        let claims = RefreshClaims {
            sub: user_id.to_string(),
            typ: "refresh".to_string(),
            aud: self.app_id.clone(),
            iat,
            exp,
            baas_device_id: device_id.to_string(),
            baas_id: session_id.to_string(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(&format!("cannot sign a token: {e}")))?;
        Ok((token, exp))
    }

    fn validation(&self, check_expiry: bool) -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.validate_exp = check_expiry;
        v.set_audience(&[self.app_id.as_str()]);
        v.set_required_spec_claims(&["exp", "iat", "sub", "aud"]);
        v
    }

    /// The claims of a valid, unexpired access token of this app (else 401 `InvalidSession`).
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let data = decode::<AccessClaims>(token, &self.decoding, &self.validation(true))
            .map_err(|e| ApiError::invalid_session(&format!("access token: {e}")))?;
        if data.claims.typ != "access" {
            return Err(ApiError::invalid_session("not an access token"));
        }
        Ok(data.claims)
    }

    /// The claims of a valid refresh token of this app; an expired one only when
    /// `check_expiry` is false (logout). Else 401 `InvalidSession`.
    pub fn verify_refresh(
        &self,
        token: &str,
        check_expiry: bool,
    ) -> Result<RefreshClaims, ApiError> {
        let data = decode::<RefreshClaims>(token, &self.decoding, &self.validation(check_expiry))
            .map_err(|e| ApiError::invalid_session(&format!("refresh token: {e}")))?;
        if data.claims.typ != "refresh" {
            return Err(ApiError::invalid_session("not a refresh token"));
        }
        Ok(data.claims)
    }
}
