//! The documented conformance cases and the operation cases through the `rolegate test`
//! command, as a user runs them.
//! The library runs the same cases through both engines in `crates/rolegate/tests/conformance.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::Command;

use rolegate::testing::load_case_file;

/// The conformance folder of the library crate.
fn conformance(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rolegate/tests/conformance")
        .join(file)
}

#[test]
fn the_cli_passes_the_documented_cases() {
    passes_through_the_cli("doc-cases.json");
}

#[test]
fn the_cli_passes_the_operation_cases() {
    passes_through_the_cli("operations-cases.json");
}

fn passes_through_the_cli(name: &str) {
    let file = conformance(name);
    let expected_count = load_case_file(&file).unwrap().len();
    let output = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .arg("test")
        .arg(&file)
        .args(["--format", "json"])
        .output()
        .expect("run rolegate");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let mut failed = Vec::new();
    let mut seen = 0;
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let result: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        seen += 1;
        if result["passed"] != serde_json::Value::Bool(true) {
            failed.push(format!("{}: {}", result["name"], result["message"]));
        }
    }
    assert_eq!(
        seen,
        expected_count,
        "one JSON line per case; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        failed.is_empty(),
        "{} cases failed through the CLI:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "exit code with every case passing"
    );
}
