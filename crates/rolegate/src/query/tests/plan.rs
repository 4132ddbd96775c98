//! Filter planning: applied filters, merged query and projection (src/query/plan.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::context::RequestContext;
use crate::error::Place;
use crate::expr::{CmpOp, Expansion, Expr, Op, Operand, Predicate, Root};
use crate::query::RuleFields;
use crate::query::plan::{PlanError, PlanInput, merge_projections, merge_queries};
use crate::rules::{Filter, Rule};
use crate::value::EvalError;
use bson::{Bson, Document, doc};

fn user(path: &str) -> Expansion {
    Expansion {
        root: Root::User,
        path: path.split('.').map(String::from).collect(),
        implicit: false,
    }
}

/// The canonical forms of a plan (spec §4) that these tests check: App Services' merged query
/// and the merged (output) projection. Since issue 9 they are private to the plan and only
/// describe the request; what goes to the database is checked in `tests/security_*.rs`.
#[derive(Debug, PartialEq)]
struct QueryPlan {
    applied: Vec<String>,
    query: Document,
    projection: Document,
}

/// Plans with filters only (no roles).
fn plan(
    filters: &[Filter],
    client_query: Option<&Document>,
    client_projection: Option<&Document>,
    request: &RequestContext,
) -> Result<QueryPlan, PlanError> {
    let input = PlanInput {
        filters,
        fields: &RuleFields::default(),
        max_depth: 100,
    };
    crate::query::plan::plan(input, client_query, client_projection, request).map(|p| QueryPlan {
        query: p.merged_query().clone(),
        projection: p.output_projection().clone(),
        applied: p.applied,
    })
}

fn rule(expr: Expr) -> Rule {
    Rule {
        expr,
        place: Place::default(),
    }
}

fn filter(name: &str, apply_when: Expr, query: Operand, projection: Document) -> Filter {
    Filter {
        name: name.into(),
        apply_when: rule(apply_when),
        query,
        projection,
        place: Place::default(),
    }
}

fn lit_doc(d: Document) -> Operand {
    Operand::Literal(Bson::Document(d))
}

fn alice() -> RequestContext {
    RequestContext::for_user(
        doc! {"id": "5f4863e4d49bd2191ff1e623", "type": "normal", "custom_data": {"isAdmin": true, "team": "red"}},
    )
}

fn owner_only() -> Filter {
    filter(
        "ownerOnly",
        Expr::Test {
            subject: Expansion {
                root: Root::True,
                path: vec![],
                implicit: false,
            },
            predicate: Predicate::Matches(Operand::Literal(Bson::Boolean(true))),
        },
        Operand::Document(vec![("owner_id".into(), Operand::Expansion(user("id")))]),
        doc! {},
    )
}

#[test]
fn conformance_owner_query_merged() {
    let p = plan(
        &[owner_only()],
        Some(&doc! {"status": "open"}),
        None,
        &alice(),
    )
    .unwrap();
    assert_eq!(
        p,
        QueryPlan {
            applied: vec!["ownerOnly".into()],
            query: doc! {"$and": [{"status": "open"}, {"owner_id": "5f4863e4d49bd2191ff1e623"}]},
            projection: doc! {},
        }
    );
}

#[test]
fn conformance_anonymize_votes() {
    let f = filter(
        "AnonymizeVotes",
        Expr::Bool(true),
        lit_doc(doc! {"shareVoteAnonymous": true}),
        doc! {"_id": 0, "age": 1, "vote": 1},
    );
    let p = plan(&[f], Some(&doc! {}), None, &alice()).unwrap();
    assert_eq!(p.applied, vec!["AnonymizeVotes".to_string()]);
    assert_eq!(p.query, doc! {"shareVoteAnonymous": true});
    assert_eq!(p.projection, doc! {"_id": 0, "age": 1, "vote": 1});
}

