//! Stage: the command line. Input: `argv`. Output: text on stdout/stderr and an [`Exit`] code.
//!
//! `main.rs` parses the arguments ([`Cli`], clap derive) and calls [`run`]; each command lives in
//! its own module ([`check`], [`eval`], [`test`], [`bench`]) and returns an [`Exit`]. Every
//! problem with the input — a bad path, a file that is not JSON, an empty file — is a message on
//! stderr and exit code 2, never a panic.

pub mod bench;
pub mod check;
pub mod eval;
pub mod exit;
pub mod inputs;
pub mod test;

use std::fmt;
use std::io::Write;
use std::path::Path;

use clap::{Parser, Subcommand, ValueEnum};
use rolegate::{LoadError, RuleSet};
use serde_json::Value;

pub use exit::Exit;

/// Runs MongoDB Atlas App Services (Realm / Stitch) data-access rules exactly.
#[derive(Debug, Parser)]
#[command(name = "rolegate", version, about, after_help = exit::EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate an app directory or a rule file; print every error and warning.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Check(check::CheckArgs),
    /// Decide reads or writes of documents for one user.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Eval(eval::EvalArgs),
    /// Run conformance case files.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Test(test::TestArgs),
    /// Measure how fast the rules decide: documents/s, ns per document, prepare and compile time.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Bench(bench::BenchArgs),
}

/// Which engine decides (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum EngineArg {
    /// The compiled decision program.
    #[default]
    Compiled,
    /// The reference evaluator (a direct walk over the rules).
    Reference,
}

impl From<EngineArg> for rolegate::EngineKind {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Compiled => rolegate::EngineKind::Compiled,
            EngineArg::Reference => rolegate::EngineKind::Reference,
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Text for people.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Parses `argv` and runs the command. Help and version go to stdout with exit 0; usage errors
/// to stderr with exit 2.
pub fn main() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            };
        }
    };
    run(cli)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Exit {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Check(args) => check::run(&args, &mut out),
        Command::Eval(args) => eval::run(&args, &mut out),
        Command::Test(args) => test::run(&args, &mut out),
        Command::Bench(args) => bench::run(&args, &mut out),
    };
    let _ = out.flush();
    match result {
        Ok(exit) => exit,
        Err(e) => {
            if !e.quiet {
                eprintln!("rolegate: {e}");
            }
            Exit::Usage
        }
    }
}

/// A problem that stops a command: unusable input or output (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    /// Nothing to report (stdout was closed by the reader, as in `rolegate test ... | head`).
    pub quiet: bool,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            quiet: false,
        }
    }
}

/// Writes one line to `out`; a closed or failing stdout stops the command.
pub fn emit(out: &mut dyn Write, line: impl fmt::Display) -> Result<(), CliError> {
    writeln!(out, "{line}").map_err(|e| CliError {
        message: format!("cannot write output: {e}"),
        quiet: e.kind() == std::io::ErrorKind::BrokenPipe,
    })
}

/// Reads a whole text file.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("cannot read `{}`: {e}", path.display())))
}

/// Reads a JSON file holding one value (an empty file is an error).
pub fn read_json(path: &Path) -> Result<Value, CliError> {
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(CliError::new(format!("`{}` is empty", path.display())));
    }
    serde_json::from_str(&text)
        .map_err(|e| CliError::new(format!("`{}` is not valid JSON: {e}", path.display())))
}

/// Reads a JSON Lines file: one JSON value per non-blank line, with its 1-based line number.
pub fn read_json_lines(path: &Path) -> Result<Vec<(usize, Value)>, CliError> {
    let text = read_text(path)?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line).map_err(|e| {
            CliError::new(format!(
                "`{}` line {}: not valid JSON: {e}",
                path.display(),
                i + 1
            ))
        })?;
        values.push((i + 1, value));
    }
    if values.is_empty() {
        return Err(CliError::new(format!(
            "`{}` holds no JSON lines",
            path.display()
        )));
    }
    Ok(values)
}

/// Loads and validates an app directory or a rule file.
pub fn load_rules(path: &Path) -> Result<RuleSet, LoadError> {
    rolegate::RuleSet::load(path, &rolegate::LoadOptions::default())
}
