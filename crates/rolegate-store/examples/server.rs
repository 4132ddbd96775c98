//! A data server for the example app in under 100 lines: what an embedder writes around rolegate.
//! `POST /call` takes an operation body (Extended JSON, as realm-web sends it) and `Authorization:
//! Bearer <user>`, a file of `APP/sample/users/` (a real server verifies a token instead).
//!
//! `cargo run --release -p rolegate-store --example server -- examples/tasks-app DATA_DIR 8080`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "example: startup failures abort"
)]

use std::sync::Arc;

use bson::{Bson, Document, doc};
use rolegate::mql::document_from_json;
use rolegate::ops::{self, Namespace, OpEnv, OpError, Operation, Store, StoreRead};
use rolegate::{FunctionHost, LoadOptions, RuleSet, Rules};
use rolegate_store::EmbeddedStore;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [app, data, port] = <[String; 3]>::try_from(args).expect("usage: APP DATA_DIR PORT");
    let rules = Rules::new(RuleSet::load(&app, &LoadOptions::default()).expect("rules"));
    let store = Arc::new(EmbeddedStore::open(data).expect("store"));
    let lookup = store.clone(); // the app's rule function, as its JavaScript does it
    let functions: Arc<dyn FunctionHost> = Arc::new(move |name: &str, args: &[Bson]| {
        let (Some(Bson::String(user)), "isTeamMember") = (args.first(), name) else {
            return Err(format!("no function {name}"));
        };
        let query = doc! {"user_id": user, "status": "active", "kind": {"$ne": "contractor"}};
        let read = StoreRead::new(Namespace::new("taskboard", "memberships"), query);
        let found = (&*lookup).find(&read).map_err(|e| e.to_string())?;
        Ok(Bson::Boolean(!found.is_empty()))
    });
    let server = tiny_http::Server::http(format!("127.0.0.1:{port}")).expect("listen");
    for mut req in server.incoming_requests() {
        let mut body = String::new();
        let _ = req.as_reader().read_to_string(&mut body);
        let auth = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"));
        let ip = req.remote_addr().map(|a| a.ip().to_string());
        let answer = match auth.and_then(|h| h.value.as_str().strip_prefix("Bearer ")) {
            Some(user) => {
                let user_file = format!("{app}/sample/users/{user}.json");
                call(&rules, &store, &functions, &user_file, ip, &body)
            }
            None => Err(OpError::bad_request("must authenticate first")),
        };
        let (status, text) = match answer {
            Ok(result) => (200, result.into_canonical_extjson().to_string()),
            Err(e) => {
                eprintln!("refused: {e}"); // the detailed view, for the log only
                let c = e.client_error();
                let json = serde_json::json!({"error": c.message, "error_code": c.code});
                (400, json.to_string())
            }
        };
        let _ = req.respond(tiny_http::Response::from_string(text).with_status_code(status));
    }
}

/// Extended JSON text → a document.
fn document(text: &str) -> Result<Document, OpError> {
    let json = serde_json::from_str(text).map_err(|e| OpError::bad_request(e.to_string()))?;
    document_from_json(&json).map_err(OpError::bad_request)
}

/// One call: the user with their custom data, then the operation (read → decide → write,
/// read again if a document changed in between).
fn call(
    rules: &Rules,
    store: &EmbeddedStore,
    functions: &Arc<dyn FunctionHost>,
    user_file: &str,
    ip: Option<String>,
    body: &str,
) -> Result<Bson, OpError> {
    let mut user = document(&std::fs::read_to_string(user_file).unwrap_or_default())?;
    let id = user.get_str("id").unwrap_or_default().to_string();
    let found = ops::load_custom_user_data(rules.rule_set(), &mut &*store, &id);
    if let Some(data) = found.map_err(|e| OpError::from_store(&e))? {
        user.insert("custom_data", data);
    }
    let op = Operation::from_body(&document(body)?)?;
    let http = doc! {"httpMethod": "POST", "remoteIPAddress": ip, "action": op.name()};
    let context = rules
        .context()
        .user(user)
        .request(http)
        .functions(functions.clone());
    let context = context
        .build()
        .map_err(|e| OpError::bad_request(e.to_string()))?;
    let collection = rules.operation_collection(&op)?;
    let request = collection.prepare(&context);
    Ok(ops::execute(&request, &op, &mut &*store, &mut OpEnv::new())?.result)
}
