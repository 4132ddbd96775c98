//! Fuzz target `context`: hostile request contexts over generated rules, through both engines.
//!
//! The input bytes drive a generator (no parsing to get past): rules from the `evaluate`
//! generator (`evaluate.rs`, included as a module) whose request expansions are rewritten to
//! reach every part of the context (`%%user.id`, `%%user.type`, `%%user.data.*`,
//! `%%user.custom_data.*` with keys sharing prefixes, `%%user.identities`, `%%values.*`,
//! `%%request.*`, `%%environment.*`, and the roots whole), plus filters whose `apply_when` and
//! queries expand the context; and a context whose values are operator-shaped documents
//! (`$ne`, `$gt`, `$where`, `$regex`, `$in`, nested), BSON regular expressions, JavaScript code,
//! nulls, missing values, long keys sharing prefixes (`team`, `teamName`, `team.lead`) and
//! chains nested just under, at and just over `max_document_depth`. The user's `type` is
//! sometimes `"system"`.
//!
//! Checks beyond "no panic":
//! * the compiled engine and the reference evaluator agree on the read (role, visibility,
//!   redacted document, failure), the raw read, insert/update/delete, and the query plan;
//! * a context nested deeper than `max_document_depth` fails closed: every read is withheld
//!   with a reason, every write denied with a reason, the query plan refused;
//! * a user document with `"type": "system"` is not the system user: unless the rules read
//!   `%%user.type` (or `%%user` whole), every decision is the one the same user gets with
//!   `"type": "normal"`;
//! * the client-safe view of every failure (`client_error()`) holds no document or context
//!   value (all generated strings carry a marker that is searched for).
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/context.rs`) and the regression tests
//! (`crates/rolegate/src/fuzz_regressions.rs`), which include this file with `#[path]`: it may use only
//! `rolegate`, `serde_json` and `bson`.

use std::sync::Arc;

use bson::{Bson, Document, JavaScriptCodeWithScope, Regex, doc, oid::ObjectId};
use rolegate::{
    EngineKind, FunctionCheck, Limits, LoadOptions, PreparedRequest, RequestContext, RuleSet,
    Rules, Scratch,
};
use serde_json::{Value, json};

#[allow(
    dead_code,
    reason = "the generator of the `evaluate` check; this check uses part of it"
)]
#[path = "evaluate.rs"]
mod evaluate;

use evaluate::{FIELDS, Gen};

/// The marker in every generated string value of documents and contexts: a client-safe error
/// that contains it leaks a value.
const MARK: &str = "sEcReT";

/// Request expansions the rules are rewritten to use.
const CONTEXT_EXPANSIONS: &[&str] = &[
    "%%user.id",
    "%%user.type",
    "%%user.data.email",
    "%%user.data.role",
    "%%user.custom_data.team",
    "%%user.custom_data.teamName",
    "%%user.custom_data.team.lead",
    "%%user.custom_data.t",
    "%%user.custom_data.list",
    "%%user.custom_data.deep",
    "%%user.custom_data.missing",
    "%%user.identities",
    "%%user.identities.id",
    "%%user",
    "%%values.v",
    "%%values.vv",
    "%%values.v.x",
    "%%values",
    "%%request.remoteIPAddress",
    "%%request.requestHeaders.x",
    "%%request.x",
    "%%environment.tag",
    "%%environment.values.flag",
    "%%environment.values.flags",
    "%%environment",
];

/// Expansions of the `evaluate` generator that are rewritten (document roots stay as they are).
fn rewritable(s: &str) -> bool {
    s.starts_with("%%user") || s.starts_with("%%values")
}

/// Rewrites request expansions (as values and as keys) to context expansions the bytes pick.
fn rewrite(g: &mut Gen<'_>, v: &mut Value) {
    match v {
        Value::String(s) if rewritable(s) && g.chance(3) => {
            *s = g.pick(CONTEXT_EXPANSIONS).to_string();
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(g, i)),
        Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut val) in old {
                rewrite(g, &mut val);
                let k = if rewritable(&k) && g.chance(3) {
                    g.pick(CONTEXT_EXPANSIONS).to_string()
                } else {
                    k
                };
                m.insert(k, val);
            }
        }
        _ => {}
    }
}

