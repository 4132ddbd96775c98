//! The baseline of the load test (issue 14): the two operations of `benches/load.sh`, on the
//! same app, the same kind of store and the same data, timed without a socket. Stage: bench.
//! Input: a copy of `examples/tasks-app` with custom user data enabled (`taskboard.users`), a
//! temporary embedded store, two registered users seeded as `load.sh` seeds them (the layout
//! is [`seed`]'s doc). Output: criterion medians, per operation, at three depths:
//!
//! * `execute`: [`rolegate::ops::execute`] with a request prepared once (user, custom data and
//!   context built outside the loop), plus the result as canonical Extended JSON: the library
//!   alone;
//! * `run`: [`rolegate_serve::routes::functions::run`], everything the server's blocking task
//!   does per call: the user read from the store, the custom user data read, the request
//!   context built, the collection prepared, `execute`, the result as canonical Extended JSON;
//! * `handler`: the server's router driven in-process (tower's `oneshot` on a 2-worker tokio
//!   runtime, no socket): routing, CORS and log middleware (no log subscriber installed, so no
//!   log line is written), the JWT checked, the body parsed, `Operation::from_body`, the write
//!   permit (updates), the blocking-thread hand-off, `run`, the response serialised.
//!
//! `cargo bench -p rolegate-serve --bench direct`. The figures are in `benches/RESULTS.md`
//! next to this file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "bench code: a failure is a broken bench"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bson::{Bson, Document, doc, oid::ObjectId};
use criterion::{Criterion, criterion_group, criterion_main};
use rolegate::ops::{OpEnv, Operation, attach_custom_data, call_request, execute};
use rolegate_serve::data::Shared;
use rolegate_serve::routes::functions::run;
use rolegate_serve::{AppState, ServeConfig, accounts, router};
use tower::ServiceExt;

#[path = "../tests/support/mod.rs"]
mod support;

const APP_ID: &str = "taskboard-ab1cd";
const KEY: &[u8] = b"a bench signing key of at least thirty-two bytes";

/// The example app with custom user data in `taskboard.users` (as `load.sh` writes it), on a
/// new store in `dir`.
fn open(dir: &Path) -> Arc<AppState> {
    let app = support::example_app(dir, true);
    let mut config = ServeConfig::new(&app, dir.join("data"));
    config.signing_key = Some(KEY.to_vec());
    config.access_lifetime = Duration::from_secs(24 * 3600);
    AppState::open(&config).unwrap()
}

/// A `functions/call` body on `taskboard.<collection>`.
fn body(name: &str, collection: &str, args: Document) -> Document {
    let mut a = doc! {"database": "taskboard", "collection": collection};
    a.extend(args);
    doc! {"name": name, "arguments": [a], "service": "mongodb-atlas"}
}

/// The `%%request` HTTP part `load.sh`'s requests carry (wrk sends no user agent).
fn http() -> Document {
    doc! {"httpMethod": "POST", "remoteIPAddress": "127.0.0.1"}
}

fn call(state: &AppState, user: ObjectId, body: &Document) -> serde_json::Value {
    run(state, user, &Operation::from_body(body).unwrap(), &http()).unwrap()
}

fn task(owner: &str, n: usize, status: &str, team: &str, collaborators: &[&str]) -> Document {
    doc! {
        "owner_id": owner,
        "title": format!("{owner} task {n:03}"),
        "status": status,
        "team": team,
        "collaborators": collaborators,
        "details": {
            "summary": format!("Summary of task {n}"),
            "estimateHours": 3,
            "internalNotes": "Not for the team.",
        },
        "archived": false,
    }
}

