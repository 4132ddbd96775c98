//! Fuzz target `load_rules`: see `fuzz/checks/load_rules.rs` for what it generates and checks.

#![no_main]

#[path = "../checks/load_rules.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
