//! The generators, properties and semantic diff of `rolegate::testing` (feature `testing-gen`)
//! on the example app (`examples/tasks-app`) and on seeded mistakes: copies of it with a role
//! that leaks a field and with a wrong `apply_when`.
//!
//! What is shown: the generators reach every role of the app and make the edge values they
//! promise; the committed property file passes; each seeded mistake breaks a property within the
//! default number of cases, and the counterexample is shrunk and, printed as a case, fails under
//! the case runner until the rules are fixed; `diff` finds nothing between the app and itself
//! (nor after renaming roles and reordering keys) and exactly the seeded change otherwise; the
//! compiled and reference engines agree on generated cases; a run is deterministic with a seed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bson::{Bson, doc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rolegate::testing::{
    CaseRules, Change, ContextTemplate, DiffClass, DiffInputs, EngineChoice, Generators, Mode,
    PropAction, PropertyFile, PropertyOutcome, RunOptions, Side, check_property, diff_collection,
    generic_properties, parse_properties, run_case,
};
use rolegate::{EngineKind, Rules};
use serde_json::{Value, json};

fn app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tasks-app")
}

fn properties() -> PropertyFile {
    let text = std::fs::read_to_string(app().join("properties.json")).unwrap();
    parse_properties(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

const TASK_RULES: &str = "data_sources/mongodb-atlas/taskboard/tasks/rules.json";

/// A copy of the example app in `dir` with `edit` applied to the tasks' rule file (as JSON).
fn seeded(dir: &Path, name: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let target = dir.join(name);
    copy_dir(&app(), &target);
    let file = target.join(TASK_RULES);
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&file, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    target
}

/// The team viewer may read the internal notes (a role that leaks a field).
fn leak(rules: &mut Value) {
    rules["roles"][3]["fields"]["details"]["fields"]["internalNotes"]["read"] = json!(true);
}

/// The admin role applies to anyone whose custom data has `isAdmin`, even `false` (a wrong
/// `apply_when`).
fn wrong_apply_when(rules: &mut Value) {
    rules["roles"][0]["apply_when"] = json!({"%%user.custom_data.isAdmin": {"$exists": true}});
}

#[test]
fn the_generators_reach_every_role_and_make_edge_values() {
    let rules = Rules::load(app()).unwrap();
    let tasks = rules.collection("taskboard.tasks").unwrap();
    let gens = Generators::new(&rules, "taskboard.tasks").unwrap();
    let template = ContextTemplate::new(&rules).unwrap();
    let strategy = gens.case();
    let mut runner = TestRunner::deterministic();
    let mut roles = BTreeSet::new();
    let (mut owner_matches, mut nulls, mut wrong_types, mut no_id, mut numbers) = (0, 0, 0, 0, 0);
    let mut number_types = BTreeSet::new();
    for _ in 0..3000 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let ctx = template.context(&case.user, &case.request);
        roles.insert(tasks.prepare(&ctx).read(&case.document).role);
        if case.document.get("owner_id").is_some()
            && case.document.get("owner_id") == case.user.get("id")
        {
            owner_matches += 1;
        }
        nulls += case.document.values().filter(|v| **v == Bson::Null).count();
        if matches!(case.document.get("title"), Some(Bson::Int32(_))) {
            wrong_types += 1;
        }
        no_id += usize::from(!case.user.contains_key("id"));
        if let Some(Bson::Document(d)) = case.document.get("details")
            && let Some(v) = d.get("estimateHours")
        {
            numbers += 1;
            number_types.insert(v.element_type() as u8);
        }
    }
    let expected: BTreeSet<Option<String>> = [
        None,
        Some("admin"),
        Some("owner"),
        Some("collaborator"),
        Some("teamViewer"),
    ]
    .into_iter()
    .map(|r| r.map(str::to_string))
    .collect();
    assert_eq!(roles, expected, "every role, and no role, is reached");
    assert!(
        owner_matches > 300,
        "owner_id equals the user's id often: {owner_matches}"
    );
    assert!(nulls > 100, "null values: {nulls}");
    assert!(wrong_types > 20, "a title of the wrong type: {wrong_types}");
    assert!(no_id > 10, "users without an id: {no_id}");
    assert!(numbers > 100);
    assert!(
        number_types.len() >= 3,
        "estimateHours as int32 and, at the edges, other numeric types: {number_types:?}"
    );
}

#[test]
fn the_generators_learn_constants_from_rules_values_and_schemas() {
    let rules = Rules::load(app()).unwrap();
    let gens = Generators::new(&rules, "taskboard.tasks").unwrap();
    let paths = gens.document_paths();
    for p in [
        "owner_id",
        "collaborators",
        "details.internalNotes",
        "checklist.done",
        "other",
    ] {
        assert!(paths.contains(&p.to_string()), "{p} in {paths:?}");
    }
    let status = gens.constants_of("status");
    assert_eq!(
        status,
        ["todo", "doing", "done"].map(|s| Bson::String(s.into()))
    );
    // `%%user.id` is compared with `%%values.adminUserIds` in taskboard.projects.
    let projects = Generators::builder()
        .collection(&rules, "taskboard.projects")
        .unwrap()
        .build();
    let mut runner = TestRunner::deterministic();
    let user = projects.user();
    let admin = Bson::String("66ad00000000000000000ad0".into());
    let admins = (0..500)
        .filter(|_| user.new_tree(&mut runner).unwrap().current().get("id") == Some(&admin))
        .count();
    assert!(admins > 50, "the admin id from %%values: {admins}");
}

#[test]
fn a_change_sets_or_removes_a_path() {
    let pre = doc! {"a": 1, "b": {"c": 2}};
    let set = Change {
        path: vec!["b".into(), "d".into()],
        value: Some(Bson::Int32(3)),
    };
    let remove = Change {
        path: vec!["a".into()],
        value: None,
    };
    assert_eq!(
        Change::apply_all(&[set, remove], &pre),
        doc! {"b": {"c": 2, "d": 3}}
    );
    let deep = Change {
        path: vec!["x".into(), "y".into()],
        value: Some(Bson::Boolean(true)),
    };
    assert_eq!(
        Change::apply_all(&[deep], &pre),
        doc! {"a": 1, "b": {"c": 2}, "x": {"y": true}}
    );
}

proptest! {
    #![proptest_config(Config { cases: 64, failure_persistence: None, ..Config::default() })]

    /// The compiled engine and the reference evaluator decide every generated case alike.
    #[test]
    fn the_engines_agree_on_generated_cases(seed in any::<u64>()) {
        let rules = Rules::load(app()).unwrap();
        let template = ContextTemplate::new(&rules).unwrap();
        for ns in ["taskboard.tasks", "taskboard.employees", "taskboard.projects"] {
            let coll = rules.collection(ns).unwrap();
            let gens = Generators::new(&rules, ns).unwrap();
            let mut runner = TestRunner::new_with_rng(
                Config::default(),
                proptest::test_runner::TestRng::from_seed(
                    proptest::test_runner::RngAlgorithm::ChaCha,
                    &[seed.to_le_bytes(), seed.to_be_bytes(), [1; 8], [2; 8]].concat(),
                ),
            );
            for _ in 0..8 {
                let case = gens.case().new_tree(&mut runner).unwrap().current();
                let ctx = template.context(&case.user, &case.request);
                let (c, r) = (coll.prepare(&ctx), coll.prepare_with(&ctx, EngineKind::Reference));
                let post = case.post();
                prop_assert_eq!(c.read(&case.document), r.read(&case.document));
                prop_assert_eq!(c.insert(&case.document).allowed, r.insert(&case.document).allowed);
                prop_assert_eq!(
                    c.update(&case.document, &post).allowed,
                    r.update(&case.document, &post).allowed
                );
                prop_assert_eq!(c.delete(&case.document).allowed, r.delete(&case.document).allowed);
            }
        }
    }
}

#[test]
fn the_example_apps_properties_pass() {
    let rules = Rules::load(app()).unwrap();
    let props = properties().compile(&rules).unwrap();
    assert!(props.len() >= 10);
    let template = ContextTemplate::new(&rules).unwrap();
    let options = RunOptions {
        cases: 2000,
        ..RunOptions::default()
    };
    for p in &props {
        let report = check_property(&rules, &template, p, &options);
        assert!(report.passed(), "{}: {:?}", p.name, report.outcome);
        assert_eq!(report.cases, 2000);
        assert!(report.exercised > 0);
        assert!(report.roles.iter().map(|(_, n)| n).sum::<u64>() == report.in_scope);
    }
}

/// Checks every property of the committed file against the app at `path`; returns the failed
/// ones' names with their counterexamples' documents and users.
fn failures(path: &Path) -> Vec<(String, rolegate::testing::Counterexample, PropAction)> {
    let rules = Rules::load(path).unwrap();
    let props = properties().compile(&rules).unwrap();
    let template = ContextTemplate::new(&rules).unwrap();
    let mut out = Vec::new();
    // The mistakes are seeded in taskboard.tasks: its properties are the ones to run.
    for p in props.iter().filter(|p| p.namespace == "taskboard.tasks") {
        let report = check_property(&rules, &template, p, &RunOptions::default());
        if let PropertyOutcome::Failed(cx) = report.outcome {
            // Found within the default number of cases, and then shrunk.
            assert!(report.cases <= 10_000);
            let case = cx.to_case(
                p,
                &template,
                CaseRules {
                    mode: Mode::MongoDb,
                    files: Some(app_files(path)),
                    collection: Some(p.namespace.clone()),
                    ..CaseRules::default()
                },
            );
            // The printed case reproduces the failure: it fails until the rules are fixed.
            let result = run_case(&case, EngineChoice::Reference);
            assert!(
                !result.passed,
                "{}: the printed case passes: {}",
                p.name, result.message
            );
            let result = run_case(
                &rolegate::testing::Case {
                    rules: CaseRules {
                        mode: Mode::MongoDb,
                        files: Some(app_files(&app())),
                        collection: Some(p.namespace.clone()),
                        ..CaseRules::default()
                    },
                    ..case
                },
                EngineChoice::Reference,
            );
            assert!(
                result.passed,
                "{}: the case fails on the right rules: {}",
                p.name, result.message
            );
            out.push((p.name.clone(), *cx, p.action));
        } else {
            assert!(report.passed(), "{}: {:?}", p.name, report.outcome);
        }
    }
    out
}

/// The files of the app's taskboard.tasks (what a case needs to load them).
fn app_files(path: &Path) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for rel in [
        "data_sources/mongodb-atlas/config.json",
        "data_sources/mongodb-atlas/default_rule.json",
        TASK_RULES,
        "data_sources/mongodb-atlas/taskboard/tasks/schema.json",
    ] {
        let text = std::fs::read_to_string(path.join(rel)).unwrap();
        m.insert(rel.to_string(), serde_json::from_str(&text).unwrap());
    }
    m
}

