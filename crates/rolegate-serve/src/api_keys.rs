//! Stage: user API keys. Input: a user's requests to create, list, read, enable, disable and
//! delete keys, and `api-key` logins. Output: keys in the reserved database's `api_keys`
//! collection, `{_id: <SHA-256 of the key, hex>, key_id: ObjectId, user_id, name, disabled,
//! created}`, and the user a key logs in as.
//!
//! The key itself (32 random bytes, 64 hex digits) is returned once, when it is created; only
//! its SHA-256 is stored. A fast hash suffices where passwords need argon2: a key has 256 bits
//! of entropy, so no dictionary or brute force applies, and a login looks the hash up by `_id`
//! (one point read, whatever the number of keys). A user has at most [`MAX_KEYS`] keys, with
//! distinct names; a key id of another user is answered as an unknown one (404
//! `APIKeyNotFound`), and a login with an unknown or disabled key is 401 `AuthError`.

use axum::http::StatusCode;
use bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use rolegate::ops::{Change, Store, StoreError, WriteSet};
use rolegate_store::EmbeddedStore;
use sha2::{Digest, Sha256};

use crate::accounts::{find, find_by_id, insert, ns, replace, store_error};
use crate::error::ApiError;
use crate::keys::hex;

/// The collection of keys in the reserved database.
pub const COLLECTION: &str = "api_keys";
/// The most keys a user may have (App Services' limit).
pub const MAX_KEYS: usize = 20;
/// The longest key name accepted.
pub const MAX_NAME: usize = 100;

/// A key as clients see it (never the key itself, nor its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key id (24 hex digits).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is disabled.
    pub disabled: bool,
}

impl ApiKey {
    /// `{_id, name, disabled}`; with `key` when it was just created.
    pub fn to_json(&self, key: Option<&str>) -> serde_json::Value {
        let mut out = serde_json::json!({
            "_id": self.id,
            "name": self.name,
            "disabled": self.disabled,
        });
        if let (Some(key), Some(map)) = (key, out.as_object_mut()) {
            map.insert(
                "key".to_string(),
                serde_json::Value::String(key.to_string()),
            );
        }
        out
    }

    fn from_stored(stored: &Document) -> ApiKey {
        ApiKey {
            id: stored
                .get_object_id("key_id")
                .map(|o| o.to_hex())
                .unwrap_or_default(),
            name: stored.get_str("name").unwrap_or_default().to_string(),
            disabled: stored.get_bool("disabled").unwrap_or(false),
        }
    }
}

/// The stored form of a key: SHA-256, hex.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "APIKeyNotFound", "API key not found")
}

/// Creates a key named `name` for `user_id`: the key as clients see it, and the key itself.
pub fn create(
    store: &EmbeddedStore,
    user_id: ObjectId,
    name: &str,
) -> Result<(ApiKey, String), ApiError> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "an API key name must be between 1 and {MAX_NAME} characters"
        )));
    }
    let existing = find(store, COLLECTION, doc! {"user_id": user_id})?;
    if existing.len() >= MAX_KEYS {
        return Err(ApiError::bad_request(format!(
            "a user may have at most {MAX_KEYS} API keys"
        )));
    }
    if existing.iter().any(|k| k.get_str("name") == Ok(name)) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "APIKeyAlreadyExists",
            "an API key with this name already exists",
        ));
    }
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(&format!("no randomness: {e}")))?;
    let key = hex(&bytes);
    let key_id = ObjectId::new();
    let stored = doc! {
        "_id": hash_key(&key),
        "key_id": key_id,
        "user_id": user_id,
        "name": name,
        "disabled": false,
        "created": DateTime::now(),
    };
    insert(store, COLLECTION, stored.clone()).map_err(|e| store_error(&e))?;
    Ok((ApiKey::from_stored(&stored), key))
}

/// The keys of `user_id`, in creation order.
pub fn list(store: &EmbeddedStore, user_id: ObjectId) -> Result<Vec<ApiKey>, ApiError> {
    Ok(find(store, COLLECTION, doc! {"user_id": user_id})?
        .iter()
        .map(ApiKey::from_stored)
        .collect())
}

fn stored(store: &EmbeddedStore, user_id: ObjectId, key_id: &str) -> Result<Document, ApiError> {
    let key_id = ObjectId::parse_str(key_id).map_err(|_| not_found())?;
    find(
        store,
        COLLECTION,
        doc! {"key_id": key_id, "user_id": user_id},
    )?
    .pop()
    .ok_or_else(not_found)
}

/// The key `key_id` of `user_id` (404 `APIKeyNotFound` when it is not theirs).
pub fn get(store: &EmbeddedStore, user_id: ObjectId, key_id: &str) -> Result<ApiKey, ApiError> {
    Ok(ApiKey::from_stored(&stored(store, user_id, key_id)?))
}

/// Disables (`true`) or enables the key `key_id` of `user_id`.
pub fn set_disabled(
    store: &EmbeddedStore,
    user_id: ObjectId,
    key_id: &str,
    disabled: bool,
) -> Result<(), ApiError> {
    for _ in 0..3 {
        let found = stored(store, user_id, key_id)?;
        if found.get_bool("disabled").unwrap_or(false) == disabled {
            return Ok(());
        }
        let mut updated = found.clone();
        updated.insert("disabled", disabled);
        if replace(store, COLLECTION, found, updated)? {
            return Ok(());
        }
    }
    Err(ApiError::internal(
        "an API key kept changing while it was updated",
    ))
}

/// Deletes the key `key_id` of `user_id`.
pub fn delete(store: &EmbeddedStore, user_id: ObjectId, key_id: &str) -> Result<(), ApiError> {
    let found = stored(store, user_id, key_id)?;
    match (&mut &*store).write(&WriteSet {
        namespace: ns(COLLECTION),
        changes: vec![Change::Delete { expected: found }],
    }) {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict { .. }) => Err(not_found()),
        Err(e) => Err(store_error(&e)),
    }
}

/// The user an `api-key` login with `key` logs in as: 401 `AuthError` for an unknown or
/// disabled key.
pub fn login(store: &EmbeddedStore, key: &str) -> Result<ObjectId, ApiError> {
    let refused = |why: &str| {
        tracing::info!(reason = why, "API key login refused");
        ApiError::new(StatusCode::UNAUTHORIZED, "AuthError", "invalid API key")
    };
    let found = find_by_id(store, COLLECTION, Bson::String(hash_key(key)))?
        .ok_or_else(|| refused("unknown key"))?;
    if found.get_bool("disabled").unwrap_or(false) {
        return Err(refused("disabled key"));
    }
    found
        .get_object_id("user_id")
        .map_err(|_| ApiError::internal("an API key without user_id"))
}
