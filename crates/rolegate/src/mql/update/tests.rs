//! Unit tests of the update language.
