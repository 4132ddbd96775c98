//! Stage: decision-point coverage of case runs (`rolegate test --coverage`). Input: cases, run
//! one by one through [`Coverage::run_case`]. Output: each case's [`CaseResult`], and for every
//! rule file the cases loaded its [`DecisionPoint`]s with how many cases reached each one.
//!
//! ```text
//! Case ──load::rule_files──▶ (file name, JSON) ──▶ CoveredFile (new content: points::decision_points)
//!   └─run through the reference evaluator, with a Recorder as the request's observer
//!        ──▶ (file, JSON path, outcome) of every rule evaluated ──▶ hits of the points
//! ```
//!
//! - [`points`]: what the decision points of a rule set are (the list, and why constants have
//!   one outcome).
//! - The recording: the request context carries an observer
//!   ([`RequestContext::observe`](crate::context::RequestContext)); the reference evaluator
//!   tells it the outcome of every rule it evaluates (`reference::Trace::eval`), the query
//!   planner the outcome of every filter's `apply_when`. The compiled engine is untouched;
//!   coverage runs use the reference evaluator, which gives the same answers.
//!
//! A rule file is identified by its name (the file of its places: an app-relative path in a
//! case's `files`, or the case key of a piece: `collection_rules`, `default_rule`, ...) **and**
//! its content (its JSON text, keys in their order): cases that repeat the same rules share one
//! [`CoveredFile`]; two cases with different rules under the same name get two (`variant` 1,
//! 2, ...). Looking a file up is one hash of its text, so coverage stays linear in the size of
//! the cases. `expression` and
//! `validate_config` cases evaluate no rule file and add nothing; a case whose rules do not load
//! adds nothing either (it fails).

mod points;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::engine::ReferenceEngine;
use super::load;
use super::model::{Action, Case};
use super::run::{CaseResult, answer_observed, judged};
use crate::context::RuleObserver;
use crate::error::Place;

/// What kind of rule a decision point belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointKind {
    /// A role's `apply_when`: the role is chosen (true) or passed over (false).
    ApplyWhen,
    /// A role's `document_filters.read`.
    DocumentFiltersRead,
    /// A role's `document_filters.write`.
    DocumentFiltersWrite,
    /// A role's document-level `read`.
    Read,
    /// A role's document-level `write`.
    Write,
    /// A role's `insert`.
    Insert,
    /// A role's `delete`.
    Delete,
    /// The `read` of a field rule (`fields.<name>.read`, at any nesting level).
    FieldRead,
    /// The `write` of a field rule.
    FieldWrite,
    /// The `read` of an `additional_fields` (of the role or of a nested level).
    AdditionalFieldsRead,
    /// The `write` of an `additional_fields`.
    AdditionalFieldsWrite,
    /// A filter's `apply_when`: the filter is applied (true) or not (false).
    Filter,
    /// Partition-Based Sync `read`.
    PartitionRead,
    /// Partition-Based Sync `write`.
    PartitionWrite,
    /// A third-party service rule's `when`.
    ServiceWhen,
    /// A function's `can_evaluate`.
    CanEvaluate,
}

