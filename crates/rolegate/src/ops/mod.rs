//! Stage: whole MongoDB operations under the rules (work in progress: the store boundary).
//! Input: an operation body as App Services clients send it. Output: what to read from the
//! store, then what to write and the operation's result.

mod store;

pub use store::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};
