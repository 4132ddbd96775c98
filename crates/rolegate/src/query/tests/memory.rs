//! In-memory query and projection evaluation (src/query/memory.rs), with hand-built ASTs and,
//! end to end, with queries parsed by `crate::expr::parse_query`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::context::RequestContext;
use crate::error::Place;
use crate::expr::{Expansion, Expr, Operand, Predicate, Root};
use crate::query::RuleFields;
use crate::query::memory::{compile_query, matches, project, run};
use crate::query::plan::{PlanInput, QueryPlan};
use crate::rules::{Filter, Rule};
use crate::value::ejson::document_from_json;
use bson::{Bson, Document, doc};
use proptest::prelude::*;
use serde_json::json;

fn d(v: serde_json::Value) -> Document {
    document_from_json(&v).unwrap()
}

fn field(path: &str) -> Expansion {
    Expansion {
        root: Root::Root,
        path: path.split('.').map(String::from).collect(),
        implicit: true,
    }
}

#[test]
fn hand_built_queries_use_plain_mongodb_matching() {
    let q = Expr::Test {
        subject: field("tags"),
        predicate: Predicate::Matches(Operand::Literal(Bson::Array(vec![Bson::String(
            "a".into(),
        )]))),
    };
    assert!(
        !matches(&q, &doc! {"tags": "a"}).unwrap(),
        "no U20 widening in queries"
    );
    assert!(matches(&q, &doc! {"tags": ["a"]}).unwrap());
    assert!(matches(&q, &doc! {"tags": [["a"], "b"]}).unwrap());
    let q = Expr::Test {
        subject: field("a.b"),
        predicate: Predicate::Matches(Operand::Literal(Bson::Int32(1))),
    };
    assert!(
        matches(&q, &doc! {"a": [{"b": [1, 2]}]}).unwrap(),
        "traversal then array element"
    );
    assert!(matches(&q, &doc! {"a": {"b": 1}}).unwrap());
    assert!(
        !matches(&q, &doc! {"a": [[{"b": 1}]]}).unwrap(),
        "nested arrays are not traversed"
    );
}

#[test]
fn projection_inclusive() {
    let doc =
        doc! {"_id": 1, "name": "sarah", "age": 42, "vote": "yes", "addr": {"city": "P", "zip": 1}};
    assert_eq!(
        project(&doc! {"_id": 0, "age": 1, "vote": 1}, &doc),
        doc! {"age": 42, "vote": "yes"}
    );
    assert_eq!(
        project(&doc! {"vote": 1, "age": true}, &doc),
        doc! {"_id": 1, "age": 42, "vote": "yes"},
        "document order, _id kept"
    );
    assert_eq!(
        project(&doc! {"addr.city": 1}, &doc),
        doc! {"_id": 1, "addr": {"city": "P"}}
    );
    assert_eq!(
        project(&doc! {"addr.nope": 1}, &doc),
        doc! {"_id": 1, "addr": {}}
    );
    assert_eq!(
        project(&doc! {"name.x": 1}, &doc),
        doc! {"_id": 1},
        "scalar without the sub-path is dropped"
    );
    assert_eq!(project(&doc! {"_id": 1}, &doc), doc! {"_id": 1});
    assert_eq!(project(&doc! {"missing": 1}, &doc), doc! {"_id": 1});
    assert_eq!(
        project(&doc! {"addr": 1, "addr.city": 1}, &doc),
        doc! {"_id": 1, "addr": {"city": "P", "zip": 1}},
        "parent wins"
    );
    assert_eq!(
        project(&doc! {"addr.city": 1, "addr": 1}, &doc),
        doc! {"_id": 1, "addr": {"city": "P", "zip": 1}}
    );
    let arr = doc! {"_id": 2, "items": [{"a": 1, "b": 2}, 5, {"b": 3}, [{"a": 4}]]};
    assert_eq!(
        project(&doc! {"items.a": 1}, &arr),
        doc! {"_id": 2, "items": [{"a": 1}, {}, [{"a": 4}]]}
    );
    // Excluded fields in an inclusive projection are ignored (never shows more).
    assert_eq!(
        project(&doc! {"age": 1, "vote": 0}, &doc),
        doc! {"_id": 1, "age": 42}
    );
}

