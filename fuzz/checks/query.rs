//! Fuzz target `query`: client queries and projections over generated rules, through
//! `PreparedRequest::query_plan`, `read_for` and `find`, with both engines.
//!
//! The input bytes drive a generator: rules from the `evaluate` generator (`evaluate.rs`,
//! included as a module) plus filters (queries, inclusive and exclusive projections); one to
//! three stored documents; a client query built from every allowed operator (comparison,
//! logical, array, `$exists`, `$type`, `$mod`, `$elemMatch`, `$not`), refused operators at any
//! level (`$where`, `$expr`, `$function`, `$regex`, `$options`, `$text`, `$jsonSchema`,
//! geospatial, bitwise, `$comment`, unknown `$` keys), BSON regular expressions, JavaScript code,
//! embedded documents, and `$and` chains nested under and over `max_document_depth`; a client
//! projection (inclusive, exclusive, nested paths, `_id`, positional paths, operators, odd
//! values).
//!
//! Checks beyond "no panic":
//! * a client query holding a refused operator (or a regex or code value) anywhere is refused,
//!   and no refused operator, regex or code ever reaches `store_query`;
//! * both engines make the same plan and the same `read_for` and `find` answers;
//! * a failed read is withheld (fail closed), and a failed plan has a client-safe view;
//! * **the answer does not depend on hidden values**: the fields the role cannot read (found by
//!   comparing the stored document with the redacted `read` output) are changed or removed; when the
//!   rules' own decision (`read`, no client input) is unchanged, `find` with the client query
//!   and projection must return exactly the same documents to the client (whether a withheld
//!   document was dropped by the store query or by the rules is not the client's to see).
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/query.rs`) and the regression tests
//! (`crates/rolegate/src/fuzz_regressions.rs`), which include this file with `#[path]`: it may use only
//! `rolegate`, `serde_json` and `bson`.

use std::sync::Arc;

use bson::{Bson, Document, JavaScriptCodeWithScope, Regex, doc};
use rolegate::{
    EngineKind, FunctionCheck, LoadOptions, PlannedRead, PreparedRequest, QueryPlan,
    RequestContext, RuleSet, Rules,
};
use serde_json::{Value, json};

#[allow(
    dead_code,
    reason = "the generator of the `evaluate` check; this check uses part of it"
)]
#[path = "evaluate.rs"]
mod evaluate;

use evaluate::{FIELDS, Gen};

/// The operators clients may use (App Services' list), as this check knows it.
const ALLOWED: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$and",
    "$or",
    "$nor",
    "$not",
    "$exists",
    "$type",
    "$mod",
    "$all",
    "$elemMatch",
    "$size",
];

/// Operators clients may not use.
const REFUSED: &[&str] = &[
    "$where",
    "$expr",
    "$function",
    "$accumulator",
    "$regex",
    "$options",
    "$text",
    "$jsonSchema",
    "$geoWithin",
    "$near",
    "$bitsAllSet",
    "$comment",
    "$foo",
    "$",
];

const PATHS: &[&str] = &[
    "a", "b", "owner", "tags", "n", "_id", "a.x", "a.y", "tags.x",
];

fn scalar(g: &mut Gen<'_>) -> Bson {
    Bson::try_from(evaluate::value(g, 1)).unwrap_or(Bson::Null)
}

/// A value a field is compared with: a literal, an operator document, or a hostile value.
fn condition(g: &mut Gen<'_>, depth: usize, hostile: bool) -> Bson {
    match g.below(if depth == 0 { 4 } else { 12 }) {
        0 | 1 => scalar(g),
        2 | 3 if !hostile => scalar(g),
        2 => Bson::RegularExpression(Regex {
            pattern: "^u".into(),
            options: String::new(),
        }),
        3 => Bson::JavaScriptCode("this.a == 1".into()),
        4..=6 => {
            let mut d = Document::new();
            for _ in 0..1 + g.below(2) {
                let op = if !hostile || g.chance(3) {
                    g.pick(ALLOWED)
                } else {
                    g.pick(REFUSED)
                };
                let v = match op {
                    "$in" | "$nin" | "$all" => {
                        Bson::Array((0..g.below(3)).map(|_| scalar(g)).collect())
                    }
                    "$exists" => Bson::Boolean(g.chance(2)),
                    "$type" => Bson::String(g.pick(&["string", "int", "array", "object"]).into()),
                    "$mod" => Bson::Array(vec![Bson::Int32(2), Bson::Int32(0)]),
                    "$size" => Bson::Int32(i32::from(g.byte() % 3)),
                    "$not" => condition(g, depth - 1, hostile),
                    "$elemMatch" => Bson::Document(query(g, depth - 1, hostile)),
                    "$and" | "$or" | "$nor" => {
                        Bson::Array(vec![Bson::Document(query(g, depth - 1, hostile))])
                    }
                    "$regex" => Bson::String("^u".into()),
                    "$options" => Bson::String("i".into()),
                    "$where" | "$function" => {
                        Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                            code: "true".into(),
                            scope: Document::new(),
                        })
                    }
                    _ => scalar(g),
                };
                d.insert(op, v);
            }
            Bson::Document(d)
        }
        7 => {
            // An embedded document compared whole (or a nested refused operator).
            let k = if hostile {
                g.pick(&["x", "y", "$where", "$eq"])
            } else {
                g.pick(&["x", "y"])
            };
            Bson::Document(doc! {k: condition(g, depth - 1, hostile)})
        }
        _ => scalar(g),
    }
}

