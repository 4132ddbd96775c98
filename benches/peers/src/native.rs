//! Stage: rolegate. Input: a committed rule file (text) and a user (JSON). Output: the compiled
//! [`Rules`] and the request context; per document, the decision and the readable fields
//! through the public API (`PreparedRequest::read_raw`, `redact_raw`, `read`).

use bson::{RawDocument, RawDocumentBuf};
use rolegate::{
    Collection, LoadOptions, PreparedRequest, RequestContext, RuleSet, Rules, Scratch,
    mql::document_from_json,
};
use serde_json::Value;

use crate::data;
use crate::workloads::Workload;

/// Loads and compiles a rule file from its text, as a server does at start-up: JSON parse,
/// validation into a `RuleSet`, `Rules::new` (timed as "load + compile").
pub fn load(w: &Workload, text: &str) -> Rules {
    let json: Value = serde_json::from_str(text).expect("rule file JSON");
    let path = format!("benches/data/{}", w.rules_file);
    let set = RuleSet::from_json(&path, &json, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    Rules::new(set)
}

/// The request context of a user (once per request).
pub fn context(rules: &Rules, user: &Value) -> RequestContext {
    let user = document_from_json(user).expect("user document");
    rules.context().user(user).build().expect("request context")
}

/// A workload's rules, compiled, and its user's request context.
pub struct Native {
    pub rules: Rules,
    pub context: RequestContext,
    pub namespace: String,
}

impl Native {
    pub fn new(w: &Workload) -> Native {
        let rules = load(w, &data::rules_text(w));
        let context = context(&rules, &data::user(w));
        Native {
            rules,
            context,
            namespace: w.namespace.clone(),
        }
    }

    /// The workload's collection (prepare requests on it with [`Native::context`]).
    pub fn collection(&self) -> Collection<'_> {
        self.rules
            .collection(&self.namespace)
            .expect("the workload's collection")
    }
}

/// The readable fields of a document by `redact_raw` (the leaf paths of the redacted output),
/// or `None` when the document is withheld.
pub fn readable_raw(
    p: &PreparedRequest<'_, '_>,
    doc: &RawDocument,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Option<Vec<String>> {
    out.clear();
    let decision = p.redact_raw(doc, scratch, out);
    assert!(!decision.error, "rolegate: rule evaluation failed");
    if !decision.visible {
        return None;
    }
    let redacted = RawDocumentBuf::from_bytes(out.clone()).expect("redacted BSON");
    Some(data::leaf_paths(&redacted))
}

/// The readable fields of a document by `read(&bson::Document)`, or `None` when withheld.
pub fn readable_document(p: &PreparedRequest<'_, '_>, doc: &RawDocument) -> Option<Vec<String>> {
    let owned = bson::Document::try_from(doc).expect("document");
    let outcome = p.read(&owned);
    assert!(outcome.error.is_none(), "rolegate: {:?}", outcome.error);
    outcome.visible.then(|| outcome.fields())
}
