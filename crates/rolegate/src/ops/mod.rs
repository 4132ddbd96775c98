//! Stage: whole MongoDB operations under the rules, without I/O. Input: an operation body as
//! App Services clients send it ([`Operation::from_body`]), a prepared request, and the
//! documents a store returns. Output: what to read ([`OperationPlan`]), then what to write,
//! all or nothing, and the client's result ([`Decided`]). [`execute`] drives a synchronous
//! [`Store`]; an asynchronous host runs the same two steps around its own awaits:
//!
//! ```text
//! let plan = request.plan_operation(&op)?;                  // what to read
//! let stored = store.find(plan.read()).await?;              // the host's I/O
//! let decided = request.decide_operation(&op, &plan, stored, &mut env)?;
//! store.write(decided.writes).await?;                       // all or nothing; on a conflict,
//!                                                           // start again from the plan
//! ```
//!
//! `docs/semantics.md` (section 5) states the semantics of each action.
//!
//! # Example
//!
//! ```rust
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rolegate::ops::{execute, MemoryStore, Namespace, OpEnv, Operation};
//! use rolegate::{LoadOptions, RuleSet, Rules};
//!
//! let rules = Rules::new(RuleSet::from_json(
//!     "data_sources/mongodb-atlas/shop/orders/rules.json",
//!     &serde_json::json!({"database": "shop", "collection": "orders", "roles": [
//!         {"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true, "write": true}]}),
//!     &LoadOptions::default(),
//! )?);
//! let mut store = MemoryStore::new(); // or rolegate_store::EmbeddedStore::open("data")?
//! store.insert_unchecked(&Namespace::new("shop", "orders"), [
//!     bson::doc! {"_id": 1, "owner": "alice", "total": 30},
//!     bson::doc! {"_id": 2, "owner": "bob", "total": 12},
//! ]);
//! let op = Operation::from_body(&bson::doc! {"name": "updateMany", "arguments": [
//!     {"database": "shop", "collection": "orders", "query": {}, "update": {"$inc": {"total": 1}}}]})?;
//! let ctx = rules.context().user(bson::doc! {"id": "alice"}).build()?;
//! let orders = rules.operation_collection(&op)?;
//! let request = orders.prepare(&ctx);
//! let done = execute(&request, &op, &mut store, &mut OpEnv::new())?;
//! // Bob's order is invisible to Alice: matched 1, modified 1.
//! assert_eq!(done.result, bson::Bson::Document(bson::doc! {"matchedCount": 1, "modifiedCount": 1}));
//! # Ok(())
//! # }
//! ```

mod aggregate;
mod call_context;
mod calls;
mod error;
mod memory;
mod request;
mod run;
mod store;
mod targets;
#[cfg(test)]
mod tests;
mod user_data;

pub use call_context::{CustomDataSource, attach_custom_data, call_request};
pub use calls::CallMemo;
pub use error::OpError;
pub use memory::MemoryStore;
pub use request::Operation;
pub use run::{Decided, MAX_ATTEMPTS, OpEnv, OperationPlan, execute};
pub use store::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};
pub use user_data::{custom_user_data_read, load_custom_user_data, pick_custom_user_data};
