//! The server driven in-process (tower's `oneshot`, no sockets) on a copy of the example app
//! (`examples/tasks-app`, with custom user data enabled in the copy) and a temporary store.

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
use bson::{Document, doc, oid::ObjectId};
use rolegate::ops::{Change, Namespace, StoreRead, WriteSet};
use rolegate_serve::data::SharedStore;
use rolegate_serve::{AppState, ServeConfig, router};
use rolegate_store::EmbeddedStore;
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;

const APP_ID: &str = "taskboard-ab1cd";
const BASE: &str = "/api/client/v2.0";
const KEY: &[u8] = b"a test signing key of at least thirty-two bytes";

struct Server {
    state: Arc<AppState>,
    router: Router,
    _dir: tempfile::TempDir,
}

/// The example app (plus custom user data in `taskboard.users`) on a fresh store.
fn server(access_lifetime: Duration) -> Server {
    server_with(access_lifetime, usize::MAX)
}

fn server_with(access_lifetime: Duration, max_body_bytes: usize) -> Server {
    server_on(access_lifetime, max_body_bytes, None)
}

/// The example app with the app's data on `data` (default: the data folder's store).
fn server_on(
    access_lifetime: Duration,
    max_body_bytes: usize,
    data: Option<Arc<dyn SharedStore>>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let app = support::example_app(dir.path(), true);
    let mut config = ServeConfig::new(&app, dir.path().join("data"));
    config.public_url = "https://rolegate.example.com/".to_string();
    config.signing_key = Some(KEY.to_vec());
    config.access_lifetime = access_lifetime;
    config.data = data;
    if max_body_bytes != usize::MAX {
        config.max_body_bytes = max_body_bytes;
    }
    let state = AppState::open(&config).unwrap();
    Server {
        router: router(Arc::clone(&state)),
        state,
        _dir: dir,
    }
}

