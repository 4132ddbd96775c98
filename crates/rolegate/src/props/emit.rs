//! Stage: printing a counterexample. Input: a [`Counterexample`] of a property, the request
//! template of its app, and the `rules` part of a case (the CLI makes it from the app's files).
//! Output: a ready-to-run case for `rolegate test` ([`Case`], whose `expected` is what the
//! property requires, so that the case fails until the rules are fixed), and the request file
//! of `rolegate eval --request` ([`CaseRequest`]).

use std::collections::BTreeMap;

use bson::{Bson, Document};
use serde_json::Value;

use super::decide::values_at;
use super::model::{Claim, CompiledProperty, Expect, PropAction};
use super::run::Counterexample;
use crate::case::model::{
    Action, Case, CaseRequest, CaseRules, Environment, Expected, FunctionMock, FunctionMocks,
    Operation, OperationKind,
};
use crate::generate::{ContextTemplate, FunctionCall, GenRequest};
use crate::outcome::leaf_paths;
use crate::value::ejson::{bson_to_json, document_to_json};

/// The `request` of a case (and the file of `rolegate eval --request`) for a generated request:
/// the app's values, the environment, `%%request`, a mock of every `%function` call made, and
/// the operation of `action`.
fn case_request(
    template: &ContextTemplate,
    request: &GenRequest,
    calls: &[FunctionCall],
    action: PropAction,
) -> CaseRequest {
    let values = match bson_to_json(template.values()) {
        Value::Object(m) => Some(m),
        _ => None,
    };
    let env = template.environment(request.environment.as_deref());
    let environment = match env {
        Bson::Document(d) if !d.is_empty() => Some(Environment {
            tag: d.get_str("tag").ok().map(str::to_string),
            values: d.get("values").map(bson_to_json),
        }),
        _ => None,
    };
    let mut functions: BTreeMap<String, Vec<FunctionMock>> = BTreeMap::new();
    for call in calls {
        if let Some(result) = &call.result {
            functions
                .entry(call.name.clone())
                .or_default()
                .push(FunctionMock {
                    args: call.arguments.iter().map(bson_to_json).collect(),
                    returns: bson_to_json(result),
                });
        }
    }
    let kind = match action {
        PropAction::Read => OperationKind::Find,
        PropAction::Insert => OperationKind::Insert,
        PropAction::Update => OperationKind::Update,
        PropAction::Delete => OperationKind::Delete,
    };
    CaseRequest {
        operation: Some(Operation {
            kind,
            query: (action == PropAction::Read).then(|| Value::Object(Default::default())),
            update: None,
            pipeline: None,
            projection: None,
            upsert: None,
        }),
        values,
        environment,
        http: (!request.http.is_empty()).then(|| document_to_json(&request.http)),
        functions: (!functions.is_empty()).then(|| {
            functions
                .into_iter()
                .map(|(k, v)| (k, FunctionMocks::Many(v)))
                .collect()
        }),
        ..CaseRequest::default()
    }
}

/// What the property requires of the counterexample's request, as a case's `expected`.
fn expected(prop: &CompiledProperty, cx: &Counterexample) -> Expected {
    let mut e = Expected::default();
    let decision = &cx.decision;
    let doc = &cx.case.document;
    let wants_granted = matches!(prop.claim, Claim::Expect(Expect::Allowed));
    match prop.action {
        PropAction::Read if prop.fields.is_empty() => e.visible = Some(wants_granted),
        PropAction::Read => {
            // The returned document as the claim wants it: with the fields (allowed) or without
            // them (denied, only_if, only_roles).
            let mut out = decision.document.clone().unwrap_or_default();
            for f in &prop.fields {
                if wants_granted {
                    if let Some(v) = values_at(doc, f).first() {
                        set_path(&mut out, f, (*v).clone());
                    }
                } else {
                    remove_path(&mut out, f);
                }
            }
            let mut fields = Vec::new();
            leaf_paths(&out, "", &mut fields);
            if fields.is_empty() {
                e.visible = Some(false);
            } else {
                e.visible = Some(true);
                e.fields = Some(fields);
            }
        }
        action => {
            if !wants_granted && !decision.granted && decision.permitted {
                // The schema refused what the rules permitted: the rules must refuse it.
                e.error_code = Some(
                    match action {
                        PropAction::Insert => "InsertNotPermitted",
                        PropAction::Update => "UpdateNotPermitted",
                        _ => "DeleteNotPermitted",
                    }
                    .to_string(),
                );
            } else {
                e.allowed = Some(wants_granted);
            }
        }
    }
    e
}

