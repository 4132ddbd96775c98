//! Stage: read decisions per document. Input: a [`DocEval`] bound to one stored document (raw
//! or owned). Output: the role and whether the document is visible, and the redacted document —
//! written straight to raw BSON for raw input ([`redact_raw`]), built as a `bson::Document` for
//! owned input ([`redact_owned`]).
//!
//! The decision follows `reference/read.rs` and `reference/fields.rs` step for step (read gate of
//! `document_filters`, `search`, document-level `read`/`write`, then field rules, parent
//! overriding child per permission type), evaluating the same rules in the same order, so it
//! fails exactly where the reference fails. Raw output: readable elements are copied
//! byte-for-byte in document order; embedded documents under nested rules are rebuilt the same
//! way; arrays under nested rules keep their document elements that stay non-empty, re-indexed
//! from 0 (as the reference rebuilds them).

use bson::{Bson, Document, RawDocument};

use super::doc::{Action, DocEval, Fail, Inherited, PlanCache};
use super::quick::{KeptRun, QuickLevel, Resume};
use super::raw::{
    CheckedDoc, DocWriter, Elements, Spans, Val, begin_element, checked_doc, index_key, kind,
    tag_is_whole_key, write_header,
};
use super::value::V;
use crate::compile::{CPerms, CTree, NO_MEMO, RoleProg};

/// What the document-level part of a read decided.
pub(crate) enum Level {
    /// Withheld.
    Hidden,
    /// The whole document.
    Whole,
    /// Field rules decide, with these inherited permissions.
    Fields(Inherited),
}

/// Where a level walk ([`DocEval::redact_level`]) starts: the level's writer (given with the
/// output; its length placeholder already written), the offset of the first element to walk,
/// the kept run before it and whether an element before it was kept. A walk starts at the
/// first element with nothing kept, but where the quick scan redacted the start of the
/// document ([`Resume`]).
pub(crate) struct LevelStart {
    writer: Option<DocWriter>,
    pos: usize,
    run: KeptRun,
    kept: bool,
}

impl LevelStart {
    /// The start of a level at its first element.
    #[inline(always)]
    fn fresh(writer: Option<DocWriter>) -> LevelStart {
        LevelStart {
            writer,
            pos: 4,
            run: KeptRun::default(),
            kept: false,
        }
    }
}