/// A scalar that documents and contexts share (so that comparisons sometimes hold).
fn scalar(g: &mut Gen<'_>) -> Bson {
    match g.below(7) {
        0 => Bson::String("u1".into()),
        1 => Bson::String("u2".into()),
        2 => Bson::String("x".into()),
        3 => Bson::Int32(i32::from(g.byte() % 4)),
        4 => Bson::ObjectId(ObjectId::parse_str(evaluate::OID).unwrap_or_default()),
        5 => Bson::String(format!("{MARK}-{}", g.byte())),
        _ => Bson::Boolean(g.chance(2)),
    }
}

/// A chain of `levels` nested documents (or arrays) around a scalar.
fn chain(g: &mut Gen<'_>, levels: usize) -> Bson {
    let arrays = g.chance(1);
    let mut v = scalar(g);
    for _ in 0..levels {
        v = if arrays {
            Bson::Array(vec![v])
        } else {
            Bson::Document(doc! {"x": v})
        };
    }
    v
}

/// A hostile context value; `None` for a missing one.
fn context_value(g: &mut Gen<'_>, depth: usize) -> Option<Bson> {
    let v = match g.below(if depth == 0 { 11 } else { 16 }) {
        0 => Bson::Document(doc! {"$ne": scalar(g)}),
        1 => Bson::Document(doc! {"$gt": scalar(g)}),
        2 => Bson::Document(doc! {"$where": "sleep(100) || true"}),
        3 => Bson::Document(doc! {"$regex": "^u", "$options": "i"}),
        4 => Bson::RegularExpression(Regex {
            pattern: g.pick(&["^u", ".*", "x$", "("]).to_string(),
            options: g.pick(&["", "i", "s"]).to_string(),
        }),
        5 => Bson::Null,
        6 => return None,
        7 => Bson::JavaScriptCode("function() { return true; }".into()),
        8 => Bson::Document(doc! {"$in": ["u1", "u2", 2]}),
        9 => Bson::Document(doc! {"$exists": true}),
        10 => scalar(g),
        11 if g.byte() < 48 => {
            // Just under, at and just over the default `max_document_depth` (100).
            let levels = g.pick(&[20, 96, 97, 98, 99, 100, 101, 102, 150]);
            chain(g, levels)
        }
        12 => {
            let mut d = Document::new();
            for _ in 0..1 + g.below(3) {
                let k = g.pick(&["x", "y", "$eq", "$ne", "$gt", "a.b", ""]);
                if let Some(v) = context_value(g, depth - 1) {
                    d.insert(k, v);
                }
            }
            Bson::Document(d)
        }
        13 => Bson::Array(
            (0..g.below(4))
                .filter_map(|_| context_value(g, depth - 1))
                .collect(),
        ),
        14 => Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
            code: "x".into(),
            scope: doc! {"x": context_value(g, depth - 1).unwrap_or(Bson::Null)},
        }),
        _ => {
            // Long keys sharing prefixes.
            let mut d = Document::new();
            for k in ["team", "teamName", "team.lead", "t", "tea", "teamName2"] {
                if g.chance(2) {
                    d.insert(k, context_value(g, depth - 1).unwrap_or(Bson::Null));
                }
            }
            Bson::Document(d)
        }
    };
    Some(v)
}

/// A document of `keys`, each with a context value (or missing).
fn context_doc(g: &mut Gen<'_>, keys: &[&str]) -> Document {
    let mut d = Document::new();
    for k in keys {
        if let Some(v) = context_value(g, 2) {
            d.insert(*k, v);
        }
    }
    d
}

