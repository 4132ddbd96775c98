//! The fuzz targets' checks (`fuzz/checks/*.rs`, included here as they are) run on fixed inputs
//! in `cargo test`: every crash a fuzzing run found, minimized, inline — plus a few seeds of each
//! target so that the checks themselves stay exercised. See `fuzz/README.md` for the runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "test code, and the fuzz checks it includes: a failed assertion is a failed test"
)]
#![allow(
    clippy::duplicate_mod,
    reason = "the context, query and schema checks each include the evaluate check's generator, as their fuzz targets do"
)]

#[path = "../../../fuzz/checks/context.rs"]
mod context;
#[path = "../../../fuzz/checks/evaluate.rs"]
mod evaluate;
#[path = "../../../fuzz/checks/expansion.rs"]
mod expansion;
#[path = "../../../fuzz/checks/load_rules.rs"]
mod load_rules;
#[path = "../../../fuzz/checks/query.rs"]
mod query;
#[path = "../../../fuzz/checks/schema.rs"]
mod schema;

/// `runs` pseudo-random inputs of `len` bytes each (a cheap xorshift walk from `seed`).
fn inputs(seed: u32, runs: usize, len: usize) -> Vec<Vec<u8>> {
    let mut x = seed;
    (0..runs)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[0]
                })
                .collect()
        })
        .collect()
}

/// `load_rules` input: the selector byte (which file the JSON is loaded as: 0 a collection's
/// `rules.json`, 1 a `default_rule.json`, 5 `sync/config.json`, ... — see `PATHS`) and the text.
fn rules_input(selector: u8, text: &str) -> Vec<u8> {
    let mut data = vec![selector];
    data.extend_from_slice(text.as_bytes());
    data
}

// ---------------------------------------------------------------------------------------------
// Crashes found by fuzzing (each a test here, input inline, minimized)

/// `query`, 2026-12-06, first run (after 1,050 inputs): a false alarm of the check, kept as a
/// regression test of the check itself. Rules `{"name": "r0", "apply_when": {}, "read": false,
/// ...}` (nothing readable), filter `f0` (`{"n": {"$ne": 1}}`, projection `{"n": 0}`), a
/// client query `{"a": 0}` under 24 `$and`s, stored `{_id: 0, tags: {}, a: 0}`: changing the
/// hidden `a` to `"u1"` made the store query drop the document instead of the rules withholding
/// it. The client receives nothing either way (the store query may pre-filter on a field that no
/// role which could return the document hides); the check compared the full `read_for`
/// outcomes instead of what the client receives, and now compares the returned documents.
#[test]
fn query_hidden_field_in_store_query_of_withheld_document() {
    let input = [
        0, 10, 0, 0, 0, 0, 0, 0, 94, 94, 94, 94, 94, 94, 94, 94, 94, 94, 94, 94, 94, 94, 9, 9, 9,
        9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 82,
        82, 9, 9, 0, 0, 96,
    ];
    query::run(&input);
}

// ---------------------------------------------------------------------------------------------
// Seeds

#[test]
fn expansion_seeds() {
    for s in [
        "",
        "%%",
        "%%user.id",
        "%%user.id%%",
        "%%user..id",
        "%%user.",
        "%%ctx.user",
        "%%secrets.x",
        "owner.id",
        ".a",
        "a.",
        "%%request.requestHeaders.X-Api-Version",
        "%%%",
        "%%é.ü",
        "caf\u{e9}..\u{e9}t\u{e9}",
        "%%user.\u{10ffff}%",
    ] {
        expansion::run(s.as_bytes());
    }
    expansion::run(&[0xff, 0xfe]);
}

