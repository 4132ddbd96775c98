//! Stage: role indexes ("many roles, one lookup"). Input: the roles of a collection. Output:
//! [`Run`]s — maximal consecutive runs of roles whose `apply_when` is a conjunction of
//! infallible `path == "string"` tests over the same set of paths — each indexed by string
//! constant, so that selecting a role among thousands costs one hash lookup, not a scan.
//!
//! A test qualifies when its subject is a request path (`%%user.custom_data.group`) or a
//! document path (`team`, `%%root.team`; not `%%prevRoot`, `%%this`, `%%prev`) and its predicate
//! is a string literal match (`"gK"`) or `{"$eq": "gK"}`. Such a test holds exactly when some
//! value the path reaches is a string (or symbol) equal to the constant, or an array holding
//! one ([`strings_of`] gives those strings); it never fails.
//!
//! Per request ([`crate::eval::prepare`]): the first request path of a run is resolved once and
//! looked up in [`Run::request_index`]; the candidates' other request tests are checked; what is
//! left are the run's live roles. Per document ([`crate::eval::doc`]): the first document path
//! is read once and looked up in [`Run::doc_index`]; the smallest live candidate whose other
//! document tests hold is the run's match (first match, as in the reference).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bson::Bson;

use super::ir::DocPath;
use super::lower::{KeyInterner, Lowerer};
use crate::expr::{CmpOp, Expansion, Expr, Op, Operand, Predicate, Root};
use crate::rules::Role;

/// Runs shorter than this are left as single roles (a scan is as cheap).
pub(crate) const MIN_RUN: usize = 4;

/// FxHash (rustc's): a fast, non-cryptographic hash for short keys. Index keys come from the
/// rule files, not from requests, so hash flooding is not a concern for them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes);
            self.add(w);
        }
        let mut w = 0u64;
        for (i, b) in chunks.remainder().iter().enumerate() {
            w |= u64::from(*b) << (8 * i);
        }
        self.add(w);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A path a run tests: a request expansion or a document path (borrowed from the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum PathKey<'a> {
    Request(Root, &'a [String]),
    Doc(&'a [String]),
}

/// One `path == "constant"` test of a run role: an index into the run's request paths
/// (`doc: false`) or document paths (`doc: true`).
#[derive(Debug, Clone)]
pub(crate) struct RunTest {
    pub doc: bool,
    pub path: u32,
    pub value: Box<str>,
}

/// A run of consecutive roles with indexed `apply_when`s.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The policy index of the run's first role; run position `p` is role `start + p`.
    pub start: u32,
    pub len: u32,
    /// The request paths tested (resolved once per request).
    pub request_paths: Box<[Expansion]>,
    /// The document paths tested.
    pub doc_paths: Box<[DocPath]>,
    /// The tests of each role (by run position).
    pub tests: Box<[Box<[RunTest]>]>,
    /// On `request_paths[0]`: constant → run positions (ascending). Empty when the run tests
    /// no request path.
    pub request_index: FxMap<Box<str>, Box<[u32]>>,
    /// On `doc_paths[0]`: constant (as bytes, looked up with raw string bytes) → run positions
    /// (ascending). Empty when the run tests no document path.
    pub doc_index: DocIndex,
    /// Every role's only document test is its indexed one (`{"team": "tK"}` plus request
    /// tests): a hit in [`Run::doc_index`] needs no further document check.
    pub doc_index_proves: bool,
}

/// [`Run::doc_index`]: a flat open-addressing table (no pointer chasing per lookup: with
/// thousands of roles, every dependent load is a cache miss).
#[derive(Debug, Clone, Default)]
pub(crate) struct DocIndex {
    keys: super::KeyTable,
    /// Per key: `(start, len)` in `positions`.
    lists: Vec<(u32, u32)>,
    positions: Vec<u32>,
}

impl DocIndex {
    fn new(entries: Vec<(&[u8], Vec<u32>)>) -> DocIndex {
        let keys = super::KeyTable::new(entries.iter().map(|(k, _)| *k));
        let mut lists = Vec::with_capacity(entries.len());
        let mut positions = Vec::new();
        for (_, list) in &entries {
            lists.push((positions.len() as u32, list.len() as u32));
            positions.extend_from_slice(list);
        }
        DocIndex {
            keys,
            lists,
            positions,
        }
    }

    /// The run positions (ascending) whose indexed constant is `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&[u32]> {
        let i = self.keys.find_tagged(crate::eval::raw::key_tag(key), key)?;
        let &(start, len) = self.lists.get(i as usize)?;
        self.positions
            .get(start as usize..start as usize + len as usize)
    }
}

/// The `(path, constant)` tests of an indexable `apply_when`, or `None`.
fn indexable(e: &Expr) -> Option<Vec<(PathKey<'_>, &str)>> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::All(es) => stack.extend(es.iter().rev()),
            Expr::Test { subject, predicate } => {
                let value = match predicate {
                    Predicate::Matches(Operand::Literal(Bson::String(s))) => s.as_str(),
                    Predicate::Ops(ops) => match ops.as_slice() {
                        [Op::Cmp(CmpOp::Eq, Operand::Literal(Bson::String(s)))] => s.as_str(),
                        _ => return None,
                    },
                    _ => return None,
                };
                let key = match subject.root {
                    // A numeric segment is also a field name in MongoDB's query paths: the
                    // evaluation falls back to the reference (`lower.rs`).
                    Root::Root if super::lower::has_numeric_segment(&subject.path) => return None,
                    Root::Root => PathKey::Doc(&subject.path),
                    Root::User
                    | Root::Request
                    | Root::Values
                    | Root::Environment
                    | Root::Args
                    | Root::Partition => PathKey::Request(subject.root, &subject.path),
                    Root::PrevRoot | Root::This | Root::Prev | Root::True | Root::False => {
                        return None;
                    }
                };
                out.push((key, value));
            }
            _ => return None,
        }
    }
    if out.is_empty() { None } else { Some(out) }
}

