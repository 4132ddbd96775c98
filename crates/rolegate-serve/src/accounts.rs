//! Stage: accounts. Input: registrations, logins, refreshes and logouts, on the embedded store.
//! Output: users, password checks, devices and sessions, kept in the store's **reserved
//! database** [`RESERVED_DATABASE`] (`$rolegate`), which client operations cannot reach (the
//! server refuses any operation on it before the rules run, and `$` cannot start a MongoDB
//! database name, so no app collection can share it):
//!
//! * `users`: `{_id: ObjectId, type: "normal", data, identities: [{id, provider_type,
//!   provider_id, data}], created, disabled?}`; a user whose `disabled` is `true` cannot log in
//!   (401 `UserDisabled`), has no sessions (disabling deletes them) and the access tokens it
//!   still holds are refused at their next use (401 `InvalidSession`, see [`active_user`]);
//! * `identities`: one per external identity (`custom-token`), `_id` = `<provider>/<id>`, with
//!   `user_id`: the same `sub` logs in as the same user;
//! * `userpass`: one per `local-userpass` account, `_id` = the email (case-sensitive, so the
//!   `_id` index makes a second registration of the email a duplicate key), with `user_id` and
//!   `password_hash` (argon2id, PHC string);
//! * `devices`: `{_id: ObjectId, user_id, platform, platformVersion, sdkVersion, created}`;
//! * `sessions`: `{_id: <random 128-bit hex>, user_id, device_id, created, expires}`: a refresh
//!   token is valid while its session exists (logout deletes it);
//! * `api_keys`: see [`crate::api_keys`].
//!
//! The administration the `rolegate users` command does (list, create, disable, enable, reset
//! a password) is here too, so the command and the server share it.
//!
//! Everything here is synchronous: the server runs it on blocking threads.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::StatusCode;
use bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use rolegate::ops::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};
use rolegate_store::EmbeddedStore;

use crate::error::ApiError;
use crate::keys::hex;

/// The store database that holds accounts; no client operation may address it.
pub const RESERVED_DATABASE: &str = "$rolegate";

/// The shortest password accepted (App Services: 6 to 128 characters).
pub const MIN_PASSWORD: usize = 6;
/// The longest password accepted.
pub const MAX_PASSWORD: usize = 128;
/// The longest email accepted.
pub const MAX_EMAIL: usize = 256;

/// The namespace of `collection` in the reserved database.
pub fn ns(collection: &str) -> Namespace {
    Namespace::new(RESERVED_DATABASE, collection)
}

/// An account store failure (500; the detail goes to the log).
pub fn store_error(e: &StoreError) -> ApiError {
    ApiError::internal(&format!("account store: {e}"))
}

/// The document of `collection` (in the reserved database) whose `_id` is `id`.
pub fn find_by_id(
    store: &EmbeddedStore,
    collection: &str,
    id: Bson,
) -> Result<Option<Document>, ApiError> {
    let read = StoreRead::new(ns(collection), doc! {"_id": id});
    let mut found = (&mut &*store).find(&read).map_err(|e| store_error(&e))?;
    Ok(found.pop())
}

/// Inserts `document` into `collection` of the reserved database.
pub fn insert(
    store: &EmbeddedStore,
    collection: &str,
    document: Document,
) -> Result<(), StoreError> {
    (&mut &*store).write(&WriteSet {
        namespace: ns(collection),
        changes: vec![Change::Insert(document)],
    })
}

/// A new user with one identity.
fn new_user(provider_type: &str, data: Document) -> (ObjectId, Document) {
    new_user_with(provider_type, &ObjectId::new().to_hex(), data)
}

