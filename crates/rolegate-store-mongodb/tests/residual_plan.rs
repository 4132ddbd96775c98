//! Pushdown on MongoDB, when `ROLEGATE_TEST_MONGODB_URI` names a deployment (a replica set):
//! 10,000 documents of which 1% belong to the user, an index on `owner_id`, and the owner rule's
//! read residual. The test prints the plan MongoDB chooses for the store query (`explain`,
//! `queryPlanner`) and checks that it uses the index (an `IXSCAN` stage), that `find` through
//! the operations returns the user's 100 documents, and that the store returned no other.
//! Without the variable it prints `SKIPPED: …` and passes (CI never sets it).

use bson::{Bson, Document, doc};
use rolegate::ops::{OpEnv, Operation, Store, StoreError, StoreRead, WriteSet, execute};
use rolegate::{LoadOptions, RuleSet, Rules};
use rolegate_store_mongodb::MongoStore;

const URI_VAR: &str = "ROLEGATE_TEST_MONGODB_URI";

/// Counts what the store returns.
struct Counting<'s> {
    inner: &'s mut MongoStore,
    returned: usize,
}

impl Store for Counting<'_> {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        let found = self.inner.find(read)?;
        self.returned += found.len();
        Ok(found)
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        self.inner.write(writes)
    }
}

/// Whether the plan tree `plan` has a stage named `stage`.
fn has_stage(plan: &Bson, stage: &str) -> bool {
    let mut stack = vec![plan];
    while let Some(v) = stack.pop() {
        match v {
            Bson::Document(d) => {
                if d.get_str("stage") == Ok(stage) {
                    return true;
                }
                stack.extend(d.values());
            }
            Bson::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

#[test]
fn the_residual_uses_an_index_on_mongodb() -> Result<(), Box<dyn std::error::Error>> {
    let uri = match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => {
            println!("SKIPPED: set {URI_VAR} to a MongoDB replica set to see the residual's plan");
            return Ok(());
        }
    };
    let mut store = MongoStore::connect(&uri)?;
    let database = format!("rg_residual_{}", std::process::id());
    let db = store.client().database(&database);
    let coll = db.collection::<Document>("notes");
    let docs: Vec<Document> = (0..10_000)
        .map(|i| {
            let owner = if i % 100 == 0 {
                "alice".to_string()
            } else {
                format!("u{i}")
            };
            doc! {"_id": i, "owner_id": owner, "title": format!("t{i}")}
        })
        .collect();
    coll.insert_many(docs).run()?;
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! {"owner_id": 1})
            .build(),
    )
    .run()?;

    let rules = Rules::new(RuleSet::from_json(
        "data_sources/mongodb-atlas/x/notes/rules.json",
        &serde_json::json!({"database": database, "collection": "notes", "roles": [
            {"name": "owner", "apply_when": {"owner_id": "%%user.id"}, "read": true}]}),
        &LoadOptions::default(),
    )?);
    let op = Operation::from_body(&doc! {"name": "find", "arguments": [
    {"database": database.clone(), "collection": "notes", "query": {}}]})?;
    let ctx = rules.context().user(doc! {"id": "alice"}).build()?;
    let collection = rules.operation_collection(&op)?;
    let request = collection.prepare(&ctx);
    let read = request
        .plan_operation(&op)?
        .read()
        .cloned()
        .ok_or("no read")?;
    let explained = db
        .run_command(doc! {
            "explain": {"find": "notes", "filter": read.query.clone()},
            "verbosity": "queryPlanner",
        })
        .run()?;
    let winning = explained
        .get_document("queryPlanner")?
        .get("winningPlan")
        .cloned()
        .unwrap_or(Bson::Null);
    println!("store query: {}", read.query);
    println!("MongoDB's winning plan: {winning}");
    let mut counting = Counting {
        inner: &mut store,
        returned: 0,
    };
    let done = execute(&request, &op, &mut counting, &mut OpEnv::new())?;
    let received = done.result.as_array().map_or(0, Vec::len);
    println!(
        "store returned {}, user received {received}",
        counting.returned
    );
    db.drop().run()?;
    assert!(has_stage(&winning, "IXSCAN"), "{winning}");
    assert_eq!(received, 100);
    assert_eq!(counting.returned, received);
    Ok(())
}
