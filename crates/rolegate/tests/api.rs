//! The public library API: `Rules` → `Collection` → `PreparedRequest`, request contexts built
//! from an app's values, environments and secrets, and host functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::{Bson, doc};
use rolegate::{ContextError, FunctionHost, LoadOptions, RuleSet, Rules};
use serde_json::json;

fn app() -> Rules {
    let files: BTreeMap<String, serde_json::Value> = [
        ("data_sources/mongodb-atlas/config.json", json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}})),
        (
            "data_sources/mongodb-atlas/app/items/rules.json",
            json!({"database": "app", "collection": "items", "roles": [
                {"name": "keyHolder", "apply_when": {"%%request.requestHeaders.x-api-key": "%%values.apiKey"}, "read": true},
                {"name": "prod", "apply_when": {"%%environment.tag": "production", "%%environment.values.open": true}, "read": true},
                {"name": "checked", "apply_when": {"%%true": {"%function": {"name": "allow", "arguments": ["%%user.id"]}}}, "read": true}
            ]}),
        ),
        ("values/apiKey.json", json!({"name": "apiKey", "from_secret": true, "value": "apiKeySecret"})),
        ("values/unused.json", json!({"name": "unused", "from_secret": true, "value": "unusedSecret"})),
        ("values/region.json", json!({"name": "region", "value": "eu"})),
        ("environments/production.json", json!({"values": {"open": true}})),
        ("functions/config.json", json!([{"name": "allow", "private": true}])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Rules::new(
        RuleSet::from_files(&files, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn rules_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Rules>();
    assert_send_sync::<rolegate::RequestContext>();
    let rules = app();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let rules = rules.clone();
            std::thread::spawn(move || {
                let ctx = rules.context().secret("apiKeySecret", "k").build().unwrap();
                rules
                    .collection("app.items")
                    .unwrap()
                    .prepare(&ctx)
                    .read(&doc! {"_id": 1})
                    .visible
            })
        })
        .collect();
    for h in handles {
        assert!(!h.join().unwrap());
    }
}

#[test]
fn a_referenced_secret_must_be_supplied() {
    let rules = app();
    let err = rules.context().build().unwrap_err();
    assert_eq!(
        err,
        ContextError::MissingSecret {
            value: "apiKey".into(),
            secret: "apiKeySecret".into()
        }
    );
    assert!(err.to_string().contains("apiKeySecret"), "{err}");
    // `unused` is secret-backed too, but no rule reads it.
    let ctx = rules
        .context()
        .secret("apiKeySecret", "k-1")
        .build()
        .unwrap();
    let values = ctx.values.as_document().unwrap();
    assert_eq!(values.get_str("apiKey").unwrap(), "k-1");
    assert_eq!(values.get_str("region").unwrap(), "eu");
    assert!(!values.contains_key("unused"));
}

#[test]
fn the_secret_value_decides_access() {
    let rules = app();
    let items = rules.collection("app.items").unwrap();
    let header = |key: &str| doc! {"requestHeaders": {"X-Api-Key": [key]}};
    let ctx = rules
        .context()
        .secret("apiKeySecret", "k-1")
        .request(header("k-1"))
        .build()
        .unwrap();
    assert_eq!(
        items.prepare(&ctx).read(&doc! {"_id": 1}).role.as_deref(),
        Some("keyHolder")
    );
    let ctx = rules
        .context()
        .value("apiKey", "other")
        .request(header("k-1"))
        .build()
        .unwrap();
    assert_eq!(items.prepare(&ctx).read(&doc! {"_id": 1}).role, None);
}

#[test]
fn environments_are_selected_by_tag() {
    let rules = app();
    let items = rules.collection("app.items").unwrap();
    let ctx = rules
        .context()
        .secret("apiKeySecret", "k")
        .environment("production")
        .build()
        .unwrap();
    assert_eq!(
        items.prepare(&ctx).read(&doc! {"_id": 1}).role.as_deref(),
        Some("prod")
    );
    let err = rules
        .context()
        .secret("apiKeySecret", "k")
        .environment("staging")
        .build()
        .unwrap_err();
    assert_eq!(err, ContextError::UnknownEnvironment("staging".into()));
}