/// A new user with one identity of id `identity_id`.
fn new_user_with(provider_type: &str, identity_id: &str, data: Document) -> (ObjectId, Document) {
    let id = ObjectId::new();
    let identity = doc! {
        "id": identity_id,
        "provider_type": provider_type,
        "provider_id": provider_type,
        "data": data.clone(),
    };
    let user = doc! {
        "_id": id,
        "type": "normal",
        "data": data,
        "identities": [identity],
        "created": DateTime::now(),
    };
    (id, user)
}

/// Checks a registration's email and password (lengths only: emails are case-sensitive and
/// not otherwise validated).
pub fn check_credentials(email: &str, password: &str) -> Result<(), ApiError> {
    if email.is_empty() || email.chars().count() > MAX_EMAIL {
        return Err(ApiError::bad_request(format!(
            "email must be between 1 and {MAX_EMAIL} characters"
        )));
    }
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(ApiError::bad_request(format!(
            "password must be between {MIN_PASSWORD} and {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::internal(&format!("no randomness: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(&format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(&format!("cannot hash a password: {e}")))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password matches, checked when the email is unknown so that a login takes as
/// long whether or not the account exists.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

/// Registers a confirmed `local-userpass` account; 409 `AccountNameInUse` when the email has
/// one.
pub fn register(store: &EmbeddedStore, email: &str, password: &str) -> Result<ObjectId, ApiError> {
    check_credentials(email, password)?;
    let hash = hash_password(password)?;
    let (id, user) = new_user("local-userpass", doc! {"email": email});
    let credential = doc! {"_id": email, "user_id": id, "password_hash": hash};
    match insert(store, "userpass", credential) {
        Ok(()) => {}
        Err(StoreError::DuplicateKey { .. }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "AccountNameInUse",
                "name already in use",
            ));
        }
        Err(e) => return Err(store_error(&e)),
    }
    insert(store, "users", user).map_err(|e| store_error(&e))?;
    Ok(id)
}

/// The user id of `email` if `password` is its password; else 401 `InvalidPassword`.
pub fn check_password(
    store: &EmbeddedStore,
    email: &str,
    password: &str,
) -> Result<ObjectId, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidPassword",
            "invalid username/password",
        )
    };
    let credential = find_by_id(store, "userpass", Bson::String(email.to_string()))?;
    let Some(credential) = credential else {
        let _ = password_matches(decoy_hash(), password);
        return Err(refused());
    };
    let hash = credential.get_str("password_hash").unwrap_or_default();
    match (
        password_matches(hash, password),
        credential.get_object_id("user_id"),
    ) {
        (true, Ok(id)) => Ok(id),
        _ => Err(refused()),
    }
}

/// A new anonymous user.
pub fn create_anonymous(store: &EmbeddedStore) -> Result<ObjectId, ApiError> {
    let (id, user) = new_user("anon-user", Document::new());
    insert(store, "users", user).map_err(|e| store_error(&e))?;
    Ok(id)
}

/// The stored user.
pub fn user(store: &EmbeddedStore, id: ObjectId) -> Result<Option<Document>, ApiError> {
    find_by_id(store, "users", Bson::ObjectId(id))
}

/// The device of this login: the one the client sent when it is the user's, else a new one.
pub fn device(
    store: &EmbeddedStore,
    user_id: ObjectId,
    sent: Option<ObjectId>,
    info: &Document,
) -> Result<ObjectId, ApiError> {
    if let Some(sent) = sent
        && let Some(known) = find_by_id(store, "devices", Bson::ObjectId(sent))?
        && known.get_object_id("user_id").ok() == Some(user_id)
    {
        return Ok(sent);
    }
    let id = ObjectId::new();
    let mut device = doc! {"_id": id, "user_id": user_id, "created": DateTime::now()};
    for key in ["platform", "platformVersion", "sdkVersion"] {
        if let Some(Bson::String(v)) = info.get(key) {
            device.insert(key, v.chars().take(100).collect::<String>());
        }
    }
    insert(store, "devices", device).map_err(|e| store_error(&e))?;
    Ok(id)
}

