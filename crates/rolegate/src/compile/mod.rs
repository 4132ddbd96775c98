//! Stage: the compiler. Input: the roles of one collection policy (validated
//! [`crate::rules::Role`]s). Output: a [`Program`] — immutable, `Send + Sync`, shared by every
//! request through an `Arc` inside [`crate::Rules`].
//!
//! ```text
//! roles ──index::find_runs──▶ runs (indexed apply_when)     ┐
//!       ──lower (depth, classify, fold)──▶ Nodes + slots     ├─▶ Program
//!       ──field trees──▶ CTree (per-level key lookup)        ┘
//! ```
//!
//! - [`ir`]: the flat node arena, slots, smart constructors that fold with error semantics.
//! - [`lower`]: analysis (dependency, fallibility, depth) and lowering of each rule.
//! - [`index`]: runs of roles selected by one hash lookup.
//!
//! The program keeps, beside the nodes, the place (file + JSON path) of every rule in a side
//! table ([`Program::places`]) for error messages; explanations are produced by the reference
//! evaluator on demand (see [`crate::engine`]).

pub(crate) mod index;
pub(crate) mod ir;
pub(crate) mod lower;

use crate::error::Place;
use crate::eval::raw::{bytes_eq, key_tag, tag_is_whole_key};
use crate::expr::Expr;
use crate::rules::{FieldPermissions, FieldTree, Role, Rule};

use index::{FxMap, Run};
use ir::{KeyId, NodeId, Nodes};
use lower::{KeyInterner, Lowerer};

/// [`RuleRef::place`] of a rule that cannot fail.
pub(crate) const NO_PLACE: u32 = u32::MAX;

/// A compiled rule: its node and the index of its place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleRef {
    pub node: NodeId,
    pub place: u32,
    /// Index of the rule's per-document memo ([`NO_MEMO`]: not memoized). Field rules that
    /// read the document but not the field (`{"%%root.owner": "%%user.id"}` on many fields)
    /// share one node and one memo: evaluated once per document, not once per field.
    pub memo: u32,
}

/// [`RuleRef::memo`] of a rule that is evaluated every time.
pub(crate) const NO_MEMO: u32 = u32::MAX;

/// Compiled `read`/`write` of a field rule (or of `additional_fields`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CPerms {
    pub read: Option<RuleRef>,
    pub write: Option<RuleRef>,
    /// Some rule here reads `%%this` / `%%prev` (the field's value must be decoded).
    pub field: bool,
    /// Some rule here reads the document or the field: the decision is made per document
    /// (otherwise it is the same for every document of a request, and cached).
    pub doc: bool,
}

/// A compiled field rule.
#[derive(Debug, Clone, Default)]
pub(crate) struct CField {
    pub perms: CPerms,
    pub nested: CTree,
}

/// A compiled `fields` level.
#[derive(Debug, Clone, Default)]
pub(crate) struct CTree {
    /// Dense id of the level in its program (per-request decision caches are indexed by it).
    pub id: u32,
    /// In file order (the first rule of a name wins, as `FieldTree::get`).
    pub fields: Vec<(Box<str>, CField)>,
    /// Key → index in `fields`.
    pub index: KeyTable,
    pub additional: Option<CPerms>,
    /// No rule of this level or below can fail.
    pub infallible: bool,
}

impl CTree {
    /// The rules of a field this level does not name: `additional_fields`, or none.
    pub fn additional_perms(&self) -> &CPerms {
        const NONE: CPerms = CPerms {
            read: None,
            write: None,
            field: false,
            doc: false,
        };
        self.additional.as_ref().unwrap_or(&NONE)
    }
}