#[test]
fn projection_exclusive() {
    let doc = doc! {"_id": 1, "name": "sarah", "age": 42, "addr": {"city": "P", "zip": 1}, "items": [{"a": 1, "b": 2}, 7]};
    assert_eq!(
        project(&doc! {"name": 0}, &doc),
        doc! {"_id": 1, "age": 42, "addr": {"city": "P", "zip": 1}, "items": [{"a": 1, "b": 2}, 7]}
    );
    assert_eq!(
        project(&doc! {"_id": 0}, &doc),
        doc! {"name": "sarah", "age": 42, "addr": {"city": "P", "zip": 1}, "items": [{"a": 1, "b": 2}, 7]}
    );
    assert_eq!(
        project(
            &doc! {"addr.zip": false, "items.b": 0, "_id": 0, "age": 0, "name": 0},
            &doc
        ),
        doc! {"addr": {"city": "P"}, "items": [{"a": 1}, 7]}
    );
    assert_eq!(
        project(&doc! {"name.x": 0}, &doc).get("name"),
        Some(&Bson::String("sarah".into()))
    );
    assert_eq!(project(&doc! {}, &doc), doc);
}

fn votes() -> Vec<Document> {
    [
        json!({"_id": 1, "name": "sarah", "age": 42, "vote": "yes", "shareVoteAnonymous": true}),
        json!({"_id": 2, "name": "andy", "age": 22, "vote": "no", "shareVoteAnonymous": true}),
        json!({"_id": 3, "name": "jennifer", "age": 37, "vote": "yes", "shareVoteAnonymous": false}),
        json!({"_id": 4, "name": "rick", "age": 43, "vote": "no", "shareVoteAnonymous": true}),
        json!({"_id": 5, "name": "tom", "age": 64, "vote": "yes", "shareVoteAnonymous": false}),
        json!({"_id": 6, "name": "bob", "age": 67, "vote": "yes", "shareVoteAnonymous": true}),
    ]
    .into_iter()
    .map(d)
    .collect()
}

#[test]
fn conformance_filters_anonymize_votes_results() {
    let f = Filter {
        name: "AnonymizeVotes".into(),
        apply_when: Rule {
            expr: Expr::Bool(true),
            place: Place::default(),
        },
        query: Operand::Literal(Bson::Document(doc! {"shareVoteAnonymous": true})),
        projection: doc! {"_id": 0, "age": 1, "vote": 1},
        place: Place::default(),
    };
    let p = plan(&[f], Some(&doc! {}), None, &RequestContext::default()).unwrap();
    // The database's part keeps what the filter query reads; the output projection (applied
    // after the rules, here none) narrows it.
    assert_eq!(p.store_query, doc! {"shareVoteAnonymous": true});
    let results: Vec<Document> = run(&p, &votes())
        .unwrap()
        .iter()
        .map(|d| project(p.output_projection(), d))
        .collect();
    assert_eq!(
        results,
        vec![
            doc! {"age": 42, "vote": "yes"},
            doc! {"age": 22, "vote": "no"},
            doc! {"age": 43, "vote": "no"},
            doc! {"age": 67, "vote": "yes"},
        ]
    );
}

/// Plans with filters only (no roles).
fn plan(
    filters: &[Filter],
    client_query: Option<&Document>,
    client_projection: Option<&Document>,
    request: &RequestContext,
) -> Result<QueryPlan, crate::query::PlanError> {
    let input = PlanInput {
        filters,
        fields: &RuleFields::default(),
        max_depth: 100,
    };
    crate::query::plan::plan(input, client_query, client_projection, request)
}

fn q(v: serde_json::Value) -> Expr {
    compile_query(&d(v)).unwrap()
}

fn sel(query: serde_json::Value, docs: &[Document]) -> Vec<i32> {
    let e = q(query);
    docs.iter()
        .filter(|doc| matches(&e, doc).unwrap())
        .filter_map(|doc| doc.get_i32("_id").ok())
        .collect()
}

