//! Field-level permissions (spec §3.2, §3.3, §3.5, U9, U15): redaction of a document for reads,
//! and the check that every written field is writable.
//!
//! Parent overrides child *per permission type*: a `read` defined on a field decides `read` for
//! all its embedded fields, a `write` decides `write` (and, by write-implies-read, readability).
//! A document-level `write: false` likewise overrides every field-level `write` (U11), so such a
//! field-level `write: true` neither permits writes nor implies read.
//!
//! Decisions where the spec is silent (written in the docs):
//! - a field rule with neither `read` nor `write` but nested `fields` governs the embedded
//!   document field by field; sub-fields without a nested rule use the nested
//!   `additional_fields`, never the parent level's (U15);
//! - arrays under nested rules are judged element-wise; elements that are not documents are not
//!   covered by named sub-field rules and are removed (reads) or refused (writes);
//! - an embedded document or array left with nothing readable is removed entirely;
//! - `%%this`/`%%prev` are the value of the field being checked after/before the write; on reads
//!   both are the stored value.
//!
//! What counts as written (issue 9, finding 9): a field is written when it is added, removed, or
//! its value is not [`identical`] (same type, same bytes; documents with the same keys in the
//! same order) — never MongoDB's query equality and never the `bson` crate's `Document`
//! equality, which both let values that MongoDB stores differently pass as unchanged. Reordering
//! the keys of an embedded document therefore writes that field; under nested rules, a level
//! (embedded document, array element, or the top-level document) whose shared keys appear in
//! another order writes every shared key of that level, since which keys "moved" is not
//! defined. This holds at the top level too: a replace that reorders the document's fields
//! writes them (MongoDB keeps `_id` first, so a stored document never needs `_id` moved).

use bson::{Bson, Document};

use super::{Failure, Trace};
use crate::error::Place;
use crate::rules::{FieldPermissions, FieldTree, Role};
use crate::value::Bindings;
use crate::value::compare::identical;

/// Permission results already decided by a parent level (`None`: the parent left it undefined).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Inherited {
    pub read: Option<bool>,
    pub write: Option<bool>,
}

/// Where the rules of one level of a field tree are, for the places of explanations: the role
/// or field rule that holds the level's `fields` and `additional_fields`, and where the
/// permissions a parent decided for the whole level were decided.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Level<'a> {
    /// The level's `fields` and `additional_fields`.
    pub tree: &'a FieldTree,
    pub holder: &'a Place,
    /// The rule whose `read` the level inherits (`None`: not inherited).
    pub read_from: Option<&'a Place>,
}

impl<'a> Level<'a> {
    /// The top level of `role`'s field tree.
    pub fn role(role: &'a Role) -> Self {
        Level {
            tree: &role.fields,
            holder: &role.place,
            read_from: role.read.as_ref().map(|r| &r.place),
        }
    }

    /// The place of the rule that denied `key` at this level: the `read`/`write` that was
    /// false (`decided_at`), else the field's rule (which grants nothing), else the level's
    /// `additional_fields` (absent or granting nothing).
    fn denier(&self, key: &str, decided_at: Option<&Place>) -> Place {
        let tree = self.tree;
        match (decided_at, tree.get(key)) {
            (Some(place), _) => place.clone(),
            (None, Some(rule)) => rule.place.clone(),
            (None, None) => match tree.additional.as_ref() {
                Some(FieldPermissions { read: Some(r), .. }) => r.place.clone(),
                _ => self.holder.key("additional_fields"),
            },
        }
    }
}

pub(crate) fn bind<'a>(
    base: &Bindings<'a>,
    this: Option<&'a Bson>,
    prev: Option<&'a Bson>,
) -> Bindings<'a> {
    Bindings {
        this,
        prev,
        ..*base
    }
}

pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Evaluates `read`/`write` of `perms` for one value, unless a parent decided them.
pub(crate) fn decide(
    perms: &FieldPermissions,
    inherited: Inherited,
    bindings: &Bindings<'_>,
    trace: &mut Trace<'_>,
    path: &str,
    want_read: bool,
) -> Result<Inherited, Failure> {
    let read = match (inherited.read, want_read) {
        (Some(r), _) => Some(r),
        (None, true) => trace.eval_opt(
            perms.read.as_ref(),
            bindings,
            format_args!("read of field `{path}`"),
        )?,
        (None, false) => None,
    };
    // Write implies read: only evaluate `write` for reads when `read` did not already grant it.
    let write = match inherited.write {
        Some(w) => Some(w),
        None if want_read && read == Some(true) => None,
        None => trace.eval_opt(
            perms.write.as_ref(),
            bindings,
            format_args!("write of field `{path}`"),
        )?,
    };
    Ok(Inherited { read, write })
}

