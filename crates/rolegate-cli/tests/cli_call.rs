//! `rolegate import`, `call` and `export` on the example app (`examples/tasks-app`): its sample
//! documents imported into the namespaces its rules govern, then operations of every kind as
//! its sample users (each with their request file). `call`'s answers are checked against
//! `eval`'s decisions on the same documents (the oracle: a `find` returns exactly the documents
//! `eval` finds visible, redacted alike), its stdout is one canonical Extended JSON value,
//! `--explain` goes to stderr, refused writes write nothing, and `export` shows every write.
//! Each test has its own data folder (`--store`), so the example app is never written.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use bson::{Bson, Document};
use serde_json::{Value, json};
use tempfile::TempDir;

mod support;
use support::{code, json_lines, rolegate, rolegate_stdin, stderr, stdout, write, write_json};

fn example(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/tasks-app")
        .join(rel)
        .display()
        .to_string()
}

/// The sample users and the request file of each.
const USERS: [(&str, &str); 4] = [
    ("alice", "request.json"),
    ("bob", "request-bob.json"),
    ("admin", "request-admin.json"),
    ("anon", "request-anon.json"),
];

fn request_of(user: &str) -> &'static str {
    USERS.iter().find(|(u, _)| *u == user).unwrap().1
}

/// The collections of the sample files (`sample/<coll>.jsonl`).
fn sample_collections() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(example("sample"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    out.sort();
    out
}

/// A data folder with every sample file imported into `taskboard.<coll>`.
struct Store {
    _dir: TempDir,
    path: PathBuf,
}

impl Store {
    fn store(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

fn imported() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let store = Store { _dir: dir, path };
    for coll in sample_collections() {
        let file = example(&format!("sample/{coll}.jsonl"));
        let ns = format!("taskboard.{coll}");
        let o = rolegate(
            &["import", &example(""), &ns, &file, "--store", store.store()],
            Path::new("."),
        );
        assert_eq!(code(&o), 0, "{ns}: {}", stderr(&o));
        let lines = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let noun = if lines == 1 { "document" } else { "documents" };
        assert!(
            stdout(&o).starts_with(&format!("imported {lines} {noun} into {ns} ")),
            "{}",
            stdout(&o)
        );
    }
    store
}

/// `rolegate call` as `user` (with their request file) with `body` on stdin.
fn call(store: &Store, user: &str, body: &Value, extra: &[&str]) -> Output {
    let user_file = example(&format!("sample/users/{user}.json"));
    let request = example(&format!("sample/{}", request_of(user)));
    let mut args = vec![
        "call",
        "--user",
        &user_file,
        "--request",
        &request,
        "--store",
        store.store(),
    ];
    args.extend(extra);
    let app = example("");
    args.push(&app);
    rolegate_stdin(&args, Path::new("."), body.to_string().as_bytes())
}

/// The one JSON value `call` printed, checked to be canonical Extended JSON: one line, and
/// read back as BSON it prints the same canonical form.
fn canonical_result(o: &Output) -> Bson {
    assert_eq!(code(o), 0, "{}", stderr(o));
    let text = stdout(o);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    let bson = Bson::try_from(value.clone()).unwrap();
    assert_eq!(
        bson.clone().into_canonical_extjson(),
        value,
        "not canonical: {text}"
    );
    bson
}

fn body(name: &str, coll: &str, args: Value) -> Value {
    let mut a = json!({"database": "taskboard", "collection": coll});
    a.as_object_mut()
        .unwrap()
        .extend(args.as_object().unwrap().clone());
    json!({"name": name, "arguments": [a]})
}

/// The documents of `taskboard.<coll>` (`export`, each line read back as BSON).
fn export(store: &Store, coll: &str) -> Vec<Document> {
    let o = rolegate(
        &[
            "export",
            &example(""),
            &format!("taskboard.{coll}"),
            "--store",
            store.store(),
        ],
        Path::new("."),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            // canonical, line by line
            let b = Bson::try_from(v.clone()).unwrap();
            assert_eq!(b.clone().into_canonical_extjson(), v, "{l}");
            match b {
                Bson::Document(d) => d,
                other => panic!("not a document: {other}"),
            }
        })
        .collect()
}

/// The documents `eval --action read` finds visible for `user` in `taskboard.<coll>` (the
/// sample file as the stored documents), redacted, in file order.
fn eval_visible(user: &str, coll: &str) -> Vec<Document> {
    let o = rolegate(
        &[
            "eval",
            &example(""),
            "--collection",
            &format!("taskboard.{coll}"),
            "--user",
            &example(&format!("sample/users/{user}.json")),
            "--request",
            &example(&format!("sample/{}", request_of(user))),
            "--action",
            "read",
            "--documents",
            &example(&format!("sample/{coll}.jsonl")),
            "--format",
            "json",
        ],
        Path::new("."),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    json_lines(&stdout(&o))
        .into_iter()
        .filter(|l| l.get("document").is_some() && l["visible"] == true)
        .map(|l| match Bson::try_from(l["redacted"].clone()).unwrap() {
            Bson::Document(d) => d,
            other => panic!("{other}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// reads agree with eval

#[test]
fn find_and_count_return_what_eval_finds_visible() {
    let store = imported();
    let mut differs = false;
    for (user, _) in USERS {
        for coll in ["tasks", "employees", "projects", "announcements"] {
            let expected = eval_visible(user, coll);
            let found = canonical_result(&call(&store, user, &body("find", coll, json!({})), &[]));
            let Bson::Array(found) = found else {
                panic!("find returns an array")
            };
            let found: Vec<Document> = found
                .into_iter()
                .map(|d| match d {
                    Bson::Document(d) => d,
                    other => panic!("{other}"),
                })
                .collect();
            assert_eq!(found, expected, "{user} find {coll}");
            let count = canonical_result(&call(
                &store,
                user,
                &body("count", coll, json!({"query": {}})),
                &[],
            ));
            assert_eq!(
                count,
                Bson::Int64(expected.len() as i64),
                "{user} count {coll}"
            );
            differs |= expected.len() != export(&store, coll).len();
        }
    }
    assert!(differs, "the rules hide some documents from some user");
}

#[test]
fn system_reads_everything_and_explain_goes_to_stderr() {
    let store = imported();
    let stored = export(&store, "tasks");
    let o = call(
        &store,
        "anon",
        &body("count", "tasks", json!({})),
        &["--system", "--explain"],
    );
    assert_eq!(
        canonical_result(&o),
        Bson::Int64(stored.len() as i64),
        "{}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(err.contains("as the system user"), "{err}");
    // An ordinary user: the query sent to the store (the filter of non-admins), how many
    // documents it returned, and one decision line per returned document.
    let o = call(
        &store,
        "bob",
        &body("find", "tasks", json!({"query": {"status": "todo"}})),
        &["--explain"],
    );
    let out = stdout(&o);
    let err = stderr(&o);
    assert!(!out.contains("explain"), "{out}");
    assert!(err.lines().all(|l| l.starts_with("explain: ")), "{err}");
    assert!(
        err.contains("explain: store query on taskboard.tasks: ")
            && err.contains("archived")
            && err.contains("todo"),
        "{err}"
    );
    // The store returns at most what the filter selects (the residual narrows it further).
    let selected = stored
        .iter()
        .filter(|d| d.get_str("status") == Ok("todo") && d.get_bool("archived") != Ok(true))
        .count();
    let count_after = |prefix: &str| -> usize {
        let line = err
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line: {err}"));
        line.trim().parse().unwrap()
    };
    assert!(err.contains("explain: residual: "), "{err}");
    let returned = count_after("explain: store returned ");
    assert!(returned <= selected, "{err}");
    let decisions = err
        .lines()
        .filter(|l| l.starts_with("explain: _id "))
        .count();
    assert_eq!(decisions, returned, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        count_after("explain: visible "),
        shown.as_array().unwrap().len(),
        "{err}"
    );
    assert!(err.contains("%%request.action: `find`"), "{err}");
    // Without --explain, stderr stays empty.
    let o = call(&store, "bob", &body("find", "tasks", json!({})), &[]);
    assert_eq!(stderr(&o), "");
}

// ---------------------------------------------------------------------------------------------
// writes

fn by_id<'a>(docs: &'a [Document], oid: &str) -> Option<&'a Document> {
    docs.iter()
        .find(|d| d.get_object_id("_id").is_ok_and(|id| id.to_hex() == oid))
}

const TASK_1: &str = "671000000000000000000001";
const TASK_3: &str = "671000000000000000000003";

#[test]
fn update_one_writes_and_export_shows_it() {
    let store = imported();
    let before = export(&store, "tasks");
    assert_ne!(
        by_id(&before, TASK_1).unwrap().get_str("status"),
        Ok("done")
    );
    // bob collaborates on task 1 and may write its status.
    let o = call(
        &store,
        "bob",
        &body(
            "updateOne",
            "tasks",
            json!({"query": {"_id": {"$oid": TASK_1}}, "update": {"$set": {"status": "done"}}}),
        ),
        &[],
    );
    let result = canonical_result(&o);
    assert_eq!(
        result,
        Bson::Document(bson::doc! {"matchedCount": 1, "modifiedCount": 1})
    );
    let after = export(&store, "tasks");
    assert_eq!(by_id(&after, TASK_1).unwrap().get_str("status"), Ok("done"));
    // Nothing else changed, and natural order is kept.
    let mut expected = before.clone();
    let at = expected
        .iter()
        .position(|d| by_id(std::slice::from_ref(d), TASK_1).is_some())
        .unwrap();
    expected[at].insert("status", "done");
    assert_eq!(after, expected);
}

#[test]
fn a_refused_update_many_writes_nothing() {
    let store = imported();
    let before = export(&store, "tasks");
    let o = call(
        &store,
        "bob",
        &body(
            "updateMany",
            "tasks",
            json!({"query": {}, "update": {"$set": {"archived": true}}}),
        ),
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(
        err.starts_with("error[UpdateNotPermitted]: update not permitted"),
        "{err}"
    );
    assert!(err.contains("--explain"), "a hint to --explain: {err}");
    assert!(!err.contains("_id"), "no detail without --explain: {err}");
    assert_eq!(export(&store, "tasks"), before, "nothing written");
    // With --explain: the detailed reason.
    let o = call(
        &store,
        "bob",
        &body(
            "updateMany",
            "tasks",
            json!({"query": {}, "update": {"$set": {"archived": true}}}),
        ),
        &["--explain"],
    );
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("explain: error detail: "),
        "{}",
        stderr(&o)
    );
    // The admin may.
    let o = call(
        &store,
        "admin",
        &body(
            "updateMany",
            "tasks",
            json!({"query": {}, "update": {"$set": {"archived": true}}}),
        ),
        &[],
    );
    let Bson::Document(r) = canonical_result(&o) else {
        panic!()
    };
    assert_eq!(r.get_i32("matchedCount"), Ok(before.len() as i32));
    assert!(
        export(&store, "tasks")
            .iter()
            .all(|d| d.get_bool("archived") == Ok(true))
    );
}

#[test]
fn insert_one_and_delete_one() {
    let store = imported();
    let before = export(&store, "tasks");
    let task = json!({"owner_id": "66b0b000000000000000000b", "title": "Write the on-call handbook",
                      "status": "todo", "team": "platform", "collaborators": [], "archived": false});
    let o = call(
        &store,
        "bob",
        &body("insertOne", "tasks", json!({"document": task})),
        &[],
    );
    let Bson::Document(r) = canonical_result(&o) else {
        panic!()
    };
    let id = r.get_object_id("insertedId").unwrap();
    let after = export(&store, "tasks");
    assert_eq!(after.len(), before.len() + 1);
    let last = after.last().unwrap();
    assert_eq!(last.get_object_id("_id"), Ok(id), "inserted last: {last}");
    assert_eq!(last.get_str("title"), Ok("Write the on-call handbook"));
    // A task owned by someone else: bob has no role that may insert it.
    let theirs = json!({"owner_id": "66a11ce0000000000000000a", "title": "x", "status": "todo",
                        "team": "platform"});
    let o = call(
        &store,
        "bob",
        &body("insertOne", "tasks", json!({"document": theirs})),
        &[],
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stderr(&o).starts_with("error[InsertNotPermitted]"),
        "{}",
        stderr(&o)
    );
    assert_eq!(export(&store, "tasks"), after);
    // alice collaborates on task 3 but may not delete it; bob owns it.
    let delete = body(
        "deleteOne",
        "tasks",
        json!({"query": {"_id": {"$oid": TASK_3}}}),
    );
    let o = call(&store, "alice", &delete, &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).starts_with("error[DeleteNotPermitted]"),
        "{}",
        stderr(&o)
    );
    assert_eq!(export(&store, "tasks"), after);
    let o = call(&store, "bob", &delete, &[]);
    assert_eq!(
        canonical_result(&o),
        Bson::Document(bson::doc! {"deletedCount": 1})
    );
    let end = export(&store, "tasks");
    assert!(by_id(&end, TASK_3).is_none());
    assert_eq!(end.len(), after.len() - 1);
}

// ---------------------------------------------------------------------------------------------
// errors

#[test]
fn bad_bodies_say_what_is_wrong() {
    let store = imported();
    // A misspelled action and argument: exit 3, the client code, and the problems as the hint.
    let o = call(
        &store,
        "alice",
        &json!({"name": "fnd", "arguments": [{"database": "taskboard", "collection": "tasks"}]}),
        &[],
    );
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(
        err.contains("error[InvalidParameter]") && err.contains("did you mean `find`?"),
        "{err}"
    );
    let o = call(
        &store,
        "alice",
        &body("find", "tasks", json!({"qurey": {}})),
        &[],
    );
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("did you mean `query`?"),
        "{}",
        stderr(&o)
    );
    // Not a document, not JSON.
    let o = call(&store, "alice", &json!([1]), &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("error[invalid-body]"), "{}", stderr(&o));
    let user = example("sample/users/alice.json");
    let o = rolegate_stdin(
        &[
            "call",
            &example(""),
            "--user",
            &user,
            "--store",
            store.store(),
        ],
        Path::new("."),
        b"{\"name\": ",
    );
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("error[invalid-json]"), "{}", stderr(&o));
    // An operator refused to app users: the server's answer (exit 1).
    let o = call(
        &store,
        "alice",
        &body("find", "tasks", json!({"query": {"$where": "true"}})),
        &[],
    );
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("error[InvalidParameter]"),
        "{}",
        stderr(&o)
    );
    // Hostile bodies: nothing panics, every one is refused with exit 3.
    let deep = format!("{}{}", "{\"a\": ".repeat(5000), "}".repeat(5000));
    for hostile in [
        deep.as_str(),
        "{\"name\": \"find\", \"arguments\": [{\"database\": \"\", \"collection\": \"tasks\"}]}",
        "{\"name\": \"find\", \"arguments\": []}",
        "{\"name\": 3, \"arguments\": {}, \"extra\": 1}",
        "\"find\"",
    ] {
        let o = rolegate_stdin(
            &[
                "call",
                &example(""),
                "--user",
                &user,
                "--store",
                store.store(),
            ],
            Path::new("."),
            hostile.as_bytes(),
        );
        assert_eq!(code(&o), 3, "{hostile:.80}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

#[test]
fn command_line_errors() {
    let store = imported();
    let body = body("count", "tasks", json!({}));
    let o = call(&store, "alice", &body, &["--environment", "staging"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("development") && stderr(&o).contains("production"),
        "{}",
        stderr(&o)
    );
    // --environment selects the environment's values.
    let o = call(
        &store,
        "alice",
        &body,
        &["--environment", "development", "--explain"],
    );
    assert_eq!(code(&o), 0);
    assert!(
        stderr(&o).contains("%%environment: `development`"),
        "{}",
        stderr(&o)
    );
    #[cfg(not(feature = "mongodb"))]
    {
        // (The body in a file: the command stops before it would read stdin.)
        let dir = tempfile::tempdir().unwrap();
        let body_file = write_json(dir.path(), "body.json", &body);
        let user = example("sample/users/alice.json");
        let o = rolegate(
            &[
                "call",
                &example(""),
                "--user",
                &user,
                "--mongodb",
                "mongodb://127.0.0.1:1",
                body_file.to_str().unwrap(),
            ],
            Path::new("."),
        );
        assert_eq!(code(&o), 2);
        assert!(
            stderr(&o).contains("this build has no MongoDB support: build with --features mongodb"),
            "{}",
            stderr(&o)
        );
    }
    // stdin for the user and the body at once.
    let o = rolegate(&["call", &example(""), "--user", "-", "-"], Path::new("."));
    assert_eq!(code(&o), 2);
    // A rule file has no data folder of its own.
    let rule_file = example("data_sources/mongodb-atlas/taskboard/tasks/rules.json");
    let user = example("sample/users/alice.json");
    let o = rolegate_stdin(
        &["call", &rule_file, "--user", &user],
        Path::new("."),
        body.to_string().as_bytes(),
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--store"), "{}", stderr(&o));
    // Rules that do not load.
    let o = rolegate_stdin(
        &[
            "call",
            "no-such-app",
            "--user",
            &user,
            "--store",
            store.store(),
        ],
        Path::new("."),
        body.to_string().as_bytes(),
    );
    assert_eq!(code(&o), 4);
}

/// An app without a default rule: a namespace no rule names is `NoMatchingRuleFound`; custom
/// user data comes from the store when the user file has none.
fn small_app(dir: &Path) {
    write_json(dir, "app/realm_config.json", &json!({"app_id": "x"}));
    write_json(
        dir,
        "app/auth/custom_user_data.json",
        &json!({"enabled": true, "mongo_service_name": "mongodb-atlas", "database_name": "app",
                "collection_name": "users", "user_id_field": "uid"}),
    );
    write_json(
        dir,
        "app/data_sources/mongodb-atlas/config.json",
        &json!({"name": "mongodb-atlas", "type": "mongodb-atlas"}),
    );
    write_json(
        dir,
        "app/data_sources/mongodb-atlas/app/items/rules.json",
        &json!({"database": "app", "collection": "items",
                "roles": [{"name": "team", "apply_when": {"%%user.custom_data.team": "%%root.team"},
                           "read": true}]}),
    );
    write(
        dir,
        "items.jsonl",
        "{\"_id\": 1, \"team\": \"a\"}\n{\"_id\": 2, \"team\": \"b\"}\n",
    );
    write(
        dir,
        "users.json",
        "[{\"_id\": 1, \"uid\": \"carol\", \"team\": \"a\"}]",
    );
    write_json(dir, "carol.json", &json!({"id": "carol"}));
    write_json(dir, "dave.json", &json!({"id": "dave"}));
    write_json(
        dir,
        "carol-b.json",
        &json!({"id": "carol", "custom_data": {"team": "b"}}),
    );
}

#[test]
fn custom_user_data_and_namespaces_without_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_app(d);
    for (ns, file) in [("app.items", "items.jsonl"), ("app.users", "users.json")] {
        let o = rolegate(&["import", "app", ns, file], d);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // The default data folder is the app's.
    assert!(d.join("app/.rolegate/data/rolegate.redb").is_file());
    let find = json!({"name": "find", "arguments": [{"database": "app", "collection": "items"}]});
    let ids = |user: &str| -> Vec<i32> {
        let o = rolegate_stdin(
            &["call", "app", "--user", user],
            d,
            find.to_string().as_bytes(),
        );
        let Bson::Array(docs) = canonical_result(&o) else {
            panic!()
        };
        docs.iter()
            .map(|x| x.as_document().unwrap().get_i32("_id").unwrap())
            .collect()
    };
    assert_eq!(ids("carol.json"), [1], "carol's team from app.users");
    assert_eq!(ids("dave.json"), Vec::<i32>::new(), "no custom data: {{}}");
    assert_eq!(ids("carol-b.json"), [2], "the user file's custom_data wins");
    let o = rolegate_stdin(
        &["call", "app", "--user", "carol.json", "--explain"],
        d,
        find.to_string().as_bytes(),
    );
    assert!(
        stderr(&o).contains("%%user.custom_data: the document with _id 1 of app.users"),
        "{}",
        stderr(&o)
    );
    // No rule names app.other and there is no default rule: an app user's write fails.
    let insert = json!({"name": "insertOne",
                        "arguments": [{"database": "app", "collection": "other", "document": {"a": 1}}]});
    let o = rolegate_stdin(
        &["call", "app", "--user", "carol.json", "--explain"],
        d,
        insert.to_string().as_bytes(),
    );
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("under no rules"), "{err}");
    assert!(
        err.lines()
            .last()
            .unwrap()
            .starts_with("error[NoMatchingRuleFound]"),
        "{err}"
    );
    // The system user is not bound by rules.
    let o = rolegate_stdin(
        &["call", "app", "--user", "carol.json", "--system"],
        d,
        insert.to_string().as_bytes(),
    );
    let Bson::Document(r) = canonical_result(&o) else {
        panic!()
    };
    assert!(r.get_object_id("insertedId").is_ok(), "{r}");
}

// ---------------------------------------------------------------------------------------------
// import and export

#[test]
fn import_reports_every_bad_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    small_app(d);
    write(
        d,
        "bad.jsonl",
        "{\"_id\": 1}\n{\"_id\": 1.0}\nnot json\n[1]\n{\"_id\": [1]}\n\n{\"x\": 1}\n{\"_id\": {\"$oid\": \"zz\"}}\n",
    );
    let o = rolegate(&["import", "app", "app.items", "bad.jsonl"], d);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    for line in [2, 3, 4, 5, 8] {
        assert!(
            err.contains(&format!("bad.jsonl line {line}:")),
            "line {line}: {err}"
        );
    }
    for line in [1, 6, 7] {
        assert!(
            !err.contains(&format!("bad.jsonl line {line}:")),
            "line {line}: {err}"
        );
    }
    assert!(err.contains("the same `_id` as line 1"), "{err}");
    // Nothing was written: not even the store was created.
    let o = rolegate(&["export", "app", "app.items"], d);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("holds no store"), "{}", stderr(&o));
    // A good import, then an _id already stored: nothing of the second file is written.
    assert_eq!(
        code(&rolegate(&["import", "app", "app.items", "items.jsonl"], d)),
        0
    );
    write(d, "more.jsonl", "{\"_id\": 3}\n{\"_id\": 2}\n");
    let o = rolegate(&["import", "app", "app.items", "more.jsonl"], d);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("more.jsonl line 2:") && stderr(&o).contains("already holds"),
        "{}",
        stderr(&o)
    );
    let exported = stdout(&rolegate(&["export", "app", "app.items"], d));
    assert_eq!(
        exported,
        "{\"_id\":{\"$numberInt\":\"1\"},\"team\":\"a\"}\n{\"_id\":{\"$numberInt\":\"2\"},\"team\":\"b\"}\n"
    );
    // --drop replaces the collection, in one go.
    let o = rolegate(&["import", "app", "app.items", "more.jsonl", "--drop"], d);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("replacing 2"), "{}", stdout(&o));
    let exported = stdout(&rolegate(&["export", "app", "app.items"], d));
    assert_eq!(
        exported,
        "{\"_id\":{\"$numberInt\":\"3\"}}\n{\"_id\":{\"$numberInt\":\"2\"}}\n"
    );
    // Bad namespaces; an app that does not exist.
    for ns in ["items", "mongodb-atlas/app.items", "a b.c"] {
        let o = rolegate(&["import", "app", ns, "items.jsonl"], d);
        assert_eq!(code(&o), 2, "{ns}");
    }
    for command in ["import", "export"] {
        let mut args = vec![command, "no-such-app", "app.items"];
        if command == "import" {
            args.push("items.jsonl");
        }
        let o = rolegate(&args, d);
        assert_eq!(code(&o), 4, "{command}: {}", stderr(&o));
    }
}

#[test]
fn export_then_import_round_trips_every_type() {
    let store = imported();
    let original = export(&store, "employees");
    let dir = tempfile::tempdir().unwrap();
    let o = rolegate(
        &[
            "export",
            &example(""),
            "taskboard.employees",
            "--store",
            store.store(),
        ],
        Path::new("."),
    );
    write(dir.path(), "employees.jsonl", stdout(&o));
    let copy = Store {
        path: dir.path().join("copy"),
        _dir: dir,
    };
    let o = rolegate(
        &[
            "import",
            &example(""),
            "taskboard.employees",
            copy.path
                .parent()
                .unwrap()
                .join("employees.jsonl")
                .to_str()
                .unwrap(),
            "--store",
            copy.store(),
        ],
        Path::new("."),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(export(&copy, "employees"), original);
    // A collection the store never held: nothing, and a warning naming those it holds.
    let o = rolegate(
        &[
            "export",
            &example(""),
            "taskboard.nothing",
            "--store",
            copy.store(),
        ],
        Path::new("."),
    );
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("taskboard.employees"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// the README's quick start

/// Copies the folder `from` into `to` (files and folders, recursively).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if path.is_dir() {
            if name != ".rolegate" {
                copy_dir(&path, &to.join(name));
            }
        } else {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

/// The `cargo run --release -- ...` command lines of the README's first `sh` block after
/// "## Quick start" (continuation lines joined, `&&` splitting one line into several), as the
/// arguments of the binary.
fn quick_start_commands() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let from = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let block: Vec<&str> = readme[from..]
        .lines()
        .skip_while(|l| l.trim() != "```sh")
        .skip(1)
        .take_while(|l| l.trim() != "```")
        .collect();
    let mut joined = String::new();
    for line in block {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            joined.push('\n');
            continue;
        }
        match line.strip_suffix('\\') {
            Some(l) => {
                joined.push_str(l);
                joined.push(' ');
            }
            None => {
                joined.push_str(line);
                joined.push('\n');
            }
        }
    }
    joined
        .lines()
        .flat_map(|l| l.split("&&"))
        .filter_map(|c| c.trim().strip_prefix("cargo run --release --"))
        .map(|c| c.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn the_readme_quick_start_runs_the_main_job() {
    let commands = quick_start_commands();
    assert_eq!(commands.len(), 2, "import, then call: {commands:?}");
    assert_eq!(commands[0][0], "import");
    assert_eq!(commands[1][0], "call");
    // In a copy of the example app, so the repository is not written.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app"),
        &dir.path().join("examples/tasks-app"),
    );
    let mut outputs = Vec::new();
    // Twice: the quick start can be run again (`--drop`).
    for _ in 0..2 {
        for args in &commands {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = rolegate(&refs, dir.path());
            assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
            outputs.push(o);
        }
    }
    assert!(
        dir.path()
            .join("examples/tasks-app/.rolegate/data/rolegate.redb")
            .is_file()
    );
    let call = &outputs[1];
    let Bson::Array(found) = canonical_result(call) else {
        panic!("a find: {}", stdout(call))
    };
    assert!(!found.is_empty());
    let err = stderr(call);
    assert!(
        err.contains("explain: store query on taskboard.tasks"),
        "{err}"
    );
    assert_eq!(stdout(&outputs[3]), stdout(call), "the same answer again");
}