impl PointKind {
    /// The kind's name in reports (`apply_when`, `field_read`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PointKind::ApplyWhen => "apply_when",
            PointKind::DocumentFiltersRead => "document_filters_read",
            PointKind::DocumentFiltersWrite => "document_filters_write",
            PointKind::Read => "read",
            PointKind::Write => "write",
            PointKind::Insert => "insert",
            PointKind::Delete => "delete",
            PointKind::FieldRead => "field_read",
            PointKind::FieldWrite => "field_write",
            PointKind::AdditionalFieldsRead => "additional_fields_read",
            PointKind::AdditionalFieldsWrite => "additional_fields_write",
            PointKind::Filter => "filter",
            PointKind::PartitionRead => "partition_read",
            PointKind::PartitionWrite => "partition_write",
            PointKind::ServiceWhen => "service_when",
            PointKind::CanEvaluate => "can_evaluate",
        }
    }

    /// How reports name `outcome` for this kind: `true`/`false` for conditions (`apply_when`,
    /// document filters, a service rule's `when`), `applied`/`not applied` for filters,
    /// `granted`/`denied` for permissions.
    pub fn outcome_label(self, outcome: bool) -> &'static str {
        match (self, outcome) {
            (
                PointKind::ApplyWhen
                | PointKind::DocumentFiltersRead
                | PointKind::DocumentFiltersWrite
                | PointKind::ServiceWhen,
                true,
            ) => "true",
            (
                PointKind::ApplyWhen
                | PointKind::DocumentFiltersRead
                | PointKind::DocumentFiltersWrite
                | PointKind::ServiceWhen,
                false,
            ) => "false",
            (PointKind::Filter, true) => "applied",
            (PointKind::Filter, false) => "not applied",
            (_, true) => "granted",
            (_, false) => "denied",
        }
    }
}

/// One outcome of one rule: whether, and by how many cases, it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionPoint {
    /// The rule's JSON path in its file (`roles[1].apply_when`,
    /// `roles[0].fields.details.fields.notes.read`, `filters[0].apply_when`).
    pub path: String,
    /// What kind of rule it is.
    pub kind: PointKind,
    /// The outcome: the rule evaluated to true (granted, applied) or false (denied, not applied).
    pub outcome: bool,
    /// The name of the role, filter, service rule or function the rule belongs to.
    pub name: Option<String>,
    /// How many cases reached this outcome (a case counts once however often it did).
    pub hits: usize,
}

impl DecisionPoint {
    /// True when at least one case reached this outcome.
    pub fn covered(&self) -> bool {
        self.hits > 0
    }

    /// The outcome as reports name it ([`PointKind::outcome_label`]).
    pub fn label(&self) -> &'static str {
        self.kind.outcome_label(self.outcome)
    }

    fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "kind": self.kind.as_str(),
            "outcome": self.outcome,
            "label": self.label(),
            "name": self.name,
            "covered": self.covered(),
            "hits": self.hits,
        })
    }
}

/// One rule file (one content under one name) and its decision points.
#[derive(Debug, Clone, PartialEq)]
pub struct CoveredFile {
    /// The file's name as the places of its rules give it: its app-relative path
    /// (`data_sources/mongodb-atlas/shop/orders/rules.json`) or, for the pieces of a case's
    /// `rules`, the key (`collection_rules`, `default_rule`, `partition_permissions`,
    /// `service_rules`, `function`).
    pub file: String,
    /// 1 for the first content seen under this name (and, for a `collection_rules` piece,
    /// this namespace), 2 for the second, ...
    pub variant: usize,
    /// The file's JSON, as the cases gave it (`null` if no case did).
    pub source: Value,
    /// How many cases ran with this file among their rules.
    pub cases: usize,
    /// The decision points, in the order of the file's rules.
    pub points: Vec<DecisionPoint>,
    /// (path, outcome) → index in `points`.
    index: HashMap<(String, bool), usize>,
}

impl CoveredFile {
    /// A name for reports: the file, the namespace of a `collection_rules` piece
    /// (`collection_rules (shop.orders)`), and `#N` for a second or later variant.
    pub fn label(&self) -> String {
        let base = base_label(&self.file, &self.source);
        match self.variant {
            1 => base,
            n => format!("{base} #{n}"),
        }
    }

    /// How many of the file's decision points were reached.
    pub fn covered(&self) -> usize {
        self.points.iter().filter(|p| p.covered()).count()
    }

    /// How many decision points the file has.
    pub fn total(&self) -> usize {
        self.points.len()
    }

