//! Reference evaluation of expressions (src/value/eval.rs), on hand-built ASTs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use crate::context::{MockFunctions, RequestContext};
use crate::expr::{
    CmpOp, ElemMatch, Expansion, Expr, Op, Operand, Predicate, RegexSpec, Root, TypeSpec,
};
use crate::value::ejson::bson_from_json;
use crate::value::eval::{Bindings, EvalError, Semantics, eval_expr, eval_expr_with, eval_operand};
use bson::{Bson, Document, doc, oid::ObjectId, spec::BinarySubtype, spec::ElementType};
use serde_json::json;

// ---------- AST builders ----------

fn x(root: Root, path: &str) -> Expansion {
    Expansion {
        root,
        path: if path.is_empty() {
            vec![]
        } else {
            path.split('.').map(String::from).collect()
        },
        implicit: false,
    }
}
fn field(path: &str) -> Expansion {
    Expansion {
        implicit: true,
        ..x(Root::Root, path)
    }
}
fn user(path: &str) -> Expansion {
    x(Root::User, path)
}
fn lit(v: serde_json::Value) -> Operand {
    Operand::Literal(bson_from_json(&v).unwrap())
}
fn ex(e: Expansion) -> Operand {
    Operand::Expansion(e)
}
fn is(subject: Expansion, operand: Operand) -> Expr {
    Expr::Test {
        subject,
        predicate: Predicate::Matches(operand),
    }
}
fn ops(subject: Expansion, ops: Vec<Op>) -> Expr {
    Expr::Test {
        subject,
        predicate: Predicate::Ops(ops),
    }
}
fn cmp(op: CmpOp, v: serde_json::Value) -> Op {
    Op::Cmp(op, lit(v))
}
fn regex(pattern: &str, options: &str) -> Op {
    Op::Regex(Box::new(RegexSpec {
        pattern: pattern.into(),
        options: options.into(),
        regex: crate::value::compare::compile_regex(pattern, options).unwrap(),
    }))
}
fn call(name: &str, arguments: Vec<Operand>) -> Operand {
    Operand::Function {
        name: name.into(),
        arguments,
    }
}
fn d(v: serde_json::Value) -> Document {
    crate::value::ejson::document_from_json(&v).unwrap()
}

fn alice() -> RequestContext {
    RequestContext::for_user(d(json!({
        "id": "5f4863e4d49bd2191ff1e623",
        "type": "normal",
        "data": {"email": "alice@example.com"},
        "custom_data": {"manages": ["bob@example.com", "carol@example.com"], "team": "red", "level": 3, "nothing": null},
        "identities": [{"id": "i1", "provider_type": "local-userpass"}],
    })))
}

/// Evaluates `e` with `%%root` = `root` under Alice's request.
fn on(root: serde_json::Value, e: &Expr) -> bool {
    on_with(&alice(), root, e).unwrap()
}
fn on_with(req: &RequestContext, root: serde_json::Value, e: &Expr) -> Result<bool, EvalError> {
    let doc = d(root);
    eval_expr(
        e,
        &Bindings {
            root: Some(&doc),
            prev_root: Some(&doc),
            ..Bindings::request_only(req)
        },
    )
}
fn query_on(root: serde_json::Value, e: &Expr) -> bool {
    let doc = d(root);
    let req = RequestContext::default();
    eval_expr_with(e, &Bindings::document(&req, &doc), Semantics::Query).unwrap()
}

// ---------- roots and literals ----------

#[test]
fn booleans_and_logic() {
    assert!(on(json!({}), &Expr::Bool(true)));
    assert!(!on(json!({}), &Expr::Bool(false)));
    assert!(on(json!({}), &Expr::always()));
    assert!(!on(json!({}), &Expr::Any(vec![])));
    assert!(on(json!({}), &Expr::None(vec![])));
    assert!(on(
        json!({}),
        &Expr::Any(vec![Expr::Bool(false), Expr::Bool(true)])
    ));
    assert!(!on(
        json!({}),
        &Expr::All(vec![Expr::Bool(true), Expr::Bool(false)])
    ));
    assert!(!on(
        json!({}),
        &Expr::None(vec![Expr::Bool(false), Expr::Bool(true)])
    ));
    assert!(on(json!({}), &Expr::Not(Box::new(Expr::Bool(false)))));
}

#[test]
fn expansion_roots() {
    let req = {
        let mut ctx = alice();
        ctx.values = Bson::Document(doc! {"admins": ["a"], "limit": 5});
        ctx.environment = Bson::Document(doc! {"tag": "production", "values": {"x": 1}});
        ctx.request = Bson::Document(doc! {"remoteIPAddress": "10.0.0.1"});
        ctx.args = Some(Bson::Document(doc! {"url": {"host": "example.com"}}));
        ctx.partition = Some(Bson::String("p1".into()));
        ctx
    };
    let t = |e: Expr| on_with(&req, json!({"owner": "5f4863e4d49bd2191ff1e623"}), &e).unwrap();
    assert!(t(is(x(Root::True, ""), lit(json!(true)))));
    assert!(t(is(x(Root::False, ""), lit(json!(false)))));
    assert!(t(is(user("id"), lit(json!("5f4863e4d49bd2191ff1e623")))));
    assert!(t(is(x(Root::Values, "limit"), lit(json!(5)))));
    assert!(t(is(x(Root::Environment, "tag"), lit(json!("production")))));
    assert!(t(is(x(Root::Environment, "values.x"), lit(json!(1)))));
    assert!(t(is(
        x(Root::Request, "remoteIPAddress"),
        lit(json!("10.0.0.1"))
    )));
    assert!(t(is(x(Root::Args, "url.host"), lit(json!("example.com")))));
    assert!(t(is(x(Root::Partition, ""), lit(json!("p1")))));
    assert!(t(is(field("owner"), ex(user("id")))));
    assert!(t(is(x(Root::Root, "owner"), ex(user("id")))));
    assert!(t(is(x(Root::PrevRoot, "owner"), ex(user("id")))));
    assert!(t(is(
        x(Root::Root, ""),
        lit(json!({"owner": "5f4863e4d49bd2191ff1e623"}))
    )));
}

