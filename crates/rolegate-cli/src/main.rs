//! The `rolegate` binary: parses the command line (clap derive) and dispatches to one module per
//! command in `src/cli/` (`check`, `eval`, `test`, `bench`). Exit codes: see `src/cli/exit.rs`
//! (0 yes, 1 no, 2 usage or unusable input).

#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main().into()
}
