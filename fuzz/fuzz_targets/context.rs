//! Fuzz target `context`: see `fuzz/checks/context.rs` for what it generates and checks.

#![no_main]

#[path = "../checks/context.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::run(data);
});