/// Seeds the store through `run` (as `load.sh` does through HTTP: `insertMany` as each user)
/// and returns the id of the task `updateOne` increments. `load` gets custom data
/// `{team: "platform"}`; `taskboard.tasks` gets 200 tasks:
///
/// * `load`'s 14: 8 `todo`/`doing` (role `owner`: whole), 3 archived (the filter
///   `hideArchivedFromNonAdmins` withholds them), 3 `done` (the query does not match them);
/// * `other`'s 186: 6 in team `design` shared with `load` (`collaborator`: whole), 6 in team
///   `platform` (`teamViewer`: redacted, no `owner_id`, `collaborators`, `archived`,
///   `details.internalNotes`), 170 in team `design` not shared (no role: withheld), 4 `done`
///   in `platform` (not matched).
///
/// So the `find` (`status` in `todo`/`doing`, sorted by `title`) returns 20 documents, 14 of
/// them with `owner_id`.
fn seed(state: &AppState, load: ObjectId, other: ObjectId) -> Bson {
    let (l, o) = (load.to_hex(), other.to_hex());
    call(
        state,
        load,
        &body(
            "insertOne",
            "users",
            doc! {"document": {"owner_id": &l, "user_id": &l, "team": "platform"}},
        ),
    );
    let mut mine = Vec::new();
    for n in 0..14 {
        let status = match n {
            0..8 if n % 2 == 0 => "todo",
            0..8 => "doing",
            8..11 => "todo",
            _ => "done",
        };
        let mut t = task(&l, n, status, "platform", &[]);
        if (8..11).contains(&n) {
            t.insert("archived", true);
        }
        mine.push(t);
    }
    let mut theirs = Vec::new();
    for n in 0..186 {
        let status = if n % 2 == 0 { "todo" } else { "doing" };
        theirs.push(match n {
            0..6 => task(&o, n, status, "design", &[&l]),
            6..12 => task(&o, n, status, "platform", &[]),
            12..182 => task(&o, n, status, "design", &[]),
            _ => task(&o, n, "done", "platform", &[]),
        });
    }
    let inserted = call(
        state,
        load,
        &body("insertMany", "tasks", doc! {"documents": mine}),
    );
    call(
        state,
        other,
        &body("insertMany", "tasks", doc! {"documents": theirs}),
    );
    let first = &inserted["insertedIds"][0];
    Bson::try_from(first.clone()).unwrap()
}

fn find_body() -> Document {
    body(
        "find",
        "tasks",
        doc! {"query": {"status": {"$in": ["todo", "doing"]}}, "sort": {"title": 1}},
    )
}

fn update_body(id: &Bson) -> Document {
    body(
        "updateOne",
        "tasks",
        doc! {"query": {"_id": id.clone()}, "update": {"$inc": {"details.estimateHours": 1}}},
    )
}

/// Checks the find's answer: 20 documents, 14 of them with `owner_id`.
fn check_find(result: &serde_json::Value) {
    let docs = result.as_array().unwrap();
    assert_eq!(docs.len(), 20, "the find returns 20 documents");
    let with_owner = docs.iter().filter(|d| d.get("owner_id").is_some()).count();
    assert_eq!(with_owner, 14, "14 of them are whole");
}

fn check_update(result: &serde_json::Value) {
    let one = |v: &serde_json::Value| {
        v == &serde_json::json!(1) || v == &serde_json::json!({"$numberInt": "1"})
    };
    assert!(
        one(&result["matchedCount"]) && one(&result["modifiedCount"]),
        "{result}"
    );
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = open(dir.path());
    let load = accounts::register(&state.store, "load@example.com", "load-password").unwrap();
    let other = accounts::register(&state.store, "other@example.com", "other-password").unwrap();
    let target = seed(&state, load, other);
    let cases = [
        ("find_20", find_body(), true),
        ("update_one", update_body(&target), false),
    ];

    // The prepared request of `execute`: what `run` builds per call, built once.
    let stored = accounts::user(&state.store, load).unwrap().unwrap();
    let mut user = accounts::rule_user(&stored);
    attach_custom_data(state.rules.rule_set(), &mut Shared(&*state.data), &mut user).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let router = router(Arc::clone(&state));
    let token = state
        .tokens
        .access(
            &load.to_hex(),
            &ObjectId::new().to_hex(),
            serde_json::json!({}),
        )
        .unwrap();
    let path = format!("/api/client/v2.0/app/{APP_ID}/functions/call");

    for (name, body_doc, is_find) in cases {
        let check = |v: &serde_json::Value| {
            if is_find {
                check_find(v);
            } else {
                check_update(v);
            }
        };
        let op = Operation::from_body(&body_doc).unwrap();
        let collection = state.rules.operation_collection(&op).unwrap();
        let context = state
            .rules
            .context()
            .user(user.clone())
            .request(call_request(Some(&http()), &op, "mongodb-atlas"))
            .build()
            .unwrap();
        let request = collection.prepare(&context);
        let exec = || {
            let decided =
                execute(&request, &op, &mut Shared(&*state.data), &mut OpEnv::new()).unwrap();
            rolegate::mql::bson_to_canonical_json(&decided.result).unwrap()
        };
        check(&exec());
        check(&run(&state, load, &op, &http()).unwrap());
        let json_body = rolegate::mql::bson_to_canonical_json(&Bson::Document(body_doc.clone()))
            .unwrap()
            .to_string();
        let handle = || {
            let request = Request::builder()
                .method(Method::POST)
                .uri(&path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json_body.clone()))
                .unwrap();
            runtime.block_on(async {
                let response = router.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap()
            })
        };
        check(&serde_json::from_slice(&handle()).unwrap());

        let mut group = c.benchmark_group(format!("serve/{name}"));
        group.bench_function("execute", |b| b.iter(exec));
        group.bench_function("run", |b| {
            b.iter(|| run(&state, load, &op, &http()).unwrap());
        });
        group.bench_function("handler", |b| b.iter(handle));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
