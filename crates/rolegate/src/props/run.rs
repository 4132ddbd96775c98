//! Stage: checking a property. Input: the rules, a [`CompiledProperty`], the number of cases
//! and a seed. Output: a [`PropertyReport`]: how many cases ran, were in scope, exercised the
//! claim, reached each role; and passed, vacuous (nothing in scope reached what the property
//! talks about: a warning, not a pass) or failed with a [`Counterexample`] that proptest shrank
//! to a minimal user, request and document.
//!
//! Each property runs its own deterministic proptest runner (ChaCha, seeded from the seed and
//! the property's name, so adding a property does not change the others' cases); shrinking
//! keeps the failure: a simpler case is kept only when it still breaks the claim.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bson::{Document, doc};
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use super::decide::{Decision, decide, has_path, values_at};
use super::model::{Claim, CompiledProperty, Expect, PropAction};
use crate::engine::{Collection, Rules, UnknownNamespace};
use crate::expr::Expr;
use crate::generate::{ContextTemplate, FunctionCall, GenCase, Generators};
use crate::value::compare::identical;
use crate::value::eval::{Bindings, eval_expr};

/// How many cases, which seed, how much shrinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Cases per property (or per collection, for the diff).
    pub cases: u32,
    /// The seed: the same seed gives the same cases.
    pub seed: u64,
    /// At most this many simpler cases are tried while shrinking a failure.
    pub max_shrink_iters: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            cases: 10_000,
            seed: 0,
            max_shrink_iters: 4096,
        }
    }
}

/// How a property came out.
#[derive(Debug, Clone)]
pub enum PropertyOutcome {
    /// Every case in scope met the claim, and some case exercised it.
    Passed,
    /// No case broke the claim, but what the property talks about was never reached: a
    /// warning, not a pass (the reason says what was missing).
    Vacuous(String),
    /// A case broke the claim (shrunk).
    Failed(Box<Counterexample>),
    /// The run could not be made (the reason says why).
    Aborted(String),
}

/// A minimal case that breaks a property's claim.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// The case: user, request, document and the changes of an update.
    pub case: GenCase,
    /// The post-image of an update.
    pub post: Option<Document>,
    /// The `%function` calls the decision made, with their results.
    pub calls: Vec<FunctionCall>,
    /// The decision.
    pub decision: Decision,
    /// Why it breaks the claim.
    pub reason: String,
    /// How many simpler cases were tried while shrinking.
    pub shrink_runs: u64,
}

/// The result of checking one property.
#[derive(Debug, Clone)]
pub struct PropertyReport {
    /// The property's name.
    pub name: String,
    /// Its collection.
    pub namespace: String,
    /// Its action.
    pub action: PropAction,
    /// Cases generated and judged (up to and including a failing one).
    pub cases: u64,
    /// Cases that met the property's constraints (`where`, `when`, `role`, and for writes of
    /// `fields`, that the fields are written).
    pub in_scope: u64,
    /// Cases in scope where the claim was put to the test (a field present; an action granted,
    /// for `only_if` / `only_roles`).
    pub exercised: u64,
    /// For each role (`None`: no role), how many cases in scope it decided.
    pub roles: Vec<(Option<String>, u64)>,
    /// Write cases in scope that the rules permitted and the schema refused.
    pub schema_refused: u64,
    /// The outcome.
    pub outcome: PropertyOutcome,
    /// How long it took (shrinking included).
    pub elapsed: Duration,
}

impl PropertyReport {
    /// True when the property passed (not vacuous, not failed).
    pub fn passed(&self) -> bool {
        matches!(self.outcome, PropertyOutcome::Passed)
    }
}

/// How one case fared.
struct Judgement {
    in_scope: bool,
    exercised: bool,
    role: Option<String>,
    schema_refused: bool,
    violation: Option<String>,
}

