//! Every way a login or a token is refused, and the providers of this step: `custom-token`
//! (HS256 and RS256 signing keys from the server's secrets, audience, expiry, metadata fields
//! into `%%user.data`), `api-key` (user keys managed with the refresh token) and disabled
//! users. The server is driven in-process (tower's `oneshot`) on a copy of the example app whose
//! providers each test sets, through one request builder ([`Server::post`] and friends).
//!
//! `tests/fixtures/test-rsa-*` is an RSA key pair made for these tests only (it signs nothing
//! else).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail the test by panicking"
)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bson::doc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rolegate::ops::{Change, Namespace, WriteSet};
use rolegate_serve::{AppState, ServeConfig, accounts, router};
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;

const APP_ID: &str = "taskboard-ab1cd";
const BASE: &str = "/api/client/v2.0";
const KEY: &[u8] = b"a test signing key of at least thirty-two bytes";
const JWT_SECRET: &str = "the custom-token HS256 secret of these tests";
const RSA_PUBLIC: &str = include_str!("fixtures/test-rsa-public.pem");
const RSA_PRIVATE_DER: &[u8] = include_bytes!("fixtures/test-rsa-private.der");

struct Server {
    state: Arc<AppState>,
    router: Router,
    _dir: tempfile::TempDir,
}

/// A reply: the status and the JSON body (`Null` when empty).
struct Reply {
    status: StatusCode,
    json: Value,
}

impl Reply {
    /// Asserts an error reply: its status, its code, a message.
    fn refused(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(self.json["error_code"], code, "{}", self.json);
        assert!(
            self.json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{}",
            self.json
        );
    }

    /// Asserts a success with `status`; the body.
    fn ok(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "{}", self.json);
        &self.json
    }

    fn token(&self, key: &str) -> String {
        self.json[key].as_str().unwrap().to_string()
    }
}

/// A request being built.
struct Call<'a> {
    server: &'a Server,
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Value>,
}

impl Call<'_> {
    fn bearer(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    async fn send(self) -> Reply {
        let mut request = Request::builder().method(self.method).uri(&self.path);
        if let Some(t) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match self.body {
            Some(b) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .server
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Reply { status, json }
    }
}

/// The custom-token provider of these tests: `algorithm`, one key, metadata `user_data.team`
/// (required) → `team` and `name` (optional), plus `extra` config.
fn custom_token(algorithm: &str, extra: Value) -> Value {
    let mut config = json!({"signingAlgorithm": algorithm});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    json!({"name": "custom-token", "type": "custom-token", "disabled": false, "config": config,
           "secret_config": {"signingKeys": ["jwtKey"]},
           "metadata_fields": [{"required": true, "name": "user_data.team", "field_name": "team"},
                               {"required": false, "name": "name"}]})
}

/// Every provider enabled: anon-user, local-userpass (autoConfirm), api-key, custom-token
/// HS256.
fn all_providers() -> Value {
    json!({
        "anon-user": {"name": "anon-user", "type": "anon-user", "disabled": false},
        "local-userpass": {"name": "local-userpass", "type": "local-userpass", "disabled": false,
                           "config": {"autoConfirm": true}},
        "api-key": {"name": "api-key", "type": "api-key", "disabled": false},
        "custom-token": custom_token("HS256", json!({})),
    })
}

/// The example app with `providers`, and a `teamnotes` collection that only the `platform`
/// team (`%%user.data.team`) may read; `secret` is the value of the `jwtKey` secret.
fn open(providers: &Value, secret: &str, access_lifetime: Duration) -> Result<Server, String> {
    let dir = tempfile::tempdir().unwrap();
    let app = support::example_app(dir.path(), false);
    std::fs::write(app.join("auth/providers.json"), providers.to_string()).unwrap();
    let notes = app.join("data_sources/mongodb-atlas/taskboard/teamnotes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("rules.json"),
        json!({"database": "taskboard", "collection": "teamnotes", "roles": [
            {"name": "team", "apply_when": {"%%user.data.team": "platform"}, "read": true,
             "write": false, "insert": false, "delete": false, "search": true}]})
        .to_string(),
    )
    .unwrap();
    let mut config = ServeConfig::new(&app, dir.path().join("data"));
    config.signing_key = Some(KEY.to_vec());
    config.access_lifetime = access_lifetime;
    if !secret.is_empty() {
        config
            .secrets
            .insert("jwtKey".to_string(), secret.to_string());
    }
    let state = AppState::open(&config).map_err(|e| e.to_string())?;
    Ok(Server {
        router: router(Arc::clone(&state)),
        state,
        _dir: dir,
    })
}

fn server() -> Server {
    open(&all_providers(), JWT_SECRET, Duration::from_secs(1800)).unwrap()
}

impl Server {
    fn call(&self, method: Method, path: &str) -> Call<'_> {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{BASE}/app/{APP_ID}/{path}")
        };
        Call {
            server: self,
            method,
            path,
            token: None,
            body: None,
        }
    }

    fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    async fn login(&self, provider: &str, body: Value) -> Reply {
        self.post(&format!("auth/providers/{provider}/login"))
            .json(body)
            .send()
            .await
    }

    async fn register_and_login(&self, email: &str, password: &str) -> Reply {
        self.post("auth/providers/local-userpass/register")
            .json(json!({"email": email, "password": password}))
            .send()
            .await
            .ok(StatusCode::CREATED);
        let login = self
            .login(
                "local-userpass",
                json!({"username": email, "password": password}),
            )
            .await;
        login.ok(StatusCode::OK);
        login
    }

    async fn profile(&self, access: &str) -> Reply {
        self.get(&format!("{BASE}/auth/profile"))
            .bearer(access)
            .send()
            .await
    }

    async fn refresh(&self, refresh: &str) -> Reply {
        self.post(&format!("{BASE}/auth/session"))
            .bearer(refresh)
            .send()
            .await
    }

    async fn find(&self, access: &str, collection: &str) -> Reply {
        self.post("functions/call")
            .bearer(access)
            .json(
                json!({"name": "find", "service": "mongodb-atlas", "arguments": [
                {"database": "taskboard", "collection": collection, "query": {}}]}),
            )
            .send()
            .await
    }

    fn keys(&self, method: Method, rest: &str, refresh: &str) -> Call<'_> {
        self.call(method, &format!("{BASE}/auth/api_keys{rest}"))
            .bearer(refresh)
    }
}

