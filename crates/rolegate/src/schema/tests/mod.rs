//! Unit tests of schemas: internals the public API does not expose, tested from inside the crate.

mod expressions;
mod parse;
mod validate;
