//! Integration tests of the expression parser (`crate::expr`): every operator spelling, every
//! site rule, malformed expansions, Extended JSON literals, hints, the depth limit and
//! `parse_query`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions"
)]

use crate::error::{Diagnostic, Diagnostics, Place};
use crate::expr::expansion::{ExpansionErrorKind, parse_expansion};
use crate::expr::parse::MAX_EXPR_DEPTH;
use crate::expr::{
    BitTest, CmpOp, Dependency, Dialect, ElemMatch, Expansion, Expr, Op, Operand, Predicate, Root,
    Site, TypeSpec, parse_expr, parse_operand, parse_query,
};
use bson::spec::ElementType;
use bson::{Bson, doc, oid::ObjectId};
use serde_json::{Value, json};

fn place() -> Place {
    Place::file("rules.json")
        .key("roles")
        .index(0)
        .key("apply_when")
}

fn parse_at(v: &Value, dialect: Dialect, site: Site) -> (Expr, Vec<Diagnostic>) {
    let mut d = Diagnostics::default();
    let e = parse_expr(v, dialect, site, &place(), &mut d);
    (e, d.0)
}

fn ok(v: Value) -> Expr {
    ok_at(v, Dialect::MongoDb, Site::Any)
}

fn ok_at(v: Value, dialect: Dialect, site: Site) -> Expr {
    let (e, d) = parse_at(&v, dialect, site);
    assert!(d.is_empty(), "{v}: unexpected diagnostics {d:#?}");
    e
}

fn errs_at(v: Value, dialect: Dialect, site: Site) -> Vec<Diagnostic> {
    let (_, d) = parse_at(&v, dialect, site);
    assert!(!d.is_empty(), "{v}: expected an error at {site:?}");
    d
}

fn one_err(v: Value) -> Diagnostic {
    one_err_at(v, Dialect::MongoDb, Site::Any)
}

fn one_err_at(v: Value, dialect: Dialect, site: Site) -> Diagnostic {
    let mut d = errs_at(v.clone(), dialect, site);
    assert_eq!(d.len(), 1, "{v}: expected one error, got {d:#?}");
    d.remove(0)
}

/// The operators of `{"x": <ops>}`.
fn ops_of(v: Value) -> Vec<Op> {
    match ok(json!({ "x": v })) {
        Expr::Test {
            predicate: Predicate::Ops(ops),
            ..
        } => ops,
        other => panic!("expected an operator document, got {other:?}"),
    }
}

fn predicate_of(v: Value) -> Predicate {
    match ok(json!({ "x": v })) {
        Expr::Test { predicate, .. } => predicate,
        other => panic!("expected a test, got {other:?}"),
    }
}

fn lit(b: impl Into<Bson>) -> Operand {
    Operand::Literal(b.into())
}

fn exp(root: Root, path: &[&str]) -> Expansion {
    Expansion {
        root,
        path: path.iter().map(|s| s.to_string()).collect(),
        implicit: false,
    }
}

fn bare(root: Root, path: &[&str]) -> Expansion {
    Expansion {
        implicit: true,
        ..exp(root, path)
    }
}