impl CTree {
    /// Same as `FieldTree::is_empty`.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.additional.is_none()
    }

    /// The rule for `key` (whose [`key_tag`] is `tag`), or `None` (then `additional_fields`
    /// applies).
    #[inline]
    pub fn get_tagged(&self, tag: u64, key: &[u8]) -> Option<&CField> {
        if self.fields.is_empty() {
            return None;
        }
        self.index
            .find_tagged(tag, key)
            .and_then(|i| self.fields.get(i as usize))
            .map(|(_, f)| f)
    }

    /// The rule for `key`, or `None` (then `additional_fields` applies).
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&CField> {
        self.get_tagged(key_tag(key), key)
    }
}

/// A compiled role.
#[derive(Debug, Clone)]
pub(crate) struct RoleProg {
    /// `None` for roles of an indexed run (the run selects them).
    pub apply_when: Option<RuleRef>,
    pub doc_read: Option<RuleRef>,
    pub doc_write: Option<RuleRef>,
    /// `document_filters` is present (its `read` undefined still opens the read gate).
    pub has_doc_filters: bool,
    pub read: Option<RuleRef>,
    pub write: Option<RuleRef>,
    pub insert: Option<RuleRef>,
    pub delete: Option<RuleRef>,
    pub search: Option<bool>,
    pub fields: CTree,
}

/// One step of role selection in policy order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segment {
    /// A role whose `apply_when` is evaluated (by index in the policy's roles).
    Single(u32),
    /// An indexed run (by index in [`Program::runs`]).
    Run(u32),
}

/// An open-addressing table from keys to small indexes, probed by [`key_tag`]: one multiply,
/// one or two probes, and a byte comparison of the whole key on every tag hit of a key longer
/// than seven bytes.
///
/// SECURITY (issue 9, finding 2): a tag proves equality only when it holds the whole key (at
/// most seven bytes, with its exact length: [`key_tag`] saturates the length at 255 instead of
/// keeping it modulo 256, which made `abcdefg` and a 263-byte key that starts with it share a
/// tag). For every longer key [`KeyTable::find_tagged`] compares the bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyTable {
    /// `(tag, index)`; `u32::MAX` marks an empty slot. Length a power of two.
    slots: Box<[(u64, u32)]>,
    /// `64 - log2(slots.len())`: Fibonacci hashing keeps the top bits of the product.
    shift: u32,
    names: Vec<Box<[u8]>>,
}

const EMPTY_SLOT: u32 = u32::MAX;

/// The tag of an empty slot: not a whole key's ([`tag_is_whole_key`]: its top byte is not
/// zero), so [`KeyTable::find_whole_or`] never meets it, and [`KeyTable::find_tagged`] compares
/// the bytes of the slot's key, which an empty slot has none of.
const EMPTY_TAG: u64 = u64::MAX;

