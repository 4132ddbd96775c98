//! Stage: the reference evaluator — a direct, obviously-correct walk over the validated rules
//! ([`crate::rules::RuleSet`]) for one request context and one document at a time. It is the
//! oracle that faster engines are checked against, so it favours clarity over speed.
//!
//! Input: a [`CollectionPolicy`](crate::rules::CollectionPolicy), a
//! [`RequestContext`](crate::context::RequestContext) and documents. Output: the outcomes of
//! [`crate::outcome`], each with an [`Explanation`](crate::outcome::Explanation) when asked.
//!
//! - [`roles`]: first-match role selection (spec §2).
//! - [`read`]: read / search decisions and redaction (spec §3.1, §3.2, §3.5).
//! - [`write`]: insert, update, replace, delete (spec §3.3, U4, U5, U11, U13, D6) and schema checks.
//! - [`targets`]: whether the paths an update writes are readable (O17).
//! - [`sync`]: Device Sync sessions and writes, Partition-Based Sync, service rules, `can_evaluate`.

pub(crate) mod fields;
pub mod read;
pub mod roles;
pub mod sync;
pub mod targets;
pub mod write;

use crate::context::RequestContext;
use crate::error::Place;
use crate::outcome::{Explanation, Step};
use crate::rules::Rule;
use crate::value::eval::eval_expr_explained;
use crate::value::{Bindings, EvalError, eval_expr};

/// A rule that could not be evaluated; the decision it belonged to denies.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub place: Place,
    pub error: EvalError,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]", self.error, self.place)
    }
}

/// The state of one decision: the request, and the explanation being written (when asked for).
pub(crate) struct Trace<'a> {
    pub request: &'a RequestContext,
    pub explain: bool,
    pub explanation: Explanation,
}

impl<'a> Trace<'a> {
    pub fn new(request: &'a RequestContext, explain: bool) -> Self {
        Trace {
            request,
            explain,
            explanation: Explanation::default(),
        }
    }

    /// Records a step when explanations are on.
    pub fn note(&mut self, place: Option<&Place>, message: impl FnOnce() -> String) {
        if self.explain {
            self.explanation.push(place, message());
        }
    }

    /// Records a step whose place is computed only when explanations are on.
    pub fn note_at(&mut self, step: impl FnOnce() -> (Option<Place>, String)) {
        if self.explain {
            let (place, message) = step();
            self.explanation.steps.push(Step { place, message });
        }
    }

    /// Evaluates `rule` (named `what` in the explanation, formatted only when explanations are
    /// on) under `bindings`. With explanations
    /// on, a rule that is false (or fails) is followed by the values its tests compared
    /// ([`eval_expr_explained`]), at the rule's place.
    pub fn eval(
        &mut self,
        rule: &Rule,
        bindings: &Bindings<'_>,
        what: impl std::fmt::Display,
    ) -> Result<bool, Failure> {
        let (result, compared) = if self.explain {
            eval_expr_explained(&rule.expr, bindings)
        } else {
            (eval_expr(&rule.expr, bindings), Vec::new())
        };
        match result {
            Ok(value) => {
                self.request.observe(&rule.place, value);
                self.note(Some(&rule.place), || format!("{what} is {value}"));
                if !value {
                    self.compared(&rule.place, compared);
                }
                Ok(value)
            }
            Err(error) => {
                self.note(Some(&rule.place), || {
                    format!("{what} failed: {error}; denied")
                });
                self.compared(&rule.place, compared);
                Err(Failure {
                    place: rule.place.clone(),
                    error,
                })
            }
        }
    }

    /// Records the values a rule's tests compared (empty unless explanations are on).
    fn compared(&mut self, place: &Place, compared: Vec<String>) {
        for line in compared {
            self.note(Some(place), || format!("values compared: {line}"));
        }
    }

    /// Evaluates an optional rule: `None` (undefined) stays `None`.
    pub fn eval_opt(
        &mut self,
        rule: Option<&Rule>,
        bindings: &Bindings<'_>,
        what: impl std::fmt::Display,
    ) -> Result<Option<bool>, Failure> {
        rule.map(|r| self.eval(r, bindings, what)).transpose()
    }

    /// Evaluates an optional rule whose absence means `default`.
    pub fn eval_or(
        &mut self,
        rule: Option<&Rule>,
        default: bool,
        bindings: &Bindings<'_>,
        what: impl std::fmt::Display,
    ) -> Result<bool, Failure> {
        Ok(self.eval_opt(rule, bindings, what)?.unwrap_or(default))
    }
}
