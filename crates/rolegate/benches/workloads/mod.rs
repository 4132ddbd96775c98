//! The benchmark workloads W1–W4, generated deterministically (a fixed seed, a hand-rolled
//! splitmix64 generator: no dependency, the same bytes on every platform and every run).
//!
//! One source of truth, shared by the criterion benches (`benches/*.rs`, `mod workloads;`), the
//! allocation test (`tests/alloc_free.rs`), the data check (`tests/bench_data.rs`) and the
//! generator (`cargo run --release --example gen-bench-data`, which writes `benches/data/`):
//!
//! - rule files, users and document samples are committed under `benches/data/` ([`files`]);
//!   the benches load the rule files from there, as a server would;
//! - the benches generate their (larger) document sets in memory from the same seed: the
//!   committed `documents*.jsonl` files are prefixes of them, small enough to commit and to feed
//!   to `rolegate bench`.
//!
//! W4 is the real-rules corpus, outside the repository ([`corpus_dir`]), read at bench time
//! ([`corpus`]), never copied into the repository.
//!
//! Every generated value round-trips through relaxed Extended JSON (int64 values lie outside the
//! int32 range, doubles have fractions), so a document read back from a `.jsonl` file is the
//! document the bench evaluates.
#![allow(
    dead_code,
    reason = "each bench, test and example uses a part of this module"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "bench support code: bad bench data is a bug to stop at"
)]

use std::path::{Path, PathBuf};

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, RawDocumentBuf, doc};
use rolegate::{
    LoadOptions, RequestContext, RuleSet, Rules,
    mql::{document_from_json, document_to_json},
};
use serde_json::{Value, json};

/// The seed of every workload ("rolegate" in ASCII).
pub const SEED: u64 = 0x726f_6c65_6761_7465;

/// W1: documents generated for the benches (the committed file holds [`W1_SAMPLE`]).
pub const W1_DOCS: usize = 10_000;
pub const W1_SAMPLE: usize = 1_000;
/// W2: documents per document size.
pub const W2_DOCS: usize = 2_000;
pub const W2_SAMPLE_20: usize = 1_000;
pub const W2_SAMPLE_100: usize = 250;
/// W2 document sizes (fields per document).
pub const W2_SIZES: [usize; 2] = [20, 100];
/// W3 role counts.
pub const W3_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
/// W3: documents per role count (all committed).
pub const W3_DOCS: usize = 1_000;

/// The folder of the committed bench data.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data")
}

/// The real-rules corpus folder (outside the repository): `ROLEGATE_CORPUS_DIR` when set, else
/// the shared checkout beside the repository (as the corpus tests find it,
/// `tests/corpus_support/mod.rs`).
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("ROLEGATE_CORPUS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/real-rules"),
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic generator.

/// splitmix64: tiny, fast, and fully specified, so the data never changes with a crate version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index in `0..n`.
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A double with a fraction (so that relaxed Extended JSON keeps it a double).
    pub fn double(&mut self, scale: f64) -> f64 {
        let x = (self.below(1_000_000) as f64 + 0.5) / 1_000_000.0;
        (x * scale * 1000.0).round() / 1000.0 + 0.125
    }

    /// An int64 outside the int32 range.
    pub fn long(&mut self) -> i64 {
        5_000_000_000 + self.below(1_000_000_000) as i64
    }

    pub fn int(&mut self, n: i32) -> i32 {
        self.below(n as u64) as i32
    }

    pub fn object_id(&mut self) -> ObjectId {
        let a = self.next_u64().to_be_bytes();
        let b = self.next_u64().to_be_bytes();
        ObjectId::from_bytes([
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1], b[2], b[3],
        ])
    }

    pub fn date(&mut self) -> Bson {
        // 2023-11-14 .. about a year later, millisecond precision.
        Bson::DateTime(DateTime::from_millis(
            1_700_000_000_000 + self.below(31_536_000_000) as i64,
        ))
    }

    pub fn word(&mut self) -> &'static str {
        WORDS[self.index(WORDS.len())]
    }

    /// `n` words separated by spaces.
    pub fn text(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word());
        }
        s
    }

    pub fn words(&mut self, n: usize) -> Bson {
        Bson::Array(
            (0..n)
                .map(|_| Bson::String(self.word().to_string()))
                .collect(),
        )
    }
}

