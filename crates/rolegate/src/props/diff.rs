//! Stage: the semantic diff of two rule sets. Input: the old and new rules, a collection (or
//! every collection either names, and each data source's default rule), the number of cases, a
//! seed, and documents and users to try besides generated ones. Output: a [`DiffReport`] per
//! collection: every **difference class** found — a document returned by one and not the other,
//! a field shown by one and not the other (or with another value), an insert, update or delete
//! permitted by one and refused by the other — each once, with a minimal (shrunk) example.
//!
//! Decisions are compared, never rules: which role decided is shown in the examples but is not
//! compared, so renamed roles, reordered keys and other changes that decide the same are not
//! differences. The cases are generated from both rule sets' expressions, field rules and
//! schemas together ([`crate::generate`]), so a constant that only one side mentions is tried
//! under both.
//!
//! The search: a proptest run fails on the first case with a class not yet found, shrinks that
//! case while it still shows that class, records it, and a new run (another seed) continues with
//! the cases left, until the cases are used up or [`MAX_CLASSES`] classes are found.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use bson::{Bson, Document};
use proptest::test_runner::{TestCaseError, TestError};

use super::decide::{Decision, decide};
use super::model::PropAction;
use super::run::{RunOptions, runner};
use crate::engine::{Collection, Rules};
use crate::generate::{ContextTemplate, GenCase, Generators};
use crate::rules::RuleSet;
use crate::value::compare::identical;

/// At most this many difference classes are reported per collection.
pub const MAX_CLASSES: usize = 64;

/// The namespace that stands for "a collection no rule file names" (the default rule).
pub const DEFAULT_RULE_COLLECTION: &str = "*.*";

/// Which side has what the other lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The old rules.
    Old,
    /// The new rules.
    New,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Old => "OLD",
            Side::New => "NEW",
        }
    }
}

/// A kind of difference between two decisions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiffClass {
    /// A read returns the document under one side only.
    Visible(Side),
    /// A read shows the field (a dotted leaf path) under one side only.
    Field(String, Side),
    /// A read shows the field under both sides, with different values.
    FieldValue(String),
    /// A write is permitted (and goes ahead) under one side only.
    Write(PropAction, Side),
}

impl DiffClass {
    /// The action whose decision differs.
    pub fn action(&self) -> PropAction {
        match self {
            DiffClass::Visible(_) | DiffClass::Field(..) | DiffClass::FieldValue(_) => {
                PropAction::Read
            }
            DiffClass::Write(a, _) => *a,
        }
    }
}

impl fmt::Display for DiffClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiffClass::Visible(s) => {
                write!(f, "read: the document is returned only by {}", s.name())
            }
            DiffClass::Field(p, s) => write!(f, "read: field `{p}` is shown only by {}", s.name()),
            DiffClass::FieldValue(p) => write!(f, "read: field `{p}` is shown with another value"),
            DiffClass::Write(a, s) => write!(f, "{a}: permitted only by {}", s.name()),
        }
    }
}

/// One difference class with its minimal example.
#[derive(Debug, Clone)]
pub struct Difference {
    /// The class.
    pub class: DiffClass,
    /// The example (shrunk).
    pub case: GenCase,
    /// The post-image, for an update.
    pub post: Option<Document>,
    /// The old rules' decision.
    pub old: Decision,
    /// The new rules' decision.
    pub new: Decision,
}

/// The diff of one collection.
#[derive(Debug, Clone)]
pub struct DiffReport {
    /// The collection (`data_source/db.coll`; `data_source/*.*` for the default rule).
    pub namespace: String,
    /// The cases generated and compared (shrinking not counted).
    pub cases: u64,
    /// The difference classes found, in the order found.
    pub differences: Vec<Difference>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Documents and users to try besides the generated ones.
#[derive(Debug, Clone, Default)]
pub struct DiffInputs {
    /// Stored documents (also used as new documents and pre-images).
    pub documents: Vec<Document>,
    /// `%%user` objects.
    pub users: Vec<Document>,
}

/// Every collection either rule set names, as `data_source/db.coll`, and
/// `data_source/*.*` ([`DEFAULT_RULE_COLLECTION`]) for each data source with a default rule.
pub fn namespaces(old: &RuleSet, new: &RuleSet) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for set in [old, new] {
        for (name, ds) in &set.data_sources {
            for (db, coll) in ds.collections.keys() {
                out.insert(format!("{name}/{db}.{coll}"));
            }
            if ds.default_rule.is_some() {
                out.insert(format!("{name}/{DEFAULT_RULE_COLLECTION}"));
            }
        }
    }
    out.into_iter().collect()
}