fn now() -> i64 {
    rolegate_serve::tokens::now()
}

/// A custom JWT signed with HS256 and `secret`.
fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A custom JWT signed with RS256 and the test key.
fn rs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_der(RSA_PRIVATE_DER),
    )
    .unwrap()
}

/// Valid claims for `sub` of team `team`.
fn claims(sub: &str, team: &str) -> Value {
    json!({"sub": sub, "aud": APP_ID, "iat": now() - 10, "exp": now() + 600,
           "user_data": {"team": team}, "name": "Jean"})
}

/// `token` with its payload replaced by `payload` (the signature kept).
fn with_payload(token: &str, payload: &Value) -> String {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{}.{encoded}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_the_same_refusal() {
    let s = server();
    s.register_and_login("ann@example.com", "secret1").await;
    let wrong = s
        .login(
            "local-userpass",
            json!({"username": "ann@example.com", "password": "secret2"}),
        )
        .await;
    let unknown = s
        .login(
            "local-userpass",
            json!({"username": "nobody@example.com", "password": "secret1"}),
        )
        .await;
    wrong.refused(StatusCode::UNAUTHORIZED, "InvalidPassword");
    assert_eq!(wrong.json, unknown.json);
    assert_eq!(wrong.status, unknown.status);
}

#[tokio::test]
async fn tampered_and_misdirected_tokens_are_invalid_sessions() {
    let s = server();
    let login = s.register_and_login("bo@example.com", "secret1").await;
    let (access, refresh) = (login.token("access_token"), login.token("refresh_token"));
    let claims: Value = {
        use base64::Engine;
        let payload = access.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let sign = |c: &Value, key: &[u8]| {
        jsonwebtoken::encode(&Header::default(), c, &EncodingKey::from_secret(key)).unwrap()
    };
    let mut other_app = claims.clone();
    other_app["aud"] = json!("another-app");
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    let unsigned = {
        use base64::Engine;
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            e(&json!({"alg": "none", "typ": "JWT"})),
            e(&claims)
        )
    };
    let bad = [
        (
            "another key",
            sign(&claims, b"another key of at least thirty-two bytes!"),
        ),
        ("payload changed", with_payload(&access, &longer)),
        ("alg none", unsigned),
        ("another app", sign(&other_app, KEY)),
        ("refresh as access", refresh.clone()),
        ("garbage", "not.a.token".to_string()),
    ];
    for (why, token) in &bad {
        s.profile(token)
            .await
            .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
        s.find(token, "tasks")
            .await
            .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
        assert_ne!(why, &"", "each case has a name");
    }
    // The access token is no refresh token, and a refresh token of another app is refused.
    s.refresh(&access)
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    s.refresh(&sign(&other_app, KEY))
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    s.profile(&access).await.ok(StatusCode::OK);
}

#[tokio::test]
async fn an_expired_access_token_is_an_invalid_session() {
    let s = open(&all_providers(), JWT_SECRET, Duration::ZERO).unwrap();
    let login = s.register_and_login("cy@example.com", "secret1").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.profile(&login.token("access_token"))
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    s.refresh(&login.token("refresh_token"))
        .await
        .ok(StatusCode::CREATED);
}

#[tokio::test]
async fn disabled_unknown_providers_and_other_apps_are_refused() {
    let mut providers = all_providers();
    for p in providers.as_object_mut().unwrap().values_mut() {
        p["disabled"] = json!(true);
    }
    let s = open(&providers, JWT_SECRET, Duration::from_secs(1800)).unwrap();
    let bodies = [
        ("anon-user", json!({})),
        (
            "local-userpass",
            json!({"username": "a@b.c", "password": "secret1"}),
        ),
        ("api-key", json!({"key": "k"})),
        (
            "custom-token",
            json!({"token": hs256(&claims("1", "platform"), JWT_SECRET)}),
        ),
        ("oauth2-google", json!({"authCode": "x"})),
        ("no-such-provider", json!({})),
    ];
    for (provider, body) in bodies {
        s.login(provider, body)
            .await
            .refused(StatusCode::NOT_FOUND, "AuthProviderNotFound");
    }
    s.post("auth/providers/local-userpass/register")
        .json(json!({"email": "a@b.c", "password": "secret1"}))
        .send()
        .await
        .refused(StatusCode::NOT_FOUND, "AuthProviderNotFound");
    // Another app id, with every provider enabled.
    let s = server();
    s.post(&format!(
        "{BASE}/app/another-app/auth/providers/anon-user/login"
    ))
    .json(json!({}))
    .send()
    .await
    .refused(StatusCode::NOT_FOUND, "AppNotFound");
}

#[tokio::test]
async fn a_disabled_user_cannot_log_in_and_its_tokens_stop_working() {
    let s = server();
    let login = s.register_and_login("di@example.com", "secret1").await;
    let (access, refresh) = (login.token("access_token"), login.token("refresh_token"));
    let id = bson::oid::ObjectId::parse_str(login.json["user_id"].as_str().unwrap()).unwrap();
    assert!(accounts::set_disabled(&s.state.store, id, true).unwrap());
    let body = json!({"username": "di@example.com", "password": "secret1"});
    s.login("local-userpass", body.clone())
        .await
        .refused(StatusCode::UNAUTHORIZED, "UserDisabled");
    // A wrong password says nothing of the account's state.
    s.login(
        "local-userpass",
        json!({"username": "di@example.com", "password": "wrong-1"}),
    )
    .await
    .refused(StatusCode::UNAUTHORIZED, "InvalidPassword");
    s.profile(&access)
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    s.find(&access, "tasks")
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    s.refresh(&refresh)
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    // Enabled again: a new login works; the old session stays closed.
    assert!(accounts::set_disabled(&s.state.store, id, false).unwrap());
    s.login("local-userpass", body).await.ok(StatusCode::OK);
    s.refresh(&refresh)
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    // A reset password: the old one no longer works, the new one does.
    accounts::reset_password(&s.state.store, "di@example.com", "another1").unwrap();
    s.login(
        "local-userpass",
        json!({"username": "di@example.com", "password": "secret1"}),
    )
    .await
    .refused(StatusCode::UNAUTHORIZED, "InvalidPassword");
    s.login(
        "local-userpass",
        json!({"username": "di@example.com", "password": "another1"}),
    )
    .await
    .ok(StatusCode::OK);
}

#[tokio::test]
async fn custom_token_logins_map_metadata_into_the_users_data() {
    let s = server();
    s.state
        .data
        .write(&WriteSet {
            namespace: Namespace::new("taskboard", "teamnotes"),
            changes: vec![Change::Insert(doc! {"_id": 1, "text": "platform only"})],
        })
        .unwrap();
    let first = s
        .login(
            "custom-token",
            json!({"token": hs256(&claims("24601", "platform"), JWT_SECRET)}),
        )
        .await;
    first.ok(StatusCode::OK);
    let access = first.token("access_token");
    let profile = s.profile(&access).await;
    let profile = profile.ok(StatusCode::OK);
    assert_eq!(profile["data"], json!({"team": "platform", "name": "Jean"}));
    assert_eq!(profile["identities"][0]["provider_type"], "custom-token");
    assert_eq!(profile["identities"][0]["id"], "24601");
    // The rule reads %%user.data.team.
    let found = s.find(&access, "teamnotes").await;
    assert_eq!(found.ok(StatusCode::OK).as_array().unwrap().len(), 1);
    // The same sub is the same user; its metadata is refreshed (name is optional).
    let mut moved = claims("24601", "infra");
    moved.as_object_mut().unwrap().remove("name");
    let again = s
        .login("custom-token", json!({"token": hs256(&moved, JWT_SECRET)}))
        .await;
    again.ok(StatusCode::OK);
    assert_eq!(again.json["user_id"], first.json["user_id"]);
    let access = again.token("access_token");
    let profile = s.profile(&access).await;
    assert_eq!(profile.ok(StatusCode::OK)["data"], json!({"team": "infra"}));
    let found = s.find(&access, "teamnotes").await;
    assert!(found.ok(StatusCode::OK).as_array().unwrap().is_empty());
    // Another sub is another user.
    let other = s
        .login(
            "custom-token",
            json!({"token": hs256(&claims("other", "platform"), JWT_SECRET)}),
        )
        .await;
    assert_ne!(other.json["user_id"], first.json["user_id"]);
}

#[tokio::test]
async fn custom_tokens_are_refused_for_each_fault() {
    let s = server();
    let good = claims("7", "platform");
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let valid = hs256(&good, JWT_SECRET);
    let faults = [
        (
            "bad signature",
            hs256(&good, "another secret of at least 32 bytes!!"),
        ),
        (
            "tampered payload",
            with_payload(&valid, &with("sub", json!("8"))),
        ),
        ("wrong algorithm", rs256(&good)),
        (
            "wrong audience",
            hs256(&with("aud", json!("another-app")), JWT_SECRET),
        ),
        ("expired", hs256(&with("exp", json!(now() - 5)), JWT_SECRET)),
        ("no exp", hs256(&without("exp"), JWT_SECRET)),
        (
            "not yet valid",
            hs256(&with("nbf", json!(now() + 600)), JWT_SECRET),
        ),
        (
            "issued in the future",
            hs256(&with("iat", json!(now() + 600)), JWT_SECRET),
        ),
        ("no sub", hs256(&without("sub"), JWT_SECRET)),
        (
            "missing required metadata",
            hs256(&without("user_data"), JWT_SECRET),
        ),
        (
            "null required metadata",
            hs256(&with("user_data", json!({"team": null})), JWT_SECRET),
        ),
        ("not a JWT", "nonsense".to_string()),
    ];
    for (why, token) in faults {
        let reply = s.login("custom-token", json!({"token": token})).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{why}: {}",
            reply.json
        );
        reply.refused(StatusCode::UNAUTHORIZED, "AuthError");
    }
    s.login("custom-token", json!({"token": valid}))
        .await
        .ok(StatusCode::OK);
    s.login("custom-token", json!({}))
        .await
        .refused(StatusCode::BAD_REQUEST, "BadRequest");
}

