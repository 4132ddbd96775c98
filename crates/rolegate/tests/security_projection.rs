//! Issue 9, finding 1: the client projection cannot choose the role. Roles, document filters and
//! field rules decide on the stored document; the client projection (and the filters') only
//! narrows what is returned, after redaction; the store projection keeps every field the rules
//! read. Regression tests for the issue's examples (library, both engines, and the CLI), and a
//! property over random rule sets, filters, client queries and projections.
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

use std::collections::BTreeMap;

use bson::{Document, doc};
use check::{Verdict, run_property};
use proptest::strategy::Strategy;
use rolegate::{
    EngineKind, LoadOptions, PlannedRead, PreparedRequest, ReadOutcome, RuleSet, Rules, mql,
};
use serde_json::{Value, json};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/security_projection.txt"
);

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

fn rules_of(collection_rules: Value) -> Rules {
    let files: BTreeMap<String, Value> = [
        (
            "data_sources/mongodb-atlas/config.json",
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/mongodb-atlas/hr/staff/rules.json",
            collection_rules,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Rules::new(
        RuleSet::from_files(&files, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// A restrictive first role for confidential documents, an open second role.
fn confidential_rules() -> Value {
    json!({"database": "hr", "collection": "staff", "roles": [
        {"name": "confidential", "apply_when": {"confidential": true},
         "fields": {"name": {"read": true}}},
        {"name": "everyone", "apply_when": {}, "read": true}
    ]})
}

/// Deleted documents are hidden by a document filter.
fn deleted_rules() -> Value {
    json!({"database": "hr", "collection": "staff", "roles": [
        {"name": "reader", "apply_when": {},
         "document_filters": {"read": {"deleted": {"$ne": true}}}, "read": true}
    ]})
}

fn alice(rules: &Rules) -> rolegate::RequestContext {
    rules
        .context()
        .user(doc! {"id": "alice", "type": "normal", "data": {}, "custom_data": {}})
        .build()
        .unwrap()
}

/// What the client receives for `stored` through the database's part of the plan (store query
/// and projection, in memory) and `read_for`.
fn through_store(
    request: &PreparedRequest<'_, '_>,
    plan: &rolegate::QueryPlan,
    stored: &Document,
) -> Option<Document> {
    let found = request.find(plan, std::slice::from_ref(stored)).unwrap();
    found
        .into_iter()
        .find_map(|r| r.outcome.document.filter(|_| r.selected))
}

#[test]
fn projecting_away_apply_when_fields_does_not_change_the_role() {
    let rules = rules_of(confidential_rules());
    let ctx = alice(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let stored = doc! {"_id": 1, "name": "Ann", "salary": 150_000, "confidential": true};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        let plan = request
            .query_plan(None, Some(&doc! {"confidential": 0}))
            .unwrap();
        // The store must still return `confidential`: the role's apply_when reads it.
        assert!(
            !plan.store_projection.contains_key("confidential"),
            "{engine:?}: {:?}",
            plan.store_projection
        );
        let answer = request.read_for(&plan, &stored);
        assert_eq!(
            answer.outcome.role.as_deref(),
            Some("confidential"),
            "{engine:?}"
        );
        assert_eq!(
            answer.outcome.document,
            Some(doc! {"name": "Ann"}),
            "{engine:?}"
        );
        assert_eq!(
            through_store(&request, &plan, &stored),
            Some(doc! {"name": "Ann"}),
            "{engine:?}"
        );
    }
}

#[test]
fn projecting_away_document_filter_fields_does_not_reveal_deleted_documents() {
    let rules = rules_of(deleted_rules());
    let ctx = alice(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let deleted = doc! {"_id": 1, "name": "Ann", "deleted": true};
    let live = doc! {"_id": 2, "name": "Bob", "deleted": false};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        let plan = request
            .query_plan(None, Some(&doc! {"deleted": 0}))
            .unwrap();
        assert!(
            !request.read_for(&plan, &deleted).outcome.visible,
            "{engine:?}"
        );
        assert_eq!(through_store(&request, &plan, &deleted), None, "{engine:?}");
        assert_eq!(
            through_store(&request, &plan, &live),
            Some(doc! {"_id": 2, "name": "Bob"}),
            "{engine:?}"
        );
    }
}

#[test]
fn the_store_projection_keeps_what_the_rules_read() {
    let rules = rules_of(confidential_rules());
    let ctx = alice(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let request = coll.prepare(&ctx);
    // Inclusive: the included field, and every field a rule reads.
    let plan = request.query_plan(None, Some(&doc! {"salary": 1})).unwrap();
    assert_eq!(
        plan.store_projection,
        doc! {"confidential": 1, "name": 1, "salary": 1}
    );
    assert_eq!(plan.output_projection(), &doc! {"salary": 1});
    // The client query's fields too (it is evaluated on the redacted document).
    let plan = request
        .query_plan(Some(&doc! {"team": "x"}), Some(&doc! {"salary": 1}))
        .unwrap();
    assert!(plan.store_projection.contains_key("team"));
    // Exclusive: only what no rule reads may be left out.
    let plan = request
        .query_plan(None, Some(&doc! {"salary": 0, "confidential": 0}))
        .unwrap();
    assert_eq!(plan.store_projection, doc! {"salary": 0});
    // No projection: none.
    let plan = request.query_plan(None, None).unwrap();
    assert_eq!(plan.store_projection, doc! {});

    // A rule that reads the whole document: no store projection at all.
    let rules = rules_of(json!({"database": "hr", "collection": "staff", "roles": [
        {"name": "r", "apply_when": {"%%root": {"%exists": true}}, "read": true}
    ]}));
    let ctx = alice(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let plan = coll
        .prepare(&ctx)
        .query_plan(None, Some(&doc! {"name": 1}))
        .unwrap();
    assert_eq!(plan.store_projection, doc! {});
}

#[test]
fn filter_projections_narrow_the_output_after_redaction() {
    // A filter that projects away `confidential` no longer hides it from the roles.
    let mut rules = confidential_rules();
    rules["filters"] = json!([{"name": "slim", "apply_when": {}, "query": {},
                               "projection": {"confidential": 0}}]);
    let rules = rules_of(rules);
    let ctx = alice(&rules);
    let coll = rules.collection("hr.staff").unwrap();
    let stored = doc! {"_id": 1, "name": "Ann", "salary": 150_000, "confidential": true};
    for engine in ENGINES {
        let request = coll.prepare_with(&ctx, engine);
        let plan = request.query_plan(None, None).unwrap();
        assert_eq!(plan.store_projection, doc! {});
        assert_eq!(
            through_store(&request, &plan, &stored),
            Some(doc! {"name": "Ann"}),
            "{engine:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Property

/// Documents compared as bytes (so `NaN` equals itself, and order and types count).
fn same(a: Option<&Document>, b: Option<&Document>) -> bool {
    let bytes = |d: Option<&Document>| d.map(|d| bson::to_vec(d).unwrap());
    bytes(a) == bytes(b)
}

/// The visible part of an answer: what the client receives.
fn shown(r: &PlannedRead) -> Option<&Document> {
    r.outcome
        .document
        .as_ref()
        .filter(|_| r.selected && r.outcome.visible)
}

/// The specification of a planned read, computed from the plain decision on the stored
/// document: the filters' queries on the stored document, the client query on what the user may
/// see (the redacted document narrowed by the filters' projections), the output projection on
/// the redacted document (withheld when nothing is left).
fn expected(
    plain: &ReadOutcome,
    filters_select: bool,
    client: Option<&rolegate::rules::Expr>,
    filter_projection: &Document,
    output: &Document,
) -> Option<Document> {
    if !filters_select {
        return None;
    }
    let view = plain.document.as_ref()?;
    let seen = mql::project(filter_projection, view);
    if let Some(q) = client
        && !mql::matches(q, &seen).unwrap_or(false)
    {
        return None;
    }
    let out = if output.is_empty() {
        view.clone()
    } else {
        mql::project(output, view)
    };
    (!out.is_empty()).then_some(out)
}

/// For random rules, filters, client queries and projections, in both engines: the answer for
/// the stored document, and for the document as the database returns it under the store query
/// and projection, is the plain decision on the stored document, then the client query on the
/// redacted document, then the projection. So neither projection can change a role, a document
/// filter or a field rule.
#[test]
fn projections_never_change_decisions() {
    let strategy = proptest::prop_oneof![arb::case(), arb::field_case()].boxed();
    run_property(
        "projections_never_change_decisions",
        REGRESSIONS,
        1_500,
        strategy,
        |case| {
            let rules = match case.rules.load() {
                Ok(r) => r,
                Err(e) => return Ok(Verdict::Rejected(e)),
            };
            let ctx = case.request.context(&rules, false);
            let coll = rules.collection(arb::NAMESPACE).unwrap();
            let cq = case.client_query_bson().filter(|q| !q.is_empty());
            let cp = case.client_projection_bson();
            let client = cq.as_ref().map(|q| mql::compile_query(q).unwrap());
            for engine in ENGINES {
                let request = coll.prepare_with(&ctx, engine);
                let Ok(plan) = request.query_plan(cq.as_ref(), cp.as_ref()) else {
                    continue;
                };
                // The filters alone (the plan without the client's query).
                let Ok(filters_only) = request.query_plan(None, None) else {
                    continue;
                };
                let Ok(filter_query) = mql::compile_query(&filters_only.store_query) else {
                    continue;
                };
                for doc in &case.docs {
                    let stored = doc.bson();
                    let plain = request.read(&stored);
                    let Ok(filters_select) = mql::matches(&filter_query, &stored) else {
                        continue;
                    };
                    let want = expected(
                        &plain,
                        filters_select,
                        client.as_ref(),
                        filters_only.output_projection(),
                        plan.output_projection(),
                    );
                    let context = || {
                        format!(
                            "engine {engine:?}\nrules:\n{}{}\nclient query: {:?}\nclient projection: {:?}\nplan: {plan:?}\ndocument: {}\nplain: {plain:?}",
                            case.rules.rules_report(),
                            case.request.report(),
                            cq.as_ref().map(arb::show),
                            cp.as_ref().map(arb::show),
                            arb::show(&stored)
                        )
                    };
                    let direct = request.read_for(&plan, &stored);
                    if !same(shown(&direct), want.as_ref()) {
                        return Err(format!(
                            "read_for on the stored document: {direct:?}, expected {want:?}\n{}",
                            context()
                        ));
                    }
                    if plain.visible && plain.error.is_none() && filters_select {
                        // A selected, visible document keeps its role.
                        if direct.outcome.role != plain.role {
                            return Err(format!("role changed: {direct:?}\n{}", context()));
                        }
                    }
                    // The store projection may drop the deep part of a document deeper than
                    // `max_document_depth` (a resource limit, not the rules' meaning).
                    if rules.rule_set().limits.check_document(&stored).is_err() {
                        continue;
                    }
                    let via_store = request.find(&plan, std::slice::from_ref(&stored));
                    let via_store = match via_store {
                        Ok(v) => v,
                        Err(_) => continue,
                    };
                    let got = via_store.iter().find_map(|r| shown(r).cloned());
                    if !same(got.as_ref(), want.as_ref()) {
                        return Err(format!(
                            "through the store query and projection: {via_store:?}, expected {want:?}\nstore projection {:?}\n{}",
                            plan.store_projection,
                            context()
                        ));
                    }
                }
            }
            Ok(Verdict::Checked)
        },
    );
}

/// A plan is bound to the collection and the request it was made for: used with another
/// collection's request (other filters) or another user's, `read_for` refuses it.
#[test]
fn read_for_refuses_a_plan_made_for_another_collection_or_user() {
    let files: BTreeMap<String, Value> = [
        (
            "data_sources/mongodb-atlas/config.json",
            json!({"name": "mongodb-atlas", "type": "mongodb-atlas", "config": {}}),
        ),
        (
            "data_sources/mongodb-atlas/hr/open/rules.json",
            json!({"database": "hr", "collection": "open",
                   "roles": [{"name": "all", "apply_when": {}, "read": true}]}),
        ),
        (
            "data_sources/mongodb-atlas/hr/mine/rules.json",
            json!({"database": "hr", "collection": "mine",
                   "roles": [{"name": "all", "apply_when": {}, "read": true}],
                   "filters": [{"name": "own", "apply_when": {},
                                "query": {"owner": "%%user.id"}, "projection": {}}]}),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let rules = Rules::new(RuleSet::from_files(&files, &LoadOptions::default()).unwrap());
    let alice = alice(&rules);
    let bob = rules
        .context()
        .user(doc! {"id": "bob", "type": "normal", "data": {}, "custom_data": {}})
        .build()
        .unwrap();
    let theirs = doc! {"_id": 1, "owner": "alice"};
    for engine in ENGINES {
        let open = rules.collection("hr.open").unwrap();
        let mine = rules.collection("hr.mine").unwrap();
        let open_plan = open
            .prepare_with(&bob, engine)
            .query_plan(None, None)
            .unwrap();
        let bob_mine = mine.prepare_with(&bob, engine);
        // The open collection's plan has no filter: used on `hr.mine` it would skip `own`.
        let r = bob_mine.read_for(&open_plan, &theirs);
        assert!(
            !r.selected && !r.outcome.visible && r.outcome.error.is_some(),
            "{r:?}"
        );
        // Alice's plan carries her filter values.
        let alice_plan = mine
            .prepare_with(&alice, engine)
            .query_plan(None, None)
            .unwrap();
        assert!(!bob_mine.read_for(&alice_plan, &theirs).outcome.visible);
        // The request's own plan, also from another lookup of the same collection, works.
        let plan = bob_mine.query_plan(None, None).unwrap();
        assert!(!bob_mine.read_for(&plan, &theirs).selected);
        let again = rules.collection("hr.mine").unwrap();
        let plan = again
            .prepare_with(&alice, engine)
            .query_plan(None, None)
            .unwrap();
        assert!(
            mine.prepare_with(&alice, engine)
                .with_explain(true)
                .read_for(&plan, &theirs)
                .outcome
                .visible
        );
        // A plan built by hand is refused.
        let forged = rolegate::QueryPlan::default();
        assert!(!bob_mine.read_for(&forged, &theirs).outcome.visible);
    }
}
