//! The shared store-conformance suite on a MongoDB deployment, when `ROLEGATE_TEST_MONGODB_URI`
//! names one. It must be a **replica set** (a single-node one will do) or a sharded cluster:
//! every write set is a multi-document transaction, which a standalone server cannot run.
//! Without the variable the test prints `SKIPPED: …` and passes (CI never sets it; CI only
//! compiles and lints this crate).
//!
//! Each check gets a fresh, empty store: the same client, but every database name the check
//! uses is mapped to one private to that store (a prefix of the name, the process id, a start
//! time and a counter), and those databases are dropped when the store is dropped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bson::Document;
use rolegate::ops::{Namespace, Store, StoreError, StoreRead, WriteSet};
use rolegate_store_mongodb::MongoStore;

use rolegate_store::conformance::run_all;

/// The variable naming the deployment.
const URI_VAR: &str = "ROLEGATE_TEST_MONGODB_URI";

/// MongoDB's limit on a database name, in bytes (it must be shorter than 64).
const MAX_DATABASE_NAME: usize = 63;

#[test]
fn mongodb_store_conformance() {
    let uri = match std::env::var(URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => {
            println!(
                "SKIPPED: set {URI_VAR} to the URI of a MongoDB replica set (transactions need \
                 one; a single-node replica set will do) to run the store-conformance suite on \
                 the MongoDB store"
            );
            return;
        }
    };
    let store = MongoStore::connect(&uri).unwrap_or_else(|e| panic!("cannot connect: {e}"));
    let run = run_tag();
    let stores = AtomicU32::new(0);
    run_all(|| {
        let n = stores.fetch_add(1, Ordering::Relaxed);
        Isolated::new(store.clone(), format!("{run}n{n}"))
    });
}

/// A tag for this run: the process id and the start time, so that two runs against one server
/// (two machines, or one after a crash that left databases behind) never share a database.
fn run_tag() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("rg{}t{}", std::process::id(), secs % 1_000_000)
}

/// A database name of its own for the `index`-th database name a store met, `original`:
/// as much of `original` as fits (cut at a character boundary), then the store's `tag` and the
/// index, so names stay distinct, valid and under MongoDB's length limit.
fn private_name(original: &str, tag: &str, index: usize) -> String {
    let suffix = format!("_{tag}i{index}");
    let room = MAX_DATABASE_NAME.saturating_sub(suffix.len());
    let mut cut = original.len().min(room);
    while !original.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &original[..cut])
}

/// A [`MongoStore`] whose databases belong to it alone, dropped with it.
struct Isolated {
    store: MongoStore,
    tag: String,
    /// Each database name met, with its private name, in the order met.
    databases: Vec<(String, String)>,
}

impl Isolated {
    fn new(store: MongoStore, tag: String) -> Isolated {
        Isolated {
            store,
            tag,
            databases: Vec::new(),
        }
    }

    fn map(&mut self, namespace: &Namespace) -> Namespace {
        let private = match self
            .databases
            .iter()
            .find(|(original, _)| *original == namespace.database)
        {
            Some((_, private)) => private.clone(),
            None => {
                let private = private_name(&namespace.database, &self.tag, self.databases.len());
                self.databases
                    .push((namespace.database.clone(), private.clone()));
                private
            }
        };
        Namespace::new(private, namespace.collection.clone())
    }
}

impl Store for Isolated {
    fn find(&mut self, read: &StoreRead) -> Result<Vec<Document>, StoreError> {
        let read = StoreRead {
            namespace: self.map(&read.namespace),
            ..read.clone()
        };
        self.store.find(&read)
    }

    fn write(&mut self, writes: &WriteSet) -> Result<(), StoreError> {
        let writes = WriteSet {
            namespace: self.map(&writes.namespace),
            changes: writes.changes.clone(),
        };
        self.store.write(&writes)
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        for (_, private) in &self.databases {
            if let Err(e) = self.store.client().database(private).drop().run() {
                eprintln!("could not drop the test database {private}: {e}");
            }
        }
    }
}

#[test]
fn private_names_are_distinct_valid_and_short() {
    let tag = "rg4194304t999999n12";
    let originals = [
        "conformance".to_string(),
        "conformance_a".to_string(),
        "données".to_string(),
        "d".repeat(60),
        "é".repeat(40),
        String::new(),
    ];
    let names: Vec<String> = originals
        .iter()
        .enumerate()
        .map(|(i, o)| private_name(o, tag, i))
        .collect();
    for (name, original) in names.iter().zip(&originals) {
        assert!(name.len() <= MAX_DATABASE_NAME, "{name}");
        assert!(
            !name.contains(['/', '\\', '.', ' ', '"', '$', '\0']),
            "{name}"
        );
        assert!(
            name.ends_with(tag) || name.contains(&format!("_{tag}i")),
            "{name}"
        );
        let kept = name.split(&format!("_{tag}i")).next().unwrap();
        assert!(original.starts_with(kept), "{name} from {original}");
    }
    assert_eq!(names[0], format!("conformance_{tag}i0"));
    assert_eq!(names[2], format!("données_{tag}i2"));
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn run_tags_differ_between_processes_only_by_pid_and_time() {
    let tag = run_tag();
    assert!(
        tag.starts_with(&format!("rg{}t", std::process::id())),
        "{tag}"
    );
    assert!(tag.len() <= 2 + 10 + 1 + 6, "{tag}");
}