/// One side: its collection (`None`: the namespace does not resolve there, so it has no
/// rules and refuses everything) and its request template.
struct DiffSide {
    collection: Option<Collection>,
    template: Option<ContextTemplate>,
}

impl DiffSide {
    fn new(rules: &Rules, namespace: &str) -> DiffSide {
        DiffSide {
            collection: rules.collection(namespace).ok(),
            template: ContextTemplate::new(rules).ok(),
        }
    }

    fn decide(&self, case: &GenCase, action: PropAction, post: Option<&Document>) -> Decision {
        match (&self.collection, &self.template) {
            (Some(c), Some(t)) => {
                let ctx = t.context(&case.user, &case.request);
                decide(c, &ctx, action, &case.document, post)
            }
            _ => Decision {
                role: None,
                granted: false,
                permitted: false,
                document: None,
                selected: false,
                error_code: None,
                error: Some("no rules govern the collection here".to_string()),
            },
        }
    }
}

/// The decisions of both sides for every action of a case, and the classes they differ by.
fn compare(old: &DiffSide, new: &DiffSide, case: &GenCase) -> Vec<(DiffClass, Decision, Decision)> {
    let post = case.post();
    let mut out = Vec::new();
    for action in [
        PropAction::Read,
        PropAction::Insert,
        PropAction::Update,
        PropAction::Delete,
    ] {
        let p = (action == PropAction::Update).then_some(&post);
        let a = old.decide(case, action, p);
        let b = new.decide(case, action, p);
        for class in classes(action, &a, &b) {
            out.push((class, a.clone(), b.clone()));
        }
    }
    out
}

/// The classes by which two decisions of `action` differ.
fn classes(action: PropAction, a: &Decision, b: &Decision) -> Vec<DiffClass> {
    let mut out = Vec::new();
    if action != PropAction::Read {
        if a.granted != b.granted {
            let side = if a.granted { Side::Old } else { Side::New };
            out.push(DiffClass::Write(action, side));
        }
        return out;
    }
    if a.granted != b.granted {
        let side = if a.granted { Side::Old } else { Side::New };
        out.push(DiffClass::Visible(side));
        return out;
    }
    let leaves = |d: &Decision| -> BTreeMap<String, Bson> {
        let mut m = BTreeMap::new();
        if let Some(doc) = &d.document {
            leaf_values(doc, "", &mut m);
        }
        m
    };
    let (la, lb) = (leaves(a), leaves(b));
    for (path, va) in &la {
        match lb.get(path) {
            None => out.push(DiffClass::Field(path.clone(), Side::Old)),
            Some(vb) if !identical(va, vb) => out.push(DiffClass::FieldValue(path.clone())),
            Some(_) => {}
        }
    }
    for path in lb.keys() {
        if !la.contains_key(path) {
            out.push(DiffClass::Field(path.clone(), Side::New));
        }
    }
    out
}

