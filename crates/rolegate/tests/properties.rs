//! Properties of the reference evaluator that need no second engine (issue 3, proof): redaction
//! never returns a field the role may not read, an insert is never allowed when some field is not
//! writable, a role after an always-applying role changes nothing, and the merged filter never
//! widens the client's query or projection.
//!
//! The field properties use simple roles (boolean permissions only) so that an independent model
//! of spec §3.2/§3.3/§3.5 can be computed here and compared with the reference.
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

use arb::{Case, FieldG, Pair, Perm, RoleG, RuleSetG, Tree};
use bson::{Bson, Document};
use check::{Verdict, run_property};
use proptest::prelude::*;
use rolegate::{EngineKind, mql};

const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/proptest-regressions/properties.txt"
);

// ---------------------------------------------------------------------------------------------
// Generators

/// One simple role that always applies: boolean `read`/`write`/`insert` (or absent), boolean
/// field rules (nested too) and `additional_fields`.
fn simple_role() -> BoxedStrategy<RoleG> {
    (
        arb::perm(arb::Site::Perm, 3, 1, 0),
        arb::perm(arb::Site::Perm, 3, 1, 0),
        arb::perm(arb::Site::Perm, 2, 1, 0),
        arb::tree(arb::BOOLEAN_ONLY, 0.9),
    )
        .prop_map(|(read, write, insert, tree)| RoleG {
            apply_when: Some(arb::E::Empty),
            read,
            write,
            insert,
            delete: Perm::Absent,
            search: None,
            document_filters: None,
            tree,
        })
        .boxed()
}

