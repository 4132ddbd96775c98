//! Stage: evaluation (both engines). The per-document step budget,
//! [`Limits::max_eval_steps`](crate::limits::Limits::max_eval_steps). Input: the budget of one
//! decision ([`StepBudget::start`], called by [`crate::engine`] at every per-document entry
//! point) and the charges of the evaluators ([`charge`]). Output: [`EvalError::Limit`] once the
//! budget is spent, which denies the decision with the reason.
//!
//! What a step is: one expression node evaluated, and one comparison of a value reached by a
//! subject with an operand value (so `{"tags": {"$in": "%%user.custom_data.allowed"}}` costs
//! about `tags × allowed` steps, not one). Both engines charge the same kinds of work, but the
//! compiled engine does less of it (request-only parts are evaluated once per request and
//! charged to the document that first needs them — except those the fast read plan evaluates
//! when it is built, once per request, under a budget of its own; shared field rules are
//! evaluated once per document), so the step count of a decision is not the same in both engines: a decision
//! within a few steps of the budget may be denied by one and not the other. The budget bounds
//! work; it is set far above what real rules need (the default, 1,000,000 steps, is about
//! 10,000 times what the deepest decision of the shared corpus takes).
//!
//! Work is charged in proportion to its real cost (finding 11 of issue 9): copying a value
//! costs its size ([`copy_steps`]: one step per value it holds), and comparing two documents or
//! arrays one step per pair of elements compared (charged by [`crate::value::compare`] with
//! [`charge_quietly`]), so that a rule which copies or compares a large document on every field
//! is denied by the budget instead of running for seconds.
//!
//! The budget lives in a thread-local counter, so the evaluators do not thread it through
//! every call; [`StepBudget`] is a guard that restores the previous budget when dropped (nested
//! decisions, such as explanations computed inside a decision, cannot refill an outer budget).
//! Outside any decision, evaluation is unlimited.

#[cfg(test)]
mod budget_tests;
use std::cell::Cell;

use bson::{Bson, Document};

use crate::value::EvalError;

thread_local! {
    /// Steps left in the current decision (`u64::MAX`: no decision is running).
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    /// The budget the current decision started with (for the message).
    static BUDGET: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// The step budget of one decision; restores the previous one when dropped.
#[derive(Debug)]
#[must_use = "the budget ends when the guard is dropped"]
pub struct StepBudget {
    /// The enclosing decision's steps left and budget, restored on drop.
    left: u64,
    budget: u64,
    /// Steps left when this decision started.
    started: u64,
}

impl StepBudget {
    /// Starts a decision with `steps` steps. An enclosing decision's remaining budget caps it.
    pub fn start(steps: u64) -> StepBudget {
        let left = LEFT.get();
        let budget = BUDGET.get();
        let started = steps.min(left);
        LEFT.set(started);
        if steps < left {
            BUDGET.set(steps);
        }
        StepBudget {
            left,
            budget,
            started,
        }
    }
}

impl Drop for StepBudget {
    fn drop(&mut self) {
        // What this decision spent is spent for the enclosing one too.
        let spent = self.started.saturating_sub(LEFT.get());
        LEFT.set(self.left.saturating_sub(spent));
        BUDGET.set(self.budget);
    }
}

/// Charges `n` steps to the running decision; the error once its budget is spent.
#[inline]
pub fn charge(n: u64) -> Result<(), EvalError> {
    let left = LEFT.get();
    if left >= n {
        LEFT.set(left - n);
        Ok(())
    } else {
        LEFT.set(0);
        Err(exhausted())
    }
}

/// Charges `n` steps without failing: the budget drops to zero at worst, and the decision's
/// next [`charge`] fails. For work that cannot stop halfway (the comparison of two values, in
/// [`crate::value::compare`]): it is charged as it happens, and the decision stops at its next
/// step once the budget is spent, so it overruns by at most one such piece of work.
#[inline]
pub fn charge_quietly(n: u64) {
    LEFT.set(LEFT.get().saturating_sub(n));
}

/// Steps that copying `value` costs: one per value it holds (itself included), plus one per
/// 256 bytes of its strings and binary data. Counted without recursion, in time linear in the
/// number of values.
pub fn copy_steps(value: &Bson) -> u64 {
    let mut steps: u64 = 0;
    let mut stack: Vec<&Bson> = vec![value];
    while let Some(v) = stack.pop() {
        steps = steps.saturating_add(1);
        match v {
            Bson::Document(d) => stack.extend(d.values()),
            Bson::Array(items) => stack.extend(items),
            Bson::JavaScriptCodeWithScope(c) => {
                steps = steps.saturating_add(c.code.len() as u64 / 256);
                stack.extend(c.scope.values());
            }
            Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s) => {
                steps = steps.saturating_add(s.len() as u64 / 256);
            }
            Bson::Binary(b) => steps = steps.saturating_add(b.bytes.len() as u64 / 256),
            _ => {}
        }
    }
    steps
}

/// [`copy_steps`] of a document.
pub fn document_copy_steps(doc: &Document) -> u64 {
    doc.values().map(copy_steps).fold(1, u64::saturating_add)
}

impl StepBudget {
    /// Steps this decision has spent so far (those of the decisions nested in it included):
    /// what tests measure the cost of work with.
    #[cfg(test)]
    pub fn spent(&self) -> u64 {
        self.started.saturating_sub(LEFT.get())
    }
}

#[cold]
fn exhausted() -> EvalError {
    EvalError::Limit(format!(
        "the decision took more than {} evaluation steps (limits.max_eval_steps)",
        BUDGET.get()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_then_fails_and_is_restored_after() {
        assert!(
            charge(1_000_000_000).is_ok(),
            "unlimited outside a decision"
        );
        {
            let _b = StepBudget::start(10);
            assert!(charge(4).is_ok());
            assert!(charge(6).is_ok());
            let err = charge(1).unwrap_err().to_string();
            assert!(err.contains("more than 10 evaluation steps"), "{err}");
        }
        assert!(
            charge(1_000_000_000).is_ok(),
            "the guard restored the unlimited budget"
        );
    }

    #[test]
    fn an_inner_decision_cannot_refill_the_outer_one() {
        let _outer = StepBudget::start(10);
        assert!(charge(5).is_ok());
        {
            let _inner = StepBudget::start(100);
            assert!(charge(3).is_ok());
            assert!(
                charge(3).is_err(),
                "capped by the outer budget's 5 steps left"
            );
        }
        assert!(charge(1).is_err(), "the inner decision spent what was left");
    }
}
