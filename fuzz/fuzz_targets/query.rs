//! Fuzz target `query`: see `fuzz/checks/query.rs` for what it generates and checks.

#![no_main]

#[path = "../checks/query.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::run(data);
});