fn path_set<'a>(tests: &[(PathKey<'a>, &str)]) -> Vec<PathKey<'a>> {
    let mut set: Vec<PathKey<'a>> = tests.iter().map(|(k, _)| *k).collect();
    set.sort();
    set.dedup();
    set
}

/// An analysed `apply_when`: its set of paths and its tests.
type Analysed<'a> = Option<(Vec<PathKey<'a>>, Vec<(PathKey<'a>, &'a str)>)>;

/// Finds the runs of `roles` (role index ranges, in order) and builds their indexes.
pub(crate) fn find_runs<K: KeyInterner>(roles: &[Role], lower: &mut Lowerer<'_, K>) -> Vec<Run> {
    let analysed: Vec<Analysed<'_>> = roles
        .iter()
        .map(|r| indexable(&r.apply_when.expr).map(|t| (path_set(&t), t)))
        .collect();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < analysed.len() {
        let Some(Some((set, _))) = analysed.get(i) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while matches!(analysed.get(j), Some(Some((s, _))) if s == set) {
            j += 1;
        }
        if j - i >= MIN_RUN {
            runs.push(build_run(i, analysed.get(i..j).unwrap_or(&[]), set, lower));
        }
        i = j;
    }
    runs
}

fn build_run<K: KeyInterner>(
    start: usize,
    members: &[Analysed<'_>],
    set: &[PathKey<'_>],
    lower: &mut Lowerer<'_, K>,
) -> Run {
    let mut request_paths = Vec::new();
    let mut doc_paths = Vec::new();
    // Position of each path of `set` in request_paths / doc_paths.
    let mut slot_of: Vec<(bool, u32)> = Vec::with_capacity(set.len());
    for key in set {
        match key {
            PathKey::Request(root, path) => {
                slot_of.push((false, request_paths.len() as u32));
                request_paths.push(Expansion {
                    root: *root,
                    path: path.to_vec(),
                    implicit: false,
                });
            }
            PathKey::Doc(path) => {
                slot_of.push((true, doc_paths.len() as u32));
                doc_paths.push(lower.doc_path(path));
            }
        }
    }
    let mut tests = Vec::with_capacity(members.len());
    let mut request_index: FxMap<Box<str>, Vec<u32>> = FxMap::default();
    // In first-seen order (the table's indexes follow it).
    let mut doc_index: Vec<(&[u8], Vec<u32>)> = Vec::new();
    let mut doc_slot: FxMap<&[u8], usize> = FxMap::default();
    let mut doc_index_proves = !doc_paths.is_empty() && doc_paths.len() == 1;
    for (pos, member) in members.iter().enumerate() {
        let Some((_, role_tests)) = member else {
            continue;
        };
        let pos = pos as u32;
        let mut compiled = Vec::with_capacity(role_tests.len());
        let (mut on_request0, mut on_doc0) = (None, None);
        for (key, value) in role_tests {
            let Some(&(doc, path)) = set
                .iter()
                .position(|k| k == key)
                .and_then(|i| slot_of.get(i))
            else {
                continue;
            };
            if path == 0 && !doc && on_request0.is_none() {
                on_request0 = Some(*value);
            }
            if path == 0 && doc && on_doc0.is_none() {
                on_doc0 = Some(*value);
            }
            compiled.push(RunTest {
                doc,
                path,
                value: (*value).into(),
            });
        }
        // INVARIANT: every role of the run tests every path of `set`, so both are `Some` when
        // the run has such paths; the role is indexed under one of its constants for each
        // (all its tests are checked after the lookup).
        if let Some(v) = on_request0 {
            request_index.entry(v.into()).or_default().push(pos);
        }
        if let Some(v) = on_doc0 {
            let key = v.as_bytes();
            let slot = *doc_slot.entry(key).or_insert_with(|| {
                doc_index.push((key, Vec::new()));
                doc_index.len() - 1
            });
            if let Some((_, list)) = doc_index.get_mut(slot) {
                list.push(pos);
            }
        }
        doc_index_proves &= compiled.iter().filter(|t| t.doc).count() == 1;
        tests.push(compiled.into_boxed_slice());
    }
    fn freeze<K: std::hash::Hash + Eq>(m: FxMap<K, Vec<u32>>) -> FxMap<K, Box<[u32]>> {
        m.into_iter()
            .map(|(k, v)| (k, v.into_boxed_slice()))
            .collect()
    }
    Run {
        start: start as u32,
        len: members.len() as u32,
        request_paths: request_paths.into(),
        doc_paths: doc_paths.into(),
        tests: tests.into(),
        request_index: freeze(request_index),
        doc_index: DocIndex::new(doc_index),
        doc_index_proves,
    }
}
