//! The `rolegate` binary: parses the command line (clap derive) and dispatches to one module per
//! command in `src/cli/` (`check`, `eval`, `test`, `bench`, `prop`, `diff`, `call`, `import`,
//! `export`). Exit codes, one table for every command: see `src/cli/exit.rs` (0 yes, 1 no, 2
//! usage, 3 unusable input, 4 rules that do not load).

#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main().into()
}
