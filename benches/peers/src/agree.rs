//! Stage: the equality check, before any timing. Input: the three engines of a workload and its
//! generated documents. Output: a [`Summary`] when rolegate, Cedar and regorus give the same
//! decision on every document (visible or not) and, for W1, the same set of readable fields;
//! otherwise a panic naming the first documents on which they differ.
//!
//! rolegate is checked through each path the benchmark times: `read_raw`, `redact_raw` (the
//! leaf paths of the redacted output) and `read(&bson::Document)`; regorus through both its
//! interpreter and its RVM (where the RVM takes the policy). Cedar and regorus are checked on inputs built from the same raw BSON; a Cedar policy that fails to evaluate, or a regorus
//! error, fails the check too.

use std::fmt::Write as _;

use bson::{RawDocument, RawDocumentBuf};
use rolegate::Scratch;

use crate::setup::Engines;
use crate::{native, rego};

/// What the engines agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub documents: usize,
    pub visible: usize,
    /// Readable fields over all documents (field-level checks only).
    pub fields: usize,
}

/// Disagreements found so far (the first few are printed).
struct Failures {
    label: String,
    count: usize,
    report: String,
}

impl Failures {
    fn new(label: &str) -> Failures {
        Failures {
            label: label.to_string(),
            count: 0,
            report: String::new(),
        }
    }

    fn add(&mut self, index: usize, doc: &RawDocument, what: &str, answers: &[(&str, String)]) {
        self.count += 1;
        if self.count <= 5 {
            let id = match doc.get("_id").ok().flatten() {
                Some(bson::RawBsonRef::ObjectId(oid)) => oid.to_hex(),
                Some(v) => format!("{v:?}"),
                None => "missing".to_string(),
            };
            let _ = writeln!(self.report, "  document {index} (_id {id}), {what}:");
            for (engine, answer) in answers {
                let _ = writeln!(self.report, "    {engine:<20} {answer}");
            }
        }
    }

    fn finish(self, documents: usize) {
        assert!(
            self.count == 0,
            "\n{}: THE ENGINES DISAGREE on {} of {documents} checks; the benchmark is void.\n{}",
            self.label,
            self.count,
            self.report
        );
    }
}

fn all_equal<T: PartialEq>(values: &[&T]) -> bool {
    values.windows(2).all(|w| w.first() == w.get(1))
}

/// Checks the document-level decision of every document.
pub fn decisions(label: &str, e: &mut Engines, docs: &[RawDocumentBuf]) -> Summary {
    let coll = e.native.collection();
    let p = coll.prepare(&e.native.context);
    let mut scratch = Scratch::new();
    let mut failures = Failures::new(label);
    let mut visible = 0;
    for (i, doc) in docs.iter().enumerate() {
        let raw = p.read_raw(doc, &mut scratch);
        assert!(!raw.error, "{label}: rolegate rule evaluation failed");
        let document = native::readable_document(&p, doc).is_some();
        let cedar = e.cedar.decide_checked(&e.cedar.input(doc, false));
        let rego = e.rego.decide(e.rego.input(doc));
        let rvm = if e.rego.has_vm() {
            e.rego.decide_vm(e.rego.input(doc))
        } else {
            rego
        };
        if all_equal(&[&raw.visible, &document, &cedar, &rego, &rvm]) {
            visible += usize::from(raw.visible);
        } else {
            failures.add(
                i,
                doc,
                "visible",
                &[
                    ("rolegate read_raw", raw.visible.to_string()),
                    ("rolegate read", document.to_string()),
                    ("cedar", cedar.to_string()),
                    ("regorus", rego.to_string()),
                    ("regorus RVM", rvm.to_string()),
                ],
            );
        }
    }
    failures.finish(docs.len());
    Summary {
        documents: docs.len(),
        visible,
        fields: 0,
    }
}

/// Checks the readable-field set of every document (and that it is empty exactly when the
/// document-level decision withholds the document).
pub fn fields(label: &str, e: &mut Engines, docs: &[RawDocumentBuf]) -> Summary {
    let coll = e.native.collection();
    let p = coll.prepare(&e.native.context);
    let mut scratch = Scratch::new();
    let mut out = Vec::new();
    let mut failures = Failures::new(label);
    let (mut visible, mut fields) = (0, 0);
    for (i, doc) in docs.iter().enumerate() {
        let raw = native::readable_raw(&p, doc, &mut scratch, &mut out);
        let document = native::readable_document(&p, doc);
        let cedar = e.cedar.readable_checked(&e.cedar.input(doc, true));
        let rego = rego::paths(&e.rego.readable(e.rego.input(doc)));
        let rvm = if e.rego.has_vm() {
            rego::paths(&e.rego.readable_vm(e.rego.input(doc)))
        } else {
            rego.clone()
        };
        let decision = p.read_raw(doc, &mut scratch).visible;
        if all_equal(&[&raw, &document, &cedar, &rego, &rvm]) && decision == raw.is_some() {
            visible += usize::from(raw.is_some());
            fields += raw.map_or(0, |f| f.len());
        } else {
            let show = |f: &Option<Vec<String>>| match f {
                Some(f) => format!("{{{}}}", f.join(", ")),
                None => "withheld".to_string(),
            };
            failures.add(
                i,
                doc,
                "readable fields",
                &[
                    ("rolegate redact_raw", show(&raw)),
                    ("rolegate read", show(&document)),
                    ("rolegate read_raw", decision.to_string()),
                    ("cedar", show(&cedar)),
                    ("regorus", show(&rego)),
                    ("regorus RVM", show(&rvm)),
                ],
            );
        }
    }
    failures.finish(docs.len());
    Summary {
        documents: docs.len(),
        visible,
        fields,
    }
}