#[test]
fn parsed_queries_end_to_end() {
    let docs = votes();
    assert_eq!(sel(json!({}), &docs), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        sel(json!({"vote": "yes", "age": {"$gt": 40}}), &docs),
        vec![1, 5, 6]
    );
    assert_eq!(
        sel(
            json!({"$or": [{"age": {"$lt": 25}}, {"name": "bob"}]}),
            &docs
        ),
        vec![2, 6]
    );
    assert_eq!(
        sel(
            json!({"$and": [{"shareVoteAnonymous": true}, {"vote": {"$ne": "yes"}}]}),
            &docs
        ),
        vec![2, 4]
    );
    assert_eq!(sel(json!({"$nor": [{"vote": "yes"}]}), &docs), vec![2, 4]);
    assert_eq!(
        sel(
            json!({"name": {"$in": ["tom", "rick", {"$regularExpression": {"pattern": "^sa", "options": ""}}]}}),
            &docs
        ),
        vec![1, 4, 5]
    );
    assert_eq!(
        sel(json!({"name": {"$regex": "^J", "$options": "i"}}), &docs),
        vec![3]
    );
    assert_eq!(
        sel(json!({"age": {"$not": {"$gte": 40}}}), &docs),
        vec![2, 3]
    );
    assert_eq!(sel(json!({"age": {"$mod": [2, 1]}}), &docs), vec![3, 4, 6]);
    assert_eq!(sel(json!({"missing": null}), &docs), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        sel(json!({"missing": {"$exists": true}}), &docs),
        Vec::<i32>::new()
    );
    assert_eq!(
        sel(json!({"age": {"$type": "int"}}), &docs),
        vec![1, 2, 3, 4, 5, 6]
    );
    // Strings that look like expansions are literals in queries.
    let odd = vec![d(json!({"_id": 1, "x": "%%user.id"}))];
    assert_eq!(sel(json!({"x": "%%user.id"}), &odd), vec![1]);
}

#[test]
fn parsed_array_operators_end_to_end() {
    let docs: Vec<Document> = [
        json!({"_id": 1, "tags": ["a", "b"], "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 5}]}),
        json!({"_id": 2, "tags": ["b"], "items": [{"sku": "x", "qty": 5}]}),
        json!({"_id": 3, "tags": "a"}),
    ]
    .into_iter()
    .map(d)
    .collect();
    assert_eq!(sel(json!({"tags": "a"}), &docs), vec![1, 3]);
    assert_eq!(sel(json!({"tags": ["a", "b"]}), &docs), vec![1]);
    assert_eq!(sel(json!({"tags": {"$all": ["a", "b"]}}), &docs), vec![1]);
    assert_eq!(sel(json!({"tags": {"$size": 1}}), &docs), vec![2]);
    assert_eq!(
        sel(
            json!({"items": {"$elemMatch": {"sku": "x", "qty": {"$gte": 2}}}}),
            &docs
        ),
        vec![2]
    );
    assert_eq!(sel(json!({"items.sku": "y"}), &docs), vec![1]);
    assert_eq!(sel(json!({"items.qty": {"$gt": 4}}), &docs), vec![1, 2]);
    assert_eq!(sel(json!({"items.0.sku": "x"}), &docs), vec![1, 2]);
    assert_eq!(sel(json!({"tags": {"$type": "array"}}), &docs), vec![1, 2]);
}

#[test]
fn run_reports_invalid_queries() {
    let mut p = QueryPlan::default();
    p.store_query = doc! {"$where": "1"};
    assert!(run(&p, &votes()).is_err());
}

fn arb_doc() -> impl Strategy<Value = Document> {
    (
        0i32..5,
        prop::option::of(0i32..5),
        prop::collection::vec(0i32..5, 0..3),
        any::<bool>(),
    )
        .prop_map(|(a, b, t, s)| {
            let mut d = doc! {"a": a, "t": t, "s": s};
            if let Some(b) = b {
                d.insert("b", b);
            }
            d
        })
}

fn arb_query() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        (0i32..5).prop_map(|v| json!({"a": v})),
        (0i32..5).prop_map(|v| json!({"b": {"$gte": v}})),
        (0i32..5).prop_map(|v| json!({"t": v})),
        Just(json!({"b": null})),
        Just(json!({"s": true})),
        prop::collection::vec(0i32..5, 0..3).prop_map(|v| json!({"a": {"$in": v}})),
        (0i32..5).prop_map(|v| json!({"t": {"$ne": v}})),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"$and": v})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"$or": v})),
            prop::collection::vec(inner, 1..3).prop_map(|v| json!({"$nor": v})),
        ]
    })
}

