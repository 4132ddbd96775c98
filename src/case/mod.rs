//! Conformance cases (`case-format.md`): parsing and running them.
