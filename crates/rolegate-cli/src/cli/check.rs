//! `rolegate check PATH`: load and validate an app directory or one rule file, then run the lint
//! pass ([`rolegate::lint`]) over rules that loaded.
//!
//! Input: the path. Output: every error and warning with its file, JSON path, stable code and
//! hint (human: one diagnostic per line, then a summary; json: one object per diagnostic per
//! line with the keys of every problem of the command line — `severity`, `code`, `message`,
//! `file`, `line`, `path`, `span`, `hint` ([`super::report`]) — then a summary object
//! `{"valid", "errors", "warnings"}`). The warnings are those of loading (duplicate keys, unknown
//! keys with a did-you-mean hint, ...) followed by those of the lint pass; see
//! [`rolegate::lint`] for the codes. A folder with no App Services file is not an app: an error.
//!
//! Exit codes ([`super::exit`]): 0 when valid; 1 when there are warnings and `--deny-warnings`
//! is given; 4 when the rules are invalid — a file that is not UTF-8 or not JSON, or cannot be
//! read, included (the diagnostics are printed) — or the path does not exist.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rolegate::Diagnostics;
use serde_json::json;

use super::report::Problem;
use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// An app directory (either layout) or one rule file.
    pub path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors (exit 1 when there is any).
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Runs `check`.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    if !args.path.exists() {
        return Err(CliError::new(
            Exit::Rules,
            vec![
                Problem::error("io", "cannot read: no such file or directory")
                    .in_file(args.path.display().to_string()),
            ],
        ));
    }
    let options = rolegate::LoadOptions::default();
    let diagnostics = match rolegate::RuleSet::load(&args.path, &options) {
        Ok(set) => rolegate::lint::check_warnings(&set),
        Err(e) => e.diagnostics,
    };
    report(&diagnostics, args, out)
}

/// Prints `diagnostics` and decides the exit code.
pub fn report(
    diagnostics: &Diagnostics,
    args: &CheckArgs,
    out: &mut dyn Write,
) -> Result<Exit, CliError> {
    let errors = diagnostics.errors().count();
    let warnings = diagnostics.warnings().count();
    let valid = errors == 0;
    for d in &diagnostics.0 {
        emit(out, Problem::from_diagnostic(d).render(args.format))?;
    }
    match args.format {
        Format::Human => {
            let verdict = if valid { "valid" } else { "invalid" };
            emit(
                out,
                format_args!(
                    "{}: {verdict} ({errors} errors, {warnings} warnings)",
                    args.path.display()
                ),
            )?;
        }
        Format::Json => emit(
            out,
            json!({"valid": valid, "errors": errors, "warnings": warnings}),
        )?,
    }
    Ok(if !valid {
        Exit::Rules
    } else {
        Exit::answer(!(args.deny_warnings && warnings > 0))
    })
}
