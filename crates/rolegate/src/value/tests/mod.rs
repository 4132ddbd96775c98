//! Unit tests of values: internals the public API does not expose, tested from inside the crate.

mod compare;
mod doc_cases;
mod eval;
mod path;
mod regex;
