//! Properties of the read residual ([`rolegate::Residual`], [`rolegate::QueryPlan::residual`]) on
//! random rule sets (random roles, 30–60 indexable roles, roles driven by field rules, roles
//! of early-deciding and failing tests), users (custom data, hostile values), the system user,
//! requests (search or not) and documents — the generators of `tests/differential/arb.rs`:
//!
//! * **the query compiles**: a residual query is accepted by the in-memory matcher
//!   ([`rolegate::mql::compile_query`]) and matches every document without an error;
//! * **soundness**: every document the read decision makes visible (`read_for` with a plan
//!   without client query or projection, and `read`) matches the residual; a residual of
//!   *nothing* has no visible document;
//! * **exactness**: when the residual is exact, every document that matches it is visible to
//!   `read` (*everything* exact: every document), unless the depth limit refuses the document;
//! * **operations agree**: `find` (the case's client query and projection, a limit sometimes),
//!   `count` (the same query) and `aggregate` with `[{"$match": {}}]` answer the same with
//!   pushdown on and off, on the in-memory store — except that with a residual of *nothing*
//!   the store is not read, so a store query the store cannot run (a filter's `$in` of a
//!   substituted string) fails only without pushdown.
//!
//! Each property runs [`CASES`] cases (`PROPTEST_CASES=n` overrides); with `--nocapture` each
//! prints how many residuals were everything, nothing or a query, and how many exact (shrinking
//! steps included when a property fails). Failing seeds go to
//! `proptest-regressions/residual_props.txt`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "differential/arb.rs"]
mod arb;
mod ops_support;
use ops_support::{body, env, load, store_of, stored};

use std::cell::RefCell;
use std::time::Instant;

use bson::{Document, doc};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use rolegate::ops::{MemoryStore, Operation, execute};
use rolegate::{Limits, PreparedRequest, Residual};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/residual_props.txt"
);

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 10_000;

fn config() -> ProptestConfig {
    ops_support::config(CASES, REGRESSIONS)
}

/// Runs `body` on `store`: the result as relaxed Extended JSON, or the error code.
fn call(request: &PreparedRequest<'_, '_>, store: &mut MemoryStore, body: &Document) -> String {
    let op = match Operation::from_body(body) {
        Ok(op) => op,
        Err(e) => return format!("parse error: {}", e.detail()),
    };
    match execute(request, &op, store, &mut env()) {
        Ok(d) => d.result.into_relaxed_extjson().to_string(),
        Err(e) => format!("error {}", e.code()),
    }
}

// ---------------------------------------------------------------------------------------------
// Counts of residual kinds

#[derive(Default, Debug)]
struct Tally {
    cases: u64,
    system: u64,
    everything: u64,
    nothing: u64,
    query: u64,
    exact: u64,
}

impl Tally {
    fn add(&mut self, residual: &Residual, who: As) {
        self.cases += 1;
        self.system += u64::from(who.system);
        match residual {
            Residual::Everything { .. } => self.everything += 1,
            Residual::Nothing => self.nothing += 1,
            Residual::Query { .. } => self.query += 1,
        }
        if residual.is_exact() {
            self.exact += 1;
        }
    }

    fn print(&self, name: &str, started: Instant) {
        let pct = |n: u64| {
            if self.cases == 0 {
                0.0
            } else {
                100.0 * n as f64 / self.cases as f64
            }
        };
        eprintln!(
            "{name}: {} residuals ({} of the system user) in {:.1?}: everything {} ({:.1}%), nothing {} ({:.1}%), query {} ({:.1}%); exact {} ({:.1}%)",
            self.cases,
            self.system,
            started.elapsed(),
            self.everything,
            pct(self.everything),
            self.nothing,
            pct(self.nothing),
            self.query,
            pct(self.query),
            self.exact,
            pct(self.exact),
        );
    }
}

/// Runs `test` over `strategy` with [`config`], then prints the tally.
fn run<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value, &mut Tally) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let started = Instant::now();
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |value| test(value, &mut tally.borrow_mut()));
    tally.borrow().print(name, started);
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

/// A rule set, a request and stored documents (`arb`'s cases without the update post-images,
/// which cost more to draw than the rest and which no property here reads), and a client
/// query and projection.
#[derive(Debug, Clone)]
struct Case {
    rules: arb::RuleSetG,
    request: arb::ReqG,
    docs: Vec<arb::Doc>,
    client_query: Option<arb::QueryG>,
    client_projection: Option<arb::Proj>,
}

impl From<arb::Case> for Case {
    fn from(c: arb::Case) -> Case {
        Case {
            rules: c.rules,
            request: c.request,
            docs: c.docs,
            client_query: c.client_query,
            client_projection: c.client_projection,
        }
    }
}

