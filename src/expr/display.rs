//! Canonical JSON rendering of expressions (for explanations and error messages).
