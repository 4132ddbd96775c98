//! `rolegate check PATH`: load and validate an app directory or one rule file, then run the lint
//! pass ([`rolegate::lint`]) over rules that loaded.
//!
//! Input: the path. Output: every error and warning with its file, JSON path, stable code and
//! hint (human: one diagnostic per line, then a summary; json: one object per diagnostic per
//! line with `severity`, `code`, `file`, `json_path`, `span`, `message`, `hint`, then a summary
//! object `{"valid", "errors", "warnings"}`). The warnings are those of loading followed by
//! those of the lint pass; see [`rolegate::lint`] for the codes. Exit 0 when valid, 1 when not
//! (or when there are warnings and `--deny-warnings` is given), 2 when the path, or a file under
//! it, cannot be read (the diagnostics are still printed). A file that is not valid JSON is
//! invalid rules (1).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rolegate::{Diagnostic, Diagnostics, Severity};
use serde_json::json;

use super::{CliError, Exit, Format, emit, load_rules};

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
        return Err(CliError::new(format!(
            "cannot read `{}`: no such file or directory",
            args.path.display()
        )));
    }
    let diagnostics = match load_rules(&args.path) {
        Ok(set) => rolegate::lint::check_warnings(&set),
        Err(e) => e.diagnostics,
    };
    let exit = report(&diagnostics, args, out)?;
    // A file that could not be read is an I/O error, not a verdict on the rules.
    let unreadable = diagnostics.errors().any(|d| d.code == "io");
    Ok(if unreadable { Exit::Usage } else { exit })
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
        match args.format {
            Format::Human => emit(out, d)?,
            Format::Json => emit(out, diagnostic_json(d))?,
        }
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
    Ok(Exit::answer(valid && !(args.deny_warnings && warnings > 0)))
}

/// One diagnostic as a JSON object.
pub fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    json!({
        "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "code": d.code,
        "file": &*d.place.file,
        "json_path": d.place.json_path,
        "span": d.place.span.as_ref().map(|s| [s.start, s.end]),
        "message": d.message,
        "hint": d.hint,
    })
}