impl Case {
    fn client_query_bson(&self) -> Option<Document> {
        self.client_query
            .as_ref()
            .map(|q| arb::literal_query(&q.json()))
    }

    fn client_projection_bson(&self) -> Option<Document> {
        self.client_projection.as_ref().map(arb::Proj::bson)
    }
}

/// Cases over `rules` with `docs` stored documents; a client query and projection only when
/// `client` (they cost time to draw).
fn case_of(
    rules: BoxedStrategy<arb::RuleSetG>,
    docs: std::ops::RangeInclusive<usize>,
    client: bool,
) -> impl Strategy<Value = Case> {
    let (query, projection) = if client {
        (
            option::weighted(0.5, arb::client_query()).boxed(),
            option::weighted(0.4, arb::projection()).boxed(),
        )
    } else {
        (Just(None).boxed(), Just(None).boxed())
    };
    (
        rules,
        arb::request(),
        vec(arb::document(), docs),
        query,
        projection,
    )
        .prop_map(
            |(rules, request, docs, client_query, client_projection)| Case {
                rules,
                request,
                docs,
                client_query,
                client_projection,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// The residual bounds the read decision

/// What the case is run as: the system user or not, a search request or not.
#[derive(Debug, Clone, Copy)]
struct As {
    system: bool,
    search: bool,
}

fn as_user() -> impl Strategy<Value = As> {
    (proptest::bool::weighted(0.1), proptest::bool::weighted(0.2))
        .prop_map(|(system, search)| As { system, search })
}

fn report(case: &Case, who: As, residual: &Residual, docs: &[Document]) -> String {
    format!(
        "rules: {}\n{}\nsystem {} search {}\nresidual: {}\ndocuments: {}",
        case.rules.rules_report(),
        case.request.report(),
        who.system,
        who.search,
        residual.describe(),
        docs.iter().map(arb::show).collect::<Vec<_>>().join("\n  ")
    )
}

/// Properties a, b and d on one case: the residual query compiles and never fails on a
/// document, every visible document matches it, and an exact one shows every document it
/// matches.
fn bounds(case: &Case, who: As, tally: &mut Tally) -> Result<(), TestCaseError> {
    prepared(case, who, |request| bounds_of(case, who, request, tally))
}

fn bounds_of(
    case: &Case,
    who: As,
    request: &PreparedRequest<'_, '_>,
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let plan = request
        .query_plan(None, None)
        .map_err(|_| TestCaseError::reject("the plan fails (a filter's apply_when)"))?;
    let residual = plan
        .residual()
        .expect("a request's plan has a residual")
        .clone();
    tally.add(&residual, who);
    let docs = stored(&case.docs);
    let report = || report(case, who, &residual, &docs);
    let query = match residual.query() {
        None => None,
        Some(q) => match rolegate::mql::compile_query(q) {
            Ok(expr) => Some(expr),
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "the residual query does not compile: {e}\n{}",
                    report()
                )));
            }
        },
    };
    let mut limits = Limits::default();
    if let Some(d) = case.rules.max_document_depth {
        limits.max_document_depth = d;
    }
    for doc in &docs {
        let matched = match (&residual, &query) {
            (Residual::Everything { .. }, _) => true,
            (Residual::Nothing, _) => false,
            (Residual::Query { .. }, Some(q)) => match rolegate::mql::matches(q, doc) {
                Ok(m) => m,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "the residual query fails on {}: {e}\n{}",
                        arb::show(doc),
                        report()
                    )));
                }
            },
            (Residual::Query { .. }, None) => unreachable!(),
        };
        // `read_for` (a plan without client query or projection) adds the filters' queries and
        // projections to the decision: visible there is visible to `read`. `read` itself runs
        // where `read_for` does not tell: documents the filters do not select, and documents
        // an exact residual says are visible.
        let planned = request.read_for(&plan, doc);
        let visible = planned.selected && planned.outcome.visible;
        prop_assert!(
            !visible || matched,
            "a document visible to read_for does not match the residual: {}\nread_for: {:?}\n{}",
            arb::show(doc),
            planned,
            report()
        );
        let exact = residual.is_exact() && matched && limits.check_document(doc).is_ok();
        if !visible && (!planned.selected || exact) {
            let read = request.read(doc);
            prop_assert!(
                !read.visible || matched,
                "a visible document does not match the residual: {}\nread: {:?}\n{}",
                arb::show(doc),
                read,
                report()
            );
            prop_assert!(
                !exact || read.visible,
                "a document that matches an exact residual is withheld: {}\nread: {:?}\n{}",
                arb::show(doc),
                read,
                report()
            );
        }
    }
    Ok(())
}

#[test]
fn the_residual_bounds_the_read_decision() {
    // Random roles, and now and then 30–60 indexable roles (costlier to load and plan).
    let rules = prop_oneof![3 => arb::rule_set(), 1 => arb::many_roles_set()].boxed();
    run(
        "bounds (random roles, many indexable roles)",
        (case_of(rules, 1..=8, false), as_user()),
        |(case, who), tally| bounds(&case, who, tally),
    );
}

