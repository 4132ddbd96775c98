//! The store-conformance suite on the embedded store (each check on a fresh data folder, one
//! test per check so a failure names its check), then what only the embedded store promises:
//! its data survives reopening, it lists its collections, any name is a name, it refuses what
//! MongoDB refuses to store, and a broken file is an error, not a panic.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail the test by panicking"
)]

use bson::{Bson, doc};
use rolegate::ops::{Change, Namespace, Store, StoreError, StoreRead, WriteSet};
use rolegate_store::conformance::{CHECKS, run_all};
use rolegate_store::{EmbeddedStore, FILE_NAME};

fn fresh() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    (dir, store)
}

fn run_check(name: &str) {
    let check = CHECKS.iter().find(|c| c.name == name).unwrap();
    let (_dir, mut store) = fresh();
    (check.run)(&mut store);
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { run_check(stringify!($name)); } )*

        /// Every check of the suite has its test here.
        #[test]
        fn every_check_has_a_test() {
            let listed = [$(stringify!($name)),*];
            for check in CHECKS {
                assert!(listed.contains(&check.name), "no test runs {}", check.name);
            }
        }
    };
}

checks!(
    round_trip_keeps_types_and_key_order,
    natural_order_is_insertion_order,
    queries_select_as_mongodb,
    projections_apply,
    empty_query_selects_all,
    invalid_query_is_an_error,
    duplicate_ids_are_refused,
    replace_needs_the_current_document,
    delete_needs_the_current_document,
    write_sets_are_all_or_nothing,
    changes_see_earlier_changes,
    namespaces_are_isolated,
    odd_names_work,
);

#[test]
fn run_all_passes_and_reports_failures() {
    let parent = tempfile::tempdir().unwrap();
    let mut n = 0;
    run_all(|| {
        n += 1;
        EmbeddedStore::open(parent.path().join(n.to_string())).unwrap()
    });
    assert_eq!(n, CHECKS.len());

    // A store that forgets every write fails, with the names of the checks it failed.
    struct Forgetful;
    impl Store for Forgetful {
        fn find(&mut self, _: &StoreRead) -> Result<Vec<bson::Document>, StoreError> {
            Ok(Vec::new())
        }
        fn write(&mut self, _: &WriteSet) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let report = std::panic::catch_unwind(|| run_all(|| Forgetful)).unwrap_err();
    let report = report.downcast_ref::<String>().unwrap();
    assert!(
        report.contains("round_trip_keeps_types_and_key_order: "),
        "{report}"
    );
    assert!(report.contains("duplicate_ids_are_refused: "), "{report}");
}

fn ns(db: &str, coll: &str) -> Namespace {
    Namespace::new(db, coll)
}

fn insert(
    store: &mut EmbeddedStore,
    ns: &Namespace,
    doc: bson::Document,
) -> Result<(), StoreError> {
    store.write(&WriteSet {
        namespace: ns.clone(),
        changes: vec![Change::Insert(doc)],
    })
}

#[test]
fn reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let tasks = ns("app", "tasks");
    let users = ns("app", "users");
    let docs: Vec<bson::Document> = (0..100)
        .map(|i| doc! { "_id": i, "title": format!("t{i}") })
        .collect();
    {
        let mut store = EmbeddedStore::open(&data).unwrap();
        assert_eq!(store.insert_many(&tasks, docs.clone()).unwrap(), 100);
        insert(&mut store, &users, doc! { "_id": "alice" }).unwrap();
        store
            .write(&WriteSet {
                namespace: tasks.clone(),
                changes: vec![Change::Delete {
                    expected: docs[0].clone(),
                }],
            })
            .unwrap();
    }
    assert!(data.join(FILE_NAME).is_file());
    let mut store = EmbeddedStore::open(&data).unwrap();
    assert_eq!(store.path(), data.join(FILE_NAME));
    assert_eq!(store.documents(&tasks).unwrap(), docs[1..]);
    assert_eq!(store.documents(&users).unwrap(), [doc! { "_id": "alice" }]);
    assert_eq!(store.collections().unwrap(), [tasks.clone(), users.clone()]);
    // The index survived too: a duplicate is still a duplicate.
    assert!(matches!(
        insert(&mut store, &tasks, doc! { "_id": 5.0 }),
        Err(StoreError::DuplicateKey { .. })
    ));
    // Natural order goes on after the last slot.
    insert(&mut store, &tasks, doc! { "_id": 0 }).unwrap();
    assert_eq!(
        store.documents(&tasks).unwrap().last(),
        Some(&doc! { "_id": 0 })
    );
}

#[test]
fn one_process_opens_a_folder_once() {
    let (dir, _store) = fresh();
    let again = EmbeddedStore::open(dir.path().join("data"));
    assert!(matches!(again, Err(StoreError::Failed(_))), "{again:?}");
}

#[test]
fn collections_are_listed_and_dropped() {
    let (_dir, mut store) = fresh();
    assert_eq!(store.collections().unwrap(), []);
    let names = [
        ns("b", "x"),
        ns("a", "y.z"),
        ns("a", "y"),
        ns("données", "$cmd"),
    ];
    for n in &names {
        insert(&mut store, n, doc! { "_id": 1 }).unwrap();
    }
    // A failed first write to a collection does not create it.
    let failed = store.write(&WriteSet {
        namespace: ns("c", "never"),
        changes: vec![Change::Delete {
            expected: doc! { "_id": 1 },
        }],
    });
    assert!(matches!(failed, Err(StoreError::Conflict { .. })));
    assert_eq!(
        store.collections().unwrap(),
        [
            ns("a", "y"),
            ns("a", "y.z"),
            ns("b", "x"),
            ns("données", "$cmd")
        ]
    );
    assert!(store.drop_collection(&ns("a", "y")).unwrap());
    assert!(!store.drop_collection(&ns("a", "y")).unwrap());
    assert_eq!(store.documents(&ns("a", "y")).unwrap(), []);
    assert_eq!(
        store.documents(&ns("a", "y.z")).unwrap(),
        [doc! { "_id": 1 }]
    );
    assert_eq!(store.collections().unwrap().len(), 3);
}

