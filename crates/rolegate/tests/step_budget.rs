//! The per-document step budget (`Limits::max_eval_steps`): a decision whose work grows with
//! the product of two client-controlled sizes (a document array tested against a user's list)
//! is denied with the reason once the budget is spent, in both engines and on every entry
//! point; the same decision under a budget that covers it is made normally; and one expensive
//! document does not spend the budget of the next.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use bson::{Bson, Document, RawDocumentBuf, doc};
use rolegate::{EngineKind, Limits, LoadOptions, RequestContext, RuleSet, Rules, Scratch};
use serde_json::json;

const RULES: &str = "data_sources/mongodb-atlas/app/items/rules.json";

/// Visible when some tag is in the user's `allowed` list: `tags × allowed` comparisons when
/// none matches.
fn rules(max_eval_steps: u64) -> Rules {
    let mut limits = Limits::default();
    limits.max_eval_steps = max_eval_steps;
    let options = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let file = json!({"database": "app", "collection": "items", "roles": [{
        "name": "tagged",
        "apply_when": {"tags": {"$in": "%%user.custom_data.allowed"}},
        "read": true,
        "write": true,
        "insert": true,
        "delete": true
    }]});
    Rules::new(RuleSet::from_json(RULES, &file, &options).unwrap())
}

fn strings(prefix: &str, n: usize) -> Vec<Bson> {
    (0..n)
        .map(|i| Bson::String(format!("{prefix}{i}")))
        .collect()
}

fn user(allowed: usize) -> RequestContext {
    RequestContext::for_user(doc! {
        "id": "u", "type": "normal", "data": {},
        "custom_data": {"allowed": strings("a", allowed)}
    })
}

/// A document with `n` tags (`t0`, `t1`, ...), and last an allowed one (`a0`) when `hit`.
fn tagged(n: usize, hit: bool) -> Document {
    let mut tags = strings("t", n);
    if hit {
        tags.push(Bson::String("a0".into()));
    }
    doc! {"_id": 1, "tags": tags}
}

const ENGINES: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Reference];

#[test]
fn a_quadratic_decision_is_denied_with_the_reason_in_both_engines() {
    // 1,000 tags × 1,000 allowed values, none in common: a million comparisons, over a
    // 100,000 budget.
    let r = rules(100_000);
    let coll = r.collection("app.items").unwrap();
    let ctx = user(1_000);
    let doc = tagged(1_000, false);
    let raw = RawDocumentBuf::from_document(&doc).unwrap();
    for engine in ENGINES {
        let p = coll.prepare_with(&ctx, engine);
        let read = p.read(&doc);
        assert!(!read.visible, "{engine:?}: {read:?}");
        let reason = read.error.expect("denied with a reason");
        assert!(reason.contains("max_eval_steps"), "{engine:?}: {reason}");

        let mut scratch = Scratch::new();
        let d = p.read_raw(&raw, &mut scratch);
        assert!(!d.visible && d.error, "{engine:?} raw: {d:?}");
        let mut out = Vec::new();
        let d = p.redact_raw(&raw, &mut scratch, &mut out);
        assert!(
            !d.visible && d.error && out.is_empty(),
            "{engine:?} redact: {d:?}"
        );

        for w in [p.insert(&doc), p.update(&doc, &doc), p.delete(&doc)] {
            assert!(!w.allowed, "{engine:?}: {w:?}");
            let text = format!("{w:?}");
            assert!(text.contains("max_eval_steps"), "{engine:?}: {text}");
        }
    }
}

#[test]
fn the_same_decision_within_its_budget_is_made() {
    let r = rules(10_000_000);
    let coll = r.collection("app.items").unwrap();
    let ctx = user(1_000);
    for engine in ENGINES {
        let p = coll.prepare_with(&ctx, engine);
        let hit = p.read(&tagged(1_000, true));
        assert!(hit.visible && hit.error.is_none(), "{engine:?}: {hit:?}");
        let miss = p.read(&tagged(1_000, false));
        assert!(
            !miss.visible && miss.error.is_none(),
            "{engine:?}: {miss:?}"
        );
        assert!(p.insert(&tagged(1_000, true)).allowed, "{engine:?}");
    }
}

#[test]
fn each_document_gets_its_own_budget() {
    // 300 × 300 = 90,000 comparisons per document under a 200,000 budget: every document of a
    // long stream is decided, none inherits what the previous ones spent.
    let r = rules(200_000);
    let coll = r.collection("app.items").unwrap();
    let ctx = user(300);
    let doc = tagged(300, false);
    let raw = RawDocumentBuf::from_document(&doc).unwrap();
    for engine in ENGINES {
        let p = coll.prepare_with(&ctx, engine);
        let mut scratch = Scratch::new();
        for i in 0..20 {
            let read = p.read(&doc);
            assert!(
                read.error.is_none() && !read.visible,
                "{engine:?} document {i}"
            );
            let d = p.read_raw(&raw, &mut scratch);
            assert!(!d.visible && !d.error, "{engine:?} raw document {i}: {d:?}");
        }
    }
}

#[test]
fn the_default_budget_stops_a_hostile_product_and_passes_ordinary_documents() {
    let r = rules(Limits::default().max_eval_steps);
    let coll = r.collection("app.items").unwrap();
    // 3,000 × 3,000 = 9,000,000 comparisons: over the default of 1,000,000.
    let hostile = user(3_000);
    let ordinary = user(20);
    for engine in ENGINES {
        let p = coll.prepare_with(&hostile, engine);
        let read = p.read(&tagged(3_000, false));
        assert!(
            read.error
                .as_deref()
                .is_some_and(|e| e.contains("max_eval_steps")),
            "{engine:?}: {read:?}"
        );
        let p = coll.prepare_with(&ordinary, engine);
        assert!(p.read(&tagged(50, true)).visible, "{engine:?}");
    }
}