/// Opens a session expiring at `expires` (seconds since the epoch); returns its id.
pub fn open_session(
    store: &EmbeddedStore,
    session_id: &str,
    user_id: ObjectId,
    device_id: ObjectId,
    expires: i64,
) -> Result<(), ApiError> {
    let session = doc! {
        "_id": session_id,
        "user_id": user_id,
        "device_id": device_id,
        "created": DateTime::now(),
        "expires": DateTime::from_millis(expires.saturating_mul(1000)),
    };
    insert(store, "sessions", session).map_err(|e| store_error(&e))
}

/// A new random session id (128 bits, hex).
pub fn new_session_id() -> Result<String, ApiError> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(&format!("no randomness: {e}")))?;
    Ok(hex(&bytes))
}

/// The session `id` when it exists and belongs to `user_id`.
pub fn session(
    store: &EmbeddedStore,
    id: &str,
    user_id: ObjectId,
) -> Result<Option<Document>, ApiError> {
    let found = find_by_id(store, "sessions", Bson::String(id.to_string()))?;
    Ok(found.filter(|s| s.get_object_id("user_id").ok() == Some(user_id)))
}

/// Deletes the session `id` of `user_id`; `false` when there was none.
pub fn close_session(store: &EmbeddedStore, id: &str, user_id: ObjectId) -> Result<bool, ApiError> {
    let Some(found) = session(store, id, user_id)? else {
        return Ok(false);
    };
    match (&mut &*store).write(&WriteSet {
        namespace: ns("sessions"),
        changes: vec![Change::Delete { expected: found }],
    }) {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(store_error(&e)),
    }
}

/// `%%user` for the rules: `{id, type, data, identities}` (without `custom_data`, which
/// [`rolegate::ops::attach_custom_data`] adds).
pub fn rule_user(user: &Document) -> Document {
    let id = user
        .get_object_id("_id")
        .map(|o| o.to_hex())
        .unwrap_or_default();
    let identities: Vec<Bson> = user
        .get_array("identities")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|i| {
                    let mut out = Document::new();
                    for key in ["id", "provider_type", "data"] {
                        if let Some(v) = i.get(key) {
                            out.insert(key, v.clone());
                        }
                    }
                    Bson::Document(out)
                })
                .collect()
        })
        .unwrap_or_default();
    doc! {
        "id": id,
        "type": user.get_str("type").unwrap_or("normal"),
        "data": user.get_document("data").cloned().unwrap_or_default(),
        "identities": identities,
    }
}