#[test]
fn host_functions_decide_and_failures_deny_with_a_reason() {
    let rules = app();
    let items = rules.collection("app.items").unwrap();
    let allow_alice = |name: &str, args: &[Bson]| -> Result<Bson, String> {
        match (name, args) {
            ("allow", [Bson::String(id)]) => Ok(Bson::Boolean(id == "alice")),
            _ => Err(format!("unexpected call {name}")),
        }
    };
    let host: Arc<dyn FunctionHost> = Arc::new(allow_alice);
    let user = |id: &str| doc! {"id": id, "type": "normal"};
    let ctx = rules
        .context()
        .secret("apiKeySecret", "k")
        .user(user("alice"))
        .functions(host.clone())
        .build()
        .unwrap();
    assert_eq!(
        items.prepare(&ctx).read(&doc! {"_id": 1}).role.as_deref(),
        Some("checked")
    );
    let ctx = rules
        .context()
        .secret("apiKeySecret", "k")
        .user(user("bob"))
        .functions(host)
        .build()
        .unwrap();
    assert!(!items.prepare(&ctx).read(&doc! {"_id": 1}).visible);

    // No host: the call fails, the document is withheld, and the outcome says why.
    let ctx = rules
        .context()
        .secret("apiKeySecret", "k")
        .user(user("alice"))
        .build()
        .unwrap();
    let outcome = items.prepare(&ctx).read(&doc! {"_id": 1});
    assert!(!outcome.visible);
    let error = outcome.error.expect("a reason");
    assert!(error.contains("allow"), "{error}");
}

#[test]
fn namespaces_are_checked() {
    let rules = app();
    assert!(rules.collection("app.items").is_ok());
    assert!(rules.collection("mongodb-atlas/app.items").is_ok());
    let err = rules.collection("items").unwrap_err();
    assert!(err.to_string().contains("database.collection"), "{err}");
    assert!(rules.collection("nope/app.items").is_err());
}

/// Application state keeps `Rules` and a `Collection` handle (both owned, `'static`, shareable);
/// a request handler prepares once and holds the prepared request across an `.await`, in a
/// future that is `Send` (so a multi-threaded runtime can move it between threads).
#[test]
fn handles_live_in_application_state_and_across_awaits() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    #[derive(Clone)]
    struct AppState {
        rules: Rules,
        items: rolegate::Collection,
    }
    fn assert_state<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}

    /// A future that is pending once, like a database round trip.
    struct RoundTrip(bool);
    impl Future for RoundTrip {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    async fn handler(state: AppState, secret: &'static str) -> (bool, bool) {
        let ctx = state
            .rules
            .context()
            .secret("apiKeySecret", secret)
            .request(doc! {"requestHeaders": {"x-api-key": secret}})
            .build()
            .unwrap();
        let request = state.items.prepare(&ctx);
        let before = request.read(&doc! {"_id": 1}).visible;
        RoundTrip(false).await; // the prepared request is held across the await
        let after = request.read(&doc! {"_id": 2}).visible;
        (before, after)
    }

    let rules = app();
    let items = rules.collection("app.items").unwrap();
    assert_eq!(items.namespace(), "mongodb-atlas/app.items");
    let state = AppState { rules, items };
    assert_state(&state);
    let future = handler(state.clone(), "k");
    assert_send(&future);
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let answer = loop {
        if let Poll::Ready(answer) = future.as_mut().poll(&mut cx) {
            break answer;
        }
    };
    assert_eq!(
        answer,
        (true, true),
        "the key holder reads, before and after the await"
    );
    // The handle outlives the `Rules` value it came from (it owns what it needs).
    let items = state.items.clone();
    drop(state);
    let ctx = rolegate::RequestContext::default();
    assert!(!items.prepare(&ctx).read(&doc! {"_id": 3}).visible);
}