/// A client query.
fn query(g: &mut Gen<'_>, depth: usize, hostile: bool) -> Document {
    let mut d = Document::new();
    for _ in 0..g.below(4) {
        match g.below(if depth == 0 { 6 } else { 9 }) {
            0..=4 => {
                let path = g.pick(PATHS);
                d.insert(path, condition(g, depth, hostile));
            }
            5 if !hostile => {
                let path = g.pick(PATHS);
                d.insert(path, scalar(g));
            }
            5 => {
                let op = g.pick(REFUSED);
                let v = match op {
                    "$expr" => Bson::Document(doc! {"$eq": ["$a", 1]}),
                    "$text" => Bson::Document(doc! {"$search": "u1"}),
                    "$jsonSchema" => Bson::Document(doc! {"required": ["a"]}),
                    _ => Bson::String("this.a > 0".into()),
                };
                d.insert(op, v);
            }
            _ => {
                let op = g.pick(&["$and", "$or", "$nor"]);
                let items: Vec<Bson> = (0..1 + g.below(2))
                    .map(|_| Bson::Document(query(g, depth - 1, hostile)))
                    .collect();
                d.insert(op, items);
            }
        }
    }
    d
}

/// A client projection.
fn projection(g: &mut Gen<'_>) -> Document {
    let mut d = Document::new();
    for _ in 0..g.below(4) {
        let key = g.pick(&[
            "a", "b", "owner", "tags", "n", "_id", "a.x", "a.y", "a.$", "$slice", "", "a..x",
        ]);
        let value = match g.below(9) {
            0 | 1 => Bson::Int32(0),
            2 | 3 => Bson::Int32(1),
            4 => Bson::Boolean(g.chance(2)),
            5 => Bson::Null,
            6 => Bson::Document(doc! {"$slice": 1}),
            7 => Bson::String("$a".into()),
            _ => Bson::Double(0.5),
        };
        d.insert(key, value);
    }
    d
}

/// Wraps `q` in `levels` `$and`s (two levels each: the array and the document).
fn deepen(q: Document, levels: usize) -> Document {
    let mut q = q;
    for _ in 0..levels {
        q = doc! {"$and": [q]};
    }
    q
}

/// Whether `value` holds a refused operator, a regex or code anywhere (this check's own walk).
fn holds_refused(value: &Bson) -> bool {
    match value {
        Bson::Document(d) => d.iter().any(|(k, v)| {
            (k.starts_with('$') && !ALLOWED.contains(&k.as_str())) || holds_refused(v)
        }),
        Bson::Array(items) => items.iter().any(holds_refused),
        Bson::RegularExpression(_) | Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => {
            true
        }
        _ => false,
    }
}

fn filter(g: &mut Gen<'_>, i: usize) -> Value {
    let apply_when = match g.below(3) {
        0 => json!({}),
        1 => json!({"%%user.id": "u1"}),
        _ => json!({"%%user.custom_data.team": "x"}),
    };
    let query = match g.below(4) {
        0 => json!({}),
        1 => json!({"owner": "%%user.id"}),
        2 => json!({"n": {"$ne": 1}}),
        _ => json!({"$or": [{"owner": "%%user.id"}, {"a": {"$exists": true}}]}),
    };
    let projection = match g.below(4) {
        0 | 1 => json!({}),
        2 => json!({g.pick(FIELDS): 0}),
        _ => json!({"a": 1, "owner": 1, "n": 1}),
    };
    json!({"name": format!("f{i}"), "apply_when": apply_when, "query": query, "projection": projection})
}

/// A planned read in a comparable form: selected, role, visible, document, failed.
type Summary = (bool, Option<String>, bool, Option<Document>, bool);

