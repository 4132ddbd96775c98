//! `rolegate test FILE...`: run conformance case files (`case-format.md`).
//!
//! Input: case files. Output (human): each failed case with its message, expected and actual
//! answers, then `N passed, M failed`; (json): one result object per case per line
//! (`{name, file, passed, expected, actual, message}`). Exit codes ([`super::exit`]): 0 when
//! every case passed, 1 when one failed, 2 for a wrong command line, 3 when a file cannot be read
//! or is not a valid case file (every problem is printed, and nothing is run then).
//!
//! With `--coverage` (`docs/coverage.md`) the cases run through
//! [`Coverage`], which records the decision points of their rules
//! that they reach, and the coverage report follows the results ([`super::coverage`]):
//! after them on stdout (human: the text report; json: one last line `{"coverage": REPORT}`;
//! html: the page alone, the results summarized in it), or in the `--output` file (the report
//! alone; the results on stdout as without `--coverage`, in text for `--format html`).
//! `--min-coverage PCT` exits 1 (the answer is no) when less than PCT percent of the decision
//! points were reached.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use rolegate::testing::{CaseFileError, Coverage, EngineChoice, parse_cases, run_case};
use serde_json::{Value, json};

use super::coverage::Summary;
use super::inputs::{check_request, read_json_text, read_text, shown};
use super::report::{Problem, plain_serde_message};
use super::{CliError, Exit, Format, emit};

/// Arguments of `rolegate test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Case files (JSON arrays of cases).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format (`html`: the coverage report as a page; needs --coverage).
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub format: TestFormat,
    /// Report which decision points of the rules the cases reach (docs/coverage.md).
    #[arg(long)]
    pub coverage: bool,
    /// Exit 1 when less than PCT percent of the decision points are reached (0 to 100).
    #[arg(long, value_name = "PCT", requires = "coverage", value_parser = percent_arg)]
    pub min_coverage: Option<f64>,
    /// Write the coverage report to FILE instead of stdout (the results stay on stdout).
    #[arg(long, value_name = "FILE", requires = "coverage")]
    pub output: Option<PathBuf>,
}

/// The output formats of `test`: those of every command, and `html` for the coverage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TestFormat {
    /// Text for people.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
    /// A self-contained HTML page of the coverage report (with --coverage).
    Html,
}

impl From<TestFormat> for Format {
    /// How problems are reported: as JSON for `json`, else as text.
    fn from(f: TestFormat) -> Self {
        match f {
            TestFormat::Json => Format::Json,
            TestFormat::Human | TestFormat::Html => Format::Human,
        }
    }
}

/// `--min-coverage`: a number from 0 to 100.
fn percent_arg(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("`{text}` is not a percentage from 0 to 100")),
    }
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
    if args.format == TestFormat::Html && !args.coverage {
        return Err(CliError::usage(
            "usage",
            "`--format html` is the coverage report's: it needs `--coverage`",
        ));
    }
    let mut coverage = args.coverage.then(Coverage::new);
    // The format of the results on stdout; `None`: only the HTML page goes there.
    let results = match (args.format, &args.output) {
        (TestFormat::Json, _) => Some(Format::Json),
        (TestFormat::Html, None) => None,
        _ => Some(Format::Human),
    };
    let (mut passed, mut failed) = (0usize, Vec::new());
    for (path, cases) in &files {
        for case in cases {
            let result = match coverage.as_mut() {
                Some(coverage) => coverage.run_case(case),
                None => run_case(case, EngineChoice::Reference),
            };
            if result.passed {
                passed += 1;
            } else {
                failed.push((
                    path.display().to_string(),
                    result.name.clone(),
                    result.message.clone(),
                ));
            }
            match results {
                Some(Format::Json) => emit(
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
                Some(Format::Human) if !result.passed => {
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
                Some(Format::Human) | None => {}
            }
        }
    }
    if results == Some(Format::Human) {
        emit(
            out,
            format_args!("{passed} passed, {} failed", failed.len()),
        )?;
    }
    let all_passed = failed.is_empty();
    let met = match &coverage {
        Some(coverage) => {
            let summary = Summary {
                passed,
                failed,
                min_coverage: args.min_coverage,
            };
            report(coverage, &summary, args, out)?;
            summary.meets_minimum(coverage)
        }
        None => true,
    };
    Ok(Exit::answer(all_passed && met))
}

/// Prints or writes the coverage report (module docs).
fn report(
    coverage: &Coverage,
    summary: &Summary,
    args: &TestArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let text = match args.format {
        TestFormat::Human => super::coverage::text(coverage, summary),
        TestFormat::Html => super::coverage::html::page(coverage, summary),
        TestFormat::Json => {
            let report = super::coverage::json_report(coverage, summary);
            match args.output {
                Some(_) => format!("{report:#}\n"),
                None => format!("{}\n", json!({ "coverage": report })),
            }
        }
    };
    match &args.output {
        None => emit(out, text.trim_end_matches('\n')),
        Some(path) => std::fs::write(path, text).map_err(|e| {
            CliError::input(
                Problem::error("io", format!("cannot write the coverage report: {e}"))
                    .in_file(shown(path)),
            )
        }),
    }
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