fn simple_case(role: BoxedStrategy<RoleG>) -> BoxedStrategy<Case> {
    (
        role,
        arb::request(),
        proptest::collection::vec(arb::document(), 1..=4),
    )
        .prop_map(|(role, mut request, docs)| {
            // The system user bypasses the rules; these properties are about roles.
            if let Some(u) = &mut request.user {
                u.kind = "normal";
            }
            let mutations = docs.iter().map(|_| vec![arb::Mutation::Keep; 9]).collect();
            Case {
                rules: RuleSetG {
                    roles: vec![role],
                    filters: Vec::new(),
                    placement: arb::Placement::Collection,
                    schema: None,
                    max_document_depth: None,
                },
                request,
                docs,
                mutations,
                client_query: None,
                client_projection: None,
            }
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// An independent model of field-level permissions for boolean rules (spec §3.2, §3.3, §3.5)

fn b(p: &Perm) -> Option<bool> {
    p.as_bool()
}

/// Permissions decided so far (a parent's `read`/`write` applies to all embedded fields).
#[derive(Clone, Copy)]
struct Decided {
    read: Option<bool>,
    write: Option<bool>,
}

fn no_perms() -> Pair {
    Pair {
        read: Perm::Absent,
        write: Perm::Absent,
    }
}

/// The readable part of `doc` under `tree`; a field is kept whole when its read (or write,
/// which implies read) is true, descended into when only nested rules can decide, else removed.
fn model_redact(tree: &Tree, doc: &Document, inherited: Decided) -> Document {
    let mut out = Document::new();
    for (key, value) in doc {
        let rule = tree.get(key);
        let none = no_perms();
        let perms = match rule {
            Some(r) => &r.perms,
            None => tree.additional.as_ref().unwrap_or(&none),
        };
        let read = inherited.read.or(b(&perms.read));
        let write = inherited.write.or(b(&perms.write));
        if read == Some(true) || write == Some(true) {
            out.insert(key.clone(), value.clone());
            continue;
        }
        let nested = rule.and_then(|r: &FieldG| r.nested.as_ref());
        if let (Some(nested), false) = (nested, read.is_some() && write.is_some()) {
            let d = Decided { read, write };
            match value {
                Bson::Document(sub) => {
                    let kept = model_redact(nested, sub, d);
                    if !kept.is_empty() {
                        out.insert(key.clone(), kept);
                    }
                }
                Bson::Array(items) => {
                    let kept: Vec<Bson> = items
                        .iter()
                        .filter_map(|item| match item {
                            Bson::Document(sub) => {
                                let k = model_redact(nested, sub, d);
                                (!k.is_empty()).then_some(Bson::Document(k))
                            }
                            _ => None,
                        })
                        .collect();
                    if !kept.is_empty() {
                        out.insert(key.clone(), kept);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// What a read returns under a simple role (spec §3.2): `None` when withheld.
fn model_read(role: &RoleG, doc: &Document) -> Option<Document> {
    if b(&role.read) == Some(true) || b(&role.write) == Some(true) {
        return Some(doc.clone());
    }
    if b(&role.read) == Some(false) {
        return None;
    }
    let redacted = model_redact(
        &role.tree,
        doc,
        Decided {
            read: None,
            write: b(&role.write),
        },
    );
    (!redacted.is_empty()).then_some(redacted)
}

/// Whether every field of a new document is writable under `tree` (spec §3.3: inserts write
/// every field; nested rules decide embedded documents field by field, element-wise in arrays).
fn model_all_writable(tree: &Tree, doc: &Document) -> bool {
    doc.iter().all(|(key, value)| {
        let rule = tree.get(key);
        let none = no_perms();
        let perms = match rule {
            Some(r) => &r.perms,
            None => tree.additional.as_ref().unwrap_or(&none),
        };
        match (b(&perms.write), rule.and_then(|r| r.nested.as_ref())) {
            (Some(w), _) => w,
            (None, Some(nested))
                if !(nested.fields.as_ref().is_none_or(Vec::is_empty)
                    && nested.additional.is_none()) =>
            {
                match value {
                    Bson::Document(sub) => model_all_writable(nested, sub),
                    Bson::Array(items) => items.iter().all(|item| match item {
                        Bson::Document(sub) => model_all_writable(nested, sub),
                        _ => false,
                    }),
                    _ => false,
                }
            }
            (None, _) => false,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Properties

fn show(d: &Option<Document>) -> String {
    d.as_ref()
        .map(arb::show)
        .unwrap_or_else(|| "withheld".into())
}

/// Redaction never returns a field the role may not read: every returned top-level field is
/// readable under the independent model (and, for these simple roles, the whole redacted
/// document equals the model's).
#[test]
fn redaction_never_returns_an_unreadable_field() {
    run_property(
        "redaction_never_returns_an_unreadable_field",
        REGRESSIONS,
        1_000,
        simple_case(simple_role()),
        |case| {
            let rules = match case.rules.load() {
                Ok(r) => r,
                Err(e) => return Ok(Verdict::Rejected(e)),
            };
            let role = &case.rules.roles[0];
            let ctx = case.request.context(&rules, false);
            let coll = rules.collection(arb::NAMESPACE).unwrap();
            let p = coll.prepare_with(&ctx, EngineKind::Reference);
            for doc in &case.docs {
                let doc = doc.bson();
                let got = p.read(&doc).document;
                let want = model_read(role, &doc);
                let context = || {
                    format!(
                        "rules:\n{}document: {}\nreference: {}\nmodel: {}",
                        case.rules.rules_report(),
                        arb::show(&doc),
                        show(&got),
                        show(&want)
                    )
                };
                if let Some(g) = &got {
                    for (key, value) in g {
                        let allowed = want.as_ref().and_then(|w| w.get(key));
                        if allowed.is_none() {
                            return Err(format!(
                                "field `{key}` returned but not readable\n{}",
                                context()
                            ));
                        }
                        let same = |x: Option<&Bson>| {
                            x.is_some_and(|x| {
                                arb::bytes(&bson::doc! {"v": x.clone()})
                                    == arb::bytes(&bson::doc! {"v": value.clone()})
                            })
                        };
                        if !same(doc.get(key)) && !same(allowed) {
                            return Err(format!(
                                "field `{key}` returned with unreadable parts\n{}",
                                context()
                            ));
                        }
                    }
                }
                if got.as_ref().map(arb::bytes) != want.as_ref().map(arb::bytes) {
                    return Err(format!(
                        "redacted document differs from the model\n{}",
                        context()
                    ));
                }
            }
            Ok(Verdict::Checked)
        },
    );
}

/// An insert is never allowed when some field of the new document is not writable (role `write`
/// undefined, field rules decide); and with `insert` not false, one that is writable everywhere
/// is allowed.
#[test]
fn insert_is_never_allowed_when_a_field_is_not_writable() {
    let role = simple_role()
        .prop_map(|mut r| {
            r.write = Perm::Absent;
            r
        })
        .boxed();
    run_property(
        "insert_is_never_allowed_when_a_field_is_not_writable",
        REGRESSIONS,
        1_000,
        simple_case(role),
        |case| {
            let rules = match case.rules.load() {
                Ok(r) => r,
                Err(e) => return Ok(Verdict::Rejected(e)),
            };
            let role = &case.rules.roles[0];
            let ctx = case.request.context(&rules, false);
            let coll = rules.collection(arb::NAMESPACE).unwrap();
            let p = coll.prepare_with(&ctx, EngineKind::Reference);
            for doc in &case.docs {
                let doc = doc.bson();
                let outcome = p.insert(&doc);
                let writable = model_all_writable(&role.tree, &doc);
                let expected = writable && b(&role.insert) != Some(false);
                if outcome.allowed && !writable || outcome.allowed != expected {
                    return Err(format!(
                        "rules:\n{}document: {}\nreference: {:?}\nmodel: every field writable = {writable}, insert = {:?}",
                        case.rules.rules_report(),
                        arb::show(&doc),
                        outcome,
                        role.insert
                    ));
                }
            }
            Ok(Verdict::Checked)
        },
    );
}

/// Adding a role after a role whose `apply_when` is `{}` changes no outcome (reads, searches,
/// inserts, updates, deletes), in both engines.
#[test]
fn a_role_after_an_always_role_changes_nothing() {
    let strategy = (
        arb::case(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        arb::role(),
    )
        .prop_map(|(mut case, always, at, extra)| {
            let n = case.rules.roles.len();
            let i = always.index(n);
            case.rules.roles[i].apply_when = Some(arb::E::Empty);
            // The extra role goes somewhere after role `i`.
            let pos = i + 1 + at.index(n - i);
            (case, extra, pos)
        })
        .boxed();
    run_property(
        "a_role_after_an_always_role_changes_nothing",
        REGRESSIONS,
        1_000,
        strategy,
        |(case, extra, pos)| {
            let pos = *pos;
            let extra = extra.clone();
            let base = case.clone();
            let mut with = base.clone();
            with.rules.roles.insert(pos, extra);
            let (rules_a, rules_b) = match (base.rules.load(), with.rules.load()) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return Ok(Verdict::Rejected(e)),
            };
            for engine in [EngineKind::Reference, EngineKind::Compiled] {
                let ctx_a = base.request.context(&rules_a, false);
                let ctx_b = base.request.context(&rules_b, false);
                let ca = rules_a.collection(arb::NAMESPACE).unwrap();
                let cb = rules_b.collection(arb::NAMESPACE).unwrap();
                let pa = ca.prepare_with(&ctx_a, engine);
                let pb = cb.prepare_with(&ctx_b, engine);
                let sctx_a = base.request.context(&rules_a, true);
                let sctx_b = base.request.context(&rules_b, true);
                let sa = ca.prepare_with(&sctx_a, engine);
                let sb = cb.prepare_with(&sctx_b, engine);
                for (pre, post) in base.updates() {
                    let fail = |what: &str, a: String, b: String| {
                        Err(format!(
                            "{what} changed by adding role r{} at position {pos} ({} engine)\nrules without:\n{}rules with:\n{}{}\ndocument: {}\npost-image: {}\nwithout: {a}\nwith:    {b}",
                            base.rules.roles.len(),
                            engine.as_str(),
                            base.rules.rules_report(),
                            with.rules.rules_report(),
                            base.request.report(),
                            arb::show(&pre),
                            arb::show(&post)
                        ))
                    };
                    for (what, x, y) in [
                        ("read", pa.read(&pre), pb.read(&pre)),
                        ("search", sa.read(&pre), sb.read(&pre)),
                    ] {
                        if x.role != y.role
                            || x.visible != y.visible
                            || x.error.is_some() != y.error.is_some()
                            || x.document.as_ref().map(arb::bytes)
                                != y.document.as_ref().map(arb::bytes)
                        {
                            return fail(what, format!("{x:?}"), format!("{y:?}"));
                        }
                    }
                    for (what, x, y) in [
                        ("insert", pa.insert(&pre), pb.insert(&pre)),
                        ("update", pa.update(&pre, &post), pb.update(&pre, &post)),
                        ("delete", pa.delete(&pre), pb.delete(&pre)),
                    ] {
                        if x.role != y.role
                            || x.allowed != y.allowed
                            || x.error.as_ref().map(|e| e.code) != y.error.as_ref().map(|e| e.code)
                        {
                            return fail(what, format!("{x:?}"), format!("{y:?}"));
                        }
                    }
                }
            }
            Ok(Verdict::Checked)
        },
    );
}

/// `sub` is contained in `sup`: every key of `sub` is in `sup` with a contained value; arrays are
/// contained when their elements are contained, in order, in elements of the other.
fn contained(sub: &Bson, sup: &Bson) -> bool {
    match (sub, sup) {
        (Bson::Document(a), Bson::Document(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| contained(v, w))),
        (Bson::Array(a), Bson::Array(b)) => {
            let mut rest = b.iter();
            a.iter().all(|x| rest.any(|y| contained(x, y)))
        }
        (a, b) => {
            arb::bytes(&bson::doc! {"v": a.clone()}) == arb::bytes(&bson::doc! {"v": b.clone()})
        }
    }
}

/// The merged filter never widens the client's query: a document the merged query selects is
/// selected by the client's query; and the merged projection never shows more than the client's
/// projection or the projection of any applied filter.
#[test]
fn merged_filter_never_widens_the_client_query() {
    let strategy = (
        arb::case(),
        proptest::collection::vec(arb::filter(), 0..=3),
        proptest::collection::vec(arb::document(), 2..=6),
    )
        .prop_map(|(mut case, filters, docs)| {
            case.rules.filters = filters;
            case.mutations = docs.iter().map(|_| vec![arb::Mutation::Keep; 9]).collect();
            case.docs = docs;
            case
        })
        .boxed();
    run_property(
        "merged_filter_never_widens_the_client_query",
        REGRESSIONS,
        1_000,
        strategy,
        |case| {
            let rules = match case.rules.load() {
                Ok(r) => r,
                Err(e) => return Ok(Verdict::Rejected(e)),
            };
            let ctx = case.request.context(&rules, false);
            let coll = rules.collection(arb::NAMESPACE).unwrap();
            let p = coll.prepare_with(&ctx, EngineKind::Reference);
            let cq = case.client_query_bson();
            let cp = case.client_projection_bson();
            let Ok(plan) = p.query_plan(cq.as_ref(), cp.as_ref()) else {
                return Ok(Verdict::Checked);
            };
            // A filter query can be invalid once substituted (`$in` of a string): the database
            // refuses it, which widens nothing.
            let Ok(merged) = mql::compile_query(plan.merged_query()) else {
                return Ok(Verdict::Checked);
            };
            let client = cq.as_ref().map(|q| mql::compile_query(q).unwrap());
            let mut projections: Vec<(String, Document)> = Vec::new();
            if let Some(cp) = &cp {
                projections.push(("client".into(), cp.clone()));
            }
            for name in &plan.applied {
                let i: usize = name.trim_start_matches('f').parse().unwrap();
                if let Some(pr) = &case.rules.filters[i].projection {
                    projections.push((name.clone(), pr.bson()));
                }
            }
            for doc in &case.docs {
                let doc = doc.bson();
                let context = || {
                    format!(
                        "rules:\n{}{}\nclient query: {:?}\nclient projection: {:?}\nplan: {plan:?}\ndocument: {}",
                        case.rules.rules_report(),
                        case.request.report(),
                        cq.as_ref().map(arb::show),
                        cp.as_ref().map(arb::show),
                        arb::show(&doc)
                    )
                };
                if let (Ok(m), Some(Ok(c))) = (
                    mql::matches(&merged, &doc),
                    client.as_ref().map(|q| mql::matches(q, &doc)),
                ) && m
                    && !c
                {
                    return Err(format!(
                        "merged query selects a document the client's does not\n{}",
                        context()
                    ));
                }
                let shown = Bson::Document(mql::project(plan.output_projection(), &doc));
                for (origin, pr) in &projections {
                    let limit = Bson::Document(mql::project(pr, &doc));
                    if !contained(&shown, &limit) {
                        return Err(format!(
                            "merged projection shows {} where the {origin} projection shows only {}\n{}",
                            shown.clone().into_relaxed_extjson(),
                            limit.into_relaxed_extjson(),
                            context()
                        ));
                    }
                }
            }
            Ok(Verdict::Checked)
        },
    );
}
