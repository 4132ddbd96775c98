//! Stage: write decisions per document. Input: a [`Program`], its [`Prepared`] request and the
//! owned pre- and post-images. Output: a [`WriteOutcome`] equal to `reference/write.rs`'s.
//!
//! Role selection runs on the compiled plan (indexed runs included); the permission checks
//! follow `reference/write.rs` and `reference/fields.rs` step for step on compiled rules
//! (`document_filters.write` on each image, document-level `write` (false overrides every
//! field, U11), field-level `write` of every changed field (U13) with nested rules element-wise,
//! then `insert`/`delete`; "changed" is [`identical`]'s, key order included, as in
//! `reference/fields.rs`); schema validation of the result reuses [`crate::schema`] (it is not
//! a rule expression).

use bson::{Bson, Document};

use super::doc::{DocEval, DocRef, Fail, KeyCache};
use super::prepare::Prepared;
use super::value::V;
use crate::compile::{CTree, Program, RoleProg};
use crate::outcome::{ErrorCode, Explanation, WriteError, WriteOutcome};
use crate::reference::fields::{as_doc, changes};
use crate::reference::write::WriteKind;
use crate::rules::CollectionPolicy;
use crate::value::compare::identical;

fn refused(kind: WriteKind) -> WriteError {
    let (code, message) = match kind {
        WriteKind::Insert => (ErrorCode::InsertNotPermitted, "insert not permitted"),
        WriteKind::Update => (ErrorCode::UpdateNotPermitted, "update not permitted"),
        WriteKind::Delete => (ErrorCode::DeleteNotPermitted, "delete not permitted"),
    };
    WriteError {
        code,
        message: message.to_string(),
    }
}

fn outcome(role: Option<String>, allowed: bool, error: Option<WriteError>) -> WriteOutcome {
    WriteOutcome {
        role,
        allowed,
        error,
        explanation: Explanation::default(),
    }
}

/// Decides one write (`reference/write.rs` `decide`, without explanation).
pub(crate) fn decide(
    prog: &Program,
    prep: &Prepared<'_>,
    policy: &CollectionPolicy<'_>,
    kind: WriteKind,
    pre: Option<&Document>,
    post: Option<&Document>,
) -> WriteOutcome {
    let request = prep.ctx;
    if prep.system {
        return outcome(None, true, None);
    }
    let mut cache = KeyCache::default();
    let (root, prev_root) = match kind {
        WriteKind::Insert => (post, None),
        WriteKind::Update | WriteKind::Delete => (pre, pre),
    };
    let mut eval = DocEval::new(
        prog,
        prep,
        root.map(DocRef::Own),
        prev_root.map(DocRef::Own),
        prev_root.is_some(),
        &mut cache,
        None,
    );
    let failed = |role: Option<String>, fail: Fail| {
        let error = WriteError {
            code: ErrorCode::RuleEvaluationFailed,
            message: fail.message(prog),
        };
        outcome(role, false, Some(error))
    };
    let index = match eval.select() {
        Ok(i) => i,
        Err(fail) => return failed(None, fail),
    };
    let Some((index, role)) = index.and_then(|i| Some((i, prog.roles.get(i as usize)?))) else {
        let error = if policy.roles.is_empty() {
            WriteError {
                code: ErrorCode::NoMatchingRuleFound,
                message: "no rules govern this collection".to_string(),
            }
        } else {
            refused(kind)
        };
        return outcome(None, false, Some(error));
    };
    let name = policy.roles.get(index as usize).map(|r| r.name.clone());
    match eval.permitted(role, kind, pre, post) {
        Err(fail) => failed(name, fail),
        Ok(false) => outcome(name, false, Some(refused(kind))),
        Ok(true) => match (policy.schema, post) {
            (Some(schema), Some(post)) => match schema.validate(post, pre, request) {
                Ok(()) => outcome(name, true, None),
                Err(violation) => outcome(
                    name,
                    false,
                    Some(WriteError {
                        code: ErrorCode::SchemaValidationFailedWrite,
                        message: violation.to_string(),
                    }),
                ),
            },
            _ => outcome(name, true, None),
        },
    }
}

