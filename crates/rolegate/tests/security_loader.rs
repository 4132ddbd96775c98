//! Finding 12 of the security review: loader hangs. Two symlinks to `.` made the directory walk
//! exponential; a FIFO named like a rule file blocked the load forever. Now the walk follows no
//! directory symlink, reads only regular files (type checked before opening), and bounds the
//! number of entries ([`Limits::max_files`]) and the size of each file
//! ([`Limits::max_file_bytes`]) with a `limit-exceeded` error naming the file.
//!
//! Every load here runs on its own thread with a deadline, so a regression fails the test
//! instead of hanging it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rolegate::{Limits, LoadError, LoadOptions, RuleSet};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(20);

/// Loads `path` with `limits` on another thread; panics when it takes longer than the deadline.
fn load_within(path: &Path, limits: Limits) -> Result<RuleSet, LoadError> {
    let (send, receive) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let options = LoadOptions {
            limits,
            ..LoadOptions::default()
        };
        let _ = send.send(RuleSet::load(&path, &options));
    });
    receive
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("loading did not end within {DEADLINE:?}"))
}

fn write(root: &Path, rel: &str, value: &serde_json::Value) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn rules_json(db: &str, coll: &str) -> serde_json::Value {
    json!({"database": db, "collection": coll,
        "roles": [{"name": "all", "apply_when": {}, "read": true}]})
}

/// A minimal app: one data source, `app.items`.
fn app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "data_sources/mongodb-atlas/config.json",
        &json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
    );
    write(
        dir.path(),
        "data_sources/mongodb-atlas/app/items/rules.json",
        &rules_json("app", "items"),
    );
    dir
}

fn collections(set: &RuleSet) -> Vec<(String, String)> {
    set.data_sources
        .values()
        .flat_map(|ds| ds.collections.keys().cloned())
        .collect()
}

fn error_codes(e: &LoadError) -> Vec<(String, String)> {
    e.diagnostics
        .errors()
        .map(|d| (d.code.to_string(), d.place.file.to_string()))
        .collect()
}

#[test]
fn two_symlinks_to_the_root_do_not_blow_up_the_walk() {
    let dir = app();
    symlink(".", dir.path().join("a")).unwrap();
    symlink(".", dir.path().join("b")).unwrap();
    // And loops further down, absolute and relative.
    let ds = dir.path().join("data_sources/mongodb-atlas");
    symlink(&ds, ds.join("app/loop")).unwrap();
    symlink("..", ds.join("app/up")).unwrap();
    let set = load_within(dir.path(), Limits::default()).unwrap();
    assert_eq!(
        collections(&set),
        vec![("app".to_string(), "items".to_string())]
    );
    let skipped: Vec<&str> = set
        .warnings
        .warnings()
        .filter(|w| w.code == "symlink-not-followed")
        .map(|w| &*w.place.file)
        .collect();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(
        skipped.contains(&"a") && skipped.contains(&"b"),
        "{skipped:?}"
    );
}

/// `mkfifo`, or `None` when the platform has none (the test is then skipped).
fn mkfifo(path: &Path) -> Option<()> {
    let status = Command::new("mkfifo").arg(path).status().ok()?;
    status.success().then_some(())
}

