//! Fuzz target `expansion`: see `fuzz/checks/expansion.rs` for what it generates and checks.

#![no_main]

#[path = "../checks/expansion.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