/// Names MongoDB itself refuses (`$`, `/`, `.` and spaces in database names, empty names, NUL)
/// are still distinct collections here: the file never confuses two of them.
#[test]
fn any_name_is_a_name() {
    let (_dir, mut store) = fresh();
    let names = [
        ns("x.a", "b"),
        ns("x", "a.b"),
        ns("x.a.b", ""),
        ns("", "x.a.b"),
        ns("$db", "$cmd"),
        ns("a/b", "c"),
        ns("a", "b/c"),
        ns("%2F", "%"),
        ns("nul\u{0}", "tab\t"),
        ns(&"é".repeat(200), &"🦀".repeat(100)),
    ];
    for (i, n) in names.iter().enumerate() {
        insert(&mut store, n, doc! { "_id": 1, "i": i as i64 }).unwrap();
    }
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            store.documents(n).unwrap(),
            [doc! { "_id": 1, "i": i as i64 }],
            "{n:?}"
        );
    }
    let mut listed = store.collections().unwrap();
    let mut expected = names.to_vec();
    listed.sort_by(|a, b| (&a.database, &a.collection).cmp(&(&b.database, &b.collection)));
    expected.sort_by(|a, b| (&a.database, &a.collection).cmp(&(&b.database, &b.collection)));
    assert_eq!(listed, expected);
}

#[test]
fn refuses_what_mongodb_refuses_to_store() {
    let (_dir, mut store) = fresh();
    let c = ns("app", "c");
    let mut deep = doc! { "leaf": 1 };
    for _ in 0..120 {
        deep = doc! { "d": deep };
    }
    let refused = [
        doc! { "no_id": 1 },
        doc! { "_id": [1, 2] },
        doc! { "_id": bson::Regex { pattern: "a".into(), options: String::new() } },
        doc! { "_id": Bson::Undefined },
        doc! { "_id": 1, "deep": deep },
        doc! { "_id": 2, "big": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 16 * 1024 * 1024] } },
    ];
    for doc in refused {
        let shown = format!("{:.80}", format!("{doc:?}"));
        let result = insert(&mut store, &c, doc);
        assert!(
            matches!(result, Err(StoreError::Failed(_))),
            "{shown}: {result:?}"
        );
    }
    assert_eq!(store.documents(&c).unwrap(), []);
    insert(&mut store, &c, doc! { "_id": 1, "n": 1 }).unwrap();
    let changes_id = store.write(&WriteSet {
        namespace: c.clone(),
        changes: vec![Change::Replace {
            expected: doc! { "_id": 1, "n": 1 },
            document: doc! { "_id": 2, "n": 1 },
        }],
    });
    assert!(
        matches!(changes_id, Err(StoreError::Failed(_))),
        "{changes_id:?}"
    );
    // The same _id in another numeric type is the same _id.
    store
        .write(&WriteSet {
            namespace: c.clone(),
            changes: vec![Change::Replace {
                expected: doc! { "_id": 1, "n": 1 },
                document: doc! { "_id": 1.0, "n": 2 },
            }],
        })
        .unwrap();
    assert_eq!(store.documents(&c).unwrap(), [doc! { "_id": 1.0, "n": 2 }]);
    let missing_id = store.write(&WriteSet {
        namespace: c.clone(),
        changes: vec![Change::Delete {
            expected: doc! { "n": 2 },
        }],
    });
    assert!(
        matches!(missing_id, Err(StoreError::Failed(_))),
        "{missing_id:?}"
    );
}

#[test]
fn a_foreign_or_broken_file_is_an_error() {
    // Not a redb file at all.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        b"this is not a database file, just text",
    )
    .unwrap();
    let opened = EmbeddedStore::open(dir.path());
    assert!(matches!(opened, Err(StoreError::Failed(_))), "{opened:?}");

    // A folder where the file should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(FILE_NAME)).unwrap();
    assert!(matches!(
        EmbeddedStore::open(dir.path()),
        Err(StoreError::Failed(_))
    ));

    // A file where the folder should be.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), b"").unwrap();
    assert!(matches!(
        EmbeddedStore::open(dir.path().join("data")),
        Err(StoreError::Failed(_))
    ));
}

/// Bytes overwritten in a real store's file: opening, reading and writing fail or succeed, and
/// never panic.
#[test]
fn a_corrupted_file_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let c = ns("app", "c");
    {
        let mut store = EmbeddedStore::open(dir.path()).unwrap();
        let docs: Vec<bson::Document> = (0..300)
            .map(|i| doc! { "_id": i, "text": "x".repeat(i as usize % 50) })
            .collect();
        store.insert_many(&c, docs).unwrap();
    }
    let path = dir.path().join(FILE_NAME);
    let original = std::fs::read(&path).unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..32 {
        let mut bytes = original.clone();
        for _ in 0..(1 + round % 4) * 16 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % bytes.len();
            bytes[at] = (seed >> 32) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(mut store) = EmbeddedStore::open(dir.path()) {
                let _ = store.documents(&c);
                let _ = store.find(&StoreRead {
                    namespace: c.clone(),
                    query: doc! { "_id": 7 },
                    projection: None,
                });
                let _ = insert(&mut store, &c, doc! { "_id": "new" });
                let _ = store.collections();
            }
        });
        assert!(
            outcome.is_ok(),
            "round {round}: the store panicked on a corrupted file"
        );
    }
}
