//! `rolegate test FILE...`: run conformance case files (`case-format.md`).
//!
//! Input: case files. Output (human): each failed case with its message, expected and actual
//! answers, then `N passed, M failed`; (json): one result object per case per line
//! (`{name, file, passed, expected, actual, message}`). Exit 0 when every case passed, 1 when
//! one failed, 2 when a file cannot be read or is not a valid case file (nothing is run then).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rolegate::testing::{EngineChoice, load_case_file, run_case};
use serde_json::json;

use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Case files (JSON arrays of cases).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Runs `test`.
pub fn run(args: &TestArgs, out: &mut dyn Write) -> Result<Exit, CliError> {
    let mut files = Vec::new();
    for path in &args.files {
        let cases = load_case_file(path).map_err(|e| CliError::new(e.to_string()))?;
        files.push((path, cases));
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for (path, cases) in &files {
        for case in cases {
            let result = run_case(case, EngineChoice::Reference);
            if result.passed {
                passed += 1;
            } else {
                failed += 1;
            }
            match args.format {
                Format::Json => emit(
                    out,
                    json!({
                        "name": result.name,
                        "file": path.display().to_string(),
                        "passed": result.passed,
                        "expected": result.expected,
                        "actual": result.actual,
                        "message": result.message,
                    }),
                )?,
                Format::Human if !result.passed => {
                    emit(
                        out,
                        format_args!(
                            "FAIL {} ({}): {}",
                            result.name,
                            path.display(),
                            result.message
                        ),
                    )?;
                    emit(out, format_args!("  expected: {}", result.expected))?;
                    emit(out, format_args!("  actual:   {}", result.actual))?;
                }
                Format::Human => {}
            }
        }
    }
    if args.format == Format::Human {
        emit(out, format_args!("{passed} passed, {failed} failed"))?;
    }
    Ok(Exit::answer(failed == 0))
}