#[test]
fn load_rules_seeds() {
    let rules = r#"{"database": "db", "collection": "coll",
        "roles": [{"name": "owner", "apply_when": {"owner_id": "%%user.id"},
                   "document_filters": {"read": {"owner_id": "%%user.id"}, "write": {"owner_id": "%%user.id"}},
                   "read": true, "write": true},
                  {"name": "team", "apply_when": {"%%user.custom_data.team": "%%root.team"},
                   "fields": {"title": {"read": true}}, "additional_fields": {}}],
        "filters": [{"name": "f", "apply_when": {"%%user.custom_data.isAdmin": {"$ne": true}},
                     "query": {"archived": {"$ne": true}}, "projection": {"secret": 0}}]}"#;
    for selector in 0..12 {
        load_rules::run(&rules_input(selector, rules));
    }
    for text in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"roles": [{"name": "r"}]}"#,
        r#"{"type": "flexible", "queryable_fields_names": ["a"], "permissions": {"defaultRoles": [{"name": "r", "applyWhen": {}, "read": true}]}}"#,
        r#"[{"name": "f", "private": true, "can_evaluate": {"%%args.x": 1}}]"#,
        r#"{"name": "v", "value": {"$oid": "zz"}}"#,
        &"[".repeat(200),
    ] {
        for selector in [0, 1, 5, 6, 8] {
            load_rules::run(&rules_input(selector, text));
        }
    }
}

#[test]
fn evaluate_seeds() {
    evaluate::run(&[]);
    evaluate::run(&[0; 64]);
    evaluate::run(&[255; 256]);
    let counting: Vec<u8> = (0..=255).collect();
    evaluate::run(&counting);

    // A cheap pseudo-random walk over the generator's choices.
    let mut x: u32 = 0x9e37_79b9;
    let runs = 300;
    let mut all = Vec::new();
    for _ in 0..runs {
        let input: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect();
        all.extend(evaluate::run(&input));
    }
    let count = |f: fn(&evaluate::Decided) -> bool| all.iter().filter(|d| f(d)).count();
    let (role, visible, failed) = (count(|d| d.role), count(|d| d.visible), count(|d| d.failed));
    let writes = count(|d| d.writes_allowed > 0);
    println!(
        "{} of {runs} loaded: a role in {role}, visible {visible}, failed {failed}, some write allowed {writes}",
        all.len()
    );
    // The generator must reach every kind of outcome, or the target fuzzes little.
    assert!(all.len() * 2 >= runs, "only {} rule sets loaded", all.len());
    assert!(
        role * 5 >= all.len() && role < all.len(),
        "roles applied in {role}"
    );
    assert!(visible * 10 >= all.len(), "visible in {visible}");
    assert!(
        failed > 0 && writes > 0,
        "failed {failed}, writes allowed {writes}"
    );
}

#[test]
fn context_seeds() {
    context::run(&[]);
    context::run(&[0; 64]);
    context::run(&[255; 512]);
    let all: Vec<bool> = inputs(0x1234_5678, 300, 400)
        .iter()
        .filter_map(|input| context::run(input))
        .collect();
    let deep = all.iter().filter(|d| **d).count();
    println!(
        "{} of 300 loaded, {deep} with a context too deep",
        all.len()
    );
    // The generator must load rules and reach both sides of the depth limit.
    assert!(all.len() * 3 >= 300, "only {} rule sets loaded", all.len());
    assert!(deep > 0 && deep < all.len(), "too deep in {deep}");
}

#[test]
fn query_seeds() {
    query::run(&[]);
    query::run(&[0; 64]);
    query::run(&[255; 512]);
    let runs = 300;
    let planned: Vec<usize> = inputs(0x9e37_79b9, runs, 400)
        .iter()
        .filter_map(|input| query::run(input))
        .collect();
    let returned = planned.iter().filter(|n| **n > 0).count();
    println!(
        "{} of {runs} planned, {returned} returned documents",
        planned.len()
    );
    // Most client queries are refused (a refused operator is likely somewhere); enough must
    // be planned and return documents for the read path to be fuzzed.
    assert!(planned.len() * 10 >= runs, "only {} planned", planned.len());
    assert!(returned * 20 >= runs, "documents returned in {returned}");
}

#[test]
fn schema_seeds() {
    schema::run(&[]);
    schema::run(&[0; 64]);
    schema::run(&[255; 512]);
    let runs = 300;
    let all: Vec<(bool, bool)> = inputs(0x0bad_cafe, runs, 300)
        .iter()
        .filter_map(|input| schema::run(input))
        .collect();
    let allowed = all.iter().filter(|(_, a)| *a).count();
    println!("{} of {runs} loaded, {allowed} inserts allowed", all.len());
    assert!(all.len() * 4 >= runs, "only {} loaded", all.len());
    assert!(
        allowed > 0 && allowed < all.len(),
        "inserts allowed in {allowed}"
    );
}
