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

mod aggregate;
mod error;
mod memory;
mod request;
mod run;
mod store;
#[cfg(test)]
mod tests;

pub use error::OpError;
pub use memory::MemoryStore;
pub use request::Operation;
pub use run::{Decided, MAX_ATTEMPTS, OpEnv, OperationPlan, execute};
pub use store::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};