/// A filter that expands the context in its `apply_when` and query.
fn filter(g: &mut Gen<'_>, i: usize) -> Value {
    let apply_when = match g.below(4) {
        0 => json!({}),
        1 => json!({g.pick(CONTEXT_EXPANSIONS): {"$exists": g.chance(2)}}),
        2 => json!({g.pick(CONTEXT_EXPANSIONS): g.pick(&["u1", "x"])}),
        _ => json!({"%%true": true}),
    };
    let field = g.pick(FIELDS);
    let query = match g.below(5) {
        0 => json!({}),
        1 => json!({field: g.pick(CONTEXT_EXPANSIONS)}),
        2 => json!({field: {"$in": g.pick(CONTEXT_EXPANSIONS)}}),
        3 => json!({field: {"$ne": g.pick(CONTEXT_EXPANSIONS)}}),
        _ => json!({"$or": [{field: g.pick(CONTEXT_EXPANSIONS)}, {"owner": "u1"}]}),
    };
    let projection = match g.below(3) {
        0 => json!({}),
        1 => json!({"n": 0}),
        _ => json!({"a": 1, "owner": 1}),
    };
    json!({"name": format!("f{i}"), "apply_when": apply_when, "query": query, "projection": projection})
}

/// Every decision of one request, in a comparable form.
#[derive(Debug, PartialEq)]
struct Decisions {
    read: (Option<String>, bool, Option<Document>, bool),
    raw: Option<(Option<String>, bool, bool)>,
    writes: Vec<(bool, Option<String>, bool)>,
    plan: Result<(Vec<String>, Document, Document), String>,
}

/// Checks that a client-safe error text holds no generated value.
fn client_safe(text: &str) {
    assert!(
        !text.contains(MARK) && !text.contains("u1") && !text.contains("u2"),
        "client error leaks a value: {text}"
    );
}

fn decide(
    req: &PreparedRequest<'_, '_>,
    stored: &Document,
    post: &Document,
    too_deep: bool,
) -> Decisions {
    let r = req.read(stored);
    if let Some(e) = r.client_error() {
        client_safe(&e.to_string());
    }
    assert_eq!(r.error.is_some(), r.client_error().is_some());
    if r.error.is_some() {
        assert!(
            !r.visible && r.document.is_none(),
            "failed but visible: {r:?}"
        );
    }
    let raw = bson::RawDocumentBuf::from_document(stored).ok().map(|raw| {
        let d = req.read_raw(&raw, &mut Scratch::new());
        let role = d.role.and_then(|i| req.role_name(i)).map(str::to_string);
        (role, d.visible, d.error)
    });
    let mut writes = Vec::new();
    for w in [
        req.insert(stored),
        req.update(stored, post),
        req.delete(stored),
    ] {
        if let Some(e) = w.client_error() {
            client_safe(&e.to_string());
        }
        if w.allowed {
            assert!(w.error.is_none(), "allowed with an error: {w:?}");
        }
        if too_deep {
            assert!(
                !w.allowed && w.error.is_some(),
                "deep context allowed a write: {w:?}"
            );
        }
        writes.push((w.allowed, w.role.clone(), w.error.is_some()));
    }
    let plan = match req.query_plan(None, None) {
        Ok(p) => Ok((p.applied, p.store_query, p.store_projection)),
        Err(e) => {
            client_safe(&e.client_error().to_string());
            Err(e.to_string())
        }
    };
    if too_deep {
        assert!(
            !r.visible && r.error.is_some(),
            "deep context read without a reason: {r:?}"
        );
        assert!(plan.is_err(), "deep context planned: {plan:?}");
        if let Some((_, visible, error)) = &raw {
            assert!(!visible && *error, "deep context raw read: {raw:?}");
        }
    }
    Decisions {
        read: (r.role, r.visible, r.document, r.error.is_some()),
        raw,
        writes,
        plan,
    }
}