const WORDS: [&str; 32] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "amber", "basalt", "cobalt", "dune",
    "ember", "fjord",
];

// ---------------------------------------------------------------------------------------------
// Workloads.

/// A rule file and the user of the requests.
pub struct Workload {
    /// Short name: `w1`, `w2`, `w3-group-team-1000`, ...
    pub id: String,
    /// `database.collection` of the rule file.
    pub namespace: String,
    /// The rule file (`rules.json` of a data source: database, collection, roles, filters).
    pub rules: Value,
    /// The `%%user` object.
    pub user: Value,
    /// The rule file, relative to [`data_dir`].
    pub rules_file: String,
    /// The user file, relative to [`data_dir`].
    pub user_file: String,
}

fn user(id: &str, custom_data: Value) -> Value {
    json!({"id": id, "type": "normal", "data": {"email": format!("{id}@example.com")},
           "custom_data": custom_data, "identities": []})
}

/// W1 owner/shared/public: three roles; a filter selects what the user may see at all.
pub fn w1() -> Workload {
    Workload {
        id: "w1".into(),
        namespace: "bench.w1".into(),
        rules: json!({
            "database": "bench",
            "collection": "w1",
            "roles": [
                {"name": "owner", "apply_when": {"owner_id": "%%user.id"},
                 "read": true, "write": true, "insert": true, "delete": true, "search": true},
                {"name": "shared", "apply_when": {"shared_with": "%%user.id"},
                 "insert": false, "delete": false, "search": true,
                 "fields": {
                     "_id": {"read": true},
                     "owner_id": {"read": true},
                     "title": {"read": true, "write": true},
                     "body": {"read": true, "write": true},
                     "status": {"read": true, "write": true},
                     "tags": {"read": true},
                     "updated": {"read": true},
                     "location": {"fields": {"lat": {"read": true}, "lng": {"read": true}}}
                 },
                 "additional_fields": {}},
                {"name": "public", "apply_when": {"public": true},
                 "insert": false, "delete": false, "search": true,
                 "fields": {
                     "_id": {"read": true},
                     "title": {"read": true},
                     "status": {"read": true},
                     "public": {"read": true}
                 },
                 "additional_fields": {}}
            ],
            "filters": [
                {"name": "visible", "apply_when": {},
                 "query": {"$or": [{"owner_id": "%%user.id"}, {"shared_with": "%%user.id"},
                                    {"public": true}]},
                 "projection": {}}
            ]
        }),
        user: user("u0", json!({"team": "t1"})),
        rules_file: "w1/rules.json".into(),
        user_file: "w1/user.json".into(),
    }
}

/// W1 documents: 20 fields of many BSON types; document `i` is owned by the user (`i % 3 == 0`),
/// shared with the user (`1`), or public (`2`).
pub fn w1_documents(n: usize) -> Vec<Document> {
    let mut rng = Rng::new(SEED ^ 0x01);
    (0..n)
        .map(|i| {
            let kind = i % 3;
            let owner = if kind == 0 {
                "u0".to_string()
            } else {
                format!("u{}", 1 + rng.below(50))
            };
            let mut shared: Vec<Bson> = (0..rng.below(4))
                .map(|_| Bson::String(format!("u{}", 1 + rng.below(50))))
                .collect();
            if kind == 1 {
                let at = rng.index(shared.len() + 1);
                shared.insert(at, Bson::String("u0".into()));
            }
            let status = ["open", "closed", "review"][rng.index(3)];
            let tag_count = 1 + rng.index(3);
            let note = if rng.bool() {
                Bson::Null
            } else {
                Bson::String(rng.text(4))
            };
            doc! {
                "_id": rng.object_id(),
                "owner_id": owner,
                "shared_with": shared,
                "public": kind == 2,
                "title": rng.text(3),
                "body": rng.text(12),
                "status": status,
                "priority": rng.int(5),
                "score": rng.double(100.0),
                "views": rng.long(),
                "created": rng.date(),
                "updated": rng.date(),
                "tags": rng.words(tag_count),
                "location": {"lat": rng.double(90.0), "lng": rng.double(180.0)},
                "archived": rng.bool(),
                "count": rng.int(1000),
                "ratio": rng.double(1.0),
                "note": note,
                "ref_id": rng.object_id(),
                "version": rng.long(),
            }
        })
        .collect()
}

