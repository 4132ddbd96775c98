//! Fuzz target `evaluate`: see `fuzz/checks/evaluate.rs` for what it generates and checks.

#![no_main]

#[path = "../checks/evaluate.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::run(data);
});