#[test]
fn a_fifo_named_like_a_rule_file_is_refused_without_blocking() {
    let dir = app();
    let fifo = dir
        .path()
        .join("data_sources/mongodb-atlas/app/other/rules.json");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    if mkfifo(&fifo).is_none() {
        eprintln!("mkfifo is not available: skipped");
        return;
    }
    let err = load_within(dir.path(), Limits::default()).unwrap_err();
    let found = err
        .diagnostics
        .errors()
        .find(|d| &*d.place.file == "data_sources/mongodb-atlas/app/other/rules.json")
        .unwrap_or_else(|| panic!("no error names the FIFO: {err}"));
    assert_eq!(found.code, "io");
    assert!(
        found.message.contains("not a regular file"),
        "{}",
        found.message
    );
    // Loaded as a lone file too, and through a symlink to it.
    let err = load_within(&fifo, Limits::default()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let link = dir.path().join("link.json");
    symlink(&fifo, &link).unwrap();
    let err = load_within(&link, Limits::default()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // A FIFO no rule reads is never opened: the app loads.
    std::fs::remove_file(&fifo).unwrap();
    std::fs::remove_dir(fifo.parent().unwrap()).unwrap();
    mkfifo(&dir.path().join("README.md")).unwrap();
    load_within(dir.path(), Limits::default()).unwrap();
}

#[test]
fn an_oversized_file_is_a_limit_error_naming_it() {
    let dir = app();
    let mut big = rules_json("app", "big");
    big["padding"] = json!("x".repeat(5_000));
    let path = write(
        dir.path(),
        "data_sources/mongodb-atlas/app/big/rules.json",
        &big,
    );
    let mut limits = Limits::default();
    limits.max_file_bytes = 4_096;
    let err = load_within(dir.path(), limits).unwrap_err();
    assert_eq!(
        error_codes(&err),
        vec![(
            "limit-exceeded".to_string(),
            "data_sources/mongodb-atlas/app/big/rules.json".to_string()
        )],
        "{err}"
    );
    assert!(err.to_string().contains("4096"), "{err}");
    let err = load_within(&path, limits).unwrap_err();
    assert_eq!(error_codes(&err)[0].0, "limit-exceeded", "{err}");
    // Within the limit it loads.
    limits.max_file_bytes = 1 << 20;
    load_within(dir.path(), limits).unwrap();
    // A device that never ends, linked as a rule file: not a regular file.
    let dev = dir
        .path()
        .join("data_sources/mongodb-atlas/app/dev/rules.json");
    std::fs::create_dir_all(dev.parent().unwrap()).unwrap();
    symlink("/dev/zero", &dev).unwrap();
    let err = load_within(dir.path(), limits).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn too_many_files_stop_the_walk_with_a_limit_error() {
    let dir = app();
    for i in 0..50 {
        write(dir.path(), &format!("hosting/files/f{i}.json"), &json!({}));
    }
    let mut limits = Limits::default();
    limits.max_files = 20;
    let err = load_within(dir.path(), limits).unwrap_err();
    let limit: Vec<_> = err
        .diagnostics
        .errors()
        .filter(|d| d.code == "limit-exceeded")
        .collect();
    assert_eq!(limit.len(), 1, "{err}");
    assert!(
        limit[0].message.contains("more than 20"),
        "{}",
        limit[0].message
    );
    assert!(!limit[0].place.file.is_empty());
    limits.max_files = 100;
    load_within(dir.path(), limits).unwrap();
}

#[test]
fn the_default_limits_fit_a_real_app() {
    let limits = Limits::default();
    assert!(limits.max_files >= 10_000);
    assert!(limits.max_file_bytes >= 1 << 20);
}

// ---------------------------------------------------------------------------------------------
// The class: random trees of directories, symlinks (to ancestors, siblings, themselves, files)
// and special files.

#[derive(Debug, Clone)]
enum Extra {
    /// A symlink in directory `at` to directory `to` (indices into the directory list).
    DirLink {
        at: usize,
        to: usize,
        absolute: bool,
    },
    /// A symlink in directory `at` that points to itself.
    SelfLink { at: usize },
    /// A symlink named `rules.json` in a new collection directory, to directory `to`: not
    /// followed (a warning), so the collection is not defined.
    RulesLinkToDir { to: usize },
    /// A FIFO named like a rule file in a new collection directory.
    Fifo { coll: usize },
}

fn extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        4 => (0..6usize, 0..6usize, any::<bool>())
            .prop_map(|(at, to, absolute)| Extra::DirLink { at, to, absolute }),
        1 => (0..6usize).prop_map(|at| Extra::SelfLink { at }),
        1 => (0..6usize).prop_map(|to| Extra::RulesLinkToDir { to }),
        1 => (0..3usize).prop_map(|coll| Extra::Fifo { coll }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/security_loader.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// Whatever links and special files an app directory holds, loading it ends (within the
    /// deadline), the real collections are loaded exactly once each (none through a link), and
    /// a rule file that is not a regular file is an error naming it.
    #[test]
    fn loading_any_tree_of_links_ends(
        collections_n in 1..4usize,
        extras in prop::collection::vec(extra(), 0..10),
    ) {
        let dir = app();
        let root = dir.path().to_path_buf();
        for i in 0..collections_n {
            write(&root, &format!("data_sources/mongodb-atlas/db/c{i}/rules.json"), &rules_json("db", &format!("c{i}")));
        }
        let dirs: Vec<PathBuf> = vec![
            root.clone(),
            root.join("data_sources"),
            root.join("data_sources/mongodb-atlas"),
            root.join("data_sources/mongodb-atlas/db"),
            root.join("data_sources/mongodb-atlas/db/c0"),
            root.join("data_sources/mongodb-atlas/app"),
        ];
        let mut bad = Vec::new();
        for (n, e) in extras.iter().enumerate() {
            match e {
                Extra::DirLink { at, to, absolute } => {
                    let target = if *absolute { dirs[*to].clone() } else { PathBuf::from(".") };
                    let _ = symlink(target, dirs[*at].join(format!("l{n}")));
                }
                Extra::SelfLink { at } => {
                    let _ = symlink(format!("s{n}"), dirs[*at].join(format!("s{n}")));
                }
                Extra::RulesLinkToDir { to } => {
                    let coll = root.join(format!("data_sources/mongodb-atlas/db/r{n}"));
                    std::fs::create_dir_all(&coll).unwrap();
                    let _ = symlink(&dirs[*to], coll.join("rules.json"));
                }
                Extra::Fifo { coll } => {
                    let dir = root.join(format!("data_sources/mongodb-atlas/db/f{n}x{coll}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    if mkfifo(&dir.join("rules.json")).is_some() {
                        bad.push(format!("data_sources/mongodb-atlas/db/f{n}x{coll}/rules.json"));
                    }
                }
            }
        }
        let result = load_within(&root, Limits::default());
        if bad.is_empty() {
            let set = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut got = collections(&set);
            got.sort();
            let mut want: Vec<(String, String)> = (0..collections_n)
                .map(|i| ("db".to_string(), format!("c{i}")))
                .collect();
            want.push(("app".to_string(), "items".to_string()));
            want.sort();
            prop_assert_eq!(got, want);
        } else {
            let err = match result {
                Ok(_) => return Err(TestCaseError::fail("a special rule file was accepted")),
                Err(e) => e,
            };
            for file in &bad {
                prop_assert!(
                    err.diagnostics.errors().any(|d| &*d.place.file == file.as_str()),
                    "no error names {}: {}", file, err
                );
            }
        }
    }
}