/// The name of W2 field rule `j` (`f00` .. `f29`).
fn w2_field(j: usize) -> String {
    format!("f{j:02}")
}

/// W2 field rule `j` of role `k`: a rotation of six kinds of rules.
fn w2_field_rule(k: usize, j: usize) -> Value {
    match (j + k) % 6 {
        0 => json!({"read": true, "write": true}),
        1 => json!({"read": {"%%user.custom_data.clearance": {"$gte": (j % 4) as i32}}}),
        2 => json!({"read": {"%%user.custom_data.departments": format!("d{}", j % 3)}}),
        3 => json!({"read": {"%%root.owner": "%%user.id"}}),
        4 => json!({"read": true, "write": {"%%user.custom_data.clearance": {"$gte": 3}}}),
        _ => json!({"read": false}),
    }
}

/// Whether W2 field `j` is a subdocument (`{a, b, c}`): every fifth field.
fn w2_nested(j: usize) -> bool {
    j % 5 == 4
}

/// W2 field-level: five roles, each with 30 field rules (nested `fields` on subdocument fields,
/// expressions on `%%user.custom_data` and on the document, `additional_fields`).
pub fn w2() -> Workload {
    let roles: Vec<Value> = (0..5)
        .map(|k| {
            let mut fields = serde_json::Map::new();
            for j in 0..30 {
                let rule = if w2_nested(j) {
                    // The parent grants nothing to this user (no `read`, or a test that is
                    // false for clearance 2): the nested rules decide.
                    let mut rule = json!({
                        "fields": {
                            "a": {"read": true},
                            "b": {"read": {"%%user.custom_data.clearance": {"$gte": 1 + (k % 3) as i32}}},
                            "c": {"read": false}
                        },
                        "additional_fields": {"read": true}
                    });
                    if k % 2 == 1 {
                        rule["read"] = json!({"%%user.custom_data.clearance": {"$gte": 3}});
                    }
                    rule
                } else {
                    w2_field_rule(k, j)
                };
                fields.insert(w2_field(j), rule);
            }
            fields.insert("_id".into(), json!({"read": true}));
            fields.insert("kind".into(), json!({"read": true}));
            let additional = match k % 3 {
                0 => json!({"read": true}),
                1 => json!({"read": {"%%user.custom_data.clearance": {"$gte": 2}}}),
                _ => json!({}),
            };
            let apply_when = if k == 0 {
                json!({"kind": "k0", "%%user.custom_data.clearance": {"$gte": 1}})
            } else {
                json!({"kind": format!("k{k}")})
            };
            json!({
                "name": format!("tier{k}"),
                "apply_when": apply_when,
                "insert": false, "delete": false,
                "fields": fields,
                "additional_fields": additional
            })
        })
        .collect();
    Workload {
        id: "w2".into(),
        namespace: "bench.w2".into(),
        rules: json!({"database": "bench", "collection": "w2", "roles": roles, "filters": []}),
        user: user(
            "u0",
            json!({"clearance": 2, "departments": ["d0", "d2"], "region": "eu"}),
        ),
        rules_file: "w2/rules.json".into(),
        user_file: "w2/user.json".into(),
    }
}

/// A W2 field value: a subdocument for nested fields, else a value of a rotating BSON type.
fn w2_value(rng: &mut Rng, j: usize) -> Bson {
    if w2_nested(j) {
        return Bson::Document(doc! {"a": rng.int(100), "b": rng.text(2), "c": rng.double(10.0)});
    }
    match j % 7 {
        0 => Bson::String(rng.text(2)),
        1 => Bson::Int32(rng.int(10_000)),
        2 => Bson::Double(rng.double(1000.0)),
        3 => Bson::Boolean(rng.bool()),
        4 => rng.date(),
        5 => Bson::Int64(rng.long()),
        _ => rng.words(2),
    }
}

