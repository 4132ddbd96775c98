//! The conformance suite: every case of every `tests/conformance/*.json` file, through every
//! engine of the library, and through the built `rolegate test` command. The cases of
//! `tests/conformance/pending/*.json` state answers rolegate does not give yet (each case's
//! notes say why): they must still fail, so that a fix moves them into the suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use rolegate::testing::{EngineChoice, load_case_file, run_case};

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    files
}

#[test]
fn every_case_passes_through_the_library() {
    let mut failures = Vec::new();
    let mut total = 0;
    for file in case_files() {
        let cases = load_case_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cases.is_empty(), "{} holds no cases", file.display());
        for engine in EngineChoice::ALL {
            for case in &cases {
                total += 1;
                let result = run_case(case, engine);
                if !result.passed {
                    failures.push(format!(
                        "{}: {} [{} engine]: {}\n    expected: {}\n    actual:   {}",
                        file.file_name().unwrap().to_string_lossy(),
                        result.name,
                        engine.name(),
                        result.message,
                        result.expected,
                        result.actual
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} conformance runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn case_names_are_unique_and_tagged() {
    const TAGS: [&str; 6] = [
        "[documented]",
        "[inferred]",
        "[uncertain]",
        "[spec]",
        "[corpus]",
        "[decision]",
    ];
    for file in case_files() {
        for case in load_case_file(&file).unwrap() {
            assert!(
                TAGS.iter().any(|t| case.notes.starts_with(t)),
                "{}: case `{}` has notes without a tag: {:?}",
                file.display(),
                case.name,
                case.notes
            );
        }
    }
}

#[test]
fn pending_cases_still_fail() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/pending");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut passing = Vec::new();
    for file in files {
        for case in load_case_file(&file).unwrap_or_else(|e| panic!("{e}")) {
            assert!(
                case.notes.contains("pending"),
                "{}: `{}` must say in its notes why it is pending",
                file.display(),
                case.name
            );
            for engine in EngineChoice::ALL {
                let result = run_case(&case, engine);
                assert!(
                    !result.message.starts_with("cannot run"),
                    "{}: `{}` cannot run: {}",
                    file.display(),
                    case.name,
                    result.message
                );
                if result.passed {
                    passing.push(format!("{} [{} engine]", case.name, engine.name()));
                }
            }
        }
    }
    assert!(
        passing.is_empty(),
        "pending cases now pass; move them into the suite: {}",
        passing.join(", ")
    );
}
