//! Unit tests of queries and plans: internals the public API does not expose, tested from inside the crate.

mod memory;
mod plan;