#[test]
fn this_and_prev_bindings() {
    let req = alice();
    let this = Bson::Int32(5);
    let b = Bindings {
        this: Some(&this),
        prev: None,
        ..Bindings::request_only(&req)
    };
    assert!(eval_expr(&is(x(Root::This, ""), lit(json!(5))), &b).unwrap());
    assert!(
        eval_expr(
            &ops(x(Root::Prev, ""), vec![Op::Exists(lit(json!(false)))]),
            &b
        )
        .unwrap()
    );
    assert!(!eval_expr(&is(x(Root::Prev, ""), lit(json!(5))), &b).unwrap());
    assert!(
        eval_expr(
            &ops(x(Root::PrevRoot, ""), vec![Op::Exists(lit(json!(false)))]),
            &b
        )
        .unwrap(),
        "no prevRoot on insert"
    );
}

#[test]
fn missing_is_not_null_and_never_equals_a_literal() {
    let no_custom = RequestContext::for_user(doc! {"id": "u1"});
    let admin = is(user("custom_data.isGlobalAdmin"), lit(json!(true)));
    assert!(!on_with(&no_custom, json!({}), &admin).unwrap());
    assert!(
        !on_with(
            &RequestContext::default(),
            json!({}),
            &is(user("id"), lit(json!("u1")))
        )
        .unwrap(),
        "no user"
    );
    // A missing operand matches nothing — not even a missing subject.
    assert!(!on(
        json!({}),
        &is(field("owner"), ex(user("custom_data.nope")))
    ));
    assert!(!on(
        json!({"owner": null}),
        &is(field("owner"), ex(user("custom_data.nope")))
    ));
    // A null operand that an expansion substituted (a present null) matches a present null but
    // not a missing subject: only a literal null does (U22; issue 9, finding 7).
    assert!(!on(
        json!({}),
        &is(field("owner"), ex(user("custom_data.nothing")))
    ));
    assert!(on(
        json!({"owner": null}),
        &is(field("owner"), ex(user("custom_data.nothing")))
    ));
    assert!(on(json!({}), &is(field("owner"), lit(json!(null)))));
}

#[test]
fn null_matches_null_missing_and_arrays_with_null() {
    let e = is(field("a"), lit(json!(null)));
    assert!(on(json!({"a": null}), &e));
    assert!(on(json!({}), &e));
    assert!(on(json!({"a": [1, null]}), &e));
    assert!(!on(json!({"a": [1]}), &e));
    assert!(!on(json!({"a": 0}), &e));
    assert!(!on(json!({"a": false}), &e));
    // MongoDB: a document in the traversed array lacking the key makes `a.b` match null.
    assert!(on(
        json!({"a": [{"b": 1}, {"c": 1}]}),
        &is(field("a.b"), lit(json!(null)))
    ));
    assert!(!on(
        json!({"a": [{"b": 1}]}),
        &is(field("a.b"), lit(json!(null)))
    ));
    // $ne null: present and not null.
    let ne = ops(field("a"), vec![cmp(CmpOp::Ne, json!(null))]);
    assert!(on(json!({"a": 1}), &ne));
    assert!(!on(json!({}), &ne));
    assert!(!on(json!({"a": null}), &ne));
}

#[test]
fn numbers_match_across_types() {
    let e = is(field("n"), lit(json!(1)));
    assert!(on(json!({"n": 1.0}), &e));
    assert!(on(json!({"n": {"$numberLong": "1"}}), &e));
    assert!(on(json!({"n": {"$numberDecimal": "1.000"}}), &e));
    assert!(!on(json!({"n": "1"}), &e));
    assert!(!on(json!({"n": true}), &e));
}

#[test]
fn object_ids_never_equal_their_hex_string() {
    let id = "5f4863e4d49bd2191ff1e623";
    assert!(!on(
        json!({"owner": {"$oid": id}}),
        &is(field("owner"), ex(user("id")))
    ));
    assert!(on(
        json!({"owner": {"$oid": id}}),
        &is(
            field("owner"),
            Operand::StringToOid(Box::new(ex(user("id"))))
        )
    ));
    assert!(on(
        json!({"owner": id}),
        &is(
            field("owner"),
            Operand::OidToString(Box::new(lit(json!({"$oid": id}))))
        )
    ));
}