#[test]
fn the_residual_bounds_the_read_decision_under_field_rules() {
    // Roles driven by field rules, and now and then roles of early-deciding and failing
    // tests (`arb::ordered_case`: evaluation order decides whether a failure is reached).
    let cases = prop_oneof![
        3 => case_of(arb::field_rule_set(), 1..=8, false).boxed(),
        1 => arb::ordered_case().prop_map(Case::from).boxed(),
    ];
    run(
        "bounds (field rules, failing tests)",
        (cases, as_user()),
        |(case, who), tally| bounds(&case, who, tally),
    );
}

// ---------------------------------------------------------------------------------------------
// Operations agree with pushdown on and off

/// Property c on one case: `find`, `count` and `aggregate` answer the same with and without
/// the residual in the store query — except where `max_document_depth` binds: with pushdown
/// the store does not return fields no role can read (the projection residual), so a document
/// deep only in such fields is not withheld for its depth (P4). Such a difference must then
/// vanish when the case runs again without its depth limit.
fn operations_agree(
    case: &Case,
    limit: i64,
    who: As,
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    prepared(case, who, |on| agree_on(case, limit, who, on, tally))
}

fn agree_on(
    case: &Case,
    limit: i64,
    who: As,
    on: &PreparedRequest<'_, '_>,
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let off = on.with_pushdown(false);
    let mut nothing = false;
    if let Ok(plan) = on.query_plan(None, None) {
        let residual = plan.residual().expect("a request's plan has a residual");
        tally.add(residual, who);
        nothing = *residual == Residual::Nothing;
    }
    let docs = stored(&case.docs);
    let query = case.client_query_bson();
    let mut find = doc! {"query": query.clone().unwrap_or_default()};
    if let Some(p) = case.client_projection_bson() {
        find.insert("project", p);
    }
    if limit != 0 {
        find.insert("limit", limit);
    }
    let bodies = [
        body("find", find),
        body("count", doc! {"query": query.unwrap_or_default()}),
        body("aggregate", doc! {"pipeline": [{"$match": {}}]}),
    ];
    for b in &bodies {
        let with = call(on, &mut store_of(&docs), b);
        let without = call(&off, &mut store_of(&docs), b);
        // With a residual of nothing the store is not read, so a store query the store cannot
        // run (a filter's `$in` of a substituted string) fails only without pushdown.
        if without == "error InternalServerError" && nothing {
            continue;
        }
        if with != without
            && case.rules.max_document_depth.is_some()
            && depth_explains(case, who, b)?
        {
            continue;
        }
        prop_assert_eq!(
            &with,
            &without,
            "pushdown changes the answer to {}\non:  {}\noff: {}\nrules: {}\n{}\nsystem {} search {}\nresidual: {:?}\ndocuments: {}",
            b,
            with,
            without,
            case.rules.rules_report(),
            case.request.report(),
            who.system,
            who.search,
            on.query_plan(None, None)
                .ok()
                .and_then(|p| p.residual().map(Residual::describe)),
            docs.iter().map(arb::show).collect::<Vec<_>>().join("\n  ")
        );
    }
    Ok(())
}

/// Whether `body` answers the same with and without pushdown once `case`'s depth limit is
/// lifted (then the depth limit alone made them differ).
fn depth_explains(case: &Case, who: As, b: &Document) -> Result<bool, TestCaseError> {
    let mut relaxed = case.clone();
    relaxed.rules.max_document_depth = None;
    let docs = stored(&relaxed.docs);
    prepared(&relaxed, who, |on| {
        Ok(call(on, &mut store_of(&docs), b)
            == call(&on.with_pushdown(false), &mut store_of(&docs), b))
    })
}

/// Runs `test` on the request `case` prepares for `who` on its collection.
fn prepared<T>(
    case: &Case,
    who: As,
    test: impl FnOnce(&PreparedRequest<'_, '_>) -> Result<T, TestCaseError>,
) -> Result<T, TestCaseError> {
    let rules = load(&case.rules)?;
    let ctx = case
        .request
        .context(&rules, who.search)
        .with_system(who.system);
    let coll = rules.collection(arb::NAMESPACE).unwrap();
    test(&coll.prepare(&ctx))
}

fn limit() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 1 => -2i64..4]
}

#[test]
fn operations_agree_with_and_without_pushdown() {
    let rules = prop_oneof![arb::rule_set(), arb::field_rule_set()].boxed();
    run(
        "operations (random roles, field rules)",
        (case_of(rules, 1..=4, true), limit(), as_user()),
        |(case, limit, who), tally| operations_agree(&case, limit, who, tally),
    );
}