#[test]
fn a_role_that_leaks_a_field_is_found_and_shrunk() {
    let dir = tempfile::tempdir().unwrap();
    let found = failures(&seeded(dir.path(), "leak", leak));
    let names: Vec<&str> = found.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "only admins, owners and collaborators read the internal notes",
            "a user who is not an admin, the owner or a collaborator never reads the internal notes"
        ]
    );
    for (_, cx, _) in &found {
        // Minimal: the document holds the team (to choose the viewer role) and the notes; the
        // user, the team.
        let keys: Vec<&str> = cx.case.document.keys().map(String::as_str).collect();
        assert_eq!(keys, ["team", "details"], "{}", cx.case.document);
        assert_eq!(cx.decision.role.as_deref(), Some("teamViewer"));
        assert!(
            !cx.case.user.contains_key("id"),
            "shrunk away: {}",
            cx.case.user
        );
    }
}

#[test]
fn a_wrong_apply_when_is_found_and_shrunk() {
    let dir = tempfile::tempdir().unwrap();
    let found = failures(&seeded(dir.path(), "wrong", wrong_apply_when));
    assert!(
        found.len() >= 2,
        "{:?}",
        found.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, cx, _) in &found {
        assert_eq!(cx.decision.role.as_deref(), Some("admin"), "{name}");
        // Shrunk to the one thing that matters: an `isAdmin` that is there and not true.
        let custom = cx.case.user.get_document("custom_data").unwrap();
        let keys: Vec<&str> = custom.keys().map(String::as_str).collect();
        assert_eq!(keys, ["isAdmin"], "{name}: {custom}");
        assert_ne!(custom.get("isAdmin"), Some(&Bson::Boolean(true)), "{name}");
    }
    let delete = found
        .iter()
        .find(|(_, _, a)| *a == PropAction::Delete)
        .expect("the delete property fails");
    assert!(
        delete.1.case.document.is_empty(),
        "{}",
        delete.1.case.document
    );
}

