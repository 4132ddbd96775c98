//! What the command-line tests share: running the `rolegate` binary in a folder (with or
//! without stdin), reading its exit code and output, and writing input files.
#![allow(
    dead_code,
    reason = "each test file uses the helpers it needs; the others are unused there"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs `rolegate args...` in `dir`.
pub fn rolegate(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rolegate")
}

/// Runs `rolegate args...` in `dir` with `input` on stdin.
pub fn rolegate_stdin(args: &[&str], dir: &Path, input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rolegate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait for rolegate")
}

/// The exit code (a signal is a failure of the test).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code, not a signal")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 stderr")
}

/// The non-empty lines of `text`, each parsed as JSON.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Writes `content` to `dir/rel`, creating folders; the file's path.
pub fn write(dir: &Path, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("create folders");
    std::fs::write(&path, content).expect("write file");
    path
}

/// Writes `value` as pretty JSON to `dir/rel`; the file's path.
pub fn write_json(dir: &Path, rel: &str, value: &Value) -> PathBuf {
    write(dir, rel, serde_json::to_string_pretty(value).expect("JSON"))
}
