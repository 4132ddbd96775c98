//! `rolegate test FILE...`: run conformance case files (`case-format.md`).
//!
//! Input: case files. Output (human): each failed case with its message, expected and actual
//! answers, then `N passed, M failed`; (json): one result object per case per line
//! (`{name, file, passed, expected, actual, message}`). Exit codes ([`super::exit`]): 0 when
//! every case passed, 1 when one failed, 2 for a wrong command line, 3 when a file cannot be read
//! or is not a valid case file (every problem is printed, and nothing is run then).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rolegate::testing::{CaseFileError, EngineChoice, parse_cases, run_case};
use serde_json::{Value, json};

use super::inputs::{check_request, read_json_text, read_text, shown};
use super::report::{Problem, plain_serde_message};
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
    let mut problems = Vec::new();
    for path in &args.files {
        match load(path) {
            Ok(cases) => files.push((path, cases)),
            Err(e) => problems.extend(e.problems),
        }
    }
    if !problems.is_empty() {
        return Err(CliError::new(Exit::Input, problems));
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

/// Reads one case file: UTF-8 and JSON (with the place of an error), the shape of every case's
/// request (every bad key with its JSON path), then the cases.
fn load(path: &std::path::Path) -> Result<Vec<rolegate::testing::Case>, CliError> {
    let text = read_text(path)?;
    let file = shown(path);
    let value = read_json_text(&text, &file)?;
    let mut found = Vec::new();
    if let Value::Array(cases) = &value {
        for (i, case) in cases.iter().enumerate() {
            if let Some(request) = case.get("request").filter(|r| !r.is_null()) {
                check_request(request, &format!("[{i}].request"), &mut found);
            }
        }
    }
    if !found.is_empty() {
        return Err(CliError::new(
            Exit::Input,
            found
                .into_iter()
                .map(|(at, message, hint)| {
                    let p = Problem::error("invalid-case", message)
                        .in_file(file.clone())
                        .at_path(at);
                    match hint {
                        Some(h) => p.with_hint(h),
                        None => p,
                    }
                })
                .collect(),
        ));
    }
    parse_cases(&text).map_err(|e| {
        let (message, line) = match e {
            CaseFileError::Json { source, .. } => (
                format!(
                    "not a valid case file: {}",
                    plain_serde_message(&source.to_string(), "one of the accepted forms")
                ),
                Some(source.line()),
            ),
            CaseFileError::DuplicateName { name, .. } => (
                format!("case names must be unique; `{name}` appears twice"),
                None,
            ),
            other => (other.to_string(), None),
        };
        let mut p = Problem::error("invalid-case", message)
            .in_file(file)
            .with_hint("the format of a case file: docs/case-format.md");
        p.line = line;
        CliError::input(p)
    })
}
