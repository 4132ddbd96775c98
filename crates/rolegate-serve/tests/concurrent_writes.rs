//! Concurrent writes to one document through the server (found by the load test,
//! `benches/load.sh`): every `updateOne` of many concurrent clients succeeds and none is lost.
//! The router driven in-process (tower's `oneshot`) on a multi-threaded runtime, on the
//! example app and a temporary store.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail the test by panicking"
)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use rolegate_serve::{AppState, ServeConfig, accounts, router};
use serde_json::{Value, json};
use tower::ServiceExt;

mod support;

const KEY: &[u8] = b"a test signing key of at least thirty-two bytes";
const CALL: &str = "/api/client/v2.0/app/taskboard-ab1cd/functions/call";

async fn call(router: &Router, token: &str, body: &Value) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(CALL)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn tasks(action: &str, args: Value) -> Value {
    let mut a = json!({"database": "taskboard", "collection": "tasks"});
    a.as_object_mut()
        .unwrap()
        .extend(args.as_object().unwrap().clone());
    json!({"name": action, "arguments": [a], "service": "mongodb-atlas"})
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v["$numberInt"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_one_document_all_succeed() {
    const CLIENTS: i64 = 8;
    const EACH: i64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let app = support::example_dir();
    let mut config = ServeConfig::new(app, dir.path().join("data"));
    config.signing_key = Some(KEY.to_vec());
    let state = AppState::open(&config).unwrap();
    let user = accounts::register(&state.store, "ann@example.com", "a password").unwrap();
    let token = state
        .tokens
        .access(&user.to_hex(), &user.to_hex(), json!({}))
        .unwrap();
    let router = router(Arc::clone(&state));

    let task = json!({"owner_id": user.to_hex(), "title": "t", "status": "todo",
                      "team": "platform", "details": {"estimateHours": 0}});
    let (status, inserted) = call(
        &router,
        &token,
        &tasks("insertOne", json!({"document": task})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{inserted}");
    let id = inserted["insertedId"].clone();
    let update = tasks(
        "updateOne",
        json!({"query": {"_id": id}, "update": {"$inc": {"details.estimateHours": 1}}}),
    );

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (router, token, update) = (router.clone(), token.clone(), update.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..EACH {
                answers.push(call(&router, &token, &update).await);
            }
            answers
        }));
    }
    for client in clients {
        for (status, body) in client.await.unwrap() {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(int(&body["modifiedCount"]), 1, "{body}");
        }
    }
    let (status, found) = call(
        &router,
        &token,
        &tasks("findOne", json!({"query": {"_id": id}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        int(&found["details"]["estimateHours"]),
        CLIENTS * EACH,
        "no increment lost"
    );
}
