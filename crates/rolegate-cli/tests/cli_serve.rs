//! `rolegate serve` as a user runs it: an app without an `app_id` is refused (exit 4); the
//! example app is served on a free port (`/health` answers over a real socket), and ctrl-c
//! (SIGINT) stops it gracefully with exit 0. The HTTP API itself is tested in
//! `crates/rolegate-serve/tests/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::{code, rolegate, stderr, write};

#[test]
fn an_app_without_an_app_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app/realm_config.json", r#"{"name": "x"}"#);
    let out = rolegate(
        &["serve", "app", "--store", "data", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("app_id"), "{}", stderr(&out));
}

/// In a build without the `mongodb` feature, `--mongodb` is a usage error (exit 2) that says
/// how to build with it, before the app or the store is touched.
#[cfg(not(feature = "mongodb"))]
#[test]
fn mongodb_without_the_feature_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app");
    let out = rolegate(
        &[
            "serve",
            app.to_str().unwrap(),
            "--store",
            "data",
            "--mongodb",
            "mongodb://user:pw@127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--features mongodb"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("pw@"), "{}", stderr(&out));
    assert!(!dir.path().join("data").exists(), "no store was created");
}

#[cfg(unix)]
#[test]
fn serves_the_example_app_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["serve", app.to_str().unwrap(), "--store"])
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("serving"))
        .expect("a `serving` line");
    let addr = serving
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))
        .expect("the listen address")
        .to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("/health") && l.contains("status=200")),
        "{rest:?}"
    );
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}
