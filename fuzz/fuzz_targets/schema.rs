//! Fuzz target `schema`: see `fuzz/checks/schema.rs` for what it generates and checks.

#![no_main]

#[path = "../checks/schema.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::run(data);
});