#[tokio::test]
async fn custom_token_audiences_and_rs256() {
    // A configured audience list: all of them by default, any one with requireAnyAudience.
    let mut providers = all_providers();
    providers["custom-token"] = custom_token("HS256", json!({"audience": ["a", "b"]}));
    let s = open(&providers, JWT_SECRET, Duration::from_secs(1800)).unwrap();
    let aud = |aud: Value| {
        let mut c = claims("9", "platform");
        c["aud"] = aud;
        json!({"token": hs256(&c, JWT_SECRET)})
    };
    s.login("custom-token", aud(json!(["a", "b", "c"])))
        .await
        .ok(StatusCode::OK);
    for refused in [json!("a"), json!(APP_ID), json!(["b"])] {
        s.login("custom-token", aud(refused))
            .await
            .refused(StatusCode::UNAUTHORIZED, "AuthError");
    }
    providers["custom-token"] = custom_token(
        "HS256",
        json!({"audience": "a,b", "requireAnyAudience": true}),
    );
    let s = open(&providers, JWT_SECRET, Duration::from_secs(1800)).unwrap();
    s.login("custom-token", aud(json!("b")))
        .await
        .ok(StatusCode::OK);
    s.login("custom-token", aud(json!("c")))
        .await
        .refused(StatusCode::UNAUTHORIZED, "AuthError");

    // RS256 with a PEM public key; an HS256 token (even one signed with the PEM text) is
    // refused.
    providers["custom-token"] = custom_token("RS256", json!({}));
    let s = open(&providers, RSA_PUBLIC, Duration::from_secs(1800)).unwrap();
    s.login(
        "custom-token",
        json!({"token": rs256(&claims("r", "platform"))}),
    )
    .await
    .ok(StatusCode::OK);
    s.login(
        "custom-token",
        json!({"token": hs256(&claims("r", "platform"), RSA_PUBLIC)}),
    )
    .await
    .refused(StatusCode::UNAUTHORIZED, "AuthError");
}