#[test]
fn array_subject_matches_any_element_or_whole() {
    let e = is(field("collaborators"), ex(user("id")));
    assert!(on(
        json!({"collaborators": ["x", "5f4863e4d49bd2191ff1e623"]}),
        &e
    ));
    assert!(!on(json!({"collaborators": ["x"]}), &e));
    assert!(!on(json!({"collaborators": []}), &e));
    let whole = is(field("tags"), lit(json!(["a", "b"])));
    assert!(on(json!({"tags": ["a", "b"]}), &whole));
    assert!(
        !on(json!({"tags": ["b", "a"]}), &whole),
        "array equality is ordered"
    );
    assert!(
        on(json!({"tags": [["a", "b"], "c"]}), &whole),
        "element equal to the operand array"
    );
    // Request headers are arrays of strings.
    let req = {
        let mut ctx = alice();
        ctx.request = Bson::Document(doc! {"requestHeaders": {"X-Secret-Key": ["my-secret"]}});
        ctx
    };
    let h = is(
        x(Root::Request, "requestHeaders.x-secret-key"),
        lit(json!("my-secret")),
    );
    assert!(on_with(&req, json!({}), &h).unwrap());
}

#[test]
fn u20_scalar_subject_matches_array_operand_containing_it() {
    let manager = is(field("email"), ex(user("custom_data.manages")));
    assert!(on(json!({"email": "bob@example.com"}), &manager));
    assert!(!on(json!({"email": "dave@example.com"}), &manager));
    assert!(!on(json!({}), &manager), "missing subject is not a member");
    // Plain MongoDB (queries) does not widen.
    assert!(!query_on(
        json!({"email": "bob@example.com"}),
        &is(field("email"), lit(json!(["bob@example.com"])))
    ));
    assert!(query_on(
        json!({"email": ["bob@example.com"]}),
        &is(field("email"), lit(json!(["bob@example.com"])))
    ));
    // $eq never widens.
    assert!(!on(
        json!({"email": "bob@example.com"}),
        &ops(
            field("email"),
            vec![Op::Cmp(CmpOp::Eq, ex(user("custom_data.manages")))]
        )
    ));
    // A missing operand array: nothing.
    assert!(!on(
        json!({"email": "bob@example.com"}),
        &is(field("email"), ex(user("custom_data.nope")))
    ));
}

#[test]
fn u21_document_operand_is_exact_equality() {
    let e = is(field("addr"), lit(json!({"city": "Paris", "zip": 75000})));
    assert!(on(json!({"addr": {"city": "Paris", "zip": 75000.0}}), &e));
    assert!(
        !on(json!({"addr": {"zip": 75000, "city": "Paris"}}), &e),
        "order matters"
    );
    assert!(!on(json!({"addr": {"city": "Paris"}}), &e));
    assert!(!on(
        json!({"addr": {"city": "Paris", "zip": 75000, "x": 1}}),
        &e
    ));
    assert!(
        on(json!({"addr": [{"city": "Paris", "zip": 75000}]}), &e),
        "array element"
    );
}

#[test]
fn operand_documents_and_arrays_substitute_expansions() {
    let e = is(
        field("who"),
        Operand::Document(vec![
            ("id".into(), ex(user("id"))),
            ("t".into(), lit(json!("x"))),
        ]),
    );
    assert!(on(
        json!({"who": {"id": "5f4863e4d49bd2191ff1e623", "t": "x"}}),
        &e
    ));
    let hole = is(
        field("who"),
        Operand::Document(vec![
            ("id".into(), ex(user("nope"))),
            ("t".into(), lit(json!("x"))),
        ]),
    );
    assert!(
        !on(json!({"who": {"t": "x"}}), &hole),
        "a hole makes the operand missing"
    );
    let req = alice();
    let b = Bindings::request_only(&req);
    assert_eq!(
        eval_operand(
            &Operand::Array(vec![ex(user("custom_data.team")), lit(json!(1))]),
            &b
        )
        .unwrap(),
        Some(Bson::Array(vec![
            Bson::String("red".into()),
            Bson::Int32(1)
        ]))
    );
    assert_eq!(
        eval_operand(&Operand::Array(vec![ex(user("nope")), lit(json!(1))]), &b).unwrap(),
        None
    );
    assert_eq!(eval_operand(&ex(user("nope")), &b).unwrap(), None);
    assert_eq!(
        eval_operand(&ex(user("custom_data.nothing")), &b).unwrap(),
        Some(Bson::Null)
    );
}

// ---------- operators ----------

#[test]
fn eq_and_ne() {
    let eq = ops(field("a"), vec![cmp(CmpOp::Eq, json!(2))]);
    assert!(on(json!({"a": 2.0}), &eq));
    assert!(on(json!({"a": [1, 2]}), &eq));
    assert!(!on(json!({}), &eq));
    let ne = ops(field("a"), vec![cmp(CmpOp::Ne, json!(2))]);
    assert!(on(json!({}), &ne), "$ne is true when missing");
    assert!(on(json!({"a": "2"}), &ne));
    assert!(!on(json!({"a": [1, 2]}), &ne));
    let ne_missing = ops(field("a"), vec![Op::Cmp(CmpOp::Ne, ex(user("nope")))]);
    // A missing operand decides nothing: `$ne` is false too (issue 9, finding 7).
    assert!(!on(json!({"a": 1}), &ne_missing));
    let eq_missing = ops(field("a"), vec![Op::Cmp(CmpOp::Eq, ex(user("nope")))]);
    assert!(!on(json!({}), &eq_missing));
    // $eq with a regex compares regexes, not strings.
    let eq_re = ops(
        field("a"),
        vec![cmp(
            CmpOp::Eq,
            json!({"$regularExpression": {"pattern": "^a", "options": ""}}),
        )],
    );
    assert!(!on(json!({"a": "abc"}), &eq_re));
    assert!(on(
        json!({"a": {"$regularExpression": {"pattern": "^a", "options": ""}}}),
        &eq_re
    ));
}

