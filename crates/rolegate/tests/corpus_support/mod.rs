//! Where the real-rules corpus is, and how a test that needs it says it skipped.
//!
//! The corpus (410 rule files of public apps, with a `MANIFEST.tsv`) is not part of this
//! repository. The tests that need it read it from the folder named by `ROLEGATE_CORPUS_DIR`,
//! else from the shared checkout that CI places beside the repository
//! ([`DEFAULT_CORPUS`], relative to this crate's folder).
//!
//! When the folder has no `MANIFEST.tsv`, a test:
//!
//! * under `CI=true`, fails (CI must run every test);
//! * otherwise writes one line `SKIPPED: <test> needs ...` to the process's real standard error
//!   ([`std::io::stderr`] directly, which the test harness does not capture, unlike
//!   `eprintln!`), so the skip shows in the normal `cargo test` output, and passes.
//!
//! [`check_skip_is_visible`] proves both by running the test binary itself on a missing folder.

#![allow(
    dead_code,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "each test file uses a part of this module; a bad manifest fails the test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that names the corpus folder.
pub const CORPUS_ENV: &str = "ROLEGATE_CORPUS_DIR";

/// The corpus folder when [`CORPUS_ENV`] is not set, relative to `CARGO_MANIFEST_DIR`
/// (`crates/rolegate`): the shared checkout beside the repository.
pub const DEFAULT_CORPUS: &str = "../../../shared/corpus/real-rules";

/// The corpus folder: [`CORPUS_ENV`] when set and not empty, else [`DEFAULT_CORPUS`].
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os(CORPUS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CORPUS),
    }
}

/// `path` with its `..` components resolved by name (the folder need not exist): for messages
/// only, since a symbolic link makes the name differ from the folder.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The corpus folder for `test`, or `None` after reporting the skip (see the module docs).
/// Panics under `CI=true` when the corpus is missing.
pub fn corpus_or_skip(test: &str) -> Option<PathBuf> {
    let dir = corpus_dir();
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: the real-rules corpus is missing (no MANIFEST.tsv in {}); CI=true requires it \
         (set {CORPUS_ENV} to its folder)",
        normalize(&dir).display()
    );
    let line = format!(
        "SKIPPED: {test} needs the real-rules corpus (MANIFEST.tsv) in {}; set {CORPUS_ENV} to \
         its folder to run it\n",
        normalize(&dir).display()
    );
    // Not `eprintln!`: the test harness captures that and shows it only when a test fails.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.flush();
    None
}

/// Runs each of `tests` (test function names of the current test binary) in a child process of
/// this very binary with [`CORPUS_ENV`] pointing at a missing folder: without `CI` the test must
/// pass and its `SKIPPED: <test>` line must be on the child's standard error even though the
/// harness captures test output; with `CI=true` it must fail.
pub fn check_skip_is_visible(tests: &[&str]) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let missing =
        std::env::temp_dir().join(format!("rolegate-no-corpus-here-{}", std::process::id()));
    assert!(!missing.exists(), "{} should not exist", missing.display());
    for test in tests {
        let run = |ci: Option<&str>| {
            let mut cmd = Command::new(&exe);
            cmd.args(["--exact", test, "--test-threads=1"])
                .env(CORPUS_ENV, &missing)
                .env_remove("CI");
            if let Some(ci) = ci {
                cmd.env("CI", ci);
            }
            cmd.output().expect("running the test binary")
        };
        let out = run(None);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{test} without the corpus should pass (skipped)\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stdout.contains("1 passed"),
            "{test} did not run in the child (wrong name?)\nstdout:\n{stdout}"
        );
        let prefix = format!("SKIPPED: {test} needs the real-rules corpus");
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "{test}: no visible `{prefix}` line on stderr\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let out = run(Some("true"));
        assert!(
            !out.status.success(),
            "{test} without the corpus should fail under CI=true\nstdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// One rule file of the corpus: the name it is saved under in the corpus folder, and its path
/// in its app (which decides its layout).
pub struct Row {
    pub saved_name: String,
    pub path: String,
}

/// The rows of the corpus's `MANIFEST.tsv` (its header checked: `saved_name`, then the path in
/// the third column).
pub fn manifest(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    assert_eq!(header.first(), Some(&"saved_name"));
    assert_eq!(header.get(2), Some(&"path"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Row {
                saved_name: cols[0].to_string(),
                path: cols[2].to_string(),
            }
        })
        .collect()
}