/// Drops a deep `Value` without recursion.
fn drop_deep(v: Value) {
    let mut stack = vec![v];
    while let Some(mut v) = stack.pop() {
        match &mut v {
            Value::Array(a) => stack.extend(std::mem::take(a)),
            Value::Object(o) => stack.extend(std::mem::take(o).into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structure

#[test]
fn booleans_and_empty_document() {
    assert_eq!(ok(json!(true)), Expr::Bool(true));
    assert_eq!(ok(json!(false)), Expr::Bool(false));
    assert_eq!(ok(json!({})), Expr::always());
}

#[test]
fn single_clause_is_the_clause_and_several_are_all() {
    let one = Expr::Test {
        subject: bare(Root::Root, &["owner_id"]),
        predicate: Predicate::Matches(Operand::Expansion(exp(Root::User, &["id"]))),
    };
    assert_eq!(ok(json!({"owner_id": "%%user.id"})), one);
    let Expr::All(clauses) = ok(json!({"owner_id": "%%user.id", "b": 1})) else {
        panic!("expected All");
    };
    assert_eq!(clauses.len(), 2);
    assert_eq!(clauses[0], one);
}

#[test]
fn bare_fields_follow_the_dialect() {
    let e = ok_at(
        json!({"url.host": "x"}),
        Dialect::Service,
        Site::ServiceWhen,
    );
    let Expr::Test { subject, .. } = e else {
        panic!()
    };
    assert_eq!(subject, bare(Root::Args, &["url", "host"]));
    let Expr::Test { subject, .. } = ok(json!({"a.b.0": 1})) else {
        panic!()
    };
    assert_eq!(subject, bare(Root::Root, &["a", "b", "0"]));
}

#[test]
fn subject_expansions() {
    let Expr::Test { subject, predicate } = ok(json!({"%%true": {"%function": {"name": "f"}}}))
    else {
        panic!()
    };
    assert_eq!(subject, exp(Root::True, &[]));
    assert_eq!(
        predicate,
        Predicate::Matches(Operand::Function {
            name: "f".into(),
            arguments: vec![]
        })
    );
    let Expr::Test { subject, .. } = ok(json!({"%%request.requestHeaders.X-Api-Version": "2"}))
    else {
        panic!()
    };
    assert_eq!(
        subject,
        exp(Root::Request, &["requestHeaders", "X-Api-Version"])
    );
}

#[test]
fn logical_operators_every_spelling() {
    for (key, kind) in [
        ("%and", "all"),
        ("$and", "all"),
        ("%or", "any"),
        ("$or", "any"),
        ("%nor", "none"),
        ("$nor", "none"),
    ] {
        let e = ok(json!({ key: [{"a": 1}, true] }));
        let v = match (kind, e) {
            ("all", Expr::All(v)) | ("any", Expr::Any(v)) | ("none", Expr::None(v)) => v,
            (_, other) => panic!("{key}: {other:?}"),
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], Expr::Bool(true));
    }
    for key in ["%not", "$not"] {
        assert_eq!(
            ok(json!({ key: {"a": 1} })),
            Expr::Not(Box::new(ok(json!({"a": 1}))))
        );
        assert_eq!(
            ok(json!({ key: false })),
            Expr::Not(Box::new(Expr::Bool(false)))
        );
    }
}

#[test]
fn logical_operator_shapes_are_checked() {
    for bad in [
        json!({"%and": []}),
        json!({"%or": {"a": 1}}),
        json!({"$nor": 5}),
        json!({"%not": [{"a": 1}]}),
        json!({"%or": [1]}),
        json!({"%or": ["%%true"]}),
    ] {
        let e = one_err(bad.clone());
        assert_eq!(e.code, "invalid-expression", "{bad}: {e}");
    }
    let e = one_err(json!({"%or": [{"a": 1}, 7]}));
    assert_eq!(e.place.json_path, "roles[0].apply_when[\"%or\"][1]");
    assert!(
        one_err(json!("%%true"))
            .message
            .contains("expected an expression")
    );
    assert!(one_err(json!(1)).message.contains("expected an expression"));
}

// ---------------------------------------------------------------------------------------------
// Operators

#[test]
fn comparison_operators_every_spelling() {
    for (name, op) in [
        ("eq", CmpOp::Eq),
        ("ne", CmpOp::Ne),
        ("gt", CmpOp::Gt),
        ("gte", CmpOp::Gte),
        ("lt", CmpOp::Lt),
        ("lte", CmpOp::Lte),
    ] {
        for prefix in ["$", "%"] {
            let key = format!("{prefix}{name}");
            assert_eq!(
                ops_of(json!({ key.clone(): 5 })),
                vec![Op::Cmp(op, lit(5))],
                "{key}"
            );
        }
    }
    assert_eq!(
        ops_of(json!({"$gt": 0, "$lte": 42})),
        vec![Op::Cmp(CmpOp::Gt, lit(0)), Op::Cmp(CmpOp::Lte, lit(42))]
    );
}

#[test]
fn set_and_exists_operators_every_spelling() {
    for prefix in ["$", "%"] {
        let ops = ops_of(json!({
            format!("{prefix}in"): [1, "%%user.id"],
            format!("{prefix}nin"): "%%values.list",
            format!("{prefix}all"): ["a", "b"],
            format!("{prefix}exists"): true,
        }));
        assert_eq!(
            ops,
            vec![
                Op::In(Operand::Array(vec![
                    lit(1),
                    Operand::Expansion(exp(Root::User, &["id"]))
                ])),
                Op::Nin(Operand::Expansion(exp(Root::Values, &["list"]))),
                Op::AllOf(lit(vec![Bson::from("a"), Bson::from("b")])),
                Op::Exists(lit(true)),
            ]
        );
    }
    assert_eq!(ops_of(json!({"$exists": 0})), vec![Op::Exists(lit(0))]);
    assert_eq!(
        ops_of(json!({"$exists": "%%true"})),
        vec![Op::Exists(Operand::Expansion(exp(Root::True, &[])))]
    );
    assert_eq!(
        ops_of(json!({"$in": {"%function": {"name": "ids"}}})),
        vec![Op::In(Operand::Function {
            name: "ids".into(),
            arguments: vec![]
        })]
    );
    for bad in [
        json!({"x": {"$in": 5}}),
        json!({"x": {"%nin": "abc"}}),
        json!({"x": {"$all": {"a": 1}}}),
        json!({"x": {"$in": {"%stringToOid": "%%user.id"}}}),
        json!({"x": {"$exists": "yes"}}),
        json!({"x": {"$exists": null}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-expression", "{bad}");
    }
}

#[test]
fn logical_operators_in_operator_position() {
    let ops = ops_of(json!({"%and": [{"$gt": 0}, {"$lte": 42}]}));
    assert_eq!(
        ops,
        vec![Op::All(vec![
            Predicate::Ops(vec![Op::Cmp(CmpOp::Gt, lit(0))]),
            Predicate::Ops(vec![Op::Cmp(CmpOp::Lte, lit(42))]),
        ])]
    );
    assert!(matches!(&ops_of(json!({"$or": [1, {"$gt": 5}]}))[..], [Op::Any(v)] if v.len() == 2));
    assert!(matches!(&ops_of(json!({"%nor": [{"$eq": 1}]}))[..], [Op::None(v)] if v.len() == 1));
    for key in ["$not", "%not"] {
        assert_eq!(
            ops_of(json!({ key: {"$gt": 5} })),
            vec![Op::Not(Box::new(Predicate::Ops(vec![Op::Cmp(
                CmpOp::Gt,
                lit(5)
            )])))]
        );
    }
    assert!(matches!(
        &ops_of(json!({"$not": {"$regularExpression": {"pattern": "^a", "options": ""}}}))[..],
        [Op::Not(p)] if matches!(p.as_ref(), Predicate::Ops(o) if matches!(o[..], [Op::Regex(_)]))
    ));
    assert_eq!(
        one_err(json!({"x": {"$not": 5}})).code,
        "invalid-expression"
    );
    assert_eq!(
        one_err(json!({"x": {"$not": {}}})).code,
        "invalid-expression"
    );
    assert_eq!(
        one_err(json!({"x": {"$and": []}})).code,
        "invalid-expression"
    );
}

#[test]
fn size_mod_type() {
    for p in ["$", "%"] {
        assert_eq!(
            ops_of(json!({ format!("{p}size"): 2 })),
            vec![Op::Size(lit(2))]
        );
        assert_eq!(
            ops_of(json!({ format!("{p}mod"): [4, 1] })),
            vec![Op::Mod {
                divisor: 4,
                remainder: 1
            }]
        );
        assert_eq!(
            ops_of(json!({ format!("{p}type"): "string" })),
            vec![Op::Type(vec![TypeSpec::Exact(ElementType::String)])]
        );
    }
    assert_eq!(
        ops_of(json!({"$mod": [4.7, -1.2]})),
        vec![Op::Mod {
            divisor: 4,
            remainder: -1
        }]
    );
    assert_eq!(
        ops_of(json!({"$size": "%%values.n"})),
        vec![Op::Size(Operand::Expansion(exp(Root::Values, &["n"])))]
    );
    assert_eq!(
        ops_of(json!({"%type": ["int", 18, "number", -1, 127, "objectId", "bool"]})),
        vec![Op::Type(vec![
            TypeSpec::Exact(ElementType::Int32),
            TypeSpec::Exact(ElementType::Int64),
            TypeSpec::Number,
            TypeSpec::Exact(ElementType::MinKey),
            TypeSpec::Exact(ElementType::MaxKey),
            TypeSpec::Exact(ElementType::ObjectId),
            TypeSpec::Exact(ElementType::Boolean),
        ])]
    );
    for name in [
        "double",
        "string",
        "object",
        "array",
        "binData",
        "undefined",
        "objectId",
        "bool",
        "date",
        "null",
        "regex",
        "dbPointer",
        "javascript",
        "symbol",
        "javascriptWithScope",
        "int",
        "timestamp",
        "long",
        "decimal",
        "minKey",
        "maxKey",
        "number",
    ] {
        assert_eq!(ops_of(json!({ "$type": name })).len(), 1, "{name}");
    }
    for bad in [
        json!({"x": {"$size": -1}}),
        json!({"x": {"$size": 1.5}}),
        json!({"x": {"$size": "2"}}),
        json!({"x": {"$mod": [0, 1]}}),
        json!({"x": {"$mod": [1]}}),
        json!({"x": {"$mod": "ab"}}),
        json!({"x": {"$type": []}}),
        json!({"x": {"$type": 42}}),
        json!({"x": {"$type": "%%values.t"}}),
        json!({"x": {"$type": {"a": 1}}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-expression", "{bad}");
    }
    let e = one_err(json!({"x": {"$type": "strin"}}));
    assert_eq!(e.hint.as_deref(), Some("did you mean `string`?"));
}

#[test]
fn regex_and_options() {
    let [Op::Regex(r)] = &ops_of(json!({"$regex": "^a.c$", "$options": "ims"}))[..] else {
        panic!()
    };
    assert_eq!(r.pattern, "^a.c$");
    assert_eq!(r.options, "ims");
    assert!(r.regex.is_match("x\nA\nC"));
    let [Op::Regex(r)] = &ops_of(json!({"%regex": "a b # comment", "%options": "x"}))[..] else {
        panic!()
    };
    assert!(r.regex.is_match("ab"));
    // A regex literal as the whole value is a regex match, as in MongoDB.
    let Predicate::Ops(ops) =
        predicate_of(json!({"$regularExpression": {"pattern": "^ab", "options": "i"}}))
    else {
        panic!()
    };
    let [Op::Regex(r)] = &ops[..] else { panic!() };
    assert!(r.regex.is_match("ABC"));
    assert_eq!(
        one_err(json!({"x": {"$regex": "(a"}})).code,
        "invalid-regex"
    );
    assert_eq!(
        one_err(json!({"x": {"$regex": "(a)\\1"}})).code,
        "invalid-regex"
    );
    assert_eq!(
        one_err(json!({"x": {"$regex": "a", "$options": "q"}})).code,
        "invalid-regex"
    );
    assert_eq!(
        one_err(json!({"x": {"$options": "i"}})).code,
        "invalid-expression"
    );
    assert_eq!(
        one_err(json!({"x": {"$regex": "%%values.p"}})).code,
        "invalid-expression"
    );
    assert_eq!(
        one_err(json!({"x": {"$regex": 5}})).code,
        "invalid-expression"
    );
}

#[test]
fn elem_match_ops_and_queries() {
    let [Op::ElemMatch(em)] = &ops_of(json!({"$elemMatch": {"$gt": 1, "%lt": 5}}))[..] else {
        panic!()
    };
    assert_eq!(
        **em,
        ElemMatch::Ops(vec![Op::Cmp(CmpOp::Gt, lit(1)), Op::Cmp(CmpOp::Lt, lit(5))])
    );
    let [Op::ElemMatch(em)] =
        &ops_of(json!({"%elemMatch": {"uid": "%%user.id", "n": {"$gt": 2}}}))[..]
    else {
        panic!()
    };
    let ElemMatch::Query(Expr::All(clauses)) = em.as_ref() else {
        panic!("{em:?}")
    };
    assert_eq!(
        clauses[0],
        Expr::Test {
            subject: bare(Root::Root, &["uid"]),
            predicate: Predicate::Matches(Operand::Expansion(exp(Root::User, &["id"])))
        }
    );
    // Element fields keep Root::Root even in service rules, and are not site-checked.
    let e = ok_at(
        json!({"%%user.custom_data.teams": {"$elemMatch": {"name": "a"}}}),
        Dialect::Service,
        Site::FilterApplyWhen,
    );
    let Expr::Test {
        predicate: Predicate::Ops(ops),
        ..
    } = e
    else {
        panic!()
    };
    let [Op::ElemMatch(em)] = &ops[..] else {
        panic!()
    };
    let ElemMatch::Query(Expr::Test { subject, .. }) = em.as_ref() else {
        panic!()
    };
    assert_eq!(*subject, bare(Root::Root, &["name"]));
    // `$or` makes the body a query.
    let [Op::ElemMatch(em)] = &ops_of(json!({"$elemMatch": {"$or": [{"a": 1}, {"b": 2}]}}))[..]
    else {
        panic!()
    };
    assert!(matches!(em.as_ref(), ElemMatch::Query(Expr::Any(_))));
    for bad in [
        json!({"x": {"$elemMatch": 5}}),
        json!({"x": {"$elemMatch": {"%%user.id": 1}}}),
        json!({"x": {"$elemMatch": {"a": 1, "$gt": 1}}}),
        json!({"x": {"$elemMatch": {"$not": {"a": 1}, "b": 1}}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-expression", "{bad}");
    }
}

#[test]
fn unsupported_operators() {
    for op in [
        "$text",
        "$where",
        "$expr",
        "$jsonSchema",
        "$near",
        "$geoWithin",
        "$geoIntersects",
        "$nearSphere",
        "$box",
        "%text",
    ] {
        let at_top = one_err(json!({ op: {} }));
        assert_eq!(at_top.code, "unsupported-operator", "{op}");
        assert_eq!(
            at_top.message,
            format!("operator `{op}` is not supported in rule expressions")
        );
        let in_ops = one_err(json!({"loc": { op: {} }}));
        assert_eq!(in_ops.code, "unsupported-operator", "{op}");
    }
}

#[test]
fn unknown_operators_have_hints() {
    let e = one_err(json!({"x": {"$exist": true}}));
    assert_eq!(e.code, "unknown-operator");
    assert_eq!(e.message, "unknown operator `$exist`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `$exists`?"));
    assert_eq!(e.place.json_path, "roles[0].apply_when.x[\"$exist\"]");
    let e = one_err(json!({"$exist": true}));
    assert_eq!(e.code, "unknown-operator");
    assert_eq!(e.hint.as_deref(), Some("did you mean `$exists`?"));
    let e = one_err(json!({"x": {"%pipeline": {"name": "p"}}}));
    assert_eq!(e.code, "unknown-operator");
    let e = one_err(json!({"x": {"$function": {"name": "p"}}}));
    assert_eq!(e.hint.as_deref(), Some("did you mean `%function`?"));
    let e = one_err(json!({"x": {"%stringToOID": "%%user.id"}}));
    assert_eq!(e.hint.as_deref(), Some("did you mean `%stringToOid`?"));
    // In operand position too.
    let e = one_err(json!({"x": {"$in": [{"%stringtoOid": "%%user.id"}]}}));
    assert_eq!(e.code, "unknown-operator");
    assert_eq!(e.hint.as_deref(), Some("did you mean `%stringToOid`?"));
}

#[test]
fn misplaced_operators() {
    assert_eq!(one_err(json!({"$eq": 1})).code, "invalid-expression");
    assert_eq!(
        one_err(json!({"%function": {"name": "f"}})).code,
        "invalid-expression"
    );
    let e = one_err(json!({"x": {"$gt": 1, "y": 2}}));
    assert_eq!(e.code, "invalid-expression");
    assert!(e.message.contains("mix"));
    assert_eq!(
        one_err(json!({"x": {"$eq": 1, "%eq": 2}})).code,
        "duplicate-operator"
    );
    assert_eq!(
        one_err(json!({"x": {"%function": {"name": "f"}, "$gt": 1}})).code,
        "invalid-expression"
    );
}

// ---------------------------------------------------------------------------------------------
// Operands and literals

#[test]
fn extended_json_literals() {
    let oid = ObjectId::parse_str("5f1f1f1f1f1f1f1f1f1f1f1f").unwrap();
    let cases = [
        (
            json!({"$oid": "5f1f1f1f1f1f1f1f1f1f1f1f"}),
            Bson::ObjectId(oid),
        ),
        (json!({"$numberLong": "5"}), Bson::Int64(5)),
        (json!({"$numberInt": "5"}), Bson::Int32(5)),
        (json!({"$numberDouble": "5"}), Bson::Double(5.0)),
        (
            json!({"$numberDecimal": "1.5"}),
            Bson::Decimal128("1.5".parse().unwrap()),
        ),
        (
            json!({"$date": "2020-01-02T03:04:05Z"}),
            Bson::DateTime(bson::DateTime::from_millis(1_577_934_245_000)),
        ),
        (
            json!({"$date": {"$numberLong": "1000"}}),
            Bson::DateTime(bson::DateTime::from_millis(1000)),
        ),
        (json!({"$minKey": 1}), Bson::MinKey),
        (json!({"$maxKey": 1}), Bson::MaxKey),
        (json!({"$symbol": "s"}), Bson::Symbol("s".into())),
        (json!({"$code": "x()"}), Bson::JavaScriptCode("x()".into())),
        (
            json!({"$timestamp": {"t": 1, "i": 2}}),
            Bson::Timestamp(bson::Timestamp {
                time: 1,
                increment: 2,
            }),
        ),
    ];
    for (v, want) in cases {
        assert_eq!(
            predicate_of(v.clone()),
            Predicate::Matches(lit(want.clone())),
            "{v}"
        );
        // Nested inside arrays and documents, and as operator operands.
        assert_eq!(
            ops_of(json!({"$in": [v.clone()]})),
            vec![Op::In(lit(vec![want.clone()]))]
        );
        assert_eq!(
            predicate_of(json!({"k": v.clone()})),
            Predicate::Matches(lit(doc! {"k": want}))
        );
    }
    assert!(matches!(
        predicate_of(json!({"$uuid": "00112233-4455-6677-8899-aabbccddeeff"})),
        Predicate::Matches(Operand::Literal(Bson::Binary(_)))
    ));
    assert!(matches!(
        predicate_of(json!({"$binary": {"base64": "AQI=", "subType": "00"}})),
        Predicate::Matches(Operand::Literal(Bson::Binary(_)))
    ));
    // Plain JSON numbers: int32 when they fit, int64 otherwise, doubles with a fraction.
    assert_eq!(predicate_of(json!(1)), Predicate::Matches(lit(1)));
    assert_eq!(
        predicate_of(json!(5_000_000_000_i64)),
        Predicate::Matches(lit(5_000_000_000_i64))
    );
    assert_eq!(predicate_of(json!(1.5)), Predicate::Matches(lit(1.5)));
    // Empty document is a literal (exact equality), not an empty operator document.
    assert_eq!(predicate_of(json!({})), Predicate::Matches(lit(doc! {})));
    // Invalid Extended JSON is an error.
    for bad in [
        json!({"$oid": "nothex"}),
        json!({"$numberLong": "x"}),
        json!({"$date": true}),
        json!({"$oid": "5f1f1f1f1f1f1f1f1f1f1f1f", "x": 1}),
    ] {
        assert_eq!(
            one_err(json!({"x": bad.clone()})).code,
            "invalid-literal",
            "{bad}"
        );
    }
}

#[test]
fn operands_fold_literals_and_keep_expansions() {
    let mut d = Diagnostics::default();
    let o = parse_operand(
        &json!({"a": [1, 2], "b": {"c": "x"}}),
        Dialect::MongoDb,
        Site::Any,
        &place(),
        &mut d,
    );
    assert!(d.0.is_empty());
    assert_eq!(o, lit(doc! {"a": [1, 2], "b": {"c": "x"}}));
    let o = parse_operand(
        &json!({"a": [1, "%%user.id"], "b": 2}),
        Dialect::MongoDb,
        Site::Any,
        &place(),
        &mut d,
    );
    assert_eq!(
        o,
        Operand::Document(vec![
            (
                "a".into(),
                Operand::Array(vec![lit(1), Operand::Expansion(exp(Root::User, &["id"]))])
            ),
            ("b".into(), lit(2)),
        ])
    );
    // Documents are equality operands (spec U21).
    assert_eq!(
        predicate_of(json!({"a": "%%user.id"})),
        Predicate::Matches(Operand::Document(vec![(
            "a".into(),
            Operand::Expansion(exp(Root::User, &["id"]))
        )]))
    );
    // Documents nested in operands may have `$` keys; they are literal.
    assert_eq!(
        ops_of(json!({"$eq": {"$gt": 1}})),
        vec![Op::Cmp(CmpOp::Eq, lit(doc! {"$gt": 1}))]
    );
}

#[test]
fn value_operators() {
    assert_eq!(
        predicate_of(json!({"%stringToOid": "%%user.id"})),
        Predicate::Matches(Operand::StringToOid(Box::new(Operand::Expansion(exp(
            Root::User,
            &["id"]
        )))))
    );
    assert!(matches!(
        predicate_of(json!({"%stringToOid": "5f1f1f1f1f1f1f1f1f1f1f1f"})),
        Predicate::Matches(Operand::StringToOid(_))
    ));
    assert!(matches!(
        predicate_of(json!({"%oidToString": {"$oid": "5f1f1f1f1f1f1f1f1f1f1f1f"}})),
        Predicate::Matches(Operand::OidToString(_))
    ));
    assert!(matches!(
        predicate_of(json!({"%stringToUuid": "00112233-4455-6677-8899-aabbccddeeff"})),
        Predicate::Matches(Operand::StringToUuid(_))
    ));
    assert!(matches!(
        predicate_of(json!({"%uuidToString": "%%values.u"})),
        Predicate::Matches(Operand::UuidToString(_))
    ));
    let f = predicate_of(json!({"%function": {
        "name": "hasRole",
        "arguments": [{"userId": "%%user.id", "roleName": "X"}, 42]
    }}));
    assert_eq!(
        f,
        Predicate::Matches(Operand::Function {
            name: "hasRole".into(),
            arguments: vec![
                Operand::Document(vec![
                    (
                        "userId".into(),
                        Operand::Expansion(exp(Root::User, &["id"]))
                    ),
                    ("roleName".into(), lit("X")),
                ]),
                lit(42),
            ]
        })
    );
    // Arguments of conversions: a literal or an expansion, never another operator.
    for bad in [
        json!({"x": {"%stringToOid": {"%function": {"name": "f"}}}}),
        json!({"x": {"%stringToOid": ["%%user.id"]}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-expression", "{bad}");
    }
    for bad in [
        json!({"x": {"%stringToOid": "xyz"}}),
        json!({"x": {"%stringToOid": 5}}),
        json!({"x": {"%stringToUuid": "not-a-uuid"}}),
        json!({"x": {"%oidToString": true}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-literal", "{bad}");
    }
    for bad in [
        json!({"x": {"%function": "f"}}),
        json!({"x": {"%function": {}}}),
        json!({"x": {"%function": {"name": ""}}}),
        json!({"x": {"%function": {"name": "f", "arguments": 1}}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-expression", "{bad}");
    }
    let e = one_err(json!({"x": {"%function": {"name": "f", "argument": []}}}));
    assert_eq!(e.hint.as_deref(), Some("did you mean `arguments`?"));
    assert_eq!(
        e.place.json_path,
        "roles[0].apply_when.x[\"%function\"].argument"
    );
}

// ---------------------------------------------------------------------------------------------
// Expansions

#[test]
fn malformed_expansions_have_spans() {
    let e = one_err(json!({"owner_id": "%%user.id%%"}));
    assert_eq!(e.code, "malformed-expansion");
    assert_eq!(e.place.span, Some(9..11));
    assert_eq!(e.place.json_path, "roles[0].apply_when.owner_id");
    assert!(e.place.to_string().contains("(bytes 9..11)"));
    let e = one_err(json!({"%%user..id": 1}));
    assert_eq!(e.code, "malformed-expansion");
    assert_eq!(e.place.span, Some(6..8));
    let e = one_err(json!({"a": "%%user."}));
    assert_eq!(e.place.span, Some(6..7));
    let e = one_err(json!({"a": "%%"}));
    assert_eq!(e.code, "malformed-expansion");
    let e = one_err(json!({"a..b": 1}));
    assert_eq!(e.code, "malformed-expansion");
    assert_eq!(e.place.span, Some(1..3));
    let e = parse_expansion("%%user.id%%").unwrap_err();
    assert_eq!(e.kind, ExpansionErrorKind::Malformed);
}

#[test]
fn unknown_expansions_name_the_root() {
    for (s, hint) in [
        ("%%ctx.user", None),
        ("%%secrets.x", Some("%%values")),
        ("%%vars.x", Some("obsolete")),
        ("%%item", Some("obsolete")),
        ("%%usr.id", Some("did you mean `%%user`?")),
        ("%%prevroot", Some("did you mean `%%prevRoot`?")),
    ] {
        let e = one_err(json!({ "a": s }));
        assert_eq!(e.code, "unknown-expansion", "{s}");
        let name = s.split('.').next().unwrap();
        assert!(e.message.contains(&format!("`{name}`")), "{s}: {e}");
        assert_eq!(e.place.span, Some(0..name.len()));
        if let Some(h) = hint {
            assert!(e.hint.as_deref().unwrap().contains(h), "{s}: {e}");
        }
        // As a key too.
        assert_eq!(one_err(json!({ s: 1 })).code, "unknown-expansion");
    }
}

#[test]
fn all_errors_are_collected() {
    let (_, d) = parse_at(
        &json!({
            "a": "%%ctx",
            "b": {"$exist": true, "$regex": "("},
            "%or": [{"c": "%%user.id%%"}, {"$where": "1"}],
            "%%root.x": {"%function": {"name": 5}},
        }),
        Dialect::MongoDb,
        Site::Any,
    );
    let codes: Vec<&str> = d.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        vec![
            "unknown-expansion",
            "unknown-operator",
            "invalid-regex",
            "malformed-expansion",
            "unsupported-operator",
            "invalid-expression",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Sites

const ALL_SITES: [Site; 12] = [
    Site::RoleApplyWhen,
    Site::RolePermission,
    Site::FieldPermission,
    Site::SchemaValidate,
    Site::FilterApplyWhen,
    Site::FilterQuery,
    Site::SyncApplyWhen,
    Site::SyncRule,
    Site::PartitionPermission,
    Site::ServiceWhen,
    Site::CanEvaluate,
    Site::Any,
];

/// Which explicit roots each site allows (besides %%true/%%false, allowed everywhere).
fn allowed(site: Site) -> &'static [&'static str] {
    match site {
        Site::RoleApplyWhen | Site::RolePermission => &[
            "user",
            "request",
            "values",
            "environment",
            "root",
            "prevRoot",
        ],
        Site::FieldPermission | Site::SchemaValidate => &[
            "user",
            "request",
            "values",
            "environment",
            "root",
            "prevRoot",
            "this",
            "prev",
        ],
        Site::FilterApplyWhen | Site::FilterQuery => &["user", "request", "values", "environment"],
        Site::SyncApplyWhen | Site::SyncRule => &["user", "values", "environment"],
        Site::PartitionPermission => &["user", "values", "environment", "partition"],
        Site::ServiceWhen | Site::CanEvaluate => {
            &["user", "request", "values", "environment", "args"]
        }
        Site::Any => &[
            "user",
            "request",
            "values",
            "environment",
            "root",
            "prevRoot",
            "this",
            "prev",
            "args",
            "partition",
        ],
    }
}

#[test]
fn site_matrix_for_explicit_expansions() {
    for site in ALL_SITES {
        for (root, name) in Root::ALL {
            let allowed_here =
                matches!(root, Root::True | Root::False) || allowed(site).contains(&name);
            assert_eq!(site.allows(root, false), allowed_here, "{site:?} {name}");
            let s = format!("%%{name}.x");
            for v in [json!({ s.clone(): 1 }), json!({"%%true": s.clone()})] {
                let (_, d) = parse_at(&v, Dialect::MongoDb, site);
                if allowed_here {
                    assert!(d.is_empty(), "{site:?} {v}: {d:?}");
                } else {
                    assert_eq!(d.len(), 1, "{site:?} {v}: {d:?}");
                    assert_eq!(d[0].code, "expansion-not-allowed");
                    assert_eq!(d[0].place.span, Some(0..2 + name.len()));
                }
            }
        }
    }
}

#[test]
fn site_messages() {
    // Spec §8 / S29 wording.
    let e = one_err_at(
        json!({"%%root.status": "new"}),
        Dialect::MongoDb,
        Site::PartitionPermission,
    );
    assert_eq!(e.message, "do not know how to expand '%%root'");
    let e = one_err_at(
        json!({"%%partition": "x"}),
        Dialect::MongoDb,
        Site::RoleApplyWhen,
    );
    assert_eq!(e.message, "do not know how to expand '%%partition'");
    assert!(e.hint.unwrap().contains("Partition-Based Sync"));
    let e = one_err_at(
        json!({"%%args.x": 1}),
        Dialect::MongoDb,
        Site::RolePermission,
    );
    assert_eq!(e.message, "do not know how to expand '%%args'");
    let e = one_err_at(
        json!({"a": "%%this"}),
        Dialect::MongoDb,
        Site::RolePermission,
    );
    assert_eq!(e.message, "do not know how to expand '%%this'");
    // Filter apply_when: document expansions and bare fields.
    for v in [
        json!({"%%root.owner_id": "%%user.id"}),
        json!({"owner_id": "%%user.id"}),
        json!({"%%user.id": "%%prevRoot.owner"}),
        json!({"%%user.id": "%%this"}),
        json!({"%%prev": 1}),
    ] {
        let e = one_err_at(v.clone(), Dialect::MongoDb, Site::FilterApplyWhen);
        assert_eq!(
            e.message,
            "filter apply_when cannot use document expansions (%%root, %%prevRoot, %%this, %%prev)",
            "{v}"
        );
    }
    // Sync apply_when.
    for v in [
        json!({"%%root.owner_id": "%%user.id"}),
        json!({"owner_id": "%%user.id"}),
        json!({"%%user.id": {"$in": "%%prevRoot.ids"}}),
    ] {
        let e = one_err_at(v.clone(), Dialect::MongoDb, Site::SyncApplyWhen);
        assert_eq!(
            e.message, "apply_when cannot reference the document in Sync",
            "{v}"
        );
    }
    let e = one_err_at(
        json!({"%%request.remoteIPAddress": "1"}),
        Dialect::MongoDb,
        Site::SyncApplyWhen,
    );
    assert_eq!(e.message, "do not know how to expand '%%request'");
    // Sync rules: bare fields yes, %%root no, %function no.
    ok_at(
        json!({"owner_id": "%%user.id", "team": {"%stringToOid": "%%user.custom_data.team"}}),
        Dialect::MongoDb,
        Site::SyncRule,
    );
    let e = one_err_at(
        json!({"%%root.owner_id": "%%user.id"}),
        Dialect::MongoDb,
        Site::SyncRule,
    );
    assert_eq!(e.message, "do not know how to expand '%%root'");
    let e = one_err_at(
        json!({"%%true": {"%function": {"name": "f"}}}),
        Dialect::MongoDb,
        Site::SyncRule,
    );
    assert_eq!(e.code, "function-not-allowed");
    assert_eq!(
        e.message,
        "%function is not allowed in Sync document filters"
    );
    ok_at(
        json!({"%%true": {"%function": {"name": "f"}}}),
        Dialect::MongoDb,
        Site::SyncApplyWhen,
    );
    for site in ALL_SITES {
        assert_eq!(site.allows_functions(), site != Site::SyncRule);
    }
    // Bare fields in sites without a document.
    for site in [
        Site::PartitionPermission,
        Site::CanEvaluate,
        Site::ServiceWhen,
    ] {
        let e = one_err_at(json!({"owner": "x"}), Dialect::MongoDb, site);
        assert_eq!(e.message, "do not know how to expand '%%root'", "{site:?}");
        assert!(e.hint.unwrap().contains("`owner`"));
    }
    // Service dialect bare fields are %%args.
    ok_at(json!({"url": "x"}), Dialect::Service, Site::ServiceWhen);
    ok_at(json!({"url": "x"}), Dialect::Service, Site::CanEvaluate);
    let e = one_err_at(json!({"url": "x"}), Dialect::Service, Site::RoleApplyWhen);
    assert_eq!(e.message, "do not know how to expand '%%args'");
    // Filter queries: bare fields yes, %%root no.
    ok_at(
        json!({"owner_id": "%%user.id"}),
        Dialect::MongoDb,
        Site::FilterQuery,
    );
    let e = one_err_at(
        json!({"a": "%%root.b"}),
        Dialect::MongoDb,
        Site::FilterQuery,
    );
    assert_eq!(e.message, "do not know how to expand '%%root'");
    // Truth expansions everywhere.
    for site in ALL_SITES {
        ok_at(
            json!({"%%true": true, "%%false": "%%false"}),
            Dialect::MongoDb,
            site,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

#[test]
fn queries_from_bson() {
    let q = doc! {
        "owner_id": "%%user.id",
        "n": {"$gt": 5_i64, "$in": [1, 2]},
        "$or": [{"a.b": 1}, {"tags": {"$elemMatch": {"k": "v"}}}],
        "%weird": 1,
    };
    let mut d = Diagnostics::default();
    let e = parse_query(&q, &place(), &mut d);
    assert!(d.0.is_empty(), "{d:?}");
    let Expr::All(clauses) = e else { panic!() };
    assert_eq!(
        clauses[0],
        Expr::Test {
            subject: bare(Root::Root, &["owner_id"]),
            // A string starting with %% is a literal in a query.
            predicate: Predicate::Matches(lit("%%user.id")),
        }
    );
    assert_eq!(
        clauses[1],
        Expr::Test {
            subject: bare(Root::Root, &["n"]),
            // BSON types are kept exactly.
            predicate: Predicate::Ops(vec![
                Op::Cmp(CmpOp::Gt, lit(5_i64)),
                Op::In(lit(vec![Bson::Int32(1), Bson::Int32(2)])),
            ]),
        }
    );
    assert!(matches!(&clauses[2], Expr::Any(v) if v.len() == 2));
    // `%` keys are field names in a query.
    assert!(matches!(&clauses[3], Expr::Test { subject, .. } if subject.path == ["%weird"]));
    // A BSON regex is a regex match.
    let mut d = Diagnostics::default();
    let e = parse_query(
        &doc! {"name": bson::Regex { pattern: "^a".into(), options: "i".into() }},
        &place(),
        &mut d,
    );
    assert!(d.0.is_empty());
    assert!(
        matches!(e, Expr::Test { predicate: Predicate::Ops(ref o), .. } if matches!(o[..], [Op::Regex(_)]))
    );
}

#[test]
fn query_errors() {
    for (q, code) in [
        (doc! {"$text": {"$search": "x"}}, "unsupported-operator"),
        (doc! {"$where": "1"}, "unsupported-operator"),
        (doc! {"a": {"$near": [0, 0]}}, "unsupported-operator"),
        (doc! {"$not": {"a": 1}}, "invalid-expression"),
        (doc! {"$foo": 1}, "unknown-operator"),
        (
            doc! {"a": {"%in": [1]}, "b": {"$in": 1}},
            "invalid-expression",
        ),
        (doc! {"a": {"$exist": true}}, "unknown-operator"),
        (doc! {"$and": []}, "invalid-expression"),
        (doc! {"$or": [1]}, "invalid-expression"),
    ] {
        let mut d = Diagnostics::default();
        parse_query(&q, &place(), &mut d);
        assert_eq!(d.0.first().map(|d| d.code), Some(code), "{q}: {d:?}");
    }
    let mut d = Diagnostics::default();
    parse_query(&doc! {"a": {"$exist": 1}}, &place(), &mut d);
    assert_eq!(d.0[0].hint.as_deref(), Some("did you mean `$exists`?"));
    assert!(d.0[0].message.contains("$exist"));
}

// ---------------------------------------------------------------------------------------------
// Depth

/// `{key: v}` without `json!`, whose interpolation serializes (recursively) a copy of `v`.
fn obj(key: &str, v: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(key.to_string(), v);
    Value::Object(m)
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    const DEEP: usize = 100_000;
    let builders: [fn(Value) -> Value; 6] = [
        |v| obj("$not", v),
        |v| obj("%and", Value::Array(vec![v])),
        |v| obj("a", obj("$elemMatch", v)),
        |v| Value::Array(vec![v]),
        |v| obj("k", v),
        |v| obj("$not", obj("$not", v)),
    ];
    for (i, wrap) in builders.into_iter().enumerate() {
        let mut v = json!(true);
        for _ in 0..DEEP {
            v = wrap(v);
        }
        let v = if i >= 3 { obj("x", v) } else { v };
        let (_, d) = parse_at(&v, Dialect::MongoDb, Site::Any);
        let codes: Vec<&str> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, vec!["expression-too-deep"], "builder {i}");
        assert!(d[0].message.contains("nested too deeply"));
        drop_deep(v);
    }
    // Deep literals inside Extended JSON are bounded too.
    let mut v = json!(1);
    for _ in 0..DEEP {
        v = obj("a", v);
    }
    let mut code = serde_json::Map::new();
    code.insert("$code".into(), json!("f"));
    code.insert("$scope".into(), v);
    let v = obj("x", Value::Object(code));
    let (_, d) = parse_at(&v, Dialect::MongoDb, Site::Any);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "expression-too-deep");
    drop_deep(v);
    // Deep BSON queries.
    let mut q = doc! {"a": 1};
    for _ in 0..500 {
        q = doc! {"$or": [q]};
    }
    let mut d = Diagnostics::default();
    parse_query(&q, &place(), &mut d);
    assert_eq!(d.0.len(), 1);
    assert_eq!(d.0[0].code, "expression-too-deep");
}

#[test]
fn nesting_up_to_the_limit_is_fine() {
    // `{"$not": ...}` adds one level per wrap; the innermost `true` sits at depth n.
    let mut v = json!(true);
    for _ in 0..MAX_EXPR_DEPTH {
        v = json!({ "$not": v });
    }
    ok(v.clone());
    let (_, d) = parse_at(&json!({ "$not": v }), Dialect::MongoDb, Site::Any);
    assert_eq!(d.len(), 1);
}

/// The `%function` names `visit_functions` reports for `v`, in visiting order.
fn functions_of(v: Value) -> Vec<String> {
    let e = ok(v);
    let mut names = Vec::new();
    e.visit_functions(&mut |n| names.push(n.to_string()));
    names
}

fn call(name: &str) -> Value {
    json!({"%function": {"name": name, "arguments": []}})
}

#[test]
fn visit_functions_reaches_every_nested_position() {
    let cases: Vec<(&str, Value)> = vec![
        // `$elemMatch`, query form (was missed).
        (
            "em_query",
            json!({"tags": {"$elemMatch": {"owner": call("em_query")}}}),
        ),
        // `$elemMatch`, operator form.
        (
            "em_ops",
            json!({"tags": {"$elemMatch": {"$eq": call("em_ops")}}}),
        ),
        // `%or` inside an `$elemMatch` query (was missed).
        (
            "em_or",
            json!({"tags": {"$elemMatch": {"%or": [{"a": 1}, {"b": call("em_or")}]}}}),
        ),
        // `$not` inside an `$elemMatch` operator body.
        (
            "em_not",
            json!({"n": {"$elemMatch": {"$gt": 0, "$not": {"$eq": call("em_not")}}}}),
        ),
        // `$elemMatch` nested in an `$elemMatch` query (was missed).
        (
            "em_em",
            json!({"a": {"$elemMatch": {"b": {"$elemMatch": {"c": call("em_em")}}}}}),
        ),
        // A `$not` operator body.
        ("not_op", json!({"n": {"$not": {"$gt": call("not_op")}}})),
        // An `$elemMatch` query under `$not` (was missed).
        (
            "not_em",
            json!({"n": {"$not": {"$elemMatch": {"a": call("not_em")}}}}),
        ),
        // An `$elemMatch` query under `%or` in operator position (was missed).
        (
            "or_em",
            json!({"n": {"%or": [{"$size": 0}, {"$elemMatch": {"a": call("or_em")}}]}}),
        ),
        // Document and array operands.
        ("doc", json!({"d": {"k": call("doc"), "j": 1}})),
        ("arr", json!({"a": {"$in": [1, call("arr")]}})),
    ];
    for (name, v) in cases {
        assert_eq!(functions_of(v.clone()), [name], "{v}");
        assert_eq!(ok(v.clone()).dependency(), Dependency::Host, "{v}");
    }
    // Function arguments holding function calls: both names, outer first.
    let nested = json!({"%%true": {"%function": {"name": "outer",
        "arguments": [{"%function": {"name": "inner", "arguments": []}}]}}});
    assert_eq!(functions_of(nested), ["outer", "inner"]);
    // Without a call, an `$elemMatch` query stays document-dependent.
    let plain = ok(json!({"tags": {"$elemMatch": {"owner": "%%user.id"}}}));
    assert_eq!(plain.dependency(), Dependency::Document);
    assert!(functions_of(json!({"tags": {"$elemMatch": {"owner": 1}}})).is_empty());
}

/// Issue 11: operands MongoDB accepts in Extended JSON (`$mod`, `$type`, `$size`) are read as
/// the values they stand for.
#[test]
fn extended_json_operands_are_values() {
    assert_eq!(
        ops_of(json!({"$mod": [{"$numberLong": "2"}, {"$numberDecimal": "1"}]})),
        vec![Op::Mod {
            divisor: 2,
            remainder: 1
        }]
    );
    assert_eq!(
        ops_of(json!({"$type": {"$numberLong": "2"}})),
        vec![Op::Type(vec![TypeSpec::Exact(ElementType::String)])]
    );
    assert_eq!(
        ops_of(json!({"$size": {"$numberLong": "3"}})),
        vec![Op::Size(lit(Bson::Int64(3)))]
    );
}

/// Issue 11: `$comment` annotates and selects nothing; the bitwise operators are read with
/// their three operand forms, positions sorted and deduplicated.
#[test]
fn comment_and_bitwise_operators() {
    assert_eq!(
        ok(json!({"$comment": "why", "a": 1})),
        Expr::All(vec![Expr::always(), ok(json!({"a": 1}))])
    );
    assert_eq!(
        ops_of(json!({"$bitsAllSet": 5})),
        vec![Op::Bits {
            test: BitTest::AllSet,
            positions: vec![0, 2]
        }]
    );
    assert_eq!(
        ops_of(json!({"$bitsAnyClear": [3, 1, 3]})),
        vec![Op::Bits {
            test: BitTest::AnyClear,
            positions: vec![1, 3]
        }]
    );
    assert_eq!(
        ops_of(json!({"$bitsAllClear": {"$binary": {"base64": "AQI=", "subType": "00"}}})),
        vec![Op::Bits {
            test: BitTest::AllClear,
            positions: vec![0, 9]
        }]
    );
    for bad in [json!(-1), json!(1.5), json!([-1]), json!("x"), json!([1.5])] {
        let e = one_err(json!({"a": {"$bitsAnySet": bad}}));
        assert_eq!(e.code, "invalid-expression", "{bad}");
    }
}

/// Issue 11: `$all` of `$elemMatch` conditions is a conjunction of them; MongoDB refuses a
/// list mixing conditions and values, and operator objects inside `$in`/`$nin`.
#[test]
fn all_with_elem_match_and_refused_members() {
    let ops = ops_of(json!({"$all": [{"$elemMatch": {"x": 1}}, {"$elemMatch": {"$gt": 2}}]}));
    let [Op::All(preds)] = ops.as_slice() else {
        panic!("{ops:?}");
    };
    assert_eq!(preds.len(), 2);
    assert!(
        preds
            .iter()
            .all(|p| matches!(p, Predicate::Ops(o) if matches!(o.as_slice(), [Op::ElemMatch(_)])))
    );
    for bad in [
        json!({"a": {"$all": [1, {"$elemMatch": {"x": 3}}]}}),
        json!({"a": {"$all": [{"$elemMatch": {"x": 3}}, 1]}}),
        json!({"a": {"$in": [{"$elemMatch": {"b": 1}}]}}),
        json!({"a": {"$nin": [1, {"$gt": 1}]}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-expression", "{bad}");
    }
}

/// MongoDB refuses `undefined` as a query value (M6): as a match, a comparison's operand or a
/// member of `$in`/`$nin`; inside a document value it is a value like any other.
#[test]
fn undefined_is_refused_as_a_query_value() {
    for bad in [
        json!({"a": {"$undefined": true}}),
        json!({"a": {"$eq": {"$undefined": true}}}),
        json!({"a": {"$gt": {"$undefined": true}}}),
        json!({"a": {"$in": [1, {"$undefined": true}]}}),
    ] {
        assert_eq!(one_err(bad.clone()).code, "invalid-expression", "{bad}");
    }
    assert_eq!(
        predicate_of(json!({"k": {"$undefined": true}})),
        Predicate::Matches(lit(doc! {"k": Bson::Undefined}))
    );
}
