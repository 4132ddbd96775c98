//! Helpers shared by the `compiled_*` tests: build a one-collection rule set, and check that
//! the compiled engine and the reference evaluator agree on a document, through every entry
//! point (`read`, `read_raw`, `redact_raw` byte for byte, writes).
#![allow(dead_code)]

use std::sync::Arc;

use bson::{Bson, Document, RawDocumentBuf};
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use rolegate::{
    EngineKind, FunctionHost, LoadOptions, ReadOutcome, RequestContext, RuleSet, Rules, Scratch,
};
use serde_json::{Value, json};

/// The proptest configuration of a property: `default` cases (`PROPTEST_CASES` overrides),
/// failing seeds persisted to `regressions`.
pub fn persisted(default: u32, regressions: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..ProptestConfig::default()
    }
}

/// Rules of `app.items` with these roles (and filters).
pub fn rules(roles: Value) -> Rules {
    let file = json!({"database": "app", "collection": "items", "roles": roles});
    let set = RuleSet::from_json(
        "data_sources/mongodb-atlas/app/items/rules.json",
        &file,
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("rules do not load: {e}"));
    Rules::new(set)
}

/// A request context for `user`.
pub fn ctx(user: Document) -> RequestContext {
    RequestContext::for_user(user)
}

/// A request context for `user` with host functions.
pub fn ctx_with(user: Document, host: Arc<dyn FunctionHost>) -> RequestContext {
    let mut c = RequestContext::for_user(user);
    c.functions = host;
    c
}

/// Reads `doc` through both engines, checks every entry point agrees, returns the outcome.
pub fn same_read(rules: &Rules, ctx: &RequestContext, doc: &Document) -> ReadOutcome {
    let coll = rules.collection("app.items").unwrap();
    let compiled = coll.prepare_with(ctx, EngineKind::Compiled);
    let reference = coll.prepare_with(ctx, EngineKind::Reference);
    let c = compiled.read(doc);
    let r = reference.read(doc);
    // Debug text, not `==`: a NaN in the document is not equal to itself.
    assert_eq!(
        format!("{c:?}"),
        format!("{r:?}"),
        "read of {doc} differs (left: compiled, right: reference)"
    );
    let raw = RawDocumentBuf::from_document(doc).unwrap();
    let mut scratch = Scratch::new();
    for validate in [false, true] {
        let p = compiled.with_raw_validation(validate);
        for _ in 0..2 {
            // Twice: the scratch space is reused.
            let d = p.read_raw(&raw, &mut scratch);
            let mut out = vec![0xAA];
            let e = p.redact_raw(&raw, &mut scratch, &mut out);
            assert_eq!(d, e, "read_raw and redact_raw differ on {doc}");
            let name = d.role.and_then(|i| p.role_name(i)).map(str::to_string);
            assert_eq!(name, r.role, "raw role of {doc}");
            assert_eq!(d.visible, r.visible, "raw visibility of {doc}");
            assert_eq!(d.error, r.error.is_some(), "raw error of {doc}");
            let mut expected = vec![0xAA];
            if let Some(redacted) = &r.document {
                redacted.to_writer(&mut expected).unwrap();
            }
            assert_eq!(out, expected, "redact_raw bytes of {doc}");
        }
    }
    c
}

/// Decides insert, update and delete through both engines and checks they agree.
pub fn same_writes(rules: &Rules, ctx: &RequestContext, pre: &Document, post: &Document) {
    let coll = rules.collection("app.items").unwrap();
    let c = coll.prepare_with(ctx, EngineKind::Compiled);
    let r = coll.prepare_with(ctx, EngineKind::Reference);
    assert_eq!(c.insert(post), r.insert(post), "insert of {post}");
    assert_eq!(
        c.update(pre, post),
        r.update(pre, post),
        "update {pre} -> {post}"
    );
    assert_eq!(c.delete(pre), r.delete(pre), "delete of {pre}");
}

/// The user `{id, type: "normal", custom_data}`.
pub fn user(id: &str, custom: Document) -> Document {
    bson::doc! {"id": id, "type": "normal", "data": {}, "custom_data": custom}
}

/// A document from JSON (Extended JSON allowed).
pub fn doc(v: Value) -> Document {
    rolegate::mql::document_from_json(&v).unwrap()
}

/// Any BSON value from Extended JSON.
pub fn val(v: Value) -> Bson {
    rolegate::mql::bson_from_json(&v).unwrap()
}