/// The dotted leaf paths of `doc` with their values: embedded documents are descended into, and
/// so are the document elements of arrays (under the array's path, without an index, as
/// MongoDB's paths read them: a field removed from every element of `details` is
/// `details.internalNotes`); scalars, empty documents, and an array's other elements are leaves.
/// Several values at one path are gathered into an array, in document order.
fn leaf_values(doc: &Document, prefix: &str, out: &mut BTreeMap<String, Bson>) {
    let join = |prefix: &str, k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    let add = |out: &mut BTreeMap<String, Bson>, path: String, v: Bson| match out.get_mut(&path) {
        Some(Bson::Array(items)) => items.push(v),
        Some(existing) => {
            let first = std::mem::replace(existing, Bson::Null);
            *existing = Bson::Array(vec![first, v]);
        }
        None => {
            out.insert(path, v);
        }
    };
    // An explicit stack (in reverse, so that values gather in document order).
    let members = |d: &'_ Document, at: &str| -> Vec<(String, Bson)> {
        let mut m: Vec<(String, Bson)> = d.iter().map(|(k, v)| (join(at, k), v.clone())).collect();
        m.reverse();
        m
    };
    let mut stack: Vec<(String, Bson)> = members(doc, prefix);
    while let Some((path, v)) = stack.pop() {
        match v {
            Bson::Document(sub) if !sub.is_empty() => stack.extend(members(&sub, &path)),
            Bson::Array(items) if items.iter().any(|i| matches!(i, Bson::Document(_))) => {
                let others: Vec<Bson> = items
                    .iter()
                    .filter(|i| !matches!(i, Bson::Document(_)))
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    add(out, path.clone(), Bson::Array(others));
                }
                for item in items.iter().rev() {
                    if let Bson::Document(sub) = item {
                        if sub.is_empty() {
                            add(out, path.clone(), Bson::Document(Document::new()));
                        }
                        stack.extend(members(sub, &path));
                    }
                }
            }
            other => add(out, path, other),
        }
    }
}

/// Searches `namespace` for decisions that differ between `old` and `new` (module docs).
pub fn diff_collection(
    old: &Rules,
    new: &Rules,
    namespace: &str,
    inputs: &DiffInputs,
    options: &RunOptions,
) -> DiffReport {
    let started = Instant::now();
    let (a, b) = (DiffSide::new(old, namespace), DiffSide::new(new, namespace));
    let mut builder = Generators::builder();
    for rules in [old, new] {
        if rules.collection(namespace).is_ok()
            && let Ok(next) = builder.collection(rules, namespace)
        {
            builder = next;
        } else {
            builder = Generators::builder();
        }
    }
    let gens = builder
        .documents(inputs.documents.iter().cloned())
        .users(inputs.users.iter().cloned())
        .build();
    let strategy = gens.case();
    let mut report = DiffReport {
        namespace: namespace.to_string(),
        cases: 0,
        differences: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut known: BTreeSet<DiffClass> = BTreeSet::new();
    let mut round = 0u32;
    while report.cases < u64::from(options.cases) && known.len() < MAX_CLASSES {
        let left = u64::from(options.cases) - report.cases;
        let round_options = RunOptions {
            cases: u32::try_from(left).unwrap_or(u32::MAX),
            ..*options
        };
        let mut run = runner(&round_options, &format!("{namespace}#{round}"));
        let target: RefCell<Option<DiffClass>> = RefCell::new(None);
        let counted = RefCell::new(0u64);
        let result = run.run(&strategy, |case| {
            let found = compare(&a, &b, &case);
            let mut t = target.borrow_mut();
            match t.as_ref() {
                None => {
                    *counted.borrow_mut() += 1;
                    if let Some((class, ..)) = found.iter().find(|(c, ..)| !known.contains(c)) {
                        *t = Some(class.clone());
                        return Err(TestCaseError::fail(class.to_string()));
                    }
                    Ok(())
                }
                Some(goal) => {
                    if found.iter().any(|(c, ..)| c == goal) {
                        Err(TestCaseError::fail(goal.to_string()))
                    } else {
                        Ok(())
                    }
                }
            }
        });
        report.cases += counted.into_inner();
        match (result, target.into_inner()) {
            (Err(TestError::Fail(_, case)), Some(class)) => {
                let found = compare(&a, &b, &case);
                if let Some((_, old_d, new_d)) = found.into_iter().find(|(c, ..)| *c == class) {
                    report.differences.push(Difference {
                        post: (class.action() == PropAction::Update).then(|| case.post()),
                        class: class.clone(),
                        case,
                        old: old_d,
                        new: new_d,
                    });
                }
                known.insert(class);
                round += 1;
            }
            _ => break,
        }
    }
    report.elapsed = started.elapsed();
    report
}