/// W2 documents of `fields` fields (`_id`, `kind`, `owner`, then `f00`, `f01`, ...): the first
/// 30 `f` fields have field rules, the others fall to `additional_fields`. `kind` is spread
/// over the five roles; the user owns half of the documents.
pub fn w2_documents(fields: usize, n: usize) -> Vec<Document> {
    let mut rng = Rng::new(SEED ^ (0x0200 + fields as u64));
    (0..n)
        .map(|i| {
            let mut d = Document::new();
            d.insert("_id", rng.object_id());
            d.insert("kind", format!("k{}", i % 5));
            d.insert(
                "owner",
                if rng.bool() {
                    "u0".to_string()
                } else {
                    format!("u{}", 1 + rng.below(50))
                },
            );
            for j in 0..fields.saturating_sub(3) {
                d.insert(w2_field(j), w2_value(&mut rng, j));
            }
            d
        })
        .collect()
}

/// The two W3 variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W3Kind {
    /// `{"%%user.custom_data.group": "gK", "team": "tK"}`: a request test and a document test.
    GroupTeam,
    /// `{"team": "tK"}`: the document test alone (every role stays live after prepare).
    Team,
}

impl W3Kind {
    pub const ALL: [W3Kind; 2] = [W3Kind::GroupTeam, W3Kind::Team];

    pub fn name(self) -> &'static str {
        match self {
            W3Kind::GroupTeam => "group-team",
            W3Kind::Team => "team",
        }
    }
}

/// W3 many roles: `roles` roles testing constants; the user is in group `g{roles/2}`.
pub fn w3(kind: W3Kind, roles: usize) -> Workload {
    let list: Vec<Value> = (0..roles)
        .map(|k| {
            let apply_when = match kind {
                W3Kind::GroupTeam => {
                    json!({"%%user.custom_data.group": format!("g{k}"), "team": format!("t{k}")})
                }
                W3Kind::Team => json!({"team": format!("t{k}")}),
            };
            json!({"name": format!("r{k}"), "apply_when": apply_when,
                   "read": true, "write": true, "insert": false, "delete": false})
        })
        .collect();
    Workload {
        id: format!("w3-{}-{roles}", kind.name()),
        namespace: "bench.w3".into(),
        rules: json!({"database": "bench", "collection": "w3", "roles": list, "filters": []}),
        user: user("u0", json!({"group": format!("g{}", roles / 2)})),
        rules_file: format!("w3/rules-{}-{roles}.json", kind.name()),
        user_file: format!("w3/user-{roles}.json"),
    }
}