#[tokio::test]
async fn custom_token_configurations_the_server_cannot_use() {
    let mut providers = all_providers();
    // A missing secret value, a short HS256 key, a PEM that is not one: startup fails, naming
    // the secret, never showing a value.
    let missing = open(&providers, "", Duration::from_secs(1)).err().unwrap();
    assert!(
        missing.contains("jwtKey") && missing.contains("--secret"),
        "{missing}"
    );
    let short = open(&providers, "short", Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(
        short.contains("jwtKey") && !short.contains("short\""),
        "{short}"
    );
    providers["custom-token"] = custom_token("RS256", json!({}));
    let pem = open(
        &providers,
        "not a pem key, but long enough to pass",
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    assert!(pem.contains("PEM") && !pem.contains("long enough"), "{pem}");
    // A JWK URI: served without the provider (its logins refused), with a warning.
    providers["custom-token"] = custom_token(
        "RS256",
        json!({"useJWKURI": true, "jwkURI": "https://example.com/jwks"}),
    );
    let s = open(&providers, RSA_PUBLIC, Duration::from_secs(1800)).unwrap();
    assert!(
        s.state
            .settings
            .warnings
            .iter()
            .any(|w| w.contains("useJWKURI"))
    );
    s.login(
        "custom-token",
        json!({"token": rs256(&claims("j", "platform"))}),
    )
    .await
    .refused(StatusCode::NOT_FOUND, "AuthProviderNotFound");
}

#[tokio::test]
async fn api_keys_are_managed_with_the_refresh_token_and_log_in() {
    let s = server();
    let ann = s.register_and_login("ann@example.com", "secret1").await;
    let (access, refresh) = (ann.token("access_token"), ann.token("refresh_token"));
    // Management needs the refresh token.
    s.keys(Method::POST, "", &access)
        .json(json!({"name": "ci"}))
        .send()
        .await
        .refused(StatusCode::UNAUTHORIZED, "InvalidSession");
    let created = s
        .keys(Method::POST, "", &refresh)
        .json(json!({"name": "ci"}))
        .send()
        .await;
    let created = created.ok(StatusCode::CREATED).clone();
    let (id, key) = (
        created["_id"].as_str().unwrap().to_string(),
        created["key"].as_str().unwrap().to_string(),
    );
    assert_eq!(id.len(), 24);
    assert_eq!(
        (created["name"].clone(), created["disabled"].clone()),
        (json!("ci"), json!(false))
    );
    // Only the hash is stored.
    let stored = s
        .state
        .store
        .documents(&Namespace::new("$rolegate", "api_keys"))
        .unwrap();
    assert!(!format!("{stored:?}").contains(&key));
    // Duplicate names are refused; list and get never show the key.
    s.keys(Method::POST, "", &refresh)
        .json(json!({"name": "ci"}))
        .send()
        .await
        .refused(StatusCode::CONFLICT, "APIKeyAlreadyExists");
    let listed = s.keys(Method::GET, "", &refresh).send().await;
    assert_eq!(
        listed.ok(StatusCode::OK),
        &json!([{"_id": id, "name": "ci", "disabled": false}])
    );
    let one = s
        .keys(Method::GET, &format!("/{id}"), &refresh)
        .send()
        .await;
    assert_eq!(one.ok(StatusCode::OK)["_id"], json!(id));

    // The key logs in as its user.
    let login = s.login("api-key", json!({"key": key})).await;
    assert_eq!(login.ok(StatusCode::OK)["user_id"], ann.json["user_id"]);
    // Disabled: refused; enabled again: accepted.
    s.keys(Method::PUT, &format!("/{id}/disable"), &refresh)
        .send()
        .await
        .ok(StatusCode::NO_CONTENT);
    let listed = s.keys(Method::GET, "", &refresh).send().await;
    assert_eq!(listed.ok(StatusCode::OK)[0]["disabled"], json!(true));
    s.login("api-key", json!({"key": key}))
        .await
        .refused(StatusCode::UNAUTHORIZED, "AuthError");
    s.keys(Method::PUT, &format!("/{id}/enable"), &refresh)
        .send()
        .await
        .ok(StatusCode::NO_CONTENT);
    s.login("api-key", json!({"key": key}))
        .await
        .ok(StatusCode::OK);
    s.login("api-key", json!({"key": "0".repeat(64)}))
        .await
        .refused(StatusCode::UNAUTHORIZED, "AuthError");

    // Another user cannot see or manage Ann's key.
    let bo = s.register_and_login("bo@example.com", "secret1").await;
    let bo_refresh = bo.token("refresh_token");
    for (method, rest) in [
        (Method::GET, format!("/{id}")),
        (Method::PUT, format!("/{id}/disable")),
        (Method::PUT, format!("/{id}/enable")),
        (Method::DELETE, format!("/{id}")),
    ] {
        s.keys(method, &rest, &bo_refresh)
            .send()
            .await
            .refused(StatusCode::NOT_FOUND, "APIKeyNotFound");
    }
    let bo_keys = s.keys(Method::GET, "", &bo_refresh).send().await;
    assert_eq!(bo_keys.ok(StatusCode::OK), &json!([]));

    // A disabled user's key does not log in.
    let ann_id = bson::oid::ObjectId::parse_str(ann.json["user_id"].as_str().unwrap()).unwrap();
    accounts::set_disabled(&s.state.store, ann_id, true).unwrap();
    s.login("api-key", json!({"key": key}))
        .await
        .refused(StatusCode::UNAUTHORIZED, "UserDisabled");
    accounts::set_disabled(&s.state.store, ann_id, false).unwrap();

    // Deleted: gone for management and login. (Ann's sessions were closed: log in again.)
    let ann = s
        .login(
            "local-userpass",
            json!({"username": "ann@example.com", "password": "secret1"}),
        )
        .await;
    let refresh = ann.token("refresh_token");
    s.keys(Method::DELETE, &format!("/{id}"), &refresh)
        .send()
        .await
        .ok(StatusCode::NO_CONTENT);
    s.keys(Method::GET, &format!("/{id}"), &refresh)
        .send()
        .await
        .refused(StatusCode::NOT_FOUND, "APIKeyNotFound");
    s.login("api-key", json!({"key": key}))
        .await
        .refused(StatusCode::UNAUTHORIZED, "AuthError");
    s.keys(Method::GET, "/not-an-id", &refresh)
        .send()
        .await
        .refused(StatusCode::NOT_FOUND, "APIKeyNotFound");
}

#[test]
fn rules_that_call_functions_are_listed() {
    let s = server();
    let listed = rolegate_serve::function_uses::rules_calling_functions(s.state.rules.rule_set());
    assert!(
        listed
            .iter()
            .any(|(ns, f)| ns == "mongodb-atlas/taskboard.projects"
                && f.contains(&"isTeamMember".to_string())),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|(ns, _)| ns.contains("teamnotes")));
}