/// Runs the checks on the input; `Some(too_deep)` when its rules loaded (for the generator's own
/// tests), `None` otherwise.
pub fn run(data: &[u8]) -> Option<bool> {
    let mut g = Gen::new(data);
    let n_roles = 1 + g.below(3);
    let mut roles: Vec<Value> = (0..n_roles).map(|i| evaluate::role(&mut g, i)).collect();
    for r in &mut roles {
        rewrite(&mut g, r);
    }
    let filters: Vec<Value> = (0..g.below(3)).map(|i| filter(&mut g, i)).collect();
    let file = json!({"database": "db", "collection": "coll", "roles": roles, "filters": filters});
    let stored = evaluate::document(&mut g);
    let mut post = stored.clone();
    post[g.pick(FIELDS)] = evaluate::value(&mut g, 2);

    let user_type = g.pick(&["normal", "system", "server", "api-key"]);
    let mut user = doc! {
        "id": if g.chance(3) { Bson::String(g.pick(&["u1", "u2"]).into()) }
              else { context_value(&mut g, 2).unwrap_or(Bson::Null) },
        "type": user_type,
        "data": context_doc(&mut g, &["email", "role", "name"]),
        "custom_data": context_doc(&mut g, &["team", "teamName", "team.lead", "t", "list", "deep"]),
    };
    if g.chance(2) {
        let identities: Vec<Bson> = (0..g.below(3))
            .map(|_| Bson::Document(doc! {"id": scalar(&mut g), "provider_type": "custom-token"}))
            .collect();
        user.insert("identities", identities);
    }
    let values = context_doc(&mut g, &["v", "vv", "v.x"]);
    let mut request = context_doc(&mut g, &["remoteIPAddress", "x"]);
    request.insert("requestHeaders", context_doc(&mut g, &["x", "X"]));
    let environment = doc! {
        "tag": context_value(&mut g, 1).unwrap_or(Bson::Null),
        "values": context_doc(&mut g, &["flag", "flags"]),
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
    let (stored, post) = (evaluate::bson_doc(&stored)?, evaluate::bson_doc(&post)?);
    let rules = Rules::new(set);
    let coll = rules.collection("db.coll").ok()?;

    let context = |user: Document| {
        let mut ctx = RequestContext::for_user(user);
        ctx.values = Bson::Document(values.clone());
        ctx.request = Bson::Document(request.clone());
        ctx.environment = Bson::Document(environment.clone());
        ctx.functions = Arc::new(evaluate::host);
        ctx
    };
    let ctx = context(user.clone());
    assert!(!ctx.is_system(), "a user document made the system user");
    let too_deep = Limits::DEFAULT.check_context(&ctx).is_err();

    let reference = decide(
        &coll.prepare_with(&ctx, EngineKind::Reference),
        &stored,
        &post,
        too_deep,
    );
    let compiled = decide(
        &coll.prepare_with(&ctx, EngineKind::Compiled),
        &stored,
        &post,
        too_deep,
    );
    assert_eq!(
        compiled, reference,
        "engines differ (left compiled, right reference)\nrules {file}\ndocument {stored}\npost {post}\ncontext {ctx:?}"
    );
    if let Some((role, visible, _)) = &compiled.raw {
        assert_eq!(
            (role, *visible),
            (&reference.read.0, reference.read.1),
            "raw read differs from the read\nrules {file}\ndocument {stored}\ncontext {ctx:?}"
        );
    }

    // `"type": "system"` in the user document is data, not the bypass.
    let text = file.to_string();
    if user_type == "system" && !text.contains("%%user.type") && !text.contains("\"%%user\"") {
        let mut normal = user;
        normal.insert("type", "normal");
        let ctx_normal = context(normal);
        let as_normal = decide(
            &coll.prepare_with(&ctx_normal, EngineKind::Compiled),
            &stored,
            &post,
            too_deep,
        );
        assert_eq!(
            compiled, as_normal,
            "`type: system` changed a decision (left system, right normal)\nrules {file}\ndocument {stored}"
        );
    }
    Some(too_deep)
}