#[test]
fn conformance_apply_when_false_not_applied() {
    let not_admin = Expr::Test {
        subject: user("custom_data.isAdmin"),
        predicate: Predicate::Ops(vec![Op::Cmp(
            CmpOp::Ne,
            Operand::Literal(Bson::Boolean(true)),
        )]),
    };
    let f = filter(
        "nonAdmins",
        not_admin,
        Operand::Document(vec![("owner_id".into(), Operand::Expansion(user("id")))]),
        doc! {},
    );
    let p = plan(&[f], Some(&doc! {}), None, &alice()).unwrap();
    assert_eq!(
        p,
        QueryPlan {
            applied: vec![],
            query: doc! {},
            projection: doc! {}
        }
    );
}

#[test]
fn query_canonical_forms() {
    assert_eq!(plan(&[], None, None, &alice()).unwrap().query, doc! {});
    assert_eq!(
        plan(&[], Some(&doc! {"a": 1}), None, &alice())
            .unwrap()
            .query,
        doc! {"a": 1}
    );
    let empty = filter("empty", Expr::Bool(true), lit_doc(doc! {}), doc! {});
    let a = filter("a", Expr::Bool(true), lit_doc(doc! {"a": 1}), doc! {});
    let b = filter(
        "b",
        Expr::Bool(true),
        lit_doc(doc! {"b": {"$gt": 2}}),
        doc! {},
    );
    let off = filter("off", Expr::Bool(false), lit_doc(doc! {"c": 1}), doc! {});
    let p = plan(
        &[empty.clone(), a.clone(), off.clone(), b.clone()],
        None,
        None,
        &alice(),
    )
    .unwrap();
    assert_eq!(p.applied, vec!["empty", "a", "b"]);
    assert_eq!(p.query, doc! {"$and": [{"a": 1}, {"b": {"$gt": 2}}]});
    let p = plan(&[empty.clone(), off], Some(&doc! {}), None, &alice()).unwrap();
    assert_eq!(p.query, doc! {}, "empty documents are dropped");
    let p = plan(
        std::slice::from_ref(&a),
        Some(&doc! {"a": 1}),
        None,
        &alice(),
    )
    .unwrap();
    assert_eq!(
        p.query,
        doc! {"$and": [{"a": 1}, {"a": 1}]},
        "no key-level merging"
    );
    assert_eq!(
        merge_queries(vec![doc! {}, doc! {"x": 1}, doc! {}]),
        doc! {"x": 1}
    );
}