    fn to_json(&self) -> Value {
        json!({
            "file": self.file,
            "variant": self.variant,
            "label": self.label(),
            "cases": self.cases,
            "covered": self.covered(),
            "total": self.total(),
            "percent": percent(self.covered(), self.total()),
            "points": self.points.iter().map(DecisionPoint::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A file's name in reports, without its variant: `collection_rules` pieces get their
/// namespace (`collection_rules (shop.orders)`).
fn base_label(file: &str, source: &Value) -> String {
    let field = |k: &str| source.get(k).and_then(Value::as_str);
    match (file, field("database"), field("collection")) {
        ("collection_rules", Some(db), Some(coll)) => format!("{file} ({db}.{coll})"),
        _ => file.to_string(),
    }
}

/// The share `covered / total` in percent; 100 when there is nothing to cover.
pub fn percent(covered: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        // Counts of decision points are far below 2^52: exact as f64.
        covered as f64 * 100.0 / total as f64
    }
}

/// The decision-point coverage of the cases run so far (module docs).
///
/// ```
/// use rolegate::testing::{Coverage, parse_cases};
///
/// let cases = parse_cases(r#"[{
///     "name": "the owner reads", "source": "example", "notes": "[example]",
///     "rules": {"mode": "mongodb", "collection_rules": {"database": "shop", "collection": "orders",
///         "roles": [{"name": "owner", "apply_when": {"owner": "%%user.id"}, "read": true}]}},
///     "user": {"id": "alice"}, "document": {"_id": 1, "owner": "alice"},
///     "action": "read", "expected": {"role": "owner"}
/// }]"#)?;
/// let mut coverage = Coverage::new();
/// for case in &cases {
///     assert!(coverage.run_case(case).passed);
/// }
/// // `apply_when` true and false, `read` granted (a constant: one outcome); false never reached.
/// assert_eq!((coverage.covered(), coverage.total()), (2, 3));
/// let file = coverage.files().next().ok_or("no file")?;
/// let missed: Vec<String> = file.points.iter().filter(|p| !p.covered())
///     .map(|p| format!("{} {}", p.path, p.label())).collect();
/// assert_eq!(missed, ["roles[0].apply_when false"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    files: Vec<CoveredFile>,
    /// (file name, the file's JSON text) → index in `files`: one lookup per file of a case,
    /// however many variants there are.
    by_content: HashMap<(String, String), usize>,
    /// Label without the variant → how many variants have it.
    variants: HashMap<String, usize>,
    cases: usize,
    /// Evaluations whose place is no decision point of the case's rules (none is expected).
    unmatched: BTreeSet<(String, String, bool)>,
}

impl Coverage {
    /// No case run yet.
    pub fn new() -> Self {
        Coverage::default()
    }

    /// Runs `case` through the reference evaluator (as `run_case` with
    /// [`EngineChoice::Reference`](super::EngineChoice::Reference)) and records the decision
    /// points it reached.
    pub fn run_case(&mut self, case: &Case) -> CaseResult {
        if matches!(case.action, Action::Expression | Action::ValidateConfig) {
            return judged(case, answer_observed(case, &ReferenceEngine, None));
        }
        let in_case = self.register(case);
        let recorder = Arc::new(Recorder::default());
        let observer: Arc<dyn RuleObserver> = recorder.clone();
        let result = judged(
            case,
            answer_observed(case, &ReferenceEngine, Some(observer)),
        );
        self.cases += 1;
        for &i in in_case.values() {
            if let Some(file) = self.files.get_mut(i) {
                file.cases += 1;
            }
        }
        for (file, path, outcome) in recorder.take() {
            let at = in_case
                .get(file.as_ref())
                .copied()
                .or_else(|| self.find(&file, &Value::Null));
            let point = at.and_then(|i| {
                let f = self.files.get_mut(i)?;
                let at = *f.index.get(&(path.clone(), outcome))?;
                f.points.get_mut(at)
            });
            match point {
                Some(point) => point.hits += 1,
                None => {
                    self.unmatched.insert((file.to_string(), path, outcome));
                }
            }
        }
        result
    }

    /// The rule files of `case` (registered when new): file name → index in `files`. Empty
    /// when the case's rules do not load.
    fn register(&mut self, case: &Case) -> HashMap<String, usize> {
        let sources = load::rule_files(&case.rules);
        let mut in_case = HashMap::new();
        let mut missing = false;
        for (name, json) in &sources {
            match self.find(name, json) {
                Some(i) => {
                    in_case.insert(name.clone(), i);
                }
                None => missing = true,
            }
        }
        if !missing {
            return in_case;
        }
        let Ok(set) = load::rule_set(&case.rules) else {
            return HashMap::new();
        };
        let mut found = points::decision_points(&set);
        let mut files: Vec<(String, Value)> = sources;
        for name in found.keys() {
            if !files.iter().any(|(n, _)| n.as_str() == name.as_ref()) {
                // A place naming no file of the case (a loader's own name): kept, without JSON.
                files.push((name.to_string(), Value::Null));
            }
        }
        for (name, json) in files {
            if in_case.contains_key(&name) {
                continue;
            }
            let i = match self.find(&name, &json) {
                Some(i) => i,
                None => {
                    let points = found.remove(name.as_str()).unwrap_or_default();
                    self.add(name.clone(), json, points)
                }
            };
            in_case.insert(name, i);
        }
        in_case
    }

    fn find(&self, name: &str, json: &Value) -> Option<usize> {
        self.by_content
            .get(&(name.to_string(), json.to_string()))
            .copied()
    }

    fn add(&mut self, file: String, source: Value, points: Vec<DecisionPoint>) -> usize {
        let count = self.variants.entry(base_label(&file, &source)).or_default();
        *count += 1;
        let variant = *count;
        let index = points
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.path.clone(), p.outcome), i))
            .collect();
        let at = self.files.len();
        self.by_content
            .insert((file.clone(), source.to_string()), at);
        self.files.push(CoveredFile {
            file,
            variant,
            source,
            cases: 0,
            points,
            index,
        });
        at
    }

