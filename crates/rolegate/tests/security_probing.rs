//! Issue 9, finding 5: hidden fields cannot be probed. The client query never reaches the
//! database with a clause on a field some role hides; it is evaluated on the redacted document,
//! where a hidden field is missing. The operators App Services refused to app users are refused
//! with `operator-not-allowed`, at any depth, before anything else; no plan's store query holds
//! one. Regression tests for the examples, and properties: the returned documents do
//! not depend on the values of fields the user cannot read (both engines, directly and through
//! the store query and projection), and refused operators are refused wherever they hide.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "differential/arb.rs"]
mod arb;
#[path = "differential/check.rs"]
mod check;

use std::cell::Cell;
use std::collections::BTreeMap;

use bson::{Bson, Document, doc};
use check::{Verdict, run_property};
use proptest::prelude::*;
use rolegate::{
    EngineKind, LoadOptions, PlanError, PlannedRead, PreparedRequest, QueryPlan, RuleSet, Rules,
};
use serde_json::{Value, json};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/security_probing.txt"
);

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

/// Staff: the first role sees only `name` and `team` of other people's documents; owners see all.
fn staff() -> Rules {
    let files: BTreeMap<String, Value> = [
        (
            "data_sources/mongodb-atlas/config.json",
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/mongodb-atlas/hr/staff/rules.json",
            json!({"database": "hr", "collection": "staff", "roles": [
                {"name": "self", "apply_when": {"user_id": "%%user.id"}, "read": true},
                {"name": "colleague", "apply_when": {},
                 "fields": {"name": {"read": true}, "team": {"read": true}}}
            ]}),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Rules::new(
        RuleSet::from_files(&files, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")),
    )
}

fn ctx(rules: &Rules) -> rolegate::RequestContext {
    rules
        .context()
        .user(doc! {"id": "mallory", "type": "normal", "data": {}, "custom_data": {}})
        .build()
        .unwrap()
}

/// What the client receives for `collection` through the database's part and `read_for`.
fn received(
    request: &PreparedRequest<'_, '_>,
    plan: &QueryPlan,
    collection: &[Document],
) -> Vec<Document> {
    request
        .find(plan, collection)
        .unwrap()
        .into_iter()
        .filter_map(|r| shown(&r).cloned())
        .collect()
}

fn shown(r: &PlannedRead) -> Option<&Document> {
    r.outcome
        .document
        .as_ref()
        .filter(|_| r.selected && r.outcome.visible)
}

fn mentions(query: &Document, field: &str) -> bool {
    let text = format!("{query:?}");
    text.contains(&format!("\"{field}\""))
}

#[test]
fn a_hidden_salary_cannot_be_probed() {
    let rules = staff();
    let ctx = ctx(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let rich = doc! {"_id": 1, "user_id": "ann", "name": "Ann", "team": "x", "salary": 150_000};
    let poor = doc! {"_id": 1, "user_id": "ann", "name": "Ann", "team": "x", "salary": 50_000};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        for probe in [
            doc! {"salary": {"$gt": 100_000}},
            doc! {"salary": {"$lte": 100_000}},
            doc! {"salary": {"$ne": 150_000}},
            doc! {"salary": {"$not": {"$gt": 100_000}}},
            doc! {"salary": {"$exists": true}},
            doc! {"$or": [{"salary": 150_000}, {"name": "nobody"}]},
            doc! {"$nor": [{"salary": {"$gt": 100_000}}]},
        ] {
            let plan = request.query_plan(Some(&probe), None).unwrap();
            assert!(
                !mentions(&plan.store_query, "salary"),
                "{engine:?} {probe:?}: the store query probes: {:?}",
                plan.store_query
            );
            let a = received(&request, &plan, std::slice::from_ref(&rich));
            let b = received(&request, &plan, std::slice::from_ref(&poor));
            assert_eq!(a, b, "{engine:?}: {probe:?} tells the salaries apart");
            // Directly, without the store.
            let a = request.read_for(&plan, &rich);
            let b = request.read_for(&plan, &poor);
            assert_eq!(shown(&a), shown(&b), "{engine:?}: {probe:?}");
        }
        // A clause on a field every role shows goes to the store (and still selects); with
        // pushdown, beside the residual.
        let plain = request.with_pushdown(false);
        let plan = plain.query_plan(Some(&doc! {"team": "x"}), None).unwrap();
        assert_eq!(plan.store_query, doc! {"team": "x"});
        let pushed = request.query_plan(Some(&doc! {"team": "x"}), None).unwrap();
        let residual = pushed.residual().and_then(|r| r.query()).unwrap().clone();
        assert_eq!(pushed.store_query, doc! {"$and": [{"team": "x"}, residual]});
        let plan = pushed;
        assert_eq!(
            received(&request, &plan, std::slice::from_ref(&rich)),
            vec![doc! {"name": "Ann", "team": "x"}]
        );
        // Predicates on a hidden field behave as if it were missing.
        let plan = request
            .query_plan(Some(&doc! {"salary": {"$exists": false}}), None)
            .unwrap();
        assert_eq!(
            received(&request, &plan, &[rich.clone(), poor.clone()]).len(),
            2
        );
    }
}

/// An anonymizing filter projects `name` away: the client may not select by it, at the store or
/// in memory (App Services' own example of a filter).
#[test]
fn fields_a_filter_projects_away_cannot_be_probed() {
    let files: BTreeMap<String, Value> = [
        (
            "data_sources/mongodb-atlas/config.json",
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/mongodb-atlas/app/votes/rules.json",
            json!({"database": "app", "collection": "votes",
                   "roles": [{"name": "readAll", "apply_when": {}, "read": true}],
                   "filters": [{"name": "AnonymizeVotes", "apply_when": true,
                                "query": {"shareVoteAnonymous": true},
                                "projection": {"_id": 0, "age": 1, "vote": 1}}]}),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let rules = Rules::new(RuleSet::from_files(&files, &LoadOptions::default()).unwrap());
    let ctx = ctx(&rules);
    let coll = rules.collection("app.votes").unwrap();
    let votes = [
        doc! {"_id": 1, "name": "sarah", "age": 42, "vote": "yes", "shareVoteAnonymous": true},
        doc! {"_id": 2, "name": "andy", "age": 22, "vote": "no", "shareVoteAnonymous": true},
    ];
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        let plan = request
            .query_plan(Some(&doc! {"name": "sarah"}), None)
            .unwrap();
        assert!(
            !mentions(&plan.store_query, "name"),
            "{:?}",
            plan.store_query
        );
        assert_eq!(
            received(&request, &plan, &votes),
            Vec::<Document>::new(),
            "{engine:?}"
        );
        // Fields the filter shows may be queried, and go to the store.
        let plan = request.query_plan(Some(&doc! {"age": 42}), None).unwrap();
        assert!(mentions(&plan.store_query, "age"), "{:?}", plan.store_query);
        assert_eq!(
            received(&request, &plan, &votes),
            vec![doc! {"age": 42, "vote": "yes"}],
            "{engine:?}"
        );
    }
}

#[test]
fn the_owner_still_queries_their_own_hidden_fields() {
    let rules = staff();
    let ctx = rules
        .context()
        .user(doc! {"id": "ann", "type": "normal", "data": {}, "custom_data": {}})
        .build()
        .unwrap();
    let coll = rules.collection("hr.staff").unwrap();
    let rich = doc! {"_id": 1, "user_id": "ann", "name": "Ann", "team": "x", "salary": 150_000};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        let plan = request
            .query_plan(
                Some(&doc! {"salary": {"$gt": 100_000}}),
                Some(&doc! {"salary": 1}),
            )
            .unwrap();
        assert_eq!(
            received(&request, &plan, std::slice::from_ref(&rich)),
            vec![doc! {"_id": 1, "salary": 150_000}]
        );
    }
}

/// Every operator App Services refused to app users, in a query where it would work.
fn refused() -> Vec<(&'static str, Document)> {
    vec![
        ("$where", doc! {"$where": "this.salary > 100000"}),
        ("$expr", doc! {"$expr": {"$gt": ["$salary", 100_000]}}),
        (
            "$expr",
            doc! {"$expr": {"$function": {"body": "function(s) { return s > 1 }", "args": ["$salary"], "lang": "js"}}},
        ),
        (
            "$jsonSchema",
            doc! {"$jsonSchema": {"required": ["salary"]}},
        ),
        ("$text", doc! {"$text": {"$search": "secret"}}),
        ("$regex", doc! {"name": {"$regex": "^A"}}),
        (
            "$regex",
            doc! {"name": Bson::RegularExpression(bson::Regex { pattern: "^A".into(), options: String::new() })},
        ),
        ("$options", doc! {"name": {"$options": "i"}}),
        (
            "$geoWithin",
            doc! {"loc": {"$geoWithin": {"$center": [[0, 0], 10]}}},
        ),
        (
            "$geoIntersects",
            doc! {"loc": {"$geoIntersects": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}},
        ),
        ("$near", doc! {"loc": {"$near": [0, 0]}}),
        ("$nearSphere", doc! {"loc": {"$nearSphere": [0, 0]}}),
        ("$bitsAllSet", doc! {"flags": {"$bitsAllSet": 1}}),
        ("$bitsAllClear", doc! {"flags": {"$bitsAllClear": 1}}),
        ("$bitsAnySet", doc! {"flags": {"$bitsAnySet": 1}}),
        ("$bitsAnyClear", doc! {"flags": {"$bitsAnyClear": 1}}),
        ("$accumulator", doc! {"x": {"$accumulator": {}}}),
        ("$function", doc! {"x": {"$function": {}}}),
        (
            "$comment",
            doc! {"$comment": "unknown operators are refused too"},
        ),
        ("$where", doc! {"a": Bson::JavaScriptCode("1".into())}),
    ]
}

#[test]
fn refused_operators_fail_the_plan_with_a_clear_error() {
    let rules = staff();
    let ctx = ctx(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        for (operator, query) in refused() {
            // Directly, under `$or`, and inside `$elemMatch`.
            for q in [
                query.clone(),
                doc! {"$or": [{"name": "x"}, query.clone()]},
                doc! {"items": {"$elemMatch": query.clone()}},
            ] {
                let err = request.query_plan(Some(&q), None).unwrap_err();
                assert_eq!(err.code(), "operator-not-allowed", "{q:?}: {err}");
                assert!(
                    matches!(&err, PlanError::OperatorNotAllowed { operator: o, .. } if o == operator),
                    "{q:?}: {err:?}"
                );
                assert!(err.to_string().contains(operator), "{err}");
            }
        }
    }
}

#[test]
fn deep_client_queries_are_refused_without_overflowing() {
    let rules = staff();
    let ctx = ctx(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let request = coll.prepare(&ctx);
    for depth in [150usize, 3_000, 100_000] {
        let mut q = doc! {"name": "x"};
        for _ in 0..depth {
            q = doc! {"$and": [q]};
        }
        let err = request.query_plan(Some(&q), None).unwrap_err();
        assert_eq!(err.code(), "limit-exceeded", "{err}");
        // Dropping a deeply nested document recurses in `bson`; keep the test about rolegate.
        std::mem::forget(q);
    }
}

#[test]
fn projection_operators_are_refused() {
    let rules = staff();
    let ctx = ctx(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let request = coll.prepare(&ctx);
    for p in [
        doc! {"items": {"$elemMatch": {"salary": {"$gt": 1}}}},
        doc! {"items.$": 1},
        doc! {"items": {"$slice": 1}},
        doc! {"score": {"$meta": "textScore"}},
        doc! {"$where": 1},
    ] {
        let err = request.query_plan(None, Some(&p)).unwrap_err();
        assert_eq!(err.code(), "invalid-projection", "{p:?}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Compares answers as bytes (NaN equals itself; order and types count).
fn bytes(d: Option<&Document>) -> Option<Vec<u8>> {
    d.map(|d| bson::to_vec(d).unwrap())
}

fn baseline(r: &PlannedRead) -> (bool, bool, Option<String>, Option<Vec<u8>>, bool) {
    (
        r.selected,
        r.outcome.visible,
        r.outcome.role.clone(),
        bytes(r.outcome.document.as_ref()),
        r.outcome.error.is_some(),
    )
}

/// Two stored documents that the rules and filters cannot tell apart — same selection, role,
/// error and redacted document without a client query or projection — get the same answer for
/// every client query and projection: the answer depends only on what the user may read. The
/// second document is the first with random fields changed, removed, added or changed inside
/// (so hidden fields, hidden sub-fields and the presence of hidden fields all vary). Both
/// engines, directly and through the store query and projection.
fn no_probe(case: &arb::Case, hits: &Cell<u64>) -> Result<Verdict, String> {
    let rules = match case.rules.load() {
        Ok(r) => r,
        Err(e) => return Ok(Verdict::Rejected(e)),
    };
    let ctx = case.request.context(&rules, false);
    let coll = rules.collection(arb::NAMESPACE).unwrap();
    let cq = case.client_query_bson();
    let cp = case.client_projection_bson();
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        let (Ok(base_plan), Ok(plan)) = (
            request.query_plan(None, None),
            request.query_plan(cq.as_ref(), cp.as_ref()),
        ) else {
            continue;
        };
        for (doc, muts) in case.docs.iter().zip(&case.mutations) {
            let a = doc.bson();
            let b = arb::apply(doc, muts).bson();
            if bytes(Some(&a)) == bytes(Some(&b)) {
                continue;
            }
            // A document deeper than `max_document_depth` is withheld as a whole, but the store
            // projection may drop its deep part: the depth guard is a resource limit, not part
            // of the rules' meaning (docs/security.md, "Known limits").
            let limits = rules.rule_set().limits;
            if limits.check_document(&a).is_err() || limits.check_document(&b).is_err() {
                continue;
            }
            if baseline(&request.read_for(&base_plan, &a))
                != baseline(&request.read_for(&base_plan, &b))
            {
                continue;
            }
            if cq.as_ref().is_some_and(|q| !q.is_empty()) {
                hits.set(hits.get() + 1);
            }
            let context = || {
                format!(
                    "engine {engine:?}\nrules:\n{}{}\nclient query: {:?}\nclient projection: {:?}\nplan: {plan:?}\nfirst:  {}\nsecond: {}",
                    case.rules.rules_report(),
                    case.request.report(),
                    cq.as_ref().map(arb::show),
                    cp.as_ref().map(arb::show),
                    arb::show(&a),
                    arb::show(&b)
                )
            };
            let (ra, rb) = (request.read_for(&plan, &a), request.read_for(&plan, &b));
            if bytes(shown(&ra)) != bytes(shown(&rb)) {
                return Err(format!(
                    "read_for tells them apart: {ra:?} vs {rb:?}\n{}",
                    context()
                ));
            }
            let (Ok(fa), Ok(fb)) = (
                request.find(&plan, std::slice::from_ref(&a)),
                request.find(&plan, std::slice::from_ref(&b)),
            ) else {
                continue;
            };
            let sa: Vec<_> = fa.iter().filter_map(|r| bytes(shown(r))).collect();
            let sb: Vec<_> = fb.iter().filter_map(|r| bytes(shown(r))).collect();
            if sa != sb {
                return Err(format!(
                    "the store query and projection tell them apart: {fa:?} vs {fb:?}\n{}",
                    context()
                ));
            }
        }
    }
    Ok(Verdict::Checked)
}

#[test]
fn returned_documents_do_not_depend_on_hidden_values() {
    let hits = Cell::new(0u64);
    let strategy = prop_oneof![arb::case(), arb::field_case()].boxed();
    run_property(
        "returned_documents_do_not_depend_on_hidden_values",
        REGRESSIONS,
        2_000,
        strategy,
        |case| no_probe(case, &hits),
    );
    // The property must have compared many pairs of documents under a client query.
    eprintln!("{} pairs compared under a client query", hits.get());
    assert!(hits.get() >= 200, "only {} pairs compared", hits.get());
}

/// A random allowed client query with a refused operator planted at a random depth.
fn planted() -> impl Strategy<Value = (Document, &'static str)> {
    let ops = refused();
    let n = ops.len();
    (0..n, 0usize..6, proptest::collection::vec(0u8..3, 6)).prop_map(move |(i, depth, shapes)| {
        let (operator, mut q) = ops[i].clone();
        for shape in shapes.iter().take(depth) {
            q = match shape {
                0 => doc! {"$or": [{"team": "x"}, q]},
                1 => doc! {"$and": [q, {"name": {"$ne": "y"}}]},
                _ => doc! {"items": {"$elemMatch": q}},
            };
        }
        (q, operator)
    })
}

#[test]
fn refused_operators_are_refused_wherever_they_hide() {
    let rules = staff();
    let ctx = ctx(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let request = coll.prepare(&ctx);
    run_property(
        "refused_operators_are_refused_wherever_they_hide",
        REGRESSIONS,
        500,
        planted().boxed(),
        |(q, operator)| match request.query_plan(Some(q), None) {
            Err(PlanError::OperatorNotAllowed { operator: o, .. }) if o == *operator => {
                Ok(Verdict::Checked)
            }
            other => Err(format!("{q:?}: {other:?}")),
        },
    );
}

/// Every key of a store query is a field or an allowed operator (the filters' own operators
/// aside, which are the app's).
fn operators(d: &Document, out: &mut Vec<String>) {
    for (k, v) in d {
        if k.starts_with('$') {
            out.push(k.clone());
        }
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Bson::Document(d) => operators(d, out),
                Bson::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
}

#[test]
fn store_queries_hold_only_allowed_operators() {
    let allowed = [
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
    run_property(
        "store_queries_hold_only_allowed_operators",
        REGRESSIONS,
        500,
        arb::case(),
        |case| {
            let rules = match case.rules.load() {
                Ok(r) => r,
                Err(e) => return Ok(Verdict::Rejected(e)),
            };
            let ctx = case.request.context(&rules, false);
            let coll = rules.collection(arb::NAMESPACE).unwrap();
            // The residual's operators are the rules' (the app's), not the client's: this
            // property is about what a client can make the store run.
            let request = coll.prepare(&ctx).with_pushdown(false);
            if let Ok(plan) = request.query_plan(case.client_query_bson().as_ref(), None) {
                let mut ops = Vec::new();
                operators(&plan.store_query, &mut ops);
                if let Some(bad) = ops.iter().find(|o| !allowed.contains(&o.as_str())) {
                    return Err(format!("store query holds {bad}: {:?}", plan.store_query));
                }
            }
            Ok(Verdict::Checked)
        },
    );
}