fn diff(old: &Path, new: &Path) -> Vec<rolegate::testing::Difference> {
    let (a, b) = (Rules::load(old).unwrap(), Rules::load(new).unwrap());
    let mut all = Vec::new();
    for ns in rolegate::testing::namespaces(a.rule_set(), b.rule_set()) {
        let options = RunOptions {
            cases: 2000,
            ..RunOptions::default()
        };
        all.extend(diff_collection(&a, &b, &ns, &DiffInputs::default(), &options).differences);
    }
    all
}

#[test]
fn diff_finds_nothing_between_an_app_and_itself_or_a_renamed_reordered_copy() {
    assert!(diff(&app(), &app()).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let renamed = seeded(dir.path(), "renamed", |rules| {
        let roles = rules["roles"].as_array_mut().unwrap();
        for (i, role) in roles.iter_mut().enumerate() {
            role["name"] = json!(format!("role{i}"));
            // Reorder the role's keys.
            let obj = role.as_object().unwrap().clone();
            let mut reversed = serde_json::Map::new();
            for (k, v) in obj.into_iter().rev() {
                reversed.insert(k, v);
            }
            *role = Value::Object(reversed);
        }
    });
    let found = diff(&app(), &renamed);
    assert!(
        found.is_empty(),
        "{:?}",
        found
            .iter()
            .map(|d| d.class.to_string())
            .collect::<Vec<_>>()
    );
}

#[test]
fn diff_finds_exactly_the_leak() {
    let dir = tempfile::tempdir().unwrap();
    let found = diff(&app(), &seeded(dir.path(), "leak", leak));
    let classes: Vec<&DiffClass> = found.iter().map(|d| &d.class).collect();
    assert_eq!(
        classes,
        [&DiffClass::Field(
            "details.internalNotes".to_string(),
            Side::New
        )]
    );
    let d = &found[0];
    assert_eq!(d.old.role.as_deref(), Some("teamViewer"));
    assert_eq!(d.new.role.as_deref(), Some("teamViewer"));
}

#[test]
fn diff_finds_exactly_the_wrong_apply_when() {
    let dir = tempfile::tempdir().unwrap();
    let found = diff(&app(), &seeded(dir.path(), "wrong", wrong_apply_when));
    assert!(found.len() >= 5);
    let actions: BTreeSet<PropAction> = found.iter().map(|d| d.class.action()).collect();
    assert_eq!(
        actions.len(),
        4,
        "reads, inserts, updates and deletes change"
    );
    for d in &found {
        // Every difference: the new rules give more, through the admin role, to a user whose
        // `isAdmin` is present and not true.
        let side = match &d.class {
            DiffClass::Visible(s) | DiffClass::Field(_, s) | DiffClass::Write(_, s) => *s,
            DiffClass::FieldValue(_) => panic!("{}", d.class),
        };
        assert_eq!(side, Side::New, "{}", d.class);
        assert_eq!(d.new.role.as_deref(), Some("admin"), "{}", d.class);
        assert_ne!(d.old.role.as_deref(), Some("admin"), "{}", d.class);
        let is_admin = d
            .case
            .user
            .get_document("custom_data")
            .unwrap()
            .get("isAdmin");
        assert!(is_admin.is_some() && is_admin != Some(&Bson::Boolean(true)));
    }
}

#[test]
fn runs_are_deterministic_with_a_seed() {
    let rules = Rules::load(app()).unwrap();
    let template = ContextTemplate::new(&rules).unwrap();
    let props = properties().compile(&rules).unwrap();
    let p = &props[0];
    let run = |seed| {
        let r = check_property(
            &rules,
            &template,
            p,
            &RunOptions {
                cases: 500,
                seed,
                ..RunOptions::default()
            },
        );
        (r.in_scope, r.exercised, r.roles)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn the_generic_property_holds_on_the_app_and_catches_the_leak() {
    let dir = tempfile::tempdir().unwrap();
    let leaky = seeded(dir.path(), "leak", leak);
    for (path, fails) in [(app(), false), (leaky, true)] {
        let rules = Rules::load(&path).unwrap();
        let template = ContextTemplate::new(&rules).unwrap();
        let tasks = rules.collection("taskboard.tasks").unwrap();
        let props = generic_properties("taskboard.tasks", tasks.policy().roles);
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        if fails {
            // The leak removed the property it breaks: nothing in the rules says "no read" now.
            assert!(names.is_empty(), "{names:?}");
            continue;
        }
        assert_eq!(
            names,
            ["role `teamViewer` grants no read of `details.internalNotes`: it never returns it"]
        );
        for p in &props {
            let report = check_property(
                &rules,
                &template,
                p,
                &RunOptions {
                    cases: 3000,
                    ..RunOptions::default()
                },
            );
            assert!(report.passed(), "{:?}", report.outcome);
        }
    }
}

#[test]
fn property_files_are_checked_with_json_paths_and_hints() {
    let rules = Rules::load(app()).unwrap();
    let file = |props: Value| {
        parse_properties(&json!({"collection": "taskboard.tasks", "properties": props}))
    };
    let errors = |props: Value| file(props).unwrap().compile(&rules).unwrap_err();
    let e = errors(json!([{"name": "a", "action": "read", "only_roles": ["ownr"]}]));
    assert_eq!(e[0].path, "properties[0].only_roles[0]");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `owner`?"));
    let e = errors(
        json!([{"name": "a", "action": "read", "expect": "denied", "only_roles": ["owner"]}]),
    );
    assert!(e[0].message.contains("more than one claim"), "{e:?}");
    let e = errors(json!([{"name": "a", "action": "read"}]));
    assert!(e[0].message.contains("no claim"), "{e:?}");
    let e = errors(
        json!([{"name": "a", "action": "read", "expect": "denied", "where": {"$where": "1"}}]),
    );
    assert_eq!(e[0].path, "properties[0].where");
    let e = errors(
        json!([{"name": "a", "action": "read", "expect": "denied", "when": {"%%usr.id": 1}}]),
    );
    assert!(e[0].path.starts_with("properties[0].when"), "{e:?}");
    let e = errors(json!([
        {"name": "a", "action": "read", "expect": "denied"},
        {"name": "a", "action": "delete", "fields": "x", "expect": "denied", "collection": "nope"}
    ]));
    let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "properties[1].name",
            "properties[1].collection",
            "properties[1].fields"
        ]
    );
    assert!(file(json!([{"name": "a", "action": "read", "expct": "denied"}])).is_err());
}

/// A schema nested as deep as the generators go, every level both an object and an array of
/// objects, with wide levels: building the generators stays fast (each path's strategy is built
/// once), and so does drawing a case.
#[test]
fn deep_and_wide_schemas_build_quickly() {
    fn level(depth: usize) -> Value {
        let mut props = serde_json::Map::new();
        for i in 0..4 {
            let child = if depth == 0 {
                json!({"bsonType": ["string", "int"]})
            } else {
                let inner = level(depth - 1);
                json!({"bsonType": ["object", "array"], "properties": inner["properties"].clone(),
                       "items": inner})
            };
            props.insert(format!("f{i}"), child);
        }
        json!({"bsonType": "object", "properties": props})
    }
    let mut wide = serde_json::Map::new();
    for i in 0..300 {
        wide.insert(format!("w{i}"), json!({"bsonType": "string"}));
    }
    // Six levels of four members (each member's schema written twice: as an object and as
    // the items of an array): past the vocabulary's bounds on depth and paths.
    let mut schema = level(5);
    schema["properties"].as_object_mut().unwrap().extend(wide);
    let files: std::collections::BTreeMap<String, Value> = [
        (
            "data_sources/mongodb-atlas/config.json".to_string(),
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas"}),
        ),
        (
            "data_sources/mongodb-atlas/db/c/rules.json".to_string(),
            json!({"database": "db", "collection": "c",
                   "roles": [{"name": "r", "apply_when": {"f0.f1.f2": "%%user.id"}, "read": true}]}),
        ),
        ("data_sources/mongodb-atlas/db/c/schema.json".to_string(), schema),
    ]
    .into_iter()
    .collect();
    let rules = Rules::new(
        rolegate::RuleSet::from_files(&files, &rolegate::LoadOptions::default()).unwrap(),
    );
    let started = std::time::Instant::now();
    let gens = Generators::new(&rules, "db.c").unwrap();
    assert!(gens.document_paths().len() <= 2048);
    let mut runner = TestRunner::deterministic();
    let strategy = gens.case();
    let mut biggest = 0;
    for _ in 0..50 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        biggest = biggest.max(bson::to_vec(&case.document).unwrap().len());
    }
    // Bounded by the vocabulary (paths are capped), not by how arrays of documents nest.
    assert!(biggest < 1 << 20, "{biggest} bytes");
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}