proptest! {
    /// Filters only narrow: the merged query selects a subset of what the client query selects
    /// (and of what each applied filter selects).
    #[test]
    fn merged_query_selects_a_subset(
        docs in prop::collection::vec(arb_doc(), 0..8),
        client in arb_query(),
        filters in prop::collection::vec((arb_query(), any::<bool>()), 0..3),
    ) {
        let fs: Vec<Filter> = filters.iter().enumerate().map(|(i, (fq, on))| Filter {
            name: format!("f{i}"),
            apply_when: Rule { expr: Expr::Bool(*on), place: Place::default() },
            query: Operand::Literal(Bson::Document(d(fq.clone()))),
            projection: doc! {},
            place: Place::default(),
        }).collect();
        let client_doc = d(client.clone());
        let p = plan(&fs, Some(&client_doc), None, &RequestContext::default()).unwrap();
        let merged = compile_query(p.merged_query()).unwrap();
        let client_q = compile_query(&client_doc).unwrap();
        for doc in &docs {
            let m = matches(&merged, doc).unwrap();
            let c = matches(&client_q, doc).unwrap();
            prop_assert!(!m || c, "merged selects {doc:?} but the client query does not");
            for (f, (fq, on)) in fs.iter().zip(&filters) {
                if *on {
                    let fe = compile_query(&d(fq.clone())).unwrap();
                    prop_assert!(!m || matches(&fe, doc).unwrap(), "merged selects {doc:?} but filter {} does not", f.name);
                }
            }
            // And it is exactly the conjunction.
            let all_filters = fs.iter().zip(&filters).filter(|(_, (_, on))| *on)
                .all(|(_, (fq, _))| matches(&compile_query(&d(fq.clone())).unwrap(), doc).unwrap());
            prop_assert_eq!(m, c && all_filters);
        }
    }

    /// A merged inclusive projection never shows a field that one of its inputs hides.
    #[test]
    fn merged_projection_never_widens(
        doc in arb_doc(),
        p1 in prop::collection::btree_set(prop::sample::select(vec!["a", "b", "t", "s"]), 1..4),
        p2 in prop::collection::btree_set(prop::sample::select(vec!["a", "b", "t", "s"]), 1..4),
    ) {
        let mk = |keys: &std::collections::BTreeSet<&str>| -> Document { keys.iter().map(|k| (k.to_string(), Bson::Int32(1))).collect() };
        let (d1, d2) = (mk(&p1), mk(&p2));
        let merged = crate::query::plan::merge_projections(&[("f".into(), &d1), ("c".into(), &d2)]).unwrap();
        let out = project(&merged, &doc);
        let (o1, o2) = (project(&d1, &doc), project(&d2, &doc));
        for k in out.keys() {
            prop_assert!(o1.contains_key(k) && o2.contains_key(k), "{k} shown");
        }
        let mut e1 = doc.clone();
        let mut e2 = doc.clone();
        for k in &p1 { e1.remove(*k); }
        for k in &p2 { e2.remove(*k); }
        let ex1: Document = p1.iter().map(|k| (k.to_string(), Bson::Int32(0))).collect();
        let ex2: Document = p2.iter().map(|k| (k.to_string(), Bson::Int32(0))).collect();
        let union = crate::query::plan::merge_projections(&[("f".into(), &ex1), ("c".into(), &ex2)]).unwrap();
        let out = project(&union, &doc);
        for k in out.keys() {
            prop_assert!(e1.contains_key(k) && e2.contains_key(k), "{k} shown");
        }
    }
}

#[test]
fn deeply_nested_arrays_are_dropped_not_overflowed() {
    let mut v = Bson::Document(doc! {"a": 1, "b": 2});
    for _ in 0..300 {
        v = Bson::Array(vec![v]);
    }
    let doc = doc! {"_id": 1, "items": v};
    let inc = project(&doc! {"items.a": 1}, &doc);
    let exc = project(&doc! {"items.b": 0}, &doc);
    // Whatever survives, `b` never shows in the exclusive result and only `a` in the inclusive one.
    let shown = |d: &Document, key: &str| format!("{d:?}").contains(&format!("\"{key}\""));
    assert!(!shown(&exc, "b"));
    assert!(!shown(&inc, "b"));
    assert_eq!(inc.get("_id"), Some(&Bson::Int32(1)));
}