/// W3 documents for `roles` roles: `team` uniformly spread over `t0` .. `t{roles-1}`, and one
/// document in eight on the user's own team `t{roles/2}`.
pub fn w3_documents(roles: usize, n: usize) -> Vec<Document> {
    let mut rng = Rng::new(SEED ^ (0x0300 + roles as u64));
    (0..n)
        .map(|_| {
            let team = if rng.below(8) == 0 {
                roles / 2
            } else {
                rng.index(roles)
            };
            doc! {
                "_id": rng.long(),
                "team": format!("t{team}"),
                "title": rng.text(3),
                "owner": format!("u{}", rng.below(50)),
                "value": rng.int(1000),
                "tags": rng.words(2),
                "created": rng.date(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The committed files.

/// Every workload whose rule file is committed.
pub fn workloads() -> Vec<Workload> {
    let mut all = vec![w1(), w2()];
    for kind in W3Kind::ALL {
        for n in W3_SIZES {
            all.push(w3(kind, n));
        }
    }
    all
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON");
    s.push('\n');
    s
}

/// A rule file with one role per line (the W3 files have up to 10,000 roles).
fn role_per_line(rules: &Value) -> String {
    let obj = rules.as_object().expect("rule file object");
    let mut s = String::from("{\n");
    for (key, value) in obj {
        if key == "roles" {
            let roles = value.as_array().expect("roles");
            s.push_str("  \"roles\": [\n");
            for (i, r) in roles.iter().enumerate() {
                s.push_str("    ");
                s.push_str(&r.to_string());
                s.push_str(if i + 1 < roles.len() { ",\n" } else { "\n" });
            }
            s.push_str("  ],\n");
        } else {
            s.push_str(&format!("  {}: {},\n", Value::from(key.as_str()), value));
        }
    }
    // The last member must not end with a comma.
    if s.ends_with(",\n") {
        s.truncate(s.len() - 2);
        s.push('\n');
    }
    s.push_str("}\n");
    s
}

fn jsonl(docs: &[Document]) -> String {
    let mut s = String::new();
    for d in docs {
        s.push_str(&document_to_json(d).to_string());
        s.push('\n');
    }
    s
}

/// Every committed file of `benches/data/`: (path relative to it, content).
pub fn files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let w1 = w1();
    out.push((w1.rules_file.clone(), pretty(&w1.rules)));
    out.push((w1.user_file.clone(), pretty(&w1.user)));
    out.push(("w1/documents.jsonl".into(), jsonl(&w1_documents(W1_SAMPLE))));
    let w2 = w2();
    out.push((w2.rules_file.clone(), pretty(&w2.rules)));
    out.push((w2.user_file.clone(), pretty(&w2.user)));
    out.push((
        "w2/documents-20.jsonl".into(),
        jsonl(&w2_documents(20, W2_SAMPLE_20)),
    ));
    out.push((
        "w2/documents-100.jsonl".into(),
        jsonl(&w2_documents(100, W2_SAMPLE_100)),
    ));
    for n in W3_SIZES {
        for kind in W3Kind::ALL {
            let w = w3(kind, n);
            out.push((w.rules_file.clone(), role_per_line(&w.rules)));
        }
        let w = w3(W3Kind::Team, n);
        out.push((w.user_file.clone(), pretty(&w.user)));
        out.push((
            format!("w3/documents-{n}.jsonl"),
            jsonl(&w3_documents(n, W3_DOCS)),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Loading, as the benches do it.

/// Reads and parses a committed JSON file.
pub fn read_json(rel: &str) -> Value {
    let path = data_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with `cargo run --release --example gen-bench-data`)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads (validates) a committed rule file: the work both engines share.
pub fn load(rel: &str, json: &Value) -> RuleSet {
    let path = format!("benches/data/{rel}");
    RuleSet::from_json(&path, json, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A workload's rule file, loaded and compiled.
pub fn rules(w: &Workload) -> Rules {
    Rules::new(load(&w.rules_file, &read_json(&w.rules_file)))
}

/// The request context of a workload's user.
pub fn context(rules: &Rules, w: &Workload) -> RequestContext {
    let user = document_from_json(&read_json(&w.user_file)).expect("user document");
    rules.context().user(user).build().expect("request context")
}

/// Documents as raw BSON (converted once, outside the timed loops).
pub fn raw(docs: &[Document]) -> Vec<RawDocumentBuf> {
    docs.iter()
        .map(|d| RawDocumentBuf::from_document(d).expect("raw BSON"))
        .collect()
}

/// One file of the real corpus: its app path (from `MANIFEST.tsv`) and its JSON.
pub struct CorpusFile {
    pub path: String,
    pub json: Value,
}

/// The real corpus, or `None` when it is missing, after a `SKIPPED:` line on the real stderr
/// (as the corpus tests do; `eprintln!` would be captured when a test harness runs this).
pub fn corpus() -> Option<Vec<CorpusFile>> {
    let dir = corpus_dir();
    let Ok(manifest) = std::fs::read_to_string(dir.join("MANIFEST.tsv")) else {
        let line = format!(
            "SKIPPED: W4 needs the real-rules corpus (MANIFEST.tsv) in {}; set ROLEGATE_CORPUS_DIR \
             to its folder to run it\n",
            dir.display()
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        return None;
    };
    let mut files = Vec::new();
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(saved), Some(path)) = (cols.first(), cols.get(2)) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(dir.join(saved)) else {
            continue;
        };
        let Ok(json) = serde_json::from_str(&text) else {
            continue;
        };
        files.push(CorpusFile {
            path: (*path).to_string(),
            json,
        });
    }
    Some(files)
}

/// The corpus files that load (the refused ones are skipped), with their rule sets.
pub fn corpus_loaded(files: &[CorpusFile]) -> Vec<(&CorpusFile, RuleSet)> {
    files
        .iter()
        .filter_map(|f| {
            RuleSet::from_json(&f.path, &f.json, &LoadOptions::default())
                .ok()
                .map(|set| (f, set))
        })
        .collect()
}