/// A property with what checking it needs.
pub(crate) struct Checker<'a> {
    prop: &'a CompiledProperty,
    collection: Collection,
    template: &'a ContextTemplate,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        rules: &Rules,
        prop: &'a CompiledProperty,
        template: &'a ContextTemplate,
    ) -> Result<Checker<'a>, UnknownNamespace> {
        Ok(Checker {
            prop,
            collection: rules.collection(&prop.namespace)?,
            template,
        })
    }

    /// The generators of the property: the collection's, with its constraints as hints.
    pub(crate) fn generators(&self, rules: &Rules) -> Result<Generators, UnknownNamespace> {
        let prop = self.prop;
        let mut b = Generators::builder().collection(rules, &prop.namespace)?;
        if let Some((q, _)) = &prop.where_ {
            b = b.query_hint(q);
        }
        if let Some(e) = &prop.when {
            b = b.expression_hint(e);
        }
        if let Claim::OnlyIf(e) = &prop.claim {
            b = b.expression_hint(e);
        }
        for f in &prop.fields {
            b = b.document_path(&f.join("."));
        }
        Ok(b.build())
    }

    /// The strategy of the property's cases: an update of `fields` changes exactly them.
    pub(crate) fn strategy(&self, gens: &Generators) -> BoxedStrategy<GenCase> {
        if self.prop.action == PropAction::Update && !self.prop.fields.is_empty() {
            let paths: Vec<String> = self.prop.fields.iter().map(|f| f.join(".")).collect();
            gens.case_with(gens.changes_of(&paths))
        } else {
            gens.case()
        }
    }

    fn post(&self, case: &GenCase) -> Option<Document> {
        (self.prop.action == PropAction::Update).then(|| case.post())
    }

    /// Decides the case and judges it against the property.
    fn judge(&self, case: &GenCase) -> (Judgement, Decision, Vec<FunctionCall>) {
        let prop = self.prop;
        let post = self.post(case);
        let (ctx, host) = self.template.context_recording(&case.user, &case.request);
        let doc = &case.document;
        let out = |in_scope, decision: Decision, calls| {
            (
                Judgement {
                    in_scope,
                    exercised: false,
                    role: None,
                    schema_refused: false,
                    violation: None,
                },
                decision,
                calls,
            )
        };
        let not_decided = Decision {
            role: None,
            granted: false,
            permitted: false,
            document: None,
            selected: false,
            error_code: None,
            error: None,
        };
        // `where`.
        if let Some((_, query)) = &prop.where_ {
            let mut case_doc = doc! { "user": case.user.clone(), "document": doc.clone() };
            if let Some(p) = &post {
                case_doc.insert("post", p.clone());
            }
            case_doc.insert("request", case.request.http.clone());
            if !crate::query::memory::matches(query, &case_doc).unwrap_or(false) {
                return out(false, not_decided, Vec::new());
            }
        }
        // What the update writes, and what the insert holds.
        match prop.action {
            PropAction::Update if !prop.fields.is_empty() => {
                let Some(p) = &post else {
                    return out(false, not_decided, Vec::new());
                };
                let changed = prop.fields.iter().all(|f| {
                    let before = values_at(doc, f);
                    let after = values_at(p, f);
                    before.len() != after.len()
                        || before.iter().zip(&after).any(|(a, b)| !identical(a, b))
                });
                if !changed {
                    return out(false, not_decided, Vec::new());
                }
            }
            // An update that changes nothing updates nothing: out of scope.
            PropAction::Update
                if post.as_ref().is_none_or(|p| {
                    identical(
                        &bson::Bson::Document(p.clone()),
                        &bson::Bson::Document(doc.clone()),
                    )
                }) =>
            {
                return out(false, not_decided, Vec::new());
            }
            PropAction::Insert if !prop.fields.iter().all(|f| has_path(doc, f)) => {
                return out(false, not_decided, Vec::new());
            }
            _ => {}
        }
        // `when`.
        let (root, prev_root) = match prop.action {
            PropAction::Read | PropAction::Delete => (Some(doc), Some(doc)),
            PropAction::Insert => (Some(doc), None),
            PropAction::Update => (post.as_ref(), Some(doc)),
        };
        let holds = |e: &Expr| {
            let bindings = Bindings {
                request: &ctx,
                root,
                prev_root,
                this: None,
                prev: None,
                whole: None,
            };
            eval_expr(e, &bindings)
        };
        if let Some(e) = &prop.when
            && !holds(e).unwrap_or(false)
        {
            return out(false, not_decided, Vec::new());
        }
        let decision = decide(&self.collection, &ctx, prop.action, doc, post.as_ref());
        let calls = host.calls();
        if let Some(roles) = &prop.roles
            && !decision.role.as_ref().is_some_and(|r| roles.contains(r))
        {
            return out(false, decision, calls);
        }
        let mut j = Judgement {
            in_scope: true,
            exercised: false,
            role: decision.role.clone(),
            schema_refused: prop.action != PropAction::Read
                && decision.permitted
                && !decision.granted,
            violation: None,
        };
        let read = prop.action == PropAction::Read;
        let present: Vec<&Vec<String>> = prop.fields.iter().filter(|f| has_path(doc, f)).collect();
        let shown = |f: &[String]| decision.document.as_ref().is_some_and(|d| has_path(d, f));
        // What "granted" means for this property.
        let granted = if read && !prop.fields.is_empty() {
            present.iter().any(|f| shown(f))
        } else {
            decision.permitted
        };
        let name = |f: &[String]| format!("`{}`", f.join("."));
        match &prop.claim {
            Claim::Expect(Expect::Denied) => {
                if read && !prop.fields.is_empty() {
                    j.exercised = !present.is_empty();
                    let leaked: Vec<String> = present
                        .iter()
                        .filter(|f| shown(f))
                        .map(|f| name(f))
                        .collect();
                    if !leaked.is_empty() {
                        j.violation = Some(format!("the read shows {}", leaked.join(", ")));
                    }
                } else {
                    j.exercised = true;
                    if decision.permitted {
                        j.violation = Some(match prop.action {
                            PropAction::Read => "the document is returned".to_string(),
                            a => format!("the rules permit the {a}"),
                        });
                    }
                }
            }
            Claim::Expect(Expect::Allowed) => {
                if read && !prop.fields.is_empty() {
                    j.exercised = !present.is_empty();
                    let hidden: Vec<String> = present
                        .iter()
                        .filter(|f| !shown(f))
                        .map(|f| name(f))
                        .collect();
                    if !hidden.is_empty() {
                        j.violation = Some(format!("the read does not show {}", hidden.join(", ")));
                    }
                } else {
                    j.exercised = true;
                    if !decision.permitted {
                        j.violation = Some(match prop.action {
                            PropAction::Read => "the document is withheld".to_string(),
                            a => format!("the rules refuse the {a}"),
                        });
                    }
                }
            }
            Claim::OnlyIf(e) => {
                if granted {
                    j.exercised = true;
                    match holds(e) {
                        Ok(true) => {}
                        Ok(false) => {
                            j.violation = Some(format!(
                                "the {} is granted and `only_if` is false",
                                prop.action
                            ))
                        }
                        Err(err) => {
                            j.violation = Some(format!(
                                "the {} is granted and `only_if` fails: {err}",
                                prop.action
                            ))
                        }
                    }
                }
            }
            Claim::OnlyRoles(roles) => {
                if granted {
                    j.exercised = true;
                    if !decision.role.as_ref().is_some_and(|r| roles.contains(r)) {
                        j.violation = Some(format!(
                            "the {} is granted by role {}",
                            prop.action,
                            decision
                                .role
                                .as_deref()
                                .map_or("(none)".to_string(), |r| format!("`{r}`"))
                        ));
                    }
                }
            }
        }
        (j, decision, calls)
    }
}