/// A planned read in a comparable form.
fn summary(p: &PlannedRead) -> Summary {
    let o = &p.outcome;
    (
        p.selected,
        o.role.clone(),
        o.visible,
        o.document.clone(),
        o.error.is_some(),
    )
}

/// What `find` returns to the client for `docs` (`Err` with the reason when it fails).
fn found(
    req: &PreparedRequest<'_, '_>,
    plan: &QueryPlan,
    docs: &[Document],
) -> Result<Vec<Summary>, String> {
    let out = req.find(plan, docs).map_err(|e| e.to_string())?;
    for p in &out {
        if p.outcome.error.is_some() {
            assert!(!p.outcome.visible, "failed but visible: {p:?}");
        }
        if !p.selected || !p.outcome.visible {
            // Withheld: what the client gets is nothing.
        }
    }
    Ok(out.iter().map(summary).collect())
}

/// The dotted paths of `stored` whose values `redacted` does not show (descending into
/// documents both hold).
fn hidden(stored: &Document, redacted: Option<&Document>, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in stored {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (v, redacted.and_then(|r| r.get(k))) {
            (_, None) => out.push(path),
            (Bson::Document(s), Some(Bson::Document(r))) => hidden(s, Some(r), &path, out),
            (s, Some(r)) if s != r => out.push(path),
            _ => {}
        }
    }
}

