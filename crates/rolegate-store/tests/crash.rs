//! The kill test: a child process (this test binary again, told so by an environment variable)
//! writes multi-document sets in a loop and is killed with SIGKILL at a random moment, a few
//! times over. After each kill the folder must reopen, and hold every set the child saw
//! committed, wholly, and no part of any other set.
//!
//! Each set `k` inserts `SET_SIZE` documents `{_id: "k-i", set: k, i}`, deletes the first
//! document of set `k - 1`, and replaces the counter (its first change) `{_id: "counter", n: k - 1}` with `n: k`.
//! So with the counter at `K`, exactly these documents exist: `"s-i"` for every `s ≤ K` and
//! `1 ≤ i < SET_SIZE`, plus `"K-0"` — in that natural order, after the counter.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail the test by panicking"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bson::{Bson, Document, doc};
use rolegate::ops::{Change, Namespace, Store, WriteSet};
use rolegate_store::EmbeddedStore;

const CHILD: &str = "ROLEGATE_STORE_CRASH_CHILD";
const SET_SIZE: i64 = 6;
const ROUNDS: usize = 8;

fn ns() -> Namespace {
    Namespace::new("crash", "sets")
}

/// The child's side: write sets until killed (or for 20 seconds, so a lost child ends).
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let mut store = EmbeddedStore::open(Path::new(&dir)).unwrap();
    let ns = ns();
    let mut counter: Option<Document> = store
        .documents(&ns)
        .unwrap()
        .into_iter()
        .find(|d| d.get("_id") == Some(&Bson::from("counter")));
    let mut k = counter.as_ref().map_or(0, |c| c.get_i64("n").unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let pad = "p".repeat(300);
    while Instant::now() < deadline {
        let next = k + 1;
        // The counter first (so that it keeps the first slot), then the inserts, then the
        // delete.
        let new_counter = doc! { "_id": "counter", "n": next };
        let mut changes = vec![match counter.take() {
            None => Change::Insert(new_counter.clone()),
            Some(expected) => Change::Replace {
                expected,
                document: new_counter.clone(),
            },
        }];
        changes.extend((0..SET_SIZE).map(|i| {
            Change::Insert(doc! { "_id": format!("{next}-{i}"), "set": next, "i": i, "pad": &pad })
        }));
        if k > 0 {
            changes.push(Change::Delete {
                expected: doc! { "_id": format!("{k}-0"), "set": k, "i": 0_i64, "pad": &pad },
            });
        }
        store
            .write(&WriteSet {
                namespace: ns.clone(),
                changes,
            })
            .unwrap();
        counter = Some(new_counter);
        k = next;
        // Told only once the commit returned: the parent may count on every set announced.
        println!("committed {k}");
    }
}

/// The sets in the folder: checks the invariant and returns the counter.
fn check_folder(dir: &Path, round: usize) -> i64 {
    let store =
        EmbeddedStore::open(dir).unwrap_or_else(|e| panic!("round {round}: reopening failed: {e}"));
    let docs = store.documents(&ns()).unwrap();
    let Some(first) = docs.first() else {
        return 0;
    };
    assert_eq!(
        first.get_str("_id").ok(),
        Some("counter"),
        "round {round}: the counter is not first"
    );
    let k = first.get_i64("n").unwrap();
    let mut expected: Vec<String> = Vec::new();
    for s in 1..=k {
        for i in 1..SET_SIZE {
            expected.push(format!("{s}-{i}"));
        }
        if s == k {
            // Set k's first document is deleted by set k + 1 only; it sits after set k's others.
            let at = expected.len() - (SET_SIZE as usize - 1);
            expected.insert(at, format!("{s}-0"));
        }
    }
    let found: Vec<String> = docs[1..]
        .iter()
        .map(|d| d.get_str("_id").unwrap().to_string())
        .collect();
    assert_eq!(
        found.len(),
        expected.len(),
        "round {round}: counter {k}, wrong number of documents"
    );
    assert_eq!(
        found, expected,
        "round {round}: counter {k}, a set is partial or out of order"
    );
    for d in &docs[1..] {
        let id = d.get_str("_id").unwrap();
        let set = d.get_i64("set").unwrap();
        assert!(id.starts_with(&format!("{set}-")), "round {round}: {d:?}");
    }
    k
}

#[test]
fn killed_writers_lose_nothing_committed() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let started = seed;
    let mut counter = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let announced = Arc::new(Mutex::new(0_i64));
        let reader = {
            let announced = Arc::clone(&announced);
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(k) = line.strip_prefix("committed ").and_then(|k| k.parse().ok()) {
                        *announced.lock().unwrap() = k;
                    }
                }
            })
        };
        // Wait for this life's first commit, then kill at a random moment.
        let wait = Instant::now();
        while *announced.lock().unwrap() <= counter {
            assert!(
                child.try_wait().unwrap().is_none(),
                "round {round}: the writer exited before committing"
            );
            assert!(
                wait.elapsed() < Duration::from_secs(20),
                "round {round}: the writer never committed"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 150_000));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let announced = *announced.lock().unwrap();

        let found = check_folder(dir.path(), round);
        assert!(
            found >= announced,
            "round {round} (seed {started}): the writer committed set {announced}, the folder holds {found}"
        );
        // A set not yet announced may have committed just before the kill: at most one.
        assert!(
            found <= announced + 1,
            "round {round} (seed {started}): {found} sets, {announced} announced"
        );
        counter = found;
    }
    assert!(
        counter >= ROUNDS as i64,
        "every life committed at least one set"
    );
}