/// Statistics gathered while running (shrinking runs are counted apart).
#[derive(Default)]
struct Stats {
    cases: u64,
    in_scope: u64,
    exercised: u64,
    schema_refused: u64,
    roles: BTreeMap<Option<String>, u64>,
    failed: bool,
    shrink_runs: u64,
}

/// A proptest runner for `cases` cases, seeded from `seed` and `salt`, with no persistence.
pub(crate) fn runner(options: &RunOptions, salt: &str) -> TestRunner {
    let config = Config {
        cases: options.cases.max(1),
        failure_persistence: None,
        max_shrink_iters: options.max_shrink_iters,
        max_shrink_time: 0,
        max_global_rejects: 1024,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(options.seed, salt)),
    )
}

/// 32 bytes from `seed` and `salt` (SplitMix64 over the seed mixed with an FNV-1a of the salt).
fn seed_bytes(seed: u64, salt: &str) -> [u8; 32] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut state = seed ^ h;
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        for (dst, src) in chunk.iter_mut().zip(z.to_le_bytes()) {
            *dst = src;
        }
    }
    out
}

/// Checks one property over `options.cases` generated cases (module docs).
pub fn check_property(
    rules: &Rules,
    template: &ContextTemplate,
    prop: &CompiledProperty,
    options: &RunOptions,
) -> PropertyReport {
    let started = Instant::now();
    let mut report = PropertyReport {
        name: prop.name.clone(),
        namespace: prop.namespace.clone(),
        action: prop.action,
        cases: 0,
        in_scope: 0,
        exercised: 0,
        roles: Vec::new(),
        schema_refused: 0,
        outcome: PropertyOutcome::Passed,
        elapsed: Duration::ZERO,
    };
    let checker = match Checker::new(rules, prop, template) {
        Ok(c) => c,
        Err(e) => {
            report.outcome = PropertyOutcome::Aborted(e.to_string());
            return report;
        }
    };
    let gens = match checker.generators(rules) {
        Ok(g) => g,
        Err(e) => {
            report.outcome = PropertyOutcome::Aborted(e.to_string());
            return report;
        }
    };
    let strategy = checker.strategy(&gens);
    let stats = RefCell::new(Stats::default());
    let mut runner = runner(options, &prop.name);
    let result = runner.run(&strategy, |case| {
        let (j, _, _) = checker.judge(&case);
        let mut s = stats.borrow_mut();
        if s.failed {
            s.shrink_runs += 1;
        } else {
            s.cases += 1;
            if j.in_scope {
                s.in_scope += 1;
                *s.roles.entry(j.role.clone()).or_default() += 1;
                s.exercised += u64::from(j.exercised);
                s.schema_refused += u64::from(j.schema_refused);
            }
        }
        match j.violation {
            Some(v) => {
                s.failed = true;
                Err(TestCaseError::fail(v))
            }
            None => Ok(()),
        }
    });
    let s = stats.into_inner();
    report.cases = s.cases;
    report.in_scope = s.in_scope;
    report.exercised = s.exercised;
    report.schema_refused = s.schema_refused;
    // Every role of the collection is listed, reached or not.
    let mut roles: Vec<(Option<String>, u64)> = checker
        .collection
        .policy()
        .roles
        .iter()
        .map(|r| (Some(r.name.clone()), 0))
        .collect();
    roles.push((None, 0));
    for (role, n) in s.roles {
        match roles.iter_mut().find(|(r, _)| *r == role) {
            Some(entry) => entry.1 += n,
            None => roles.push((role, n)),
        }
    }
    report.roles = roles;
    report.outcome = match result {
        Ok(()) => vacuity(prop, &report),
        Err(TestError::Fail(_, case)) => {
            let (j, decision, calls) = checker.judge(&case);
            PropertyOutcome::Failed(Box::new(Counterexample {
                post: checker.post(&case),
                case,
                calls,
                decision,
                reason: j
                    .violation
                    .unwrap_or_else(|| "the claim does not hold".to_string()),
                shrink_runs: s.shrink_runs,
            }))
        }
        Err(TestError::Abort(reason)) => PropertyOutcome::Aborted(reason.to_string()),
    };
    report.elapsed = started.elapsed();
    report
}