#[test]
fn ordering_operators_bracket_types() {
    let gt0 = ops(field("n"), vec![cmp(CmpOp::Gt, json!(0))]);
    assert!(on(json!({"n": 1}), &gt0));
    assert!(on(json!({"n": {"$numberDecimal": "0.0001"}}), &gt0));
    assert!(!on(json!({"n": "100"}), &gt0), "type bracketing");
    assert!(!on(json!({"n": true}), &gt0));
    assert!(!on(json!({"n": null}), &gt0));
    assert!(!on(json!({}), &gt0), "missing");
    assert!(on(json!({"n": [-1, 5]}), &gt0), "any element");
    assert!(!on(json!({"n": [-1, "9"]}), &gt0));
    let range = ops(
        field("n"),
        vec![cmp(CmpOp::Gte, json!(1)), cmp(CmpOp::Lt, json!(3))],
    );
    assert!(on(json!({"n": 1}), &range));
    assert!(on(json!({"n": 2.9}), &range));
    assert!(!on(json!({"n": 3}), &range));
    assert!(
        on(json!({"n": [0, 5, 2]}), &range),
        "the two bounds may hold on different elements (MongoDB)"
    );
    let lte = ops(field("s"), vec![cmp(CmpOp::Lte, json!("b"))]);
    assert!(on(json!({"s": "abc"}), &lte));
    assert!(!on(json!({"s": "c"}), &lte));
    let date = ops(
        field("d"),
        vec![cmp(CmpOp::Lt, json!({"$date": "2021-01-01T00:00:00Z"}))],
    );
    assert!(on(json!({"d": {"$date": "2020-01-01T00:00:00Z"}}), &date));
    assert!(!on(json!({"d": "2020-01-01"}), &date));
    let oid = ops(
        field("o"),
        vec![cmp(CmpOp::Gt, json!({"$oid": "000000000000000000000001"}))],
    );
    assert!(on(json!({"o": {"$oid": "000000000000000000000002"}}), &oid));
    let missing_operand = ops(field("n"), vec![Op::Cmp(CmpOp::Gt, ex(user("nope")))]);
    assert!(!on(json!({"n": 1}), &missing_operand));
}

#[test]
fn gte_null_matches_null_and_missing() {
    let gte = ops(field("a"), vec![cmp(CmpOp::Gte, json!(null))]);
    assert!(on(json!({"a": null}), &gte));
    assert!(on(json!({}), &gte));
    assert!(!on(json!({"a": 1}), &gte));
    let gt = ops(field("a"), vec![cmp(CmpOp::Gt, json!(null))]);
    assert!(!on(json!({}), &gt));
    assert!(!on(json!({"a": null}), &gt));
}

#[test]
fn nan_comparisons() {
    let nan = json!({"$numberDouble": "NaN"});
    assert!(on(json!({"a": nan}), &is(field("a"), lit(nan.clone()))));
    assert!(on(
        json!({"a": nan}),
        &ops(field("a"), vec![cmp(CmpOp::Gte, nan.clone())])
    ));
    assert!(!on(
        json!({"a": nan}),
        &ops(field("a"), vec![cmp(CmpOp::Gt, nan.clone())])
    ));
    assert!(!on(
        json!({"a": nan}),
        &ops(field("a"), vec![cmp(CmpOp::Lt, json!(0))])
    ));
    assert!(!on(
        json!({"a": 1}),
        &ops(field("a"), vec![cmp(CmpOp::Gt, nan.clone())])
    ));
    assert!(!on(
        json!({"a": 1}),
        &ops(field("a"), vec![cmp(CmpOp::Lte, nan)])
    ));
}

#[test]
fn in_and_nin() {
    let e = ops(field("s"), vec![Op::In(lit(json!(["a", 2, null])))]);
    assert!(on(json!({"s": "a"}), &e));
    assert!(on(json!({"s": 2.0}), &e));
    assert!(on(json!({"s": ["z", "a"]}), &e));
    assert!(on(json!({}), &e), "null in the list matches missing");
    assert!(!on(json!({"s": "b"}), &e));
    let n = ops(field("s"), vec![Op::Nin(lit(json!(["a", "b"])))]);
    assert!(on(json!({}), &n));
    assert!(on(json!({"s": "c"}), &n));
    assert!(!on(json!({"s": ["c", "a"]}), &n));
    // Expansion operands.
    let sub = ops(
        field("owner"),
        vec![Op::In(ex(user("custom_data.manages")))],
    );
    assert!(on(json!({"owner": "carol@example.com"}), &sub));
    // A missing operand: $in and $nin both false (issue 9, finding 7).
    assert!(!on(
        json!({"owner": "x"}),
        &ops(field("owner"), vec![Op::In(ex(user("custom_data.nope")))])
    ));
    assert!(!on(
        json!({"owner": "x"}),
        &ops(field("owner"), vec![Op::Nin(ex(user("custom_data.nope")))])
    ));
    // A non-array operand is an error.
    let bad = ops(field("owner"), vec![Op::In(ex(user("custom_data.team")))]);
    assert!(matches!(
        on_with(&alice(), json!({"owner": "x"}), &bad),
        Err(EvalError::NotAnArray {
            operator: "$in",
            ..
        })
    ));
    let bad = ops(field("owner"), vec![Op::Nin(lit(json!(1)))]);
    assert!(matches!(
        on_with(&alice(), json!({}), &bad),
        Err(EvalError::NotAnArray {
            operator: "$nin",
            ..
        })
    ));
    // Regex elements match strings.
    let re = ops(
        field("s"),
        vec![Op::In(lit(
            json!([{"$regularExpression": {"pattern": "^ab", "options": "i"}}]),
        ))],
    );
    assert!(on(json!({"s": "ABc"}), &re));
    assert!(!on(json!({"s": "cab"}), &re));
    // Empty list.
    assert!(!on(
        json!({"s": "a"}),
        &ops(field("s"), vec![Op::In(lit(json!([])))])
    ));
}