impl<'a, 'c: 'a> DocEval<'a, 'c> {
    /// The document-level part of the read decision under `role` (`reference/read.rs`).
    pub fn read_level(&mut self, role: &RoleProg) -> Result<Level, Fail> {
        if role.has_doc_filters
            && let Some(read) = role.doc_read
        {
            let pass = if self.rule(read)? {
                true
            } else {
                self.rule_opt(role.doc_write)?.unwrap_or(false)
            };
            if !pass {
                return Ok(Level::Hidden);
            }
        }
        if self.prep.ctx.search && role.search == Some(false) {
            return Ok(Level::Hidden);
        }
        let read = self.rule_opt(role.read)?;
        if read == Some(true) {
            return Ok(Level::Whole);
        }
        let write = self.rule_opt(role.write)?;
        if write == Some(true) {
            return Ok(Level::Whole);
        }
        if read == Some(false) {
            return Ok(Level::Hidden);
        }
        Ok(Level::Fields(Inherited { read: None, write }))
    }

    /// `reference/fields.rs` `decide`, for reads.
    #[inline]
    fn decide_read(&mut self, perms: &CPerms, inherited: Inherited) -> Result<Inherited, Fail> {
        let read = match inherited.read {
            Some(r) => Some(r),
            None => self.rule_opt(perms.read)?,
        };
        let write = match inherited.write {
            Some(w) => Some(w),
            None if read == Some(true) => None,
            None => self.rule_opt(perms.write)?,
        };
        Ok(Inherited { read, write })
    }

    /// Binds `%%this` = `%%prev` = the element's value when a rule needs it.
    #[inline]
    fn bind_raw(&mut self, perms: &CPerms, kind: u8, value: &'a [u8]) -> Result<(), Fail> {
        if perms.field {
            let v = V::Raw(Val::decode(kind, value).map_err(|_| Fail::Malformed)?);
            self.this = Some(v);
            self.prev = Some(v);
        } else {
            self.this = None;
            self.prev = None;
        }
        Ok(())
    }

    /// What to do with a field whose rules are `perms` (and `nested`), given `inherited`.
    #[inline]
    pub(crate) fn action_of(
        &mut self,
        perms: &CPerms,
        nested: Option<&CTree>,
        inherited: Inherited,
    ) -> Result<Action, Fail> {
        let decided = self.decide_read(perms, inherited)?;
        if decided.read == Some(true) || decided.write == Some(true) {
            return Ok(Action::Keep);
        }
        let fully_decided = decided.read.is_some() && decided.write.is_some();
        Ok(match nested {
            Some(n) if !fully_decided && !n.is_empty() => Action::Nested {
                inherited: decided,
                level: u32::try_from(decided.level_of(n)).unwrap_or(u32::MAX),
            },
            _ => Action::Drop,
        })
    }

    /// The cached action of a field whose rules read the document (`perms.doc`), under
    /// `inherited`: [`Action::Memo`] when [`DocEval::action_of`] comes down to one memoized
    /// read rule — `Keep` when it holds, `Drop` when it does not — and [`Action::Dynamic`]
    /// otherwise.
    ///
    /// The conditions follow `action_of` and `decide_read`: the read rule decides only when
    /// no parent did (`inherited.read` is `None`); when it holds, the field is kept whatever
    /// the write rule; when it does not, the write permission must be settled for the request
    /// (inherited, or no write rule) and not grant, and the field must not go down to nested
    /// rules (none, or a fully decided field).
    pub(crate) fn memo_action(
        perms: &CPerms,
        nested: Option<&CTree>,
        inherited: Inherited,
    ) -> Action {
        let Some(read) = perms.read else {
            return Action::Dynamic;
        };
        if perms.field || read.memo == NO_MEMO || inherited.read.is_some() {
            return Action::Dynamic;
        }
        let write_when_unread = match (inherited.write, perms.write) {
            (Some(w), _) => Some(w),
            (None, None) => None,
            (None, Some(_)) => return Action::Dynamic,
        };
        if write_when_unread == Some(true) {
            return Action::Dynamic;
        }
        match nested {
            Some(n) if write_when_unread.is_none() && !n.is_empty() => Action::Dynamic,
            _ => Action::Memo(read.memo),
        }
    }

    /// Redacts a raw document under `tree`; appends it to `out` when given. True when some
    /// field is readable (the document is non-empty). Without `out` and with infallible rules,
    /// stops at the first readable field.
    ///
    /// `resume` (given with `out`): the quick scan redacted the document up to `resume.pos`
    /// under these same `tree` and `inherited` ([`super::quick::redact_document`]); the walk goes on
    /// from there.
    // PERF: always inlined at its one call (`raw_general`).
    #[inline(always)]
    pub fn redact_raw(
        &mut self,
        tree: &'a CTree,
        doc: &'a RawDocument,
        inherited: Inherited,
        out: Option<&mut Vec<u8>>,
        resume: Option<Resume>,
    ) -> Result<bool, Fail> {
        // PERF: the plan cache is taken out of `self` for the walk and passed down, so that a
        // level reads its actions without going through `self` (which the rules borrow).
        let mut plans = self.plans.take();
        let mut out = out;
        let start = match (resume, out.as_deref_mut()) {
            (Some(r), Some(_)) => LevelStart {
                writer: Some(r.writer),
                pos: r.pos,
                run: r.run,
                kept: r.kept,
            },
            (_, out) => LevelStart::fresh(out.map(DocWriter::begin)),
        };
        let result = self.redact_level(
            tree,
            CheckedDoc::of(doc),
            inherited,
            plans.as_deref_mut(),
            out,
            start,
        );
        self.plans = plans;
        result
    }

    /// [`DocEval::redact_raw`] of one level, on the level's checked bytes, from `start`.
    fn redact_level(
        &mut self,
        tree: &'a CTree,
        doc: CheckedDoc<'a>,
        inherited: Inherited,
        mut plans: Option<&mut PlanCache>,
        mut out: Option<&mut Vec<u8>>,
        start: LevelStart,
    ) -> Result<bool, Fail> {
        // PERF: decisions that read only the request are made once per request and cached per
        // field (`Action`) in one flat vector; the level's run of it is found once and indexed
        // per element (no per-level take and put back of a boxed slice: issue 16).
        let len = tree.fields.len() + 1;
        let level = inherited.level_of(tree);
        let base = plans.as_deref_mut().and_then(|p| p.level(level, len));
        let bytes = doc.bytes();
        // PERF: adjacent kept elements are copied as one run (one copy instead of one per
        // element); the run is written out before anything else is and at the end.
        let LevelStart {
            writer,
            pos: start,
            mut run,
            mut kept,
        } = start;
        // PERF: elements as offsets (`Span`): the key and value are sliced only where used.
        let mut spans = Spans::over(doc);
        spans.seek(start);
        loop {
            // PERF: the elements whose cached action settles them (`Keep`, `Drop`, a known
            // memo, an embedded document whose own elements are all such) are handled by the
            // quick scan (`eval/quick.rs`), in a loop of its own; this loop takes the others
            // (issue 16: W2-20 redact 6,144 -> 4,721 instructions per document).
            if let (Some(b), Some(p)) = (base, plans.as_deref()) {
                let quick = QuickLevel {
                    tree,
                    plans: p,
                    actions: p.actions.get(b..b + len).unwrap_or_default(),
                    memos: self.memos(),
                };
                let (pos, any) = match out.as_deref_mut() {
                    Some(out) => quick.keep_and_drop(bytes, spans.position(), &mut run, out),
                    None => quick.pass(bytes, spans.position()),
                };
                if any {
                    kept = true;
                    if out.is_none() && tree.infallible {
                        return Ok(true);
                    }
                }
                spans.seek(pos);
            }
            let Some(span) = spans.next() else { break };
            let span = span.map_err(|_| Fail::Malformed)?;
            // PERF: a key its tag holds whole is never compared byte for byte by the key
            // table (`find_tagged`), so it is sliced out only for longer keys here.
            let key: &[u8] = if tag_is_whole_key(span.tag) {
                &[]
            } else {
                span.key(bytes)
            };
            let (index, perms, nested) = match tree.index.find_tagged(span.tag, key) {
                Some(i) => match tree.fields.get(i as usize) {
                    Some((_, rule)) => (i as usize, &rule.perms, Some(&rule.nested)),
                    None => (tree.fields.len(), tree.additional_perms(), None),
                },
                None => (tree.fields.len(), tree.additional_perms(), None),
            };
            let slot = base.map(|b| b + index);
            let mut action = match (slot, plans.as_deref()) {
                (Some(i), Some(p)) => p.actions.get(i).copied().unwrap_or(Action::Dynamic),
                _ => Action::Dynamic,
            };
            // PERF: the cached Keep tested first, on the action's tag alone (the payloads of
            // the other actions are not unpacked for it).
            if matches!(action, Action::Keep) {
                if let Some(out) = out.as_deref_mut() {
                    run.add(bytes, span.start, span.end - span.start, out);
                } else if tree.infallible {
                    return Ok(true);
                }
                kept = true;
                continue;
            }
            // PERF: `matches!` tests the tag alone; the derived `==` also compares payloads:
            // W2-20 redact 7,834 -> 7,804, W2-100 38,258 -> 38,065 instructions per document.
            if matches!(action, Action::Unknown) {
                action = if perms.doc {
                    Self::memo_action(perms, nested, inherited)
                } else {
                    self.this = None;
                    self.prev = None;
                    match self.action_of(perms, nested, inherited) {
                        Ok(a) => a,
                        Err(fail) => match plans.as_deref_mut() {
                            Some(p) => {
                                p.fails.push(fail);
                                Action::Fail(p.fails.len() as u32 - 1)
                            }
                            None => return Err(fail),
                        },
                    }
                };
                if let (Some(i), Some(p)) = (slot, plans.as_deref_mut())
                    && let Some(s) = p.actions.get_mut(i)
                {
                    *s = action;
                }
            }
            if matches!(action, Action::Dynamic | Action::Memo(_)) {
                self.bind_raw(perms, span.kind, span.value(bytes))?;
                action = self.action_of(perms, nested, inherited)?;
            }
            let decided = match action {
                Action::Keep => {
                    if let Some(out) = out.as_deref_mut() {
                        run.add(bytes, span.start, span.end - span.start, out);
                    } else if tree.infallible {
                        return Ok(true);
                    }
                    kept = true;
                    continue;
                }
                Action::Nested { inherited, .. } => inherited,
                Action::Fail(i) => {
                    let fail = plans.as_deref().and_then(|p| p.fails.get(i as usize));
                    return Err(fail.cloned().unwrap_or(Fail::Malformed));
                }
                Action::Drop | Action::Unknown | Action::Dynamic | Action::Memo(_) => continue,
            };
            let Some(nested) = nested else { continue };
            // PERF: `Span::embedded`: the value's length prefix was checked by `Spans`.
            let (is_doc, value) = match span.kind {
                kind::DOCUMENT => (true, span.embedded(bytes)),
                kind::ARRAY => (false, span.embedded(bytes)),
                // INVARIANT: as `Val::decode` before: any other type must decode, and then
                // keeps nothing.
                _ => {
                    Val::decode(span.kind, span.value(bytes)).map_err(|_| Fail::Malformed)?;
                    continue;
                }
            };
            let value = value.map_err(|_| Fail::Malformed)?;
            if let Some(out) = out.as_deref_mut() {
                run.flush(bytes, out);
            }
            let mark = out.as_deref().map(Vec::len);
            // PERF: the element's header and its value's length placeholder in one write.
            let inner = out
                .as_deref_mut()
                .map(|out| begin_element(out, &span, bytes));
            let any = if is_doc {
                self.redact_level(
                    nested,
                    value,
                    decided,
                    plans.as_deref_mut(),
                    out.as_deref_mut(),
                    LevelStart::fresh(inner),
                )?
            } else {
                self.redact_raw_array(
                    nested,
                    value,
                    decided,
                    plans.as_deref_mut(),
                    out.as_deref_mut(),
                    inner,
                )?
            };
            if any {
                kept = true;
                if out.is_none() && tree.infallible {
                    return Ok(true);
                }
            } else if let (Some(out), Some(mark)) = (out.as_deref_mut(), mark) {
                out.truncate(mark);
            }
        }
        if let (Some(w), Some(out)) = (writer, out) {
            run.flush(bytes, out);
            w.end(out).map_err(|_| Fail::Malformed)?;
        }
        Ok(kept)
    }

    /// The document elements of an array under nested rules, each redacted; empty ones dropped.
    /// `writer` (given with `out`) is the array's, its length placeholder already written.
    fn redact_raw_array(
        &mut self,
        tree: &'a CTree,
        items: CheckedDoc<'a>,
        inherited: Inherited,
        mut plans: Option<&mut PlanCache>,
        mut out: Option<&mut Vec<u8>>,
        writer: Option<DocWriter>,
    ) -> Result<bool, Fail> {
        let mut count = 0usize;
        let mut buf = [0u8; 20];
        for elem in Elements::over(items) {
            let elem = elem.map_err(|_| Fail::Malformed)?;
            if elem.kind != kind::DOCUMENT {
                continue;
            }
            let d = checked_doc(elem.value).map_err(|_| Fail::Malformed)?;
            let mark = out.as_deref().map(Vec::len);
            let inner = out.as_deref_mut().map(|out| {
                write_header(out, kind::DOCUMENT, index_key(count, &mut buf));
                DocWriter::begin(out)
            });
            if self.redact_level(
                tree,
                d,
                inherited,
                plans.as_deref_mut(),
                out.as_deref_mut(),
                LevelStart::fresh(inner),
            )? {
                count += 1;
                if out.is_none() && tree.infallible {
                    return Ok(true);
                }
            } else if let (Some(out), Some(mark)) = (out.as_deref_mut(), mark) {
                out.truncate(mark);
            }
        }
        if let (Some(w), Some(out)) = (writer, out) {
            w.end(out).map_err(|_| Fail::Malformed)?;
        }
        Ok(count > 0)
    }

    /// Redacts an owned document under `tree` (`reference/fields.rs` `redact`).
    pub fn redact_owned(
        &mut self,
        tree: &'a CTree,
        doc: &'a Document,
        inherited: Inherited,
    ) -> Result<Document, Fail> {
        let mut out = Document::new();
        for (key, value) in doc {
            let (perms, nested) = match tree.get(key.as_bytes()) {
                Some(rule) => (&rule.perms, Some(&rule.nested)),
                None => (tree.additional_perms(), None),
            };
            self.this = Some(V::Own(value));
            self.prev = Some(V::Own(value));
            let decided = self.decide_read(perms, inherited)?;
            if decided.read == Some(true) || decided.write == Some(true) {
                out.insert(key.clone(), value.clone());
                continue;
            }
            let fully_decided = decided.read.is_some() && decided.write.is_some();
            let kept = match nested {
                Some(nested) if !fully_decided && !nested.is_empty() => match value {
                    Bson::Document(d) => {
                        let sub = self.redact_owned(nested, d, decided)?;
                        (!sub.is_empty()).then_some(Bson::Document(sub))
                    }
                    Bson::Array(items) => {
                        let mut kept = Vec::new();
                        for item in items {
                            if let Bson::Document(d) = item {
                                let sub = self.redact_owned(nested, d, decided)?;
                                if !sub.is_empty() {
                                    kept.push(Bson::Document(sub));
                                }
                            }
                        }
                        (!kept.is_empty()).then_some(Bson::Array(kept))
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(v) = kept {
                out.insert(key.clone(), v);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use bson::{RawDocumentBuf, doc};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::{Action, DocEval, Inherited};
    use crate::eval::doc::{DocRef, KeyCache};
    use crate::eval::prepare::Prepared;

    /// A read or write rule: absent, constant, the request's, the document's through a shared
    /// memoized rule, or the field's own value.
    fn rule() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(json!(true))),
            Just(Some(json!(false))),
            Just(Some(json!({"%%user.id": "alice"}))),
            Just(Some(json!({"%%root.owner": "%%user.id"}))),
            Just(Some(json!({"%%root.flag": true}))),
            Just(Some(json!({"%%this": 1}))),
        ]
    }

    /// Every inherited permission pair, reachable or not.
    fn all_inherited() -> Vec<Inherited> {
        let v = [None, Some(false), Some(true)];
        v.iter()
            .flat_map(|&read| v.iter().map(move |&write| Inherited { read, write }))
            .collect()
    }

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/read_memo_action.txt"
        ))]

        /// Where `memo_action` gives `Memo(m)`, `action_of` decides `Keep` when memo `m` holds
        /// and `Drop` when it does not, under any inherited permissions, with or without
        /// nested rules.
        #[test]
        fn a_memo_action_is_what_action_of_decides(
            read in rule(),
            write in rule(),
            nested in prop_oneof![Just(None), Just(Some(json!({}))), Just(Some(json!({"x": {"read": true}})))],
        ) {
            let mut field = serde_json::Map::new();
            if let Some(r) = read {
                field.insert("read".into(), r);
            }
            if let Some(w) = write {
                field.insert("write".into(), w);
            }
            if let Some(n) = nested {
                field.insert("fields".into(), n);
            }
            let file = json!({"database": "app", "collection": "items", "roles": [
                {"name": "r", "apply_when": {}, "fields": {"a": field}}
            ]});
            let set = crate::RuleSet::from_json("rules.json", &file, &crate::LoadOptions::default())
                .unwrap();
            let program = crate::compile::compile(set.policy(None, "app", "items").unwrap().roles);
            let ctx = crate::RequestContext::for_user(
                doc! {"id": "alice", "type": "normal", "data": {}, "custom_data": {}},
            );
            let prepared = Prepared::new(&program, &ctx);
            let root = RawDocumentBuf::from_document(&doc! {"owner": "alice", "flag": true, "a": 1})
                .unwrap();
            let (_, rule) = &program.roles[0].fields.fields[0];
            for inherited in all_inherited() {
                let action = DocEval::memo_action(&rule.perms, Some(&rule.nested), inherited);
                let Action::Memo(m) = action else {
                    prop_assert!(matches!(action, Action::Dynamic), "{action:?}");
                    continue;
                };
                for value in [true, false] {
                    let mut cache = KeyCache::default();
                    let mut eval = DocEval::new(
                        &program,
                        &prepared,
                        Some(DocRef::Raw(&root)),
                        Some(DocRef::Raw(&root)),
                        true,
                        &mut cache,
                        None,
                    );
                    eval.seed_memo(m, value);
                    let decided = eval.action_of(&rule.perms, Some(&rule.nested), inherited);
                    let want = if value { Action::Keep } else { Action::Drop };
                    prop_assert_eq!(decided, Ok(want), "{:?} memo {}", inherited, value);
                }
            }
        }
    }
}