/// The profile clients read after every login: `{user_id, domain_id, type, identities: [{id,
/// provider_type, provider_id}], data}`.
pub fn profile(user: &Document, app_id: &str) -> serde_json::Value {
    let rule = rule_user(user);
    let identities: Vec<serde_json::Value> = rule
        .get_array("identities")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(|i| {
                    let kind = i.get_str("provider_type").unwrap_or_default();
                    serde_json::json!({
                        "id": i.get_str("id").unwrap_or_default(),
                        "provider_type": kind,
                        "provider_id": kind,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "user_id": rule.get_str("id").unwrap_or_default(),
        "domain_id": app_id,
        "type": rule.get_str("type").unwrap_or("normal"),
        "identities": identities,
        "data": rolegate::mql::document_to_json(rule.get_document("data").unwrap_or(&Document::new())),
    })
}

/// The documents of `collection` (reserved database) that match `query`.
pub fn find(
    store: &EmbeddedStore,
    collection: &str,
    query: Document,
) -> Result<Vec<Document>, ApiError> {
    (&mut &*store)
        .find(&StoreRead::new(ns(collection), query))
        .map_err(|e| store_error(&e))
}

/// Replaces `expected` (as read) with `document` in `collection`; `false` when it changed in
/// between.
pub fn replace(
    store: &EmbeddedStore,
    collection: &str,
    expected: Document,
    document: Document,
) -> Result<bool, ApiError> {
    match (&mut &*store).write(&WriteSet {
        namespace: ns(collection),
        changes: vec![Change::Replace { expected, document }],
    }) {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(store_error(&e)),
    }
}

/// Whether the stored user is disabled.
pub fn is_disabled(user: &Document) -> bool {
    user.get_bool("disabled").unwrap_or(false)
}

/// 401 `UserDisabled` for a disabled user (a login).
pub fn check_enabled(user: &Document) -> Result<(), ApiError> {
    if is_disabled(user) {
        tracing::info!("login of a disabled user refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UserDisabled",
            "user disabled",
        ));
    }
    Ok(())
}

/// The stored user of a token: 401 `InvalidSession` when it no longer exists or is disabled
/// (clients then refresh, which fails too, and log the user out).
pub fn active_user(store: &EmbeddedStore, id: ObjectId) -> Result<Document, ApiError> {
    let user =
        user(store, id)?.ok_or_else(|| ApiError::invalid_session("the user no longer exists"))?;
    if is_disabled(&user) {
        return Err(ApiError::invalid_session("the user is disabled"));
    }
    Ok(user)
}

/// Deletes every session of `user_id` (its refresh tokens stop working); how many.
pub fn close_sessions(store: &EmbeddedStore, user_id: ObjectId) -> Result<usize, ApiError> {
    let sessions = find(store, "sessions", doc! {"user_id": user_id})?;
    let n = sessions.len();
    if n == 0 {
        return Ok(0);
    }
    (&mut &*store)
        .write(&WriteSet {
            namespace: ns("sessions"),
            changes: sessions
                .into_iter()
                .map(|expected| Change::Delete { expected })
                .collect(),
        })
        .map_err(|e| store_error(&e))?;
    Ok(n)
}

/// Disables (`true`) or enables a user; disabling closes its sessions. `false` when the user
/// was already so. 404 `UserNotFound` for an unknown user.
pub fn set_disabled(
    store: &EmbeddedStore,
    user_id: ObjectId,
    disabled: bool,
) -> Result<bool, ApiError> {
    for _ in 0..3 {
        let stored = user(store, user_id)?.ok_or_else(user_not_found)?;
        let changed = is_disabled(&stored) != disabled;
        if changed {
            let mut updated = stored.clone();
            if disabled {
                updated.insert("disabled", true);
            } else {
                updated.remove("disabled");
            }
            if !replace(store, "users", stored, updated)? {
                continue;
            }
        }
        if disabled {
            close_sessions(store, user_id)?;
        }
        return Ok(changed);
    }
    Err(ApiError::internal(
        "a user kept changing while it was updated",
    ))
}

fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "UserNotFound", "user not found")
}

/// The user id of a `local-userpass` email; 404 `UserNotFound` when none.
pub fn user_of_email(store: &EmbeddedStore, email: &str) -> Result<ObjectId, ApiError> {
    find_by_id(store, "userpass", Bson::String(email.to_string()))?
        .and_then(|c| c.get_object_id("user_id").ok())
        .ok_or_else(user_not_found)
}

/// The user named by `who`: a user id (24 hex digits) of a stored user, else a
/// `local-userpass` email. 404 `UserNotFound` when neither.
pub fn find_user(store: &EmbeddedStore, who: &str) -> Result<ObjectId, ApiError> {
    if let Ok(id) = ObjectId::parse_str(who)
        && user(store, id)?.is_some()
    {
        return Ok(id);
    }
    user_of_email(store, who)
}