impl Counterexample {
    /// The counterexample as a case for `rolegate test`, under `rules` (the app's files): its
    /// `expected` is what the property requires, so the case fails until the rules are fixed.
    pub fn to_case(
        &self,
        prop: &CompiledProperty,
        template: &ContextTemplate,
        rules: CaseRules,
    ) -> Case {
        to_case(prop, self, template, rules)
    }

    /// The request file of `rolegate eval --request` (and the case's `request`).
    pub fn request(&self, prop: &CompiledProperty, template: &ContextTemplate) -> CaseRequest {
        case_request(template, &self.case.request, &self.calls, prop.action)
    }

    /// The documents of `rolegate eval`: `--document` (the post-image of an update) and
    /// `--prev` (the pre-image of an update).
    pub fn eval_documents(&self, prop: &CompiledProperty) -> (Document, Option<Document>) {
        match prop.action {
            PropAction::Update => (
                self.post.clone().unwrap_or_else(|| self.case.post()),
                Some(self.case.document.clone()),
            ),
            _ => (self.case.document.clone(), None),
        }
    }
}

/// The counterexample as a case for `rolegate test`, under `rules` (the app's files).
fn to_case(
    prop: &CompiledProperty,
    cx: &Counterexample,
    template: &ContextTemplate,
    rules: CaseRules,
) -> Case {
    let action = match prop.action {
        PropAction::Read => Action::Read,
        PropAction::Insert => Action::Insert,
        PropAction::Update => Action::Update,
        PropAction::Delete => Action::Delete,
    };
    let (document, prev) = cx.eval_documents(prop);
    Case {
        name: format!("{} (counterexample)", prop.name),
        source: "rolegate prop".to_string(),
        notes: format!("[property] {}", cx.reason),
        rules,
        user: Some(document_to_json(&cx.case.user)),
        request: Some(case_request(
            template,
            &cx.case.request,
            &cx.calls,
            prop.action,
        )),
        document: Some(document_to_json(&document)),
        prev_document: prev.as_ref().map(document_to_json),
        documents: None,
        call: None,
        action,
        expected: expected(prop, cx),
    }
}

/// Sets the dotted path `f` of `doc` to `v`, creating embedded documents on the way.
fn set_path(doc: &mut Document, f: &[String], v: Bson) {
    let Some((last, parents)) = f.split_last() else {
        return;
    };
    let mut at = doc;
    for seg in parents {
        if !matches!(at.get(seg), Some(Bson::Document(_))) {
            at.insert(seg.clone(), Document::new());
        }
        at = match at.get_mut(seg) {
            Some(Bson::Document(d)) => d,
            _ => return,
        };
    }
    at.insert(last.clone(), v);
}

/// Removes the dotted path `f` of `doc` (through embedded documents and the document elements
/// of arrays).
fn remove_path(doc: &mut Document, f: &[String]) {
    let Some((first, rest)) = f.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.remove(first);
        return;
    }
    // Depth is bounded by the path's length (a property's field path).
    let emptied = match doc.get_mut(first) {
        Some(Bson::Document(d)) => {
            remove_path(d, rest);
            d.is_empty()
        }
        Some(Bson::Array(items)) => {
            for item in items.iter_mut() {
                if let Bson::Document(d) = item {
                    remove_path(d, rest);
                }
            }
            false
        }
        _ => false,
    };
    // An embedded document left with nothing readable is removed, as redaction does.
    if emptied {
        doc.remove(first);
    }
}
