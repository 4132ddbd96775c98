//! Fuzz target `schema`: generated collection schemas and write images, through
//! `Schema::parse` + `Schema::validate` and through writes with both engines.
//!
//! The input bytes drive a generator: a `schema.json` of nested nodes (`bsonType` as a name or
//! a list, `type`, `properties`, `required`, `items` as a node or a list, `enum`, `uniqueItems`,
//! `pattern` (valid, invalid and catastrophic-looking patterns), `patternProperties`,
//! `additionalProperties`, `minimum`/`maximum` and their exclusive forms, `minLength`/
//! `maxLength`, `minItems`/`maxItems`, `minProperties`, `multipleOf`, `dependencies`, and
//! `validate` expressions from the `evaluate` generator, `evaluate.rs`, included as a module);
//! a pre-image and a post-image (from the same generator, plus strings, arrays with repeated
//! items and nested documents).
//!
//! Checks beyond "no panic":
//! * determinism: parsing twice gives the same schema and diagnostics, validating twice the
//!   same answer;
//! * the compiled engine and the reference evaluator make the same insert/update/delete
//!   decision (allowed, role, error code) under rules that carry the schema;
//! * with a role that permits everything, a write is allowed exactly when `Schema::validate`
//!   accepts its result (insert: the post-image alone; update: post- and pre-image).
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/schema.rs`) and the regression tests
//! (`crates/rolegate/src/fuzz_regressions.rs`), which include this file with `#[path]`: it may use only
//! `rolegate`, `serde_json` and `bson`.

use std::sync::Arc;

use bson::{Bson, Document, doc};
use rolegate::{
    Diagnostics, EngineKind, FunctionCheck, LoadOptions, Place, RequestContext, RuleSet, Rules,
    rules::Schema,
};
use serde_json::{Map, Value, json};

#[allow(
    dead_code,
    reason = "the generator of the `evaluate` check; this check uses part of it"
)]
#[path = "evaluate.rs"]
mod evaluate;

use evaluate::{FIELDS, Gen, SUB};

const TYPES: &[&str] = &[
    "object", "array", "string", "int", "long", "double", "decimal", "number", "bool", "null",
    "objectId", "date", "mixed", "uuid", "binData", "integer", "nope",
];

/// One schema node; `depth` bounds the nesting.
fn node(g: &mut Gen<'_>, depth: usize) -> Value {
    let mut m = Map::new();
    for _ in 0..g.below(5) {
        match g.below(22) {
            0 | 1 => {
                m.insert("bsonType".into(), json!(g.pick(TYPES)));
            }
            2 => {
                let n = 1 + g.below(3);
                let list: Vec<&str> = (0..n).map(|_| g.pick(TYPES)).collect();
                m.insert("bsonType".into(), json!(list));
            }
            3 => {
                m.insert(
                    "type".into(),
                    json!(g.pick(&["object", "string", "boolean", "number", "array", "integer"])),
                );
            }
            4 | 5 if depth > 0 => {
                let mut props = Map::new();
                for _ in 0..1 + g.below(3) {
                    let names = if g.chance(2) { FIELDS } else { SUB };
                    props.insert(g.pick(names).to_string(), node(g, depth - 1));
                }
                m.insert("properties".into(), Value::Object(props));
            }
            6 => {
                let names = if g.chance(2) { FIELDS } else { SUB };
                let req: Vec<&str> = (0..g.below(3)).map(|_| g.pick(names)).collect();
                m.insert("required".into(), json!(req));
            }
            7 if depth > 0 => {
                let items = if g.chance(3) {
                    node(g, depth - 1)
                } else {
                    json!([node(g, depth - 1), node(g, depth - 1)])
                };
                m.insert("items".into(), items);
            }
            8 => {
                let vals: Vec<Value> = (0..g.below(4)).map(|_| evaluate::value(g, 1)).collect();
                m.insert("enum".into(), json!(vals));
            }
            9 => {
                m.insert("uniqueItems".into(), json!(g.chance(2)));
            }
            10 => {
                let p = g.pick(&["^u", "x$", "[", "(a+)+$", "^\\d+$", "", "é"]);
                m.insert("pattern".into(), json!(p));
            }
            11 => {
                let k = g.pick(&["minimum", "maximum"]);
                m.insert(k.into(), json!(g.pick(&[0.0, 1.0, 2.5, -1.0])));
                if g.chance(1) {
                    let e = if k == "minimum" {
                        "exclusiveMinimum"
                    } else {
                        "exclusiveMaximum"
                    };
                    m.insert(e.into(), json!(g.chance(2)));
                }
            }
            12 => {
                let k = g.pick(&[
                    "minLength",
                    "maxLength",
                    "minItems",
                    "maxItems",
                    "minProperties",
                ]);
                m.insert(k.into(), json!(g.pick(&[0, 1, 2, -1])));
            }
            13 => {
                m.insert("multipleOf".into(), json!(g.pick(&[0.1, 2.0, 0.0, 3.0])));
            }
            14 | 15 => {
                m.insert("validate".into(), evaluate::expr(g, 2, true));
            }
            16 if depth > 0 => {
                let mut pp = Map::new();
                pp.insert(
                    g.pick(&["^a", "^t", "x", "("]).to_string(),
                    node(g, depth - 1),
                );
                m.insert("patternProperties".into(), Value::Object(pp));
            }
            17 => {
                let v = if depth > 0 && g.chance(1) {
                    node(g, depth - 1)
                } else {
                    json!(g.chance(2))
                };
                m.insert("additionalProperties".into(), v);
            }
            18 => {
                m.insert(
                    "dependencies".into(),
                    json!({g.pick(FIELDS): [g.pick(FIELDS)]}),
                );
            }
            19 => {
                m.insert("title".into(), json!(g.pick(&["t", ""])));
            }
            20 => {
                m.insert(g.pick(&["anyOf", "$ref", "unknown"]).into(), json!({}));
            }
            _ => {
                m.insert("bsonType".into(), json!("object"));
            }
        }
    }
    Value::Object(m)
}