/// The readable part of `doc` under `tree` (reads: `%%this` = `%%prev` = the stored value).
pub(crate) fn redact(
    doc: &Document,
    inherited: Inherited,
    base: &Bindings<'_>,
    trace: &mut Trace<'_>,
    prefix: &str,
    level: Level<'_>,
) -> Result<Document, Failure> {
    let tree = level.tree;
    let mut out = Document::new();
    for (key, value) in doc {
        let path = join(prefix, key);
        let bindings = bind(base, Some(value), Some(value));
        let (perms, nested) = match tree.get(key) {
            Some(rule) => (Some(&rule.permissions), Some(&rule.nested)),
            None => (tree.additional.as_ref(), None),
        };
        let empty = FieldPermissions::default();
        let decided = decide(
            perms.unwrap_or(&empty),
            inherited,
            &bindings,
            trace,
            &path,
            true,
        )?;
        if decided.read == Some(true) || decided.write == Some(true) {
            out.insert(key.clone(), value.clone());
            continue;
        }
        let fully_decided = decided.read.is_some() && decided.write.is_some();
        // Where this field's `read` was decided, when it was (a parent's, or its own rule's).
        let read_from = match inherited.read {
            Some(_) => level.read_from,
            None => perms.and_then(|p| p.read.as_ref()).map(|r| &r.place),
        };
        let kept = match (nested, tree.get(key)) {
            (Some(nested), Some(rule)) if !fully_decided && !nested.is_empty() => {
                let inner = Level {
                    tree: nested,
                    holder: &rule.place,
                    read_from,
                };
                redact_value(value, decided, base, trace, &path, inner)?
            }
            _ => None,
        };
        match kept {
            Some(v) => {
                out.insert(key.clone(), v);
            }
            None => trace.note_at(|| {
                let decided_at = read_from.filter(|_| decided.read == Some(false));
                (
                    Some(level.denier(key, decided_at)),
                    format!("field `{path}` is not readable; removed"),
                )
            }),
        }
    }
    Ok(out)
}

/// Redacts an embedded value under nested rules; `None` when nothing of it is readable.
pub(crate) fn redact_value(
    value: &Bson,
    inherited: Inherited,
    base: &Bindings<'_>,
    trace: &mut Trace<'_>,
    path: &str,
    level: Level<'_>,
) -> Result<Option<Bson>, Failure> {
    match value {
        Bson::Document(d) => {
            let sub = redact(d, inherited, base, trace, path, level)?;
            Ok((!sub.is_empty()).then_some(Bson::Document(sub)))
        }
        Bson::Array(items) => {
            let mut kept = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if let Bson::Document(d) = item {
                    let sub = redact(d, inherited, base, trace, &format!("{path}.{i}"), level)?;
                    if !sub.is_empty() {
                        kept.push(Bson::Document(sub));
                    }
                }
            }
            Ok((!kept.is_empty()).then_some(Bson::Array(kept)))
        }
        _ => Ok(None),
    }
}

/// One field touched by a write: its value before and after (either may be absent).
pub(crate) struct Change<'a> {
    pub key: &'a str,
    pub prev: Option<&'a Bson>,
    pub this: Option<&'a Bson>,
    /// The whole value counts as written (an insert, a delete, or a reordered level: nested
    /// rules then check every part of it, not only the parts that differ).
    pub whole: bool,
}

/// The fields whose value differs between `prev` and `this` (added, removed and changed, U13;
/// changed means not [`identical`], and when the keys both hold appear in another order every
/// one of them counts as changed: see the module docs).
/// For inserts pass `prev = None`; for deletes pass the stored document as both (every field
/// counts as touched, with `%%this` = `%%prev` = its value).
pub(crate) fn changes<'a>(
    prev: Option<&'a Document>,
    this: Option<&'a Document>,
    all: bool,
) -> Vec<Change<'a>> {
    let mut out = Vec::new();
    let all = all || prev.zip(this).is_some_and(|(p, t)| reordered(p, t));
    if let Some(p) = prev {
        for (k, pv) in p {
            let tv = this.and_then(|t| t.get(k));
            if all || tv.is_none_or(|tv| !identical(tv, pv)) {
                out.push(Change {
                    key: k,
                    prev: Some(pv),
                    this: tv,
                    whole: all,
                });
            }
        }
    }
    if let Some(t) = this {
        for (k, tv) in t {
            if prev.is_none_or(|p| !p.contains_key(k)) {
                out.push(Change {
                    key: k,
                    prev: None,
                    this: Some(tv),
                    whole: all,
                });
            }
        }
    }
    out
}