impl<'a, 'c: 'a> DocEval<'a, 'c> {
    fn bind_images(&mut self, root: Option<&'a Document>, pre: Option<&'a Document>) {
        self.root = root.map(DocRef::Own);
        self.prev_root = pre.map(DocRef::Own);
        self.prev_is_root = false;
        self.this = None;
        self.prev = None;
        self.forget_memos();
    }

    /// `reference/write.rs` `permitted`.
    fn permitted(
        &mut self,
        role: &'a RoleProg,
        kind: WriteKind,
        pre: Option<&'a Document>,
        post: Option<&'a Document>,
    ) -> Result<bool, Fail> {
        if let Some(rule) = role.doc_write {
            for image in [pre, post].into_iter().flatten() {
                self.bind_images(Some(image), pre);
                if !self.rule(rule)? {
                    return Ok(false);
                }
            }
        }
        let root = if kind == WriteKind::Delete { pre } else { post };
        self.bind_images(root, pre);
        let all_fields = match self.rule_opt(role.write)? {
            Some(true) => true,
            Some(false) => return Ok(false),
            None => {
                let (fp, ft, all) = match kind {
                    WriteKind::Insert => (None, post, true),
                    WriteKind::Update => (pre, post, false),
                    WriteKind::Delete => (pre, pre, true),
                };
                self.all_writable(&role.fields, fp, ft, all)?
            }
        };
        if !all_fields {
            return Ok(false);
        }
        self.this = None;
        self.prev = None;
        match kind {
            WriteKind::Insert => Ok(self.rule_opt(role.insert)?.unwrap_or(true)),
            WriteKind::Delete => Ok(self.rule_opt(role.delete)?.unwrap_or(true)),
            WriteKind::Update => Ok(true),
        }
    }

    /// `reference/fields.rs` `all_writable`.
    fn all_writable(
        &mut self,
        tree: &'a CTree,
        prev: Option<&'a Document>,
        this: Option<&'a Document>,
        all: bool,
    ) -> Result<bool, Fail> {
        for change in changes(prev, this, all) {
            self.this = change.this.map(V::Own);
            self.prev = change.prev.map(V::Own);
            let (perms, nested) = match tree.get(change.key.as_bytes()) {
                Some(rule) => (&rule.perms, Some(&rule.nested)),
                None => (tree.additional_perms(), None),
            };
            let write = self.rule_opt(perms.write)?;
            let ok = match (write, nested) {
                (Some(w), _) => w,
                (None, Some(nested)) if !nested.is_empty() => {
                    self.nested_writable(nested, change.prev, change.this, change.whole)?
                }
                (None, _) => false,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `reference/fields.rs` `nested_writable`.
    fn nested_writable(
        &mut self,
        tree: &'a CTree,
        prev: Option<&'a Bson>,
        this: Option<&'a Bson>,
        all: bool,
    ) -> Result<bool, Fail> {
        match (prev, this) {
            (Some(Bson::Array(p)), Some(Bson::Array(t))) => {
                for i in 0..p.len().max(t.len()) {
                    let (pe, te) = (p.get(i), t.get(i));
                    if !all && pe.zip(te).is_some_and(|(p, t)| identical(p, t)) {
                        continue;
                    }
                    let (Ok(pd), Ok(td)) = (as_doc(pe), as_doc(te)) else {
                        return Ok(false);
                    };
                    if !self.all_writable(tree, pd, td, all || pd.is_none() || td.is_none())? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            (Some(Bson::Array(items)), None) | (None, Some(Bson::Array(items))) => {
                let removed = this.is_none();
                for item in items {
                    let Bson::Document(d) = item else {
                        return Ok(false);
                    };
                    let (pd, td) = if removed {
                        (Some(d), None)
                    } else {
                        (None, Some(d))
                    };
                    if !self.all_writable(tree, pd, td, true)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            _ => {
                let (Ok(pd), Ok(td)) = (as_doc(prev), as_doc(this)) else {
                    return Ok(false);
                };
                self.all_writable(tree, pd, td, all || pd.is_none() || td.is_none())
            }
        }
    }
}