#[test]
fn apply_when_errors_fail_the_request() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let host = move |_: &str, _: &[Bson]| -> Result<Bson, String> {
        c.fetch_add(1, Ordering::SeqCst);
        Err("down".into())
    };
    let req = {
        let mut ctx = alice();
        ctx.functions = Arc::new(host);
        ctx
    };
    let failing = filter(
        "viaFunction",
        Expr::Test {
            subject: Expansion {
                root: Root::True,
                path: vec![],
                implicit: false,
            },
            predicate: Predicate::Matches(Operand::Function {
                name: "check".into(),
                arguments: vec![],
            }),
        },
        lit_doc(doc! {"x": 1}),
        doc! {},
    );
    let err = plan(&[owner_only(), failing.clone()], None, None, &req).unwrap_err();
    assert!(
        matches!(&err, PlanError::Eval { filter, error: EvalError::Function { .. } } if filter == "viaFunction"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("filter `viaFunction`: function `check` failed")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn missing_query_expansions_fail_the_request() {
    let f = filter(
        "team",
        Expr::Bool(true),
        Operand::Document(vec![(
            "team".into(),
            Operand::Expansion(user("custom_data.squad")),
        )]),
        doc! {},
    );
    let err = plan(&[f], None, None, &alice()).unwrap_err();
    assert_eq!(
        err,
        PlanError::MissingExpansion {
            filter: "team".into(),
            expansion: "%%user.custom_data.squad".into()
        }
    );
    // Nested holes too.
    let f = filter(
        "nested",
        Expr::Bool(true),
        Operand::Document(vec![(
            "team".into(),
            Operand::Document(vec![(
                "$in".into(),
                Operand::Array(vec![
                    Operand::Expansion(user("custom_data.team")),
                    Operand::Expansion(user("custom_data.alt")),
                ]),
            )]),
        )]),
        doc! {},
    );
    assert!(
        matches!(plan(&[f], None, None, &alice()), Err(PlanError::MissingExpansion { expansion, .. }) if expansion == "%%user.custom_data.alt")
    );
    // A present value substitutes fine, also nested.
    let f = filter(
        "ok",
        Expr::Bool(true),
        Operand::Document(vec![(
            "team".into(),
            Operand::Document(vec![(
                "$in".into(),
                Operand::Array(vec![
                    Operand::Expansion(user("custom_data.team")),
                    Operand::Literal(Bson::String("blue".into())),
                ]),
            )]),
        )]),
        doc! {},
    );
    assert_eq!(
        plan(&[f], None, None, &alice()).unwrap().query,
        doc! {"team": {"$in": ["red", "blue"]}}
    );
    // A filter that does not apply never has its query evaluated.
    let off = filter(
        "off",
        Expr::Bool(false),
        Operand::Document(vec![("x".into(), Operand::Expansion(user("nope")))]),
        doc! {},
    );
    assert!(plan(&[off], None, None, &alice()).is_ok());
}

#[test]
fn non_document_queries_are_errors() {
    let f = filter(
        "weird",
        Expr::Bool(true),
        Operand::Expansion(user("id")),
        doc! {},
    );
    assert!(
        matches!(plan(&[f], None, None, &alice()), Err(PlanError::QueryNotDocument { found, .. }) if found == "string")
    );
}

fn pm(list: &[(&str, Document)]) -> Result<Document, PlanError> {
    let owned: Vec<(String, Document)> = list
        .iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect();
    let refs: Vec<(String, &Document)> = owned.iter().map(|(n, d)| (n.clone(), d)).collect();
    merge_projections(&refs)
}

fn same_keys(a: &Document, b: &Document) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
}

#[test]
fn projection_canonical_forms() {
    assert_eq!(pm(&[]).unwrap(), doc! {});
    assert_eq!(pm(&[("f", doc! {})]).unwrap(), doc! {});
    // Exclusive: union.
    assert!(same_keys(
        &pm(&[
            ("f", doc! {"a": 0}),
            ("g", doc! {"b": false}),
            ("client", doc! {"a": 0, "c": 0})
        ])
        .unwrap(),
        &doc! {"a": 0, "b": 0, "c": 0}
    ));
    // Inclusive: intersection.
    assert!(same_keys(
        &pm(&[
            ("f", doc! {"a": 1, "b": 1, "c": true}),
            ("client", doc! {"b": 1, "c": 1, "d": 1})
        ])
        .unwrap(),
        &doc! {"b": 1, "c": 1}
    ));
    // _id: 0 is allowed in an inclusive projection and is kept.
    assert!(same_keys(
        &pm(&[
            ("f", doc! {"_id": 0, "age": 1, "vote": 1}),
            ("client", doc! {"age": 1})
        ])
        .unwrap(),
        &doc! {"_id": 0, "age": 1}
    ));
    assert!(same_keys(
        &pm(&[
            ("f", doc! {"age": 1, "vote": 1}),
            ("client", doc! {"_id": 0, "vote": 1})
        ])
        .unwrap(),
        &doc! {"_id": 0, "vote": 1}
    ));
    // {_id: 0} alone combines with either kind.
    assert!(same_keys(
        &pm(&[("f", doc! {"_id": 0}), ("client", doc! {"a": 1})]).unwrap(),
        &doc! {"_id": 0, "a": 1}
    ));
    assert!(same_keys(
        &pm(&[("f", doc! {"_id": 0}), ("client", doc! {"a": 0})]).unwrap(),
        &doc! {"_id": 0, "a": 0}
    ));
    assert_eq!(pm(&[("f", doc! {"_id": 0})]).unwrap(), doc! {"_id": 0});
    // _id: 1 in an exclusive projection is harmless.
    assert!(same_keys(
        &pm(&[("f", doc! {"a": 0, "_id": 1})]).unwrap(),
        &doc! {"a": 0}
    ));
    // Numbers of any type.
    assert!(same_keys(
        &pm(&[("f", doc! {"b": 0.0, "c": 0_i64, "d": Bson::Null})]).unwrap(),
        &doc! {"b": 0, "c": 0, "d": 0}
    ));
    assert!(matches!(
        pm(&[("f", doc! {"a": 1.0, "b": 0.0})]),
        Err(PlanError::MixedProjection { .. })
    ));
    assert!(same_keys(
        &pm(&[("f", doc! {"a": 2_i64}), ("g", doc! {"a": 1.5})]).unwrap(),
        &doc! {"a": 1}
    ));
}

#[test]
fn projection_conflicts() {
    let err = pm(&[
        ("filter `f`", doc! {"a": 1}),
        ("the client projection", doc! {"b": 0}),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        PlanError::ProjectionConflict {
            inclusive: "filter `f`".into(),
            exclusive: "the client projection".into()
        }
    );
    assert!(err.to_string().contains("projection conflict"));
    assert!(matches!(
        pm(&[
            ("f", doc! {"b": 0}),
            ("g", doc! {"_id": 0}),
            ("h", doc! {"a": 1})
        ]),
        Err(PlanError::ProjectionConflict { .. })
    ));
    assert!(
        matches!(pm(&[("f", doc! {"a": 1, "b": 0})]), Err(PlanError::MixedProjection { origin }) if origin == "f")
    );
    assert!(
        matches!(
            pm(&[("f", doc! {"_id": 1}), ("g", doc! {"b": 0})]),
            Err(PlanError::ProjectionConflict { .. })
        ),
        "{{_id: 1}} is inclusive"
    );
}

#[test]
fn projection_never_widens() {
    // Nothing in common: only _id.
    assert_eq!(
        pm(&[("f", doc! {"a": 1}), ("client", doc! {"b": 1})]).unwrap(),
        doc! {"_id": 1}
    );
    // Nothing in common and _id excluded: cannot be expressed.
    assert_eq!(
        pm(&[("f", doc! {"_id": 0, "a": 1}), ("client", doc! {"b": 1})]).unwrap_err(),
        PlanError::EmptyProjection
    );
    // Path-aware intersection.
    assert!(same_keys(
        &pm(&[("f", doc! {"a": 1}), ("client", doc! {"a.b": 1, "c": 1})]).unwrap(),
        &doc! {"a.b": 1}
    ));
    assert!(same_keys(
        &pm(&[("f", doc! {"a.b": 1}), ("client", doc! {"a": 1})]).unwrap(),
        &doc! {"a.b": 1}
    ));
    assert!(
        same_keys(
            &pm(&[("f", doc! {"ab": 1}), ("client", doc! {"a": 1})]).unwrap(),
            &doc! {"_id": 1}
        ),
        "`ab` is not below `a`"
    );
    // Exclusive union without path collisions.
    assert!(same_keys(
        &pm(&[("f", doc! {"a.b": 0}), ("client", doc! {"a": 0})]).unwrap(),
        &doc! {"a": 0}
    ));
}

#[test]
fn plan_merges_filter_and_client_projections() {
    let f1 = filter("f1", Expr::Bool(true), lit_doc(doc! {}), doc! {"secret": 0});
    let f2 = filter("f2", Expr::Bool(true), lit_doc(doc! {}), doc! {"ssn": 0});
    let p = plan(&[f1.clone(), f2], None, Some(&doc! {"notes": 0}), &alice()).unwrap();
    assert!(same_keys(
        &p.projection,
        &doc! {"secret": 0, "ssn": 0, "notes": 0}
    ));
    let err = plan(&[f1], None, Some(&doc! {"name": 1}), &alice()).unwrap_err();
    assert_eq!(
        err,
        PlanError::ProjectionConflict {
            inclusive: "the client projection".into(),
            exclusive: "filter `f1`".into()
        }
    );
    let off = filter("off", Expr::Bool(false), lit_doc(doc! {}), doc! {"name": 0});
    let p = plan(&[off], None, Some(&doc! {"name": 1}), &alice()).unwrap();
    assert_eq!(
        p.projection,
        doc! {"name": 1},
        "projections of filters that do not apply are ignored"
    );
}