#[test]
fn exists_uses_truthiness() {
    let t = |operand: Operand, doc: serde_json::Value| {
        on(doc, &ops(field("a"), vec![Op::Exists(operand)]))
    };
    assert!(t(lit(json!(true)), json!({"a": null})));
    assert!(!t(lit(json!(true)), json!({})));
    assert!(t(lit(json!(false)), json!({})));
    assert!(!t(lit(json!(false)), json!({"a": 1})));
    assert!(t(lit(json!(1)), json!({"a": 1})));
    assert!(t(lit(json!(0)), json!({})));
    assert!(t(ex(x(Root::True, "")), json!({"a": 1})));
    assert!(t(ex(x(Root::False, "")), json!({})));
    // A missing operand decides nothing (issue 9, finding 7).
    assert!(
        !t(ex(user("nope")), json!({})),
        "a missing operand is false"
    );
    assert!(
        !t(ex(user("nope")), json!({"a": 1})),
        "a missing operand is false"
    );
    assert!(t(lit(json!(true)), json!({"a": [{"b": 1}]})));
    let nested =
        |doc: serde_json::Value| on(doc, &ops(field("a.b"), vec![Op::Exists(lit(json!(true)))]));
    assert!(nested(json!({"a": [{"c": 1}, {"b": 2}]})));
    assert!(!nested(json!({"a": [{"c": 1}]})));
    assert!(!nested(json!({"a": [1, 2]})));
}

