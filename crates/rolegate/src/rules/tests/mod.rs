//! Unit tests of the rule builder: internals the public API does not expose, tested from inside the crate.

mod sync;
mod validation;