    /// The rule files with at least one decision point, in the order the cases first loaded
    /// them.
    pub fn files(&self) -> impl Iterator<Item = &CoveredFile> {
        self.files.iter().filter(|f| f.total() > 0)
    }

    /// How many decision points were reached, over every file.
    pub fn covered(&self) -> usize {
        self.files.iter().map(CoveredFile::covered).sum()
    }

    /// How many decision points the rule files have, over every file.
    pub fn total(&self) -> usize {
        self.files.iter().map(CoveredFile::total).sum()
    }

    /// `covered / total` in percent (100 when there is nothing to cover).
    pub fn percent(&self) -> f64 {
        percent(self.covered(), self.total())
    }

    /// How many cases ran with coverage recorded (`expression` and `validate_config` cases
    /// excluded).
    pub fn cases(&self) -> usize {
        self.cases
    }

    /// Rules evaluated whose (file, JSON path, outcome) is no decision point of the case's
    /// rules. Expected empty: a non-empty list means the walk of the decision points misses a kind of
    /// rule the evaluators decide with.
    pub fn unmatched(&self) -> impl Iterator<Item = &(String, String, bool)> {
        self.unmatched.iter()
    }

    /// The report as JSON (the schema is in the repository's `docs/coverage.md`):
    /// `{covered, total, percent, cases, files: [{file, variant, label, cases, covered, total,
    /// percent, points: [{path, kind, outcome, label, name, covered, hits}]}]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "covered": self.covered(),
            "total": self.total(),
            "percent": self.percent(),
            "cases": self.cases,
            "files": self.files().map(CoveredFile::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The observer of one case: the (file, JSON path, outcome) of every rule evaluated.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<BTreeSet<(Arc<str>, String, bool)>>,
}

impl Recorder {
    fn take(&self) -> BTreeSet<(Arc<str>, String, bool)> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *seen)
    }
}

impl RuleObserver for Recorder {
    fn observed(&self, place: &Place, outcome: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert((place.file.clone(), place.json_path.clone(), outcome));
    }
}

#[cfg(test)]
mod tests;
