//! The `rolegate` binary: parses arguments and dispatches to [`rolegate::cli`]... (see `src/cli`).
fn main() {}