/// A field value with what schemas check: strings, numbers, arrays with repeated items.
fn field_value(g: &mut Gen<'_>) -> Value {
    match g.below(6) {
        0 => json!(g.pick(&["u1", "uu", "x", "", "12", "aaaaaaaaaaaaaaaaaaaaaaaa!", "é"])),
        1 => json!(g.pick(&[0.3, 2.0, -1.0, 2.5])),
        2 => json!([1, 1, "u1"]),
        3 => json!({"x": g.pick(&["u1", "x"]), "y": [1, 2]}),
        _ => evaluate::value(g, 3),
    }
}

/// The schema's answer for a write result, as text (for comparisons).
fn validated(
    schema: &Schema,
    post: &Document,
    pre: Option<&Document>,
    ctx: &RequestContext,
) -> Result<(), String> {
    schema.validate(post, pre, ctx).map_err(|v| v.to_string())
}

/// Runs the checks on the input; `Some((schema parsed without errors, insert allowed))` when
/// the rules loaded (for the generator's own tests), `None` otherwise.
pub fn run(data: &[u8]) -> Option<(bool, bool)> {
    let mut g = Gen::new(data);
    let mut schema_json = node(&mut g, 3);
    if let Value::Object(m) = &mut schema_json
        && g.chance(3)
    {
        m.insert("bsonType".into(), json!("object"));
    }
    let permissive = g.chance(2);
    let role = if permissive {
        json!({"name": "all", "apply_when": {}, "read": true, "write": true, "insert": true, "delete": true})
    } else {
        evaluate::role(&mut g, 0)
    };
    let mut pre = evaluate::document(&mut g);
    for _ in 0..g.below(3) {
        pre[g.pick(FIELDS)] = field_value(&mut g);
    }
    let mut post = pre.clone();
    for _ in 0..1 + g.below(2) {
        match g.below(3) {
            0 => {
                if let Some(m) = post.as_object_mut() {
                    m.remove(g.pick(FIELDS));
                }
            }
            _ => post[g.pick(FIELDS)] = field_value(&mut g),
        }
    }
    let (pre, post) = (evaluate::bson_doc(&pre)?, evaluate::bson_doc(&post)?);
    let user = doc! {"id": if g.chance(2) { "u1" } else { "u2" }, "type": "normal", "data": {},
    "custom_data": {"team": "x"}};
    let mut ctx = RequestContext::for_user(user);
    ctx.values = Bson::Document(doc! {"v": "u1"});
    ctx.functions = Arc::new(evaluate::host);

    // Parsing and validating alone: deterministic.
    let place = Place::file("schema.json");
    let (mut d1, mut d2) = (Diagnostics::default(), Diagnostics::default());
    let s1 = Schema::parse(&schema_json, &place, &mut d1);
    let s2 = Schema::parse(&schema_json, &place, &mut d2);
    assert_eq!(s1, s2, "parsing differs\nschema {schema_json}");
    assert_eq!(d1, d2, "diagnostics differ\nschema {schema_json}");
    let parsed = !d1.has_errors();
    let as_insert = validated(&s1, &post, None, &ctx);
    let as_update = validated(&s1, &post, Some(&pre), &ctx);
    assert_eq!(
        as_insert,
        validated(&s2, &post, None, &ctx),
        "validation differs\nschema {schema_json}"
    );
    assert_eq!(
        as_update,
        validated(&s1, &post, Some(&pre), &ctx),
        "validation differs\nschema {schema_json}"
    );
    if !parsed {
        assert!(
            as_insert.is_err(),
            "a broken schema accepted a document\nschema {schema_json}"
        );
    }

    // Through writes, with both engines.
    let file =
        json!({"database": "db", "collection": "coll", "roles": [role], "schema": schema_json});
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
    let rules = Rules::new(set);
    let coll = rules.collection("db.coll").ok()?;
    let reference = coll.prepare_with(&ctx, EngineKind::Reference);
    let compiled = coll.prepare_with(&ctx, EngineKind::Compiled);
    let what = format!("rules {file}\npre {pre}\npost {post}");
    let mut insert_allowed = false;
    for (kind, r, c) in [
        ("insert", reference.insert(&post), compiled.insert(&post)),
        (
            "update",
            reference.update(&pre, &post),
            compiled.update(&pre, &post),
        ),
        ("delete", reference.delete(&pre), compiled.delete(&pre)),
    ] {
        let code = |w: &rolegate::WriteOutcome| w.error.as_ref().map(|e| e.code);
        assert_eq!(
            (c.allowed, &c.role, code(&c)),
            (r.allowed, &r.role, code(&r)),
            "{kind} differs (left compiled): compiled {c:?} reference {r:?}\n{what}"
        );
        if r.allowed {
            assert!(r.error.is_none(), "allowed with an error: {r:?}");
        }
        if permissive && parsed {
            let expected = match kind {
                "insert" => Some(as_insert.is_ok()),
                "update" => Some(as_update.is_ok()),
                _ => None,
            };
            if let Some(expected) = expected {
                assert_eq!(
                    r.allowed, expected,
                    "{kind}: the write path and Schema::validate disagree ({as_insert:?} / {as_update:?}): {r:?}\n{what}"
                );
            }
        }
        if kind == "insert" {
            insert_allowed = r.allowed;
        }
    }
    Some((parsed, insert_allowed))
}