/// Sets the password of a `local-userpass` account and closes the user's sessions. 404
/// `UserNotFound` for an unknown email; 400 for a password of the wrong length.
pub fn reset_password(store: &EmbeddedStore, email: &str, password: &str) -> Result<(), ApiError> {
    check_credentials(email, password)?;
    let hash = hash_password(password)?;
    for _ in 0..3 {
        let stored = find_by_id(store, "userpass", Bson::String(email.to_string()))?
            .ok_or_else(user_not_found)?;
        let user_id = stored
            .get_object_id("user_id")
            .map_err(|_| ApiError::internal("a userpass record without user_id"))?;
        let mut updated = stored.clone();
        updated.insert("password_hash", hash.clone());
        if replace(store, "userpass", stored, updated)? {
            close_sessions(store, user_id)?;
            return Ok(());
        }
    }
    Err(ApiError::internal(
        "an account kept changing while it was updated",
    ))
}

/// One line of `rolegate users list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// The user id.
    pub id: String,
    /// `normal` or `server`.
    pub kind: String,
    /// The identities' provider types.
    pub providers: Vec<String>,
    /// `data.email`, when there is one.
    pub email: Option<String>,
    /// Whether the user is disabled.
    pub disabled: bool,
}

/// Every user, in creation order.
pub fn list_users(store: &EmbeddedStore) -> Result<Vec<UserSummary>, ApiError> {
    Ok(find(store, "users", Document::new())?
        .iter()
        .map(|u| UserSummary {
            id: u
                .get_object_id("_id")
                .map(|o| o.to_hex())
                .unwrap_or_default(),
            kind: u.get_str("type").unwrap_or("normal").to_string(),
            providers: u
                .get_array("identities")
                .map(|a| {
                    a.iter()
                        .filter_map(Bson::as_document)
                        .filter_map(|i| i.get_str("provider_type").ok())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            email: u
                .get_document("data")
                .ok()
                .and_then(|d| d.get_str("email").ok())
                .map(str::to_string),
            disabled: is_disabled(u),
        })
        .collect())
}

/// The user of a verified `custom-token` login: the one its `sub` logged in as before (its
/// `data` and identity `data` replaced by this login's `metadata`), else a new one.
pub fn custom_token_user(
    store: &EmbeddedStore,
    sub: &str,
    metadata: &Document,
) -> Result<ObjectId, ApiError> {
    let key = format!("custom-token/{sub}");
    for _ in 0..3 {
        if let Some(found) = find_by_id(store, "identities", Bson::String(key.clone()))? {
            let id = found
                .get_object_id("user_id")
                .map_err(|_| ApiError::internal("an identity without user_id"))?;
            let stored = user(store, id)?
                .ok_or_else(|| ApiError::internal("an identity's user is not stored"))?;
            let mut updated = stored.clone();
            updated.insert("data", metadata.clone());
            if let Ok(identities) = stored.get_array("identities") {
                let identities: Vec<Bson> = identities
                    .iter()
                    .map(|i| match i {
                        Bson::Document(d)
                            if d.get_str("provider_type") == Ok("custom-token")
                                && d.get_str("id") == Ok(sub) =>
                        {
                            let mut d = d.clone();
                            d.insert("data", metadata.clone());
                            Bson::Document(d)
                        }
                        other => other.clone(),
                    })
                    .collect();
                updated.insert("identities", identities);
            }
            if updated == stored || replace(store, "users", stored, updated)? {
                return Ok(id);
            }
            continue;
        }
        // The user first, then the identity that finds it: a concurrent first login of the
        // same `sub` loses the identity's insert and removes its user.
        let (id, user) = new_user_with("custom-token", sub, metadata.clone());
        insert(store, "users", user.clone()).map_err(|e| store_error(&e))?;
        match insert(store, "identities", doc! {"_id": &key, "user_id": id}) {
            Ok(()) => return Ok(id),
            Err(StoreError::DuplicateKey { .. }) => {
                let _ = (&mut &*store).write(&WriteSet {
                    namespace: ns("users"),
                    changes: vec![Change::Delete { expected: user }],
                });
            }
            Err(e) => return Err(store_error(&e)),
        }
    }
    Err(ApiError::internal(
        "an identity kept changing while it was logged in",
    ))
}