#[test]
fn all_size_elem_match() {
    let all = ops(field("t"), vec![Op::AllOf(lit(json!(["a", "b"])))]);
    assert!(on(json!({"t": ["b", "c", "a"]}), &all));
    assert!(!on(json!({"t": ["a"]}), &all));
    assert!(!on(json!({"t": "a"}), &all));
    assert!(
        !on(
            json!({"t": []}),
            &ops(field("t"), vec![Op::AllOf(lit(json!([])))])
        ),
        "$all: [] matches nothing"
    );
    assert!(on(
        json!({"t": "a"}),
        &ops(field("t"), vec![Op::AllOf(lit(json!(["a"])))])
    ));
    assert!(matches!(
        on_with(
            &alice(),
            json!({"t": []}),
            &ops(field("t"), vec![Op::AllOf(lit(json!("a")))])
        ),
        Err(EvalError::NotAnArray {
            operator: "$all",
            ..
        })
    ));

    let size = |n: serde_json::Value| ops(field("t"), vec![Op::Size(lit(n))]);
    assert!(on(json!({"t": [1, 2]}), &size(json!(2))));
    assert!(on(json!({"t": [1, 2]}), &size(json!(2.0))));
    assert!(!on(json!({"t": [1, 2]}), &size(json!(2.5))));
    assert!(!on(json!({"t": [1, 2]}), &size(json!(-1))));
    assert!(on(json!({"t": []}), &size(json!(0))));
    assert!(!on(json!({"t": "ab"}), &size(json!(2))));
    assert!(!on(json!({}), &size(json!(0))));
    assert!(matches!(
        on_with(&alice(), json!({"t": []}), &size(json!("2"))),
        Err(EvalError::BadArgument {
            operator: "$size",
            ..
        })
    ));

    let em_ops = ops(
        field("n"),
        vec![Op::ElemMatch(Box::new(ElemMatch::Ops(vec![
            cmp(CmpOp::Gt, json!(1)),
            cmp(CmpOp::Lt, json!(3)),
        ])))],
    );
    assert!(on(json!({"n": [0, 2, 5]}), &em_ops));
    assert!(
        !on(json!({"n": [0, 5]}), &em_ops),
        "one element must satisfy both"
    );
    assert!(!on(json!({"n": 2}), &em_ops), "not an array");
    let em_q = ops(
        field("items"),
        vec![Op::ElemMatch(Box::new(ElemMatch::Query(Expr::All(vec![
            is(field("sku"), lit(json!("x"))),
            ops(field("qty"), vec![cmp(CmpOp::Gte, json!(2))]),
        ]))))],
    );
    assert!(on(
        json!({"items": [{"sku": "x", "qty": 1}, {"sku": "x", "qty": 3}]}),
        &em_q
    ));
    assert!(!on(
        json!({"items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 3}]}),
        &em_q
    ));
    assert!(!on(json!({"items": ["x", 3]}), &em_q));
    // The element query still sees the request context.
    let em_user = ops(
        field("items"),
        vec![Op::ElemMatch(Box::new(ElemMatch::Query(is(
            field("owner"),
            ex(user("id")),
        ))))],
    );
    assert!(on(
        json!({"items": [{"owner": "5f4863e4d49bd2191ff1e623"}]}),
        &em_user
    ));
}

#[test]
fn type_regex_mod() {
    let ty = |specs: Vec<TypeSpec>| ops(field("v"), vec![Op::Type(specs)]);
    assert!(on(
        json!({"v": "s"}),
        &ty(vec![TypeSpec::Exact(ElementType::String)])
    ));
    assert!(on(
        json!({"v": 1}),
        &ty(vec![TypeSpec::Exact(ElementType::Int32)])
    ));
    assert!(!on(
        json!({"v": 1}),
        &ty(vec![TypeSpec::Exact(ElementType::Int64)])
    ));
    assert!(on(
        json!({"v": {"$numberDecimal": "1"}}),
        &ty(vec![TypeSpec::Number])
    ));
    assert!(
        on(
            json!({"v": [1, "s"]}),
            &ty(vec![TypeSpec::Exact(ElementType::String)])
        ),
        "any element"
    );
    assert!(
        on(
            json!({"v": []}),
            &ty(vec![TypeSpec::Exact(ElementType::Array)])
        ),
        "the array itself"
    );
    assert!(!on(
        json!({}),
        &ty(vec![TypeSpec::Exact(ElementType::Null)])
    ));
    assert!(on(
        json!({"v": null}),
        &ty(vec![TypeSpec::Exact(ElementType::Null)])
    ));
    assert!(on(
        json!({"v": true}),
        &ty(vec![
            TypeSpec::Exact(ElementType::String),
            TypeSpec::Exact(ElementType::Boolean)
        ])
    ));

    let re = ops(field("v"), vec![regex("^a.c$", "i")]);
    assert!(on(json!({"v": "AbC"}), &re));
    assert!(on(json!({"v": ["x", "abc"]}), &re));
    assert!(!on(json!({"v": 1}), &re));
    assert!(!on(json!({}), &re));
    // A regex operand in a plain match matches strings too.
    assert!(on(
        json!({"v": "abc"}),
        &is(
            field("v"),
            lit(json!({"$regularExpression": {"pattern": "b", "options": ""}}))
        )
    ));

    let m = ops(
        field("v"),
        vec![Op::Mod {
            divisor: 4,
            remainder: 1,
        }],
    );
    assert!(on(json!({"v": 5}), &m));
    assert!(on(json!({"v": 5.9}), &m), "truncated");
    assert!(on(
        json!({"v": -7}),
        &ops(
            field("v"),
            vec![Op::Mod {
                divisor: 4,
                remainder: -3
            }]
        )
    ));
    assert!(!on(json!({"v": 6}), &m));
    assert!(!on(json!({"v": "5"}), &m));
    assert!(on(json!({"v": [2, 9]}), &m));
    assert!(matches!(
        on_with(
            &alice(),
            json!({"v": 1}),
            &ops(
                field("v"),
                vec![Op::Mod {
                    divisor: 0,
                    remainder: 0
                }]
            )
        ),
        Err(EvalError::BadArgument { .. })
    ));
    assert!(
        on(
            json!({"v": {"$numberLong": "-9223372036854775808"}}),
            &ops(
                field("v"),
                vec![Op::Mod {
                    divisor: -1,
                    remainder: 0
                }]
            )
        ),
        "no overflow"
    );
}

#[test]
fn operator_level_logic_and_not() {
    let and = ops(
        field("n"),
        vec![Op::All(vec![
            Predicate::Ops(vec![cmp(CmpOp::Gt, json!(0))]),
            Predicate::Ops(vec![cmp(CmpOp::Lte, json!(42))]),
        ])],
    );
    assert!(on(json!({"n": 42}), &and));
    assert!(!on(json!({"n": 43}), &and));
    let or = ops(
        field("n"),
        vec![Op::Any(vec![
            Predicate::Matches(lit(json!(1))),
            Predicate::Ops(vec![cmp(CmpOp::Gt, json!(10))]),
        ])],
    );
    assert!(on(json!({"n": 1}), &or));
    assert!(on(json!({"n": 11}), &or));
    assert!(!on(json!({"n": 5}), &or));
    let nor = ops(
        field("n"),
        vec![Op::None(vec![Predicate::Matches(lit(json!(1)))])],
    );
    assert!(on(json!({"n": 2}), &nor));
    assert!(!on(json!({"n": 1}), &nor));
    let not = ops(
        field("n"),
        vec![Op::Not(Box::new(Predicate::Ops(vec![cmp(
            CmpOp::Gt,
            json!(5),
        )])))],
    );
    assert!(on(json!({"n": 1}), &not));
    assert!(on(json!({}), &not), "$not is true for missing (MongoDB)");
    assert!(!on(json!({"n": 6}), &not));
}

// ---------- value operators ----------

#[test]
fn oid_and_uuid_conversions() {
    let req = alice();
    let b = Bindings::request_only(&req);
    let v = |o: Operand| eval_operand(&o, &b);
    let hex = "5f4863e4d49bd2191ff1e623";
    let oid = ObjectId::parse_str(hex).unwrap();
    assert_eq!(
        v(Operand::StringToOid(Box::new(lit(json!(hex))))).unwrap(),
        Some(Bson::ObjectId(oid))
    );
    assert_eq!(
        v(Operand::StringToOid(Box::new(lit(json!({"$oid": hex}))))).unwrap(),
        Some(Bson::ObjectId(oid)),
        "D3"
    );
    assert_eq!(
        v(Operand::StringToOid(Box::new(lit(json!("abcdefghijkl"))))).unwrap(),
        Some(Bson::ObjectId(ObjectId::from_bytes(*b"abcdefghijkl"))),
        "12-byte string"
    );
    assert!(matches!(
        v(Operand::StringToOid(Box::new(lit(json!("xyz"))))),
        Err(EvalError::BadArgument {
            operator: "%stringToOid",
            ..
        })
    ));
    assert!(matches!(
        v(Operand::StringToOid(Box::new(lit(json!(5))))),
        Err(EvalError::BadArgument { .. })
    ));
    assert_eq!(
        v(Operand::StringToOid(Box::new(ex(user("nope"))))).unwrap(),
        None,
        "missing stays missing"
    );
    assert_eq!(
        v(Operand::OidToString(Box::new(lit(json!({"$oid": hex}))))).unwrap(),
        Some(Bson::String(hex.into()))
    );
    assert_eq!(
        v(Operand::OidToString(Box::new(lit(json!("already"))))).unwrap(),
        Some(Bson::String("already".into())),
        "D3"
    );
    assert!(matches!(
        v(Operand::OidToString(Box::new(lit(json!(true))))),
        Err(EvalError::BadArgument {
            operator: "%oidToString",
            ..
        })
    ));

    let u = "3b241101-e2bb-4255-8caf-4136c566a962";
    let Some(Bson::Binary(bin)) = v(Operand::StringToUuid(Box::new(lit(json!(u))))).unwrap() else {
        panic!("not binary")
    };
    assert_eq!(bin.subtype, BinarySubtype::Uuid);
    assert_eq!(
        bson::Bson::Binary(bin.clone()),
        bson_from_json(&json!({"$uuid": u})).unwrap()
    );
    assert!(
        matches!(
            v(Operand::StringToUuid(Box::new(lit(json!(
                "3b241101e2bb42558caf4136c566a962"
            ))))),
            Err(EvalError::BadArgument { .. })
        ),
        "36 characters"
    );
    assert_eq!(
        v(Operand::UuidToString(Box::new(Operand::Literal(
            Bson::Binary(bin.clone())
        ))))
        .unwrap(),
        Some(Bson::String(u.into()))
    );
    assert_eq!(
        v(Operand::StringToUuid(Box::new(Operand::Literal(
            Bson::Binary(bin)
        ))))
        .unwrap()
        .map(|b| matches!(b, Bson::Binary(_))),
        Some(true)
    );
    assert_eq!(
        v(Operand::UuidToString(Box::new(lit(json!(u))))).unwrap(),
        Some(Bson::String(u.into()))
    );
    assert!(matches!(
        v(Operand::UuidToString(Box::new(lit(
            json!({"$binary": {"base64": "AQI=", "subType": "00"}})
        )))),
        Err(EvalError::BadArgument { .. })
    ));
}

#[test]
fn functions_get_expanded_arguments() {
    let mut mocks = MockFunctions::default();
    mocks.add(
        "hasRole",
        vec![Bson::Document(
            doc! {"userId": "5f4863e4d49bd2191ff1e623", "roleName": "X"},
        )],
        Bson::Boolean(true),
    );
    let req = {
        let mut ctx = alice();
        ctx.functions = Arc::new(mocks);
        ctx
    };
    let e = is(
        x(Root::True, ""),
        call(
            "hasRole",
            vec![Operand::Document(vec![
                ("userId".into(), ex(user("id"))),
                ("roleName".into(), lit(json!("X"))),
            ])],
        ),
    );
    assert!(on_with(&req, json!({}), &e).unwrap());
    let other = is(
        x(Root::True, ""),
        call(
            "hasRole",
            vec![Operand::Document(vec![
                ("userId".into(), ex(user("id"))),
                ("roleName".into(), lit(json!("Y"))),
            ])],
        ),
    );
    assert!(
        matches!(
            on_with(&req, json!({}), &other),
            Err(EvalError::Function { .. })
        ),
        "no result for those args: error"
    );
    let unknown = is(x(Root::True, ""), call("nope", vec![]));
    assert!(
        matches!(on_with(&req, json!({}), &unknown), Err(EvalError::Function { name, .. }) if name == "nope")
    );
    assert!(matches!(
        on_with(&RequestContext::default(), json!({}), &unknown),
        Err(EvalError::Function { .. })
    ));
}

#[test]
fn missing_function_arguments_serialize_like_javascript() {
    let seen: Arc<Mutex<Vec<Vec<Bson>>>> = Arc::default();
    let log = seen.clone();
    let host = move |_: &str, args: &[Bson]| -> Result<Bson, String> {
        log.lock().unwrap().push(args.to_vec());
        Ok(Bson::Boolean(true))
    };
    let req = {
        let mut ctx = alice();
        ctx.functions = Arc::new(host);
        ctx
    };
    let e = is(
        x(Root::True, ""),
        call(
            "f",
            vec![
                ex(user("nope")),
                Operand::Document(vec![
                    ("a".into(), ex(user("nope"))),
                    ("b".into(), lit(json!(1))),
                ]),
                Operand::Array(vec![ex(user("nope")), lit(json!(2))]),
            ],
        ),
    );
    assert!(on_with(&req, json!({}), &e).unwrap());
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![vec![
            Bson::Null,
            Bson::Document(doc! {"b": 1}),
            Bson::Array(vec![Bson::Null, Bson::Int32(2)])
        ]]
    );
}

fn counting_host(count: Arc<AtomicUsize>, result: Result<Bson, String>) -> RequestContext {
    let host = move |_: &str, _: &[Bson]| {
        count.fetch_add(1, AtomicOrdering::SeqCst);
        result.clone()
    };
    {
        let mut ctx = alice();
        ctx.functions = Arc::new(host);
        ctx
    }
}

#[test]
fn logic_short_circuits_before_functions() {
    let n = Arc::new(AtomicUsize::new(0));
    let req = counting_host(n.clone(), Err("boom".into()));
    let f = is(x(Root::True, ""), call("f", vec![]));
    assert!(
        on_with(
            &req,
            json!({}),
            &Expr::Any(vec![Expr::Bool(true), f.clone()])
        )
        .unwrap()
    );
    assert!(
        !on_with(
            &req,
            json!({}),
            &Expr::All(vec![Expr::Bool(false), f.clone()])
        )
        .unwrap()
    );
    assert!(
        !on_with(
            &req,
            json!({}),
            &Expr::None(vec![Expr::Bool(true), f.clone()])
        )
        .unwrap()
    );
    // Operator lists short-circuit too.
    let ops_first_false = ops(
        field("a"),
        vec![
            cmp(CmpOp::Eq, json!(1)),
            Op::Cmp(CmpOp::Eq, call("f", vec![])),
        ],
    );
    assert!(!on_with(&req, json!({"a": 2}), &ops_first_false).unwrap());
    assert_eq!(n.load(AtomicOrdering::SeqCst), 0);
    // Once reached, a failing function denies (error propagates), even under %not / %or.
    assert!(matches!(
        on_with(
            &req,
            json!({}),
            &Expr::Any(vec![Expr::Bool(false), f.clone()])
        ),
        Err(EvalError::Function { .. })
    ));
    assert!(on_with(&req, json!({}), &Expr::Not(Box::new(f))).is_err());
    assert_eq!(n.load(AtomicOrdering::SeqCst), 2);
}

#[test]
fn function_results_compare_with_the_subject() {
    let n = Arc::new(AtomicUsize::new(0));
    let yes = counting_host(n.clone(), Ok(Bson::Boolean(true)));
    assert!(on_with(&yes, json!({}), &is(x(Root::True, ""), call("f", vec![]))).unwrap());
    assert!(!on_with(&yes, json!({}), &is(x(Root::False, ""), call("f", vec![]))).unwrap());
    let list = counting_host(n, Ok(Bson::Array(vec![Bson::String("a".into())])));
    assert!(
        on_with(
            &list,
            json!({"s": "a"}),
            &ops(field("s"), vec![Op::In(call("f", vec![]))])
        )
        .unwrap()
    );
}

// ---------- limits ----------

#[test]
fn deep_expressions_hit_a_limit_not_the_stack() {
    let mut e = Expr::Bool(true);
    for _ in 0..1000 {
        e = Expr::Not(Box::new(e));
    }
    let r = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let req = RequestContext::default();
            let out = eval_expr(&e, &Bindings::request_only(&req));
            // Drop the deep expression iteratively.
            let mut cur = e;
            while let Expr::Not(inner) = cur {
                cur = *inner;
            }
            out
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(r, Err(EvalError::Limit(_))));
}