/// True when the keys present in both `prev` and `this` do not appear in the same order.
fn reordered(prev: &Document, this: &Document) -> bool {
    let shared_prev = prev.keys().filter(|k| this.contains_key(k.as_str()));
    let shared_this = this.keys().filter(|k| prev.contains_key(k.as_str()));
    shared_prev.ne(shared_this)
}

/// True when every field written between `prev` and `this` is writable under `tree`.
/// `all` marks every field as written (inserts, deletes).
pub(crate) fn all_writable(
    prev: Option<&Document>,
    this: Option<&Document>,
    all: bool,
    base: &Bindings<'_>,
    trace: &mut Trace<'_>,
    prefix: &str,
    level: Level<'_>,
) -> Result<bool, Failure> {
    let tree = level.tree;
    for change in changes(prev, this, all) {
        let path = join(prefix, change.key);
        let bindings = bind(base, change.this, change.prev);
        let (perms, nested) = match tree.get(change.key) {
            Some(rule) => (Some(&rule.permissions), Some(&rule.nested)),
            None => (tree.additional.as_ref(), None),
        };
        let empty = FieldPermissions::default();
        let write = decide(
            perms.unwrap_or(&empty),
            Inherited::default(),
            &bindings,
            trace,
            &path,
            false,
        )?
        .write;
        let ok = match (write, nested, tree.get(change.key)) {
            (Some(w), _, _) => w,
            (None, Some(nested), Some(rule)) if !nested.is_empty() => {
                let inner = Level {
                    tree: nested,
                    holder: &rule.place,
                    read_from: None,
                };
                nested_writable(
                    change.prev,
                    change.this,
                    change.whole,
                    base,
                    trace,
                    &path,
                    inner,
                )?
            }
            (None, _, _) => false,
        };
        if !ok {
            trace.note_at(|| {
                let decided_at = match write {
                    Some(false) => perms.and_then(|p| p.write.as_ref()).map(|r| &r.place),
                    _ => None,
                };
                let place = match (decided_at, perms, tree.get(change.key)) {
                    (Some(place), _, _) => place.clone(),
                    (None, _, Some(rule)) => rule.place.clone(),
                    (None, Some(FieldPermissions { write: Some(w), .. }), None) => w.place.clone(),
                    (None, _, None) => level.holder.key("additional_fields"),
                };
                (Some(place), format!("field `{path}` is not writable"))
            });
            return Ok(false);
        }
    }
    Ok(true)
}

/// `Some(document)`, `None` when absent, `Err` when present but not a document.
pub(crate) fn as_doc(v: Option<&Bson>) -> Result<Option<&Document>, ()> {
    match v {
        None => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(_) => Err(()),
    }
}

/// Write check of an embedded value under nested rules (element-wise for arrays).
fn nested_writable(
    prev: Option<&Bson>,
    this: Option<&Bson>,
    all: bool,
    base: &Bindings<'_>,
    trace: &mut Trace<'_>,
    path: &str,
    level: Level<'_>,
) -> Result<bool, Failure> {
    match (prev, this) {
        (Some(Bson::Array(p)), Some(Bson::Array(t))) => {
            for i in 0..p.len().max(t.len()) {
                let (pe, te) = (p.get(i), t.get(i));
                if !all && pe.zip(te).is_some_and(|(p, t)| identical(p, t)) {
                    continue;
                }
                let elem_path = format!("{path}.{i}");
                let (Ok(pd), Ok(td)) = (as_doc(pe), as_doc(te)) else {
                    return Ok(false);
                };
                if !all_writable(
                    pd,
                    td,
                    all || pd.is_none() || td.is_none(),
                    base,
                    trace,
                    &elem_path,
                    level,
                )? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        (Some(Bson::Array(items)), None) | (None, Some(Bson::Array(items))) => {
            let removed = this.is_none();
            for (i, item) in items.iter().enumerate() {
                let Bson::Document(d) = item else {
                    return Ok(false);
                };
                let (pd, td) = if removed {
                    (Some(d), None)
                } else {
                    (None, Some(d))
                };
                let elem_path = format!("{path}.{i}");
                if !all_writable(pd, td, true, base, trace, &elem_path, level)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => {
            let (Ok(pd), Ok(td)) = (as_doc(prev), as_doc(this)) else {
                return Ok(false);
            };
            all_writable(
                pd,
                td,
                all || pd.is_none() || td.is_none(),
                base,
                trace,
                path,
                level,
            )
        }
    }
}