/// `Passed`, or `Vacuous` with what was never reached.
fn vacuity(prop: &CompiledProperty, report: &PropertyReport) -> PropertyOutcome {
    if report.in_scope == 0 {
        let what = match &prop.roles {
            Some(r) => format!(
                "no case was in scope (the constraints never held, or role {} never decided)",
                r.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "no case was in scope (the constraints never held)".to_string(),
        };
        return PropertyOutcome::Vacuous(what);
    }
    if report.exercised == 0 {
        let what = match (&prop.claim, prop.fields.is_empty()) {
            (Claim::Expect(_), false) => format!(
                "no document in scope had {}",
                prop.fields
                    .iter()
                    .map(|f| format!("`{}`", f.join(".")))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            _ => format!("the {} was never granted in scope", prop.action),
        };
        return PropertyOutcome::Vacuous(what);
    }
    if let Claim::OnlyRoles(names) = &prop.claim {
        let never: Vec<String> = names
            .iter()
            .filter(|n| {
                !report
                    .roles
                    .iter()
                    .any(|(r, c)| r.as_ref() == Some(*n) && *c > 0)
            })
            .map(|n| format!("`{n}`"))
            .collect();
        if !never.is_empty() {
            return PropertyOutcome::Vacuous(format!(
                "role {} never decided a case in scope",
                never.join(", ")
            ));
        }
    }
    PropertyOutcome::Passed
}