/// The field names (top level of each dotted key) a filter query reads, `$` operators looked
/// through.
fn keys(query: &Value, out: &mut Vec<String>) {
    match query {
        Value::Object(m) => {
            for (k, v) in m {
                if k.starts_with('$') {
                    keys(v, out);
                } else {
                    out.push(k.split('.').next().unwrap_or(k).to_string());
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, out)),
        _ => {}
    }
}

/// `doc` with the value at dotted `path` replaced by `value` (removed when `None`).
fn replace(doc: &mut Document, path: &str, value: Option<Bson>) {
    match path.split_once('.') {
        None => match value {
            Some(v) => {
                doc.insert(path, v);
            }
            None => {
                doc.remove(path);
            }
        },
        Some((head, rest)) => {
            if let Some(Bson::Document(sub)) = doc.get_mut(head) {
                replace(sub, rest, value);
            }
        }
    }
}

/// Runs the checks on the input; `Some(number of documents returned)` when the rules loaded and
/// the plan was made (for the generator's own tests), `None` otherwise.
pub fn run(data: &[u8]) -> Option<usize> {
    let mut g = Gen::new(data);
    let n_roles = 1 + g.below(3);
    let mut roles: Vec<Value> = (0..n_roles).map(|i| evaluate::role(&mut g, i)).collect();
    if g.chance(2) {
        // A role that shows documents with some fields hidden (what the client must not probe).
        let mut fields = serde_json::Map::new();
        for f in FIELDS {
            if g.chance(2) {
                let read = if g.chance(3) {
                    json!(g.chance(2))
                } else {
                    evaluate::expr(&mut g, 1, true)
                };
                fields.insert((*f).to_string(), json!({"read": read}));
            }
        }
        let hiding = json!({"name": "hiding", "apply_when": if g.chance(3) { json!({}) } else { evaluate::expr(&mut g, 1, false) },
            "fields": fields, "additional_fields": {"read": g.chance(2)}});
        roles.insert(0, hiding);
    }
    let filters: Vec<Value> = (0..g.below(3)).map(|i| filter(&mut g, i)).collect();
    let file = json!({"database": "db", "collection": "coll", "roles": roles, "filters": filters});
    let docs: Vec<Value> = (0..1 + g.below(3))
        .map(|_| evaluate::document(&mut g))
        .collect();
    let mut client_query = if g.chance(3) {
        let hostile = g.chance(1);
        Some(query(&mut g, 3, hostile))
    } else {
        None
    };
    if let Some(q) = client_query.take() {
        let levels = match g.below(8) {
            0 => g.pick(&[20, 48, 49, 50, 51, 60]),
            _ => 0,
        };
        client_query = Some(deepen(q, levels));
    }
    let client_projection = if g.chance(2) {
        Some(projection(&mut g))
    } else {
        None
    };
    let user = doc! {
        "id": if g.chance(2) { "u1" } else { "u2" },
        "type": "normal",
        "data": {},
        "custom_data": {"team": if g.chance(2) { "x" } else { "y" }},
    };

    let options = LoadOptions {
        function_check: Some(FunctionCheck::Off),
        ..LoadOptions::default()
    };
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/db/coll/rules.json",
        &file,
        &options,
    )
    .ok()?;
    let docs: Vec<Document> = docs.iter().filter_map(evaluate::bson_doc).collect();
    let rules = Rules::new(set);
    let coll = rules.collection("db.coll").ok()?;
    let mut ctx = RequestContext::for_user(user);
    ctx.values = Bson::Document(doc! {"v": "u1"});
    ctx.functions = Arc::new(evaluate::host);
    let reference = coll.prepare_with(&ctx, EngineKind::Reference);
    let compiled = coll.prepare_with(&ctx, EngineKind::Compiled);

    let (q, p) = (client_query.as_ref(), client_projection.as_ref());
    let rp = reference.query_plan(q, p);
    let cp = compiled.query_plan(q, p);
    let what = format!("rules {file}\nquery {q:?}\nprojection {p:?}");
    let refused = q.is_some_and(|q| holds_refused(&Bson::Document(q.clone())));
    let (rp, cp) = match (rp, cp) {
        (Ok(rp), Ok(cp)) => (rp, cp),
        (Err(re), Err(ce)) => {
            assert_eq!(re, ce, "plans fail differently\n{what}");
            let _ = re.client_error();
            return None;
        }
        (rp, cp) => panic!("plans differ: reference {rp:?} compiled {cp:?}\n{what}"),
    };
    assert!(
        !refused,
        "a refused client query was planned: {rp:?}\n{what}"
    );
    assert_eq!(
        (&rp.applied, &rp.store_query, &rp.store_projection),
        (&cp.applied, &cp.store_query, &cp.store_projection),
        "plans differ\n{what}"
    );
    assert!(
        !holds_refused(&Bson::Document(rp.store_query.clone())),
        "refused operator in store_query {}\n{what}",
        rp.store_query
    );

    for stored in &docs {
        let r = reference.read_for(&rp, stored);
        let c = compiled.read_for(&cp, stored);
        assert_eq!(
            summary(&c),
            summary(&r),
            "read_for differs (left compiled)\n{what}\ndocument {stored}"
        );
        if r.outcome.error.is_some() {
            assert!(!r.outcome.visible, "failed but visible: {r:?}");
        }
    }
    let rf = found(&reference, &rp, &docs);
    let cf = found(&compiled, &cp, &docs);
    assert_eq!(cf, rf, "find differs (left compiled)\n{what}");
    let returned = rf
        .as_ref()
        .map(|v| v.iter().filter(|s| s.0 && s.2).count())
        .unwrap_or(0);

    // The answer does not depend on what the role cannot read. The filters' queries are the
    // app's and select on the stored document: the fields they read are left as they are.
    let mut filter_fields = Vec::new();
    for f in &filters {
        keys(&f["query"], &mut filter_fields);
    }
    for stored in &docs {
        let decision = compiled.read(stored);
        let mut paths = Vec::new();
        hidden(stored, decision.document.as_ref(), "", &mut paths);
        if paths.is_empty() {
            continue;
        }
        let mut changed = stored.clone();
        for path in &paths {
            let top = path.split('.').next().unwrap_or(path);
            if top == "_id" || filter_fields.iter().any(|f| f == top) {
                continue;
            }
            let v = match g.below(6) {
                0 => Some(Bson::String("u1".into())),
                1 => Some(Bson::Int32(i32::from(g.byte() % 4))),
                2 => Some(Bson::Null),
                3 => Some(Bson::Document(doc! {"x": 1, "y": "u2"})),
                4 => Some(Bson::Array(vec![Bson::Int32(1), Bson::String("u1".into())])),
                _ => None,
            };
            replace(&mut changed, path, v);
        }
        let again = compiled.read(&changed);
        let same = |o: &rolegate::ReadOutcome| (o.role.clone(), o.visible, o.document.clone());
        if same(&again) != same(&decision) || again.error.is_some() || decision.error.is_some() {
            // The rules decide on the stored document, hidden fields included: another
            // decision is not the client's doing.
            continue;
        }
        // What the client receives: the documents returned (a document withheld, or not
        // selected by the store query, is not sent either way).
        let received = |docs: &[Document]| {
            found(&compiled, &cp, docs).map(|v| {
                v.into_iter()
                    .filter(|s| s.0 && s.2)
                    .map(|s| s.3)
                    .collect::<Vec<_>>()
            })
        };
        let before = received(std::slice::from_ref(stored));
        let after = received(std::slice::from_ref(&changed));
        assert_eq!(
            before, after,
            "the answer depends on hidden values {paths:?}\n{what}\nstored {stored}\nchanged {changed}"
        );
    }
    Some(returned)
}
