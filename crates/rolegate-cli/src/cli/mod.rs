//! Stage: the command line. Input: `argv`. Output: text on stdout/stderr and an [`Exit`] code.
//!
//! `main.rs` parses the arguments ([`Cli`], clap derive) and calls [`run`]; each command lives in
//! its own module ([`check`], [`eval`], [`test`](mod@test), [`bench`](mod@bench), [`prop`],
//! [`diff`], [`call`], [`import`], [`export`], [`serve`]) and returns an [`Exit`] or a [`CliError`]. Every problem with the input — a bad path, a file that is not UTF-8
//! or not JSON, a bad line of a JSON Lines file, a bad request field — is a [`report::Problem`] on
//! stderr (text, or JSON with `--format json`) naming the file, line and JSON path, and the exit
//! code of its kind ([`exit`]: one table for every command), never a panic. [`inputs`] reads the
//! files (`-` is stdin), [`decide`] makes the decisions `eval` prints and `bench` times;
//! [`store`] opens the data store of `call`, `import` and `export` (the app's data folder by
//! default), [`call_context`] builds a call's request context, [`doc_file`] reads the documents
//! `import` loads, and [`ejson`] prints values as canonical Extended JSON.

pub mod bench;
pub mod call;
pub mod call_context;
pub mod check;
pub mod coverage;
pub mod decide;
pub mod diff;
pub mod doc_file;
pub mod ejson;
pub mod eval;
pub mod exit;
pub mod export;
pub mod import;
pub mod inputs;
pub mod prop;
pub mod report;
pub mod serve;
pub mod store;
pub mod test;
pub mod users;

use std::fmt;
use std::io::Write;

use clap::{Parser, Subcommand, ValueEnum};
use rolegate::Diagnostic;

pub use exit::Exit;
use report::Problem;

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
    /// Run one MongoDB operation (the body an App Services client sends) under the rules on a
    /// data store; print its result as canonical Extended JSON.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Call(call::CallArgs),
    /// Load documents (Extended JSON lines, or a JSON array) into the app's embedded store,
    /// all or nothing, as the system user.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Import(import::ImportArgs),
    /// Print a collection of the app's embedded store as canonical Extended JSON, one document
    /// per line, in natural order.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Export(export::ExportArgs),
    /// Check properties of the rules over generated users, requests and documents.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Prop(prop::PropArgs),
    /// Find requests that two versions of the rules decide differently.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Diff(diff::DiffArgs),
    /// Serve the app over HTTP to App Services clients (Realm Web, the Realm SDKs via
    /// `baseUrl`): logins, sessions and MongoDB operations under the rules, on its store.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Serve(serve::ServeArgs),
    /// Manage the users `serve` keeps in the app's embedded store: list, create, disable,
    /// enable, reset a password (stop the server first: the store allows one process).
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Users(users::UsersArgs),
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
/// to stderr with exit 2 (as a JSON problem when `--format json` is on the command line).
pub fn main() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return Exit::Yes;
            }
            let args: Vec<String> = std::env::args().collect();
            let json = args.windows(2).any(|w| w == ["--format", "json"])
                || args.iter().any(|a| a == "--format=json");
            if json {
                let rendered = e.render().to_string();
                let message = rendered
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string();
                let problem = Problem::error("usage", message).with_hint("see `--help`");
                report::warn(&problem, Format::Json);
            } else {
                let _ = e.print();
            }
            return Exit::Usage;
        }
    };
    run(cli)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Exit {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (result, format) = match cli.command {
        Command::Check(args) => (check::run(&args, &mut out), args.format),
        Command::Eval(args) => (eval::run(&args, &mut out), args.format),
        Command::Test(args) => (test::run(&args, &mut out), args.format.into()),
        Command::Bench(args) => (bench::run(&args, &mut out), args.format),
        Command::Call(args) => (call::run(&args, &mut out), Format::Human),
        Command::Import(args) => (import::run(&args, &mut out), Format::Human),
        Command::Export(args) => (export::run(&args, &mut out), Format::Human),
        Command::Prop(args) => (prop::run(&args, &mut out), args.format),
        Command::Diff(args) => (diff::run(&args, &mut out), args.format),
        Command::Serve(args) => (serve::run(&args), Format::Human),
        Command::Users(args) => (users::run(&args, &mut out), Format::Human),
    };
    let _ = out.flush();
    match result {
        Ok(exit) => exit,
        Err(e) => {
            if !e.quiet {
                for p in &e.problems {
                    report::warn(p, format);
                }
            }
            e.exit
        }
    }
}

/// A problem that stops a command, with the exit code of its kind ([`exit`]) and every
/// problem found (all the bad lines of a file, not only the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub exit: Exit,
    pub problems: Vec<Problem>,
    /// Nothing to report (stdout was closed by the reader, as in `rolegate test ... | head`).
    pub quiet: bool,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl CliError {
    /// Stops with `exit` and `problems`.
    pub fn new(exit: Exit, problems: Vec<Problem>) -> Self {
        CliError {
            exit,
            problems,
            quiet: false,
        }
    }

    /// A wrong command line (exit 2).
    pub fn usage(code: &str, message: impl Into<String>) -> Self {
        CliError::new(Exit::Usage, vec![Problem::error(code, message)])
    }

    /// An input file that cannot be used (exit 3).
    pub fn input(problem: Problem) -> Self {
        CliError::new(Exit::Input, vec![problem])
    }

    /// Rules that do not load (exit 4): every diagnostic, warnings included.
    pub fn rules(diagnostics: &[Diagnostic]) -> Self {
        CliError::new(
            Exit::Rules,
            diagnostics.iter().map(Problem::from_diagnostic).collect(),
        )
    }
}

/// Writes one line to `out`; a closed or failing stdout stops the command (exit 3).
pub fn emit(out: &mut dyn Write, line: impl fmt::Display) -> Result<(), CliError> {
    writeln!(out, "{line}").map_err(|e| CliError {
        exit: Exit::Input,
        problems: vec![Problem::error("io", format!("cannot write output: {e}"))],
        quiet: e.kind() == std::io::ErrorKind::BrokenPipe,
    })
}