impl Server {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(b) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, content_type, json)
    }

    fn app(&self, rest: &str) -> String {
        format!("{BASE}/app/{APP_ID}/{rest}")
    }

    async fn register_and_login(&self, email: &str, password: &str) -> Value {
        let (status, _, _) = self
            .send(
                Method::POST,
                &self.app("auth/providers/local-userpass/register"),
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _, login) = self
            .send(
                Method::POST,
                &self.app("auth/providers/local-userpass/login"),
                None,
                Some(json!({"username": email, "password": password,
                    "options": {"device": {"sdkVersion": "2.0.1", "platform": "node"}}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{login}");
        login
    }

    async fn call(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (status, content_type, json) = self
            .send(
                Method::POST,
                &self.app("functions/call"),
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(content_type.as_deref(), Some("application/json"));
        (status, json)
    }

    /// Stores `docs` in the app's data store, bypassing the rules.
    fn insert(&self, collection: &str, docs: Vec<Document>) {
        self.state
            .data
            .write(&WriteSet {
                namespace: Namespace::new("taskboard", collection),
                changes: docs.into_iter().map(Change::Insert).collect(),
            })
            .unwrap();
    }
}

fn token(login: &Value, key: &str) -> String {
    login[key].as_str().unwrap().to_string()
}

fn assert_error(json: &Value, code: &str) {
    assert_eq!(json["error_code"], code, "{json}");
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{json}"
    );
    assert!(json.get("link").is_some(), "{json}");
}

#[tokio::test]
async fn location_answers_the_public_url_and_refuses_other_apps() {
    let s = server(Duration::from_secs(1800));
    let (status, ct, json) = s.send(Method::GET, &s.app("location"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(json["hostname"], "https://rolegate.example.com");
    assert_eq!(json["ws_hostname"], "wss://rolegate.example.com");
    assert_eq!(json["location"], "US-VA");
    assert_eq!(json["deployment_model"], "GLOBAL");
    let (status, _, json) = s
        .send(
            Method::GET,
            &format!("{BASE}/app/other-app/location"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&json, "AppNotFound");
    let (status, _, json) = s.send(Method::GET, "/health", None, None).await;
    assert_eq!((status, json), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn register_login_profile_refresh_logout() {
    let s = server(Duration::from_secs(1800));
    let login = s.register_and_login("carol@example.com", "secret1").await;
    let user_id = login["user_id"].as_str().unwrap();
    assert!(ObjectId::parse_str(user_id).is_ok());
    assert_eq!(login["device_id"].as_str().unwrap().len(), 24);
    for key in ["access_token", "refresh_token"] {
        assert_eq!(token(&login, key).split('.').count(), 3, "{key} is a JWT");
    }
    // A second registration of the email, and a wrong password.
    let (status, _, json) = s
        .send(
            Method::POST,
            &s.app("auth/providers/local-userpass/register"),
            None,
            Some(json!({"email": "carol@example.com", "password": "another1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&json, "AccountNameInUse");
    for (email, password) in [
        ("carol@example.com", "wrong-password"),
        ("nobody@example.com", "secret1"),
    ] {
        let (status, _, json) = s
            .send(
                Method::POST,
                &s.app("auth/providers/local-userpass/login"),
                None,
                Some(json!({"username": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_error(&json, "InvalidPassword");
    }

    let access = token(&login, "access_token");
    let refresh = token(&login, "refresh_token");
    let (status, _, profile) = s
        .send(
            Method::GET,
            &format!("{BASE}/auth/profile"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["user_id"], user_id);
    assert_eq!(profile["type"], "normal");
    assert_eq!(profile["data"]["email"], "carol@example.com");
    assert_eq!(profile["identities"][0]["provider_type"], "local-userpass");
    // The refresh token is not an access token, nor the reverse.
    let (status, _, json) = s
        .send(
            Method::GET,
            &format!("{BASE}/auth/profile"),
            Some(&refresh),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&json, "InvalidSession");
    let (status, _, _) = s
        .send(
            Method::POST,
            &format!("{BASE}/auth/session"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _, fresh) = s
        .send(
            Method::POST,
            &format!("{BASE}/auth/session"),
            Some(&refresh),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let fresh = token(&fresh, "access_token");
    let (status, _, _) = s
        .send(
            Method::GET,
            &format!("{BASE}/auth/profile"),
            Some(&fresh),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Logout revokes the refresh token; a second logout finds nothing.
    let (status, _, _) = s
        .send(
            Method::DELETE,
            &format!("{BASE}/auth/session"),
            Some(&refresh),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, json) = s
        .send(
            Method::POST,
            &format!("{BASE}/auth/session"),
            Some(&refresh),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&json, "InvalidSession");
    let (status, _, json) = s
        .send(
            Method::DELETE,
            &format!("{BASE}/auth/session"),
            Some(&refresh),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("failed to find refresh token")
    );
}

#[tokio::test]
async fn anonymous_login_and_disabled_providers() {
    let s = server(Duration::from_secs(1800));
    let (status, _, login) = s
        .send(
            Method::POST,
            &s.app("auth/providers/anon-user/login"),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let (_, _, profile) = s
        .send(
            Method::GET,
            &format!("{BASE}/auth/profile"),
            Some(&token(&login, "access_token")),
            None,
        )
        .await;
    assert_eq!(profile["identities"][0]["provider_type"], "anon-user");
    // api-key is disabled in the example app; custom-token is not configured at all.
    for provider in ["api-key", "custom-token"] {
        let (status, _, json) = s
            .send(
                Method::POST,
                &s.app(&format!("auth/providers/{provider}/login")),
                None,
                Some(json!({"key": "x"})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{provider}");
        assert_error(&json, "AuthProviderNotFound");
    }
}

#[tokio::test]
async fn operations_run_under_the_rules_as_the_user() {
    let s = server(Duration::from_secs(1800));
    let login = s.register_and_login("dana@example.com", "secret12").await;
    let access = token(&login, "access_token");
    let me = login["user_id"].as_str().unwrap().to_string();
    s.insert(
        "users",
        vec![doc! {"_id": 1, "user_id": &me, "team": "platform", "isAdmin": false}],
    );
    s.insert(
        "tasks",
        vec![
            doc! {"_id": 1, "owner_id": &me, "title": "mine", "status": "todo", "team": "platform",
                  "collaborators": [], "details": {"internalNotes": "mine to read"}, "archived": false},
            doc! {"_id": 2, "owner_id": "someone", "title": "theirs", "status": "doing", "team": "platform",
                  "collaborators": [], "details": {"summary": "s", "internalNotes": "secret"}, "archived": false},
            doc! {"_id": 3, "owner_id": "someone", "title": "other team", "status": "todo", "team": "infra",
                  "collaborators": [], "archived": false},
        ],
    );
    // Canonical Extended JSON in and out; the team viewer's view of task 2 is redacted.
    let (status, json) = s
        .call(
            &access,
            json!({"name": "find", "service": "mongodb-atlas", "arguments": [{"database": "taskboard",
                   "collection": "tasks", "query": {}, "sort": {"_id": {"$numberInt": "1"}}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let docs = json.as_array().unwrap();
    assert_eq!(docs.len(), 2, "{json}");
    assert_eq!(docs[0]["_id"], json!({"$numberInt": "1"}));
    assert_eq!(docs[0]["details"]["internalNotes"], "mine to read");
    assert_eq!(docs[1]["title"], "theirs");
    assert!(docs[1].get("owner_id").is_none(), "{json}");
    assert!(docs[1]["details"].get("internalNotes").is_none(), "{json}");
    assert_eq!(docs[1]["details"]["summary"], "s");

    let (status, json) = s
        .call(
            &access,
            json!({"name": "count", "service": "mongodb-atlas", "arguments": [{"database": "taskboard",
                   "collection": "tasks", "query": {}}]}),
        )
        .await;
    assert_eq!(
        (status, json),
        (StatusCode::OK, json!({"$numberLong": "2"}))
    );

    // An insert for someone else is refused, with the error body and nothing written.
    let (status, json) = s
        .call(
            &access,
            json!({"name": "insertOne", "service": "mongodb-atlas", "arguments": [{"database": "taskboard",
                   "collection": "tasks", "document": {"owner_id": "someone", "title": "x", "status": "todo",
                   "team": "infra", "collaborators": [], "archived": false}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "InsertNotPermitted");
    assert_eq!(
        s.state
            .store
            .documents(&Namespace::new("taskboard", "tasks"))
            .unwrap()
            .len(),
        3
    );

    // The accounts are out of reach, even though the data source's default rule covers every
    // other collection.
    for name in ["find", "deleteMany"] {
        let (status, json) = s
            .call(
                &access,
                json!({"name": name, "service": "mongodb-atlas", "arguments": [{"database": "$rolegate",
                       "collection": "users", "query": {}}]}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
        assert_error(&json, "NoMatchingRuleFound");
    }
    assert!(
        !s.state
            .store
            .documents(&Namespace::new("$rolegate", "users"))
            .unwrap()
            .is_empty()
    );

    // The app's own functions are not run; other services do not exist.
    let (status, json) = s
        .call(&access, json!({"name": "notifySlack", "arguments": ["x"]}))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_error(&json, "FunctionExecutionError");
    assert!(json["error"].as_str().unwrap().contains("notifySlack"));
    // A private function is not callable by clients: as if it did not exist.
    for name in ["isTeamMember", "noSuchFunction"] {
        let (status, json) = s
            .call(&access, json!({"name": name, "arguments": []}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_error(&json, "FunctionNotFound");
    }
    let (status, json) = s
        .call(
            &access,
            json!({"name": "find", "service": "mongo-db", "arguments": []}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&json, "ServiceNotFound");
    // No token, a malformed body.
    let (status, _, json) = s
        .send(
            Method::POST,
            &s.app("functions/call"),
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&json, "InvalidSession");
    let (status, json) = s
        .call(&access, json!({"name": "find", "service": "mongodb-atlas", "arguments": [{"database": "taskboard"}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&json, "InvalidParameter");
}

#[tokio::test]
async fn expired_and_tampered_access_tokens_are_invalid_sessions() {
    let s = server(Duration::ZERO);
    let login = s.register_and_login("erin@example.com", "secret123").await;
    let access = token(&login, "access_token");
    // Tampered: one character of the payload changed, then a token signed with another key.
    let mut parts: Vec<String> = access.split('.').map(str::to_string).collect();
    let flipped = if parts[1].ends_with('A') { 'B' } else { 'A' };
    parts[1].pop();
    parts[1].push(flipped);
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": login["user_id"], "typ": "access", "aud": APP_ID, "iat": 0, "exp": 4_000_000_000_i64,
                "baas_device_id": "000000000000000000000000", "user_data": {}}),
        &jsonwebtoken::EncodingKey::from_secret(b"another key of at least thirty-two bytes!"),
    )
    .unwrap();
    for bad in [parts.join("."), forged, "not-a-token".to_string()] {
        let (status, _, json) = s
            .send(
                Method::GET,
                &format!("{BASE}/auth/profile"),
                Some(&bad),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_error(&json, "InvalidSession");
    }
    // Lifetime zero: expired from the next second on; the refresh token still works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, json) = s
        .send(
            Method::GET,
            &format!("{BASE}/auth/profile"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&json, "InvalidSession");
    let (status, _, _) = s
        .send(
            Method::POST,
            &format!("{BASE}/auth/session"),
            Some(&token(&login, "refresh_token")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn large_bodies_origins_and_devices() {
    let s = server_with(Duration::from_secs(1800), 256);
    let (status, _, json) = s
        .send(
            Method::POST,
            &s.app("auth/providers/anon-user/login"),
            None,
            Some(json!({"options": {"device": {"platform": "x".repeat(300)}}})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&json, "BadRequest");

    // A device id the server issued to this user is reused; another one is replaced.
    let login = |device: &str| {
        json!({"username": "fay@example.com", "password": "secret1",
               "options": {"device": {"deviceId": {"$oid": device}}}})
    };
    let first = s.register_and_login("fay@example.com", "secret1").await;
    let device = first["device_id"].as_str().unwrap().to_string();
    let path = s.app("auth/providers/local-userpass/login");
    let (_, _, again) = s
        .send(Method::POST, &path, None, Some(login(&device)))
        .await;
    assert_eq!(again["device_id"], device.as_str());
    let (_, _, other) = s
        .send(
            Method::POST,
            &path,
            None,
            Some(login("65f000000000000000000001")),
        )
        .await;
    assert_ne!(other["device_id"], "65f000000000000000000001");
    assert_ne!(other["device_id"], device.as_str());

    // CORS: the app allows https://tasks.example.com only.
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(s.app("functions/call"))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let allowed = s
        .router
        .clone()
        .oneshot(preflight("https://tasks.example.com"))
        .await
        .unwrap();
    assert_eq!(
        allowed
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .unwrap(),
        "https://tasks.example.com"
    );
    let other = s
        .router
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(
        other
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let request = Request::builder()
        .uri(s.app("location"))
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let refused = s.router.clone().oneshot(request).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

/// With a separate data store (as `--mongodb` gives), the operations and the custom user data
/// use it, and the accounts stay in the data folder: neither store holds the other's documents.
#[tokio::test]
async fn a_separate_data_store_holds_the_app_data_and_not_the_accounts() {
    let data_dir = tempfile::tempdir().unwrap();
    let data: Arc<dyn SharedStore> = Arc::new(EmbeddedStore::open(data_dir.path()).unwrap());
    let s = server_on(
        Duration::from_secs(1800),
        usize::MAX,
        Some(Arc::clone(&data)),
    );
    let login = s.register_and_login("erin@example.com", "secret12").await;
    let access = token(&login, "access_token");
    let me = login["user_id"].as_str().unwrap().to_string();
    // Custom user data in the data store makes erin a member of team `platform`.
    s.insert(
        "users",
        vec![doc! {"_id": 1, "user_id": &me, "team": "platform", "isAdmin": false}],
    );
    let (status, json) = s
        .call(
            &access,
            json!({"name": "insertOne", "service": "mongodb-atlas", "arguments": [{"database": "taskboard",
                   "collection": "tasks", "document": {"owner_id": &me, "title": "t", "status": "todo",
                   "team": "platform", "collaborators": [], "archived": false}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    s.insert(
        "tasks",
        vec![doc! {"_id": 2, "owner_id": "someone", "title": "t", "status": "todo", "team": "platform",
                   "collaborators": [], "archived": false}],
    );
    let (status, json) = s
        .call(
            &access,
            json!({"name": "count", "service": "mongodb-atlas", "arguments": [{"database": "taskboard",
                   "collection": "tasks", "query": {"team": "platform"}}]}),
        )
        .await;
    assert_eq!(
        (status, json),
        (StatusCode::OK, json!({"$numberLong": "2"})),
        "the team's task is visible through the custom data in the data store"
    );
    let tasks = Namespace::new("taskboard", "tasks");
    let accounts = Namespace::new("$rolegate", "users");
    let count = |store: &dyn SharedStore, ns: &Namespace| {
        store
            .find(&StoreRead::new(ns.clone(), doc! {}))
            .unwrap()
            .len()
    };
    assert_eq!(count(&*data, &tasks), 2);
    assert_eq!(count(&*s.state.store, &tasks), 0);
    assert_eq!(count(&*s.state.store, &accounts), 1);
    assert_eq!(count(&*data, &accounts), 0);
}