impl KeyTable {
    /// A table of `names` (index = position; a repeated name keeps its first index).
    pub fn new<'n>(names: impl IntoIterator<Item = &'n [u8]>) -> KeyTable {
        let names: Vec<Box<[u8]>> = names.into_iter().map(Box::from).collect();
        if names.is_empty() {
            return KeyTable::default();
        }
        let size = (names.len() * 2).next_power_of_two().max(4);
        let shift = 64 - size.trailing_zeros();
        let mut slots = vec![(EMPTY_TAG, EMPTY_SLOT); size].into_boxed_slice();
        let mask = size - 1;
        for (index, name) in names.iter().enumerate() {
            let tag = key_tag(name);
            let mut i = slot_of(tag, shift) & mask;
            while let Some(slot) = slots.get_mut(i) {
                if slot.1 == EMPTY_SLOT {
                    *slot = (tag, index as u32);
                    break;
                }
                if names.get(slot.1 as usize).is_some_and(|n| **n == **name) {
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        KeyTable {
            slots,
            shift,
            names,
        }
    }

    /// The index of `key` (whose [`key_tag`] is `tag`).
    // PERF: inlined into the key scan (the hottest loop of the raw path); the byte comparison of
    // long keys stays out of line.
    #[inline(always)]
    pub fn find_tagged(&self, tag: u64, key: &[u8]) -> Option<u32> {
        // INVARIANT: equal tags make equal keys only when the tag holds the whole key
        // (`tag_is_whole_key`: at most 7 bytes, exact length); otherwise the bytes decide.
        self.probe(tag, |index| {
            tag_is_whole_key(tag) || self.name_is(index, key)
        })
    }

    /// The index of the key whose tag is `tag`, a tag that holds its whole key
    /// ([`tag_is_whole_key`]; the caller guarantees it): equal tags are equal keys, so no byte
    /// is compared. `miss` for a key the table does not hold: the quick scan's lookup, whose
    /// miss is the index of `additional_fields`' action.
    // PERF: one index out of the probe, no `Option` to merge with the miss: W2-20 redact 4,215
    // -> 4,060 instructions per document.
    #[inline(always)]
    pub fn find_whole_or(&self, tag: u64, miss: usize) -> usize {
        let mut i = slot_of(tag, self.shift);
        loop {
            let Some(&(t, index)) = self.slots.get(i) else {
                return miss;
            };
            if t == tag {
                return index as usize;
            }
            if index == EMPTY_SLOT {
                return miss;
            }
            i = (i + 1) & self.slots.len().wrapping_sub(1);
        }
    }

    /// The open-addressing probe of [`KeyTable::find_tagged`]: the first slot of tag `tag`
    /// whose index `same` accepts, or `None` at an empty slot.
    #[inline(always)]
    fn probe(&self, tag: u64, same: impl Fn(u32) -> bool) -> Option<u32> {
        // PERF: the product's top `64 - shift` bits index a table of `2^(64 - shift)` slots
        // whole, so the first probe needs no mask (the empty table's index is past its end);
        // and the tag is compared first, an empty slot's tag being no key's that `same`
        // accepts ([`EMPTY_TAG`]): a hit makes one comparison.
        let mut i = slot_of(tag, self.shift);
        loop {
            let &(t, index) = self.slots.get(i)?;
            if t == tag && same(index) {
                return Some(index);
            }
            if index == EMPTY_SLOT {
                return None;
            }
            i = (i + 1) & self.slots.len().wrapping_sub(1);
        }
    }
}

impl KeyTable {
    /// Whether the key at `index` is `key`, byte for byte.
    #[inline(never)]
    fn name_is(&self, index: u32, key: &[u8]) -> bool {
        self.names
            .get(index as usize)
            .is_some_and(|n| bytes_eq(n, key))
    }
}

#[inline]
fn slot_of(tag: u64, shift: u32) -> usize {
    (tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// Interned top-level keys of document paths.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys {
    pub names: Vec<Box<str>>,
    map: FxMap<Box<[u8]>, u32>,
    /// Built once all keys are interned ([`Keys::seal`]).
    table: KeyTable,
}

impl Keys {
    /// The id of `key` (whose [`key_tag`] is `tag`), when some path starts with it.
    #[inline]
    pub fn find(&self, tag: u64, key: &[u8]) -> Option<u32> {
        self.table.find_tagged(tag, key)
    }

    /// Builds the lookup table (after the last [`KeyInterner::intern`]).
    fn seal(&mut self) {
        self.table = KeyTable::new(self.names.iter().map(|n| n.as_bytes()));
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn name(&self, id: KeyId) -> &str {
        self.names.get(id.0 as usize).map_or("", |n| n)
    }
}

impl KeyInterner for Keys {
    fn intern(&mut self, key: &str) -> KeyId {
        if let Some(id) = self.map.get(key.as_bytes()) {
            return KeyId(*id);
        }
        let id = self.names.len() as u32;
        self.names.push(key.into());
        self.map.insert(key.as_bytes().into(), id);
        KeyId(id)
    }
}

/// The compiled roles of one collection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    /// Number of compiled field levels ([`CTree::id`]).
    pub trees: u32,
    pub nodes: Nodes,
    pub keys: Keys,
    pub roles: Vec<RoleProg>,
    pub segments: Vec<Segment>,
    pub runs: Vec<Run>,
    /// Place of each compiled rule ([`RuleRef::place`]).
    pub places: Vec<Place>,
    /// Number of per-document memos ([`RuleRef::memo`]).
    pub memos: u32,
}

impl Program {
    pub fn place(&self, index: u32) -> Option<&Place> {
        self.places.get(index as usize)
    }
}

/// Compiles the roles of one collection policy.
pub(crate) fn compile(roles: &[Role]) -> Program {
    let mut nodes = Nodes::default();
    let mut keys = Keys::default();
    let mut places = Vec::new();
    let runs = {
        let mut lower = Lowerer {
            nodes: &mut nodes,
            keys: &mut keys,
        };
        index::find_runs(roles, &mut lower)
    };
    let mut in_run = vec![false; roles.len()];
    for run in &runs {
        for p in 0..run.len {
            if let Some(flag) = in_run.get_mut((run.start + p) as usize) {
                *flag = true;
            }
        }
    }
    let mut trees = 0u32;
    let mut c = Compiler {
        lower: Lowerer {
            nodes: &mut nodes,
            keys: &mut keys,
        },
        places: &mut places,
        trees: &mut trees,
        shared: FxMap::default(),
        memos: FxMap::default(),
    };
    let compiled: Vec<RoleProg> = roles
        .iter()
        .zip(&in_run)
        .map(|(role, &indexed)| c.role(role, indexed))
        .collect();
    let c_memos = c.memos.len();
    let mut segments = Vec::new();
    let mut next_run = runs.iter().enumerate().peekable();
    let mut i = 0u32;
    while (i as usize) < roles.len() {
        match next_run.peek() {
            Some((r, run)) if run.start == i => {
                segments.push(Segment::Run(*r as u32));
                i += run.len;
                next_run.next();
            }
            _ => {
                segments.push(Segment::Single(i));
                i += 1;
            }
        }
    }
    let memos = u32::try_from(c_memos).unwrap_or(u32::MAX);
    keys.seal();
    Program {
        trees,
        nodes,
        keys,
        roles: compiled,
        segments,
        runs,
        places,
        memos,
    }
}

struct Compiler<'a> {
    lower: Lowerer<'a, Keys>,
    places: &'a mut Vec<Place>,
    trees: &'a mut u32,
    /// Field rules that read the document but not the field, by their text (equal texts are
    /// confirmed by `Expr` equality): one node for every copy.
    shared: FxMap<String, Vec<(Expr, NodeId)>>,
    /// Memo index of each shared node.
    memos: FxMap<NodeId, u32>,
}

impl Compiler<'_> {
    fn rule(&mut self, rule: &Rule) -> RuleRef {
        let node = self.lower.rule(&rule.expr);
        // PERF: only a rule that can fail needs its place (for the failure's message).
        if !self.lower.nodes.info(node).fallible {
            return RuleRef {
                node,
                place: NO_PLACE,
                memo: NO_MEMO,
            };
        }
        let place = self.places.len() as u32;
        self.places.push(rule.place.clone());
        RuleRef {
            node,
            place,
            memo: NO_MEMO,
        }
    }

    /// A field rule: like [`Compiler::rule`], and when it reads the document but not the
    /// field, shared with every equal field rule of the collection and memoized per document.
    fn field_rule(&mut self, rule: &Rule) -> RuleRef {
        let mut r = self.rule(rule);
        let info = self.lower.nodes.info(r.node);
        if !info.doc || info.field {
            return r;
        }
        let copies = self.shared.entry(rule.expr.to_string()).or_default();
        match copies.iter().find(|(e, _)| *e == rule.expr) {
            // The node lowered for this copy is left unused in the arena.
            Some((_, node)) => r.node = *node,
            None => copies.push((rule.expr.clone(), r.node)),
        }
        let next = u32::try_from(self.memos.len()).unwrap_or(NO_MEMO);
        r.memo = *self.memos.entry(r.node).or_insert(next);
        r
    }

    fn opt(&mut self, rule: Option<&Rule>) -> Option<RuleRef> {
        rule.map(|r| self.rule(r))
    }

    fn role(&mut self, role: &Role, indexed: bool) -> RoleProg {
        let apply_when = (!indexed).then(|| self.rule(&role.apply_when));
        let df = role.document_filters.as_ref();
        RoleProg {
            apply_when,
            doc_read: self.opt(df.and_then(|d| d.read.as_ref())),
            doc_write: self.opt(df.and_then(|d| d.write.as_ref())),
            has_doc_filters: df.is_some(),
            read: self.opt(role.read.as_ref()),
            write: self.opt(role.write.as_ref()),
            insert: self.opt(role.insert.as_ref()),
            delete: self.opt(role.delete.as_ref()),
            search: role.search,
            fields: self.tree(&role.fields),
        }
    }

    fn perms(&mut self, p: &FieldPermissions) -> CPerms {
        let read = p.read.as_ref().map(|r| self.field_rule(r));
        let write = p.write.as_ref().map(|r| self.field_rule(r));
        let nodes = &self.lower.nodes;
        let field = [read, write]
            .iter()
            .flatten()
            .any(|r| nodes.info(r.node).field);
        let doc = [read, write]
            .iter()
            .flatten()
            .any(|r| nodes.info(r.node).doc);
        CPerms {
            read,
            write,
            field,
            doc,
        }
    }

    fn fallible(&self, p: &CPerms) -> bool {
        [p.read, p.write]
            .iter()
            .flatten()
            .any(|r| self.lower.nodes.info(r.node).fallible)
    }

    fn tree(&mut self, tree: &FieldTree) -> CTree {
        let mut fields: Vec<(Box<str>, CField)> = Vec::with_capacity(tree.fields.len());
        let mut infallible = true;
        for (name, rule) in &tree.fields {
            let perms = self.perms(&rule.permissions);
            let nested = self.tree(&rule.nested);
            infallible &= !self.fallible(&perms) && nested.infallible;
            fields.push((name.as_str().into(), CField { perms, nested }));
        }
        let additional = tree.additional.as_ref().map(|a| self.perms(a));
        if let Some(a) = &additional {
            infallible &= !self.fallible(a);
        }
        let index = KeyTable::new(fields.iter().map(|(n, _)| n.as_bytes()));
        let id = *self.trees;
        *self.trees += 1;
        CTree {
            id,
            fields,
            index,
            additional,
            infallible,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::KeyTable;
    use crate::eval::raw::{key_tag, tag_is_whole_key};

    proptest! {
        #![proptest_config(crate::test_support::persisted(
            "proptest-regressions/compile_key_table.txt"
        ))]

        /// Both lookups find every name of a table at its first index, and nothing else: short
        /// keys (from few letters, so that tags collide in the table's slots and probes wrap)
        /// and long ones, repeated names, and keys that are not in the table.
        #[test]
        fn lookups_find_each_name_at_its_first_index(
            names in proptest::collection::vec("[ab]{0,3}|[ab]{8,9}", 0..40),
            others in proptest::collection::vec("[ab]{0,4}|[ab]{8,9}", 0..20),
        ) {
            let table = KeyTable::new(names.iter().map(|n| n.as_bytes()));
            let miss = names.len();
            for key in names.iter().chain(&others) {
                let want = names.iter().position(|n| n == key);
                let tag = key_tag(key.as_bytes());
                prop_assert_eq!(
                    table.find_tagged(tag, key.as_bytes()).map(|i| i as usize),
                    want
                );
                if tag_is_whole_key(tag) {
                    prop_assert_eq!(table.find_whole_or(tag, miss), want.unwrap_or(miss));
                }
            }
        }
    }
}
