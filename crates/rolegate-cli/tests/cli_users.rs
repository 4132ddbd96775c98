//! `rolegate users` as an administrator runs it on the example app's embedded store: create
//! (the password from stdin, never printed), list (text and JSON lines), disable and enable by
//! email or id, reset-password, and the errors: an unknown user, a password of the wrong
//! length, no password, and a store that a running `rolegate serve` holds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod support;
use support::{code, json_lines, rolegate, rolegate_stdin, stderr, stdout};

fn app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app")
}

#[test]
fn create_list_disable_enable_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    let app = app();
    let app = app.to_str().unwrap();
    let users = |args: &[&str]| {
        // `rolegate users ACTION APP [ARGS...] --store data`.
        let mut all = vec!["users", args[0], app];
        all.extend_from_slice(&args[1..]);
        all.extend_from_slice(&["--store", "data"]);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: &[&str], input: Option<&[u8]>| {
        let args = users(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match input {
            Some(i) => rolegate_stdin(&args, dir.path(), i),
            None => rolegate(&args, dir.path()),
        }
    };

    let created = run(&["create", "ann@example.com"], Some(b"secret-pw-1\n"));
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    assert!(!stdout(&created).contains("secret-pw-1"));
    assert!(stdout(&created).contains("ann@example.com"));
    let again = run(
        &["create", "ann@example.com", "--password-stdin"],
        Some(b"secret-pw-2\n"),
    );
    assert_eq!(code(&again), 3);
    assert!(
        stderr(&again).contains("name already in use"),
        "{}",
        stderr(&again)
    );
    let short = run(&["create", "bo@example.com"], Some(b"abc\n"));
    assert_eq!(code(&short), 3);
    assert!(
        stderr(&short).contains("between 6 and 128"),
        "{}",
        stderr(&short)
    );
    assert!(!stderr(&short).contains("abc"));
    let none = run(&["create", "bo@example.com"], Some(b""));
    assert_eq!(code(&none), 3);

    let listed = run(&["list", "--format", "json"], None);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let lines = json_lines(&stdout(&listed));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["email"], "ann@example.com");
    assert_eq!(lines[0]["providers"][0], "local-userpass");
    assert_eq!(lines[0]["disabled"], false);
    let id = lines[0]["id"].as_str().unwrap().to_string();

    let disabled = run(&["disable", "ann@example.com"], None);
    assert_eq!(code(&disabled), 0, "{}", stderr(&disabled));
    assert!(stdout(&disabled).contains("now disabled"));
    let human = run(&["list"], None);
    assert!(stdout(&human).contains(&id) && stdout(&human).contains("disabled"));
    let enabled = run(&["enable", &id], None);
    assert!(
        stdout(&enabled).contains("now enabled"),
        "{}",
        stdout(&enabled)
    );
    let twice = run(&["enable", &id], None);
    assert!(stdout(&twice).contains("already enabled"));

    let reset = run(
        &["reset-password", "ann@example.com"],
        Some(b"another-pw\n"),
    );
    assert_eq!(code(&reset), 0, "{}", stderr(&reset));
    assert!(!stdout(&reset).contains("another-pw"));

    for args in [
        &["disable", "nobody@example.com"][..],
        &["enable", "65f000000000000000000001"][..],
    ] {
        let unknown = run(args, None);
        assert_eq!(code(&unknown), 3);
        assert!(
            stderr(&unknown).contains("user not found"),
            "{}",
            stderr(&unknown)
        );
    }
    let unknown = run(
        &["reset-password", "nobody@example.com"],
        Some(b"another-pw\n"),
    );
    assert_eq!(code(&unknown), 3);
}

#[cfg(unix)]
#[test]
fn a_store_held_by_a_running_server_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["serve", app().to_str().unwrap(), "--store"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let warned: Vec<String> = lines
        .by_ref()
        .map(Result::unwrap)
        .take_while(|l| !l.contains("serving"))
        .collect();
    let listed = rolegate(
        &[
            "users",
            "list",
            app().to_str().unwrap(),
            "--store",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(code(&listed), 3, "{}", stderr(&listed));
    assert!(
        stderr(&listed).contains("rolegate serve"),
        "{}",
        stderr(&listed)
    );
    // The startup lists the rules that call %function (the example's projects).
    assert!(
        warned
            .iter()
            .any(|l| l.contains("%function") && l.contains("taskboard.projects")),
        "{warned:?}"
    );
}
