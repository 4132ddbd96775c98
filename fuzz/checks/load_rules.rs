//! Fuzz target `load_rules`: arbitrary bytes → JSON → loading, as one of the rule-bearing files
//! an app holds (the first byte picks which), then everything that runs on loaded rules: the
//! lint pass, the limit measures, compilation (`Rules::new`) and one read per collection through
//! both engines.
//!
//! Seeds: the real-rules corpus files (see README.md). Checks beyond "no panic": every
//! diagnostic names the file; loading twice gives the same diagnostics; a rule set that loads
//! is compiled and read without panicking, and both engines agree on that read.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/load_rules.rs`) and the regression tests
//! (`crates/rolegate/src/fuzz_regressions.rs`), which include this file with `#[path]`: it may use only
//! `rolegate`, `serde_json` and `bson`.

use std::collections::BTreeMap;

use bson::doc;
use rolegate::fuzzing::parse_json;
use rolegate::lint::check_warnings;
use rolegate::{EngineKind, LoadOptions, RequestContext, RuleSet, Rules};
use serde_json::json;

/// The file the input is loaded as, by its first byte.
const PATHS: &[&str] = &[
    "data_sources/mongodb-atlas/db/coll/rules.json",
    "data_sources/mongodb-atlas/default_rule.json",
    "data_sources/mongodb-atlas/db/coll/schema.json",
    "services/mongodb-atlas/rules/db.coll.json",
    "services/http/rules/get.json",
    "sync/config.json",
    "functions/config.json",
    "functions/f/config.json",
    "values/v.json",
    "environments/production.json",
    "data_sources/mongodb-atlas/config.json",
    "rules.json",
];

fn exercise(set: &RuleSet) {
    let _ = check_warnings(set);
    let _ = set.measure();
    let rules = Rules::new(set.clone());
    let ctx = RequestContext::for_user(doc! {"id": "u1", "type": "normal", "data": {},
    "custom_data": {"isAdmin": true, "team": "x"}});
    let stored = doc! {"_id": 1, "owner_id": "u1", "owner": "u1", "title": "t", "team": "x"};
    for ds in set.data_sources.values() {
        for (db, coll) in ds.collections.keys() {
            let Ok(c) = rules.collection(&format!("{}/{db}.{coll}", ds.name)) else {
                continue;
            };
            let r = c.prepare_with(&ctx, EngineKind::Reference).read(&stored);
            let k = c.prepare_with(&ctx, EngineKind::Compiled).read(&stored);
            assert_eq!(
                (&k.role, k.visible, &k.document, k.error.is_some()),
                (&r.role, r.visible, &r.document, r.error.is_some()),
                "engines differ on {db}.{coll}"
            );
            let _ = c.prepare(&ctx).insert(&stored);
            let _ = c.prepare(&ctx).query_plan(Some(&doc! {"a": 1}), None);
        }
    }
}

pub fn run(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let path = PATHS[usize::from(*first) % PATHS.len()];
    let json = match parse_json(text, path) {
        Ok(json) => json,
        Err(d) => {
            assert_eq!(&*d.place.file, path);
            return;
        }
    };
    let options = LoadOptions::default();
    let once = RuleSet::from_json(path, &json, &options);
    let twice = RuleSet::from_json(path, &json, &options);
    match (&once, &twice) {
        (Ok(a), Ok(b)) => assert_eq!(a.warnings, b.warnings),
        (Err(a), Err(b)) => assert_eq!(a.diagnostics, b.diagnostics),
        _ => panic!("loading is not deterministic"),
    }
    match once {
        Ok(set) => {
            for d in &set.warnings.0 {
                assert!(!d.place.file.is_empty(), "{d}");
            }
            exercise(&set);
        }
        Err(e) => {
            for d in &e.diagnostics.0 {
                assert!(!d.place.file.is_empty(), "{d}");
            }
        }
    }
    // As part of an app with Flexible Sync enabled (Sync-compatibility checks), when the input
    // is a collection's rules.
    if *first % 2 == 0 && path.ends_with("rules.json") {
        let mut files = BTreeMap::new();
        files.insert(path.to_string(), json);
        files.insert(
            "sync/config.json".to_string(),
            json!({"type": "flexible", "state": "enabled", "service_name": "mongodb-atlas",
                   "database_name": "db", "queryable_fields_names": ["owner_id", "team"]}),
        );
        if let Ok(set) = RuleSet::from_files(&files, &options) {
            exercise(&set);
        }
    }
}