#[test]
fn deep_documents_compare_as_a_limit() {
    let mut v = Bson::Int32(1);
    for _ in 0..300 {
        v = Bson::Document(doc! {"a": v});
    }
    let doc = doc! {"deep": v.clone()};
    let req = RequestContext::default();
    let e = is(field("deep"), Operand::Literal(v));
    let r = eval_expr(&e, &Bindings::document(&req, &doc));
    assert!(matches!(r, Err(EvalError::Limit(_))), "{r:?}");
    let ne = ops(
        field("deep"),
        vec![Op::Cmp(CmpOp::Ne, Operand::Literal(Bson::Int32(1)))],
    );
    assert!(
        eval_expr(&ne, &Bindings::document(&req, &doc)).unwrap(),
        "different brackets need no recursion"
    );
}

#[test]
fn expressions_just_under_the_limit_fit_a_default_test_stack() {
    // Default test threads have 2 MiB of stack; the deepest expression the limit lets through
    // must evaluate there (debug build frames are the largest).
    let mut p = Predicate::Ops(vec![cmp(CmpOp::Gt, json!(0))]);
    for _ in 0..60 {
        p = Predicate::Ops(vec![Op::Not(Box::new(Predicate::Ops(vec![Op::Not(
            Box::new(p),
        )])))]);
    }
    let deep_ops = Expr::Test {
        subject: field("n"),
        predicate: p,
    };
    assert!(on(json!({"n": 1}), &deep_ops));
    let mut e = is(field("n"), lit(json!(1)));
    for _ in 0..(crate::value::eval::MAX_EVAL_DEPTH - 2) {
        e = Expr::All(vec![e]);
    }
    assert!(on(json!({"n": 1}), &e));
}
