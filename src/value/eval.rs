//! Stage: reference evaluation of one expression. Input: an [`Expr`] and the [`Bindings`] of the
//! moment (request context, `%%root`, `%%prevRoot`, `%%this`, `%%prev`). Output: `Ok(bool)` or an
//! [`EvalError`] (fail closed: callers deny).

use bson::{Bson, Document};

use crate::context::RequestContext;
use crate::expr::{Expr, Operand};

/// What the expansions of an expression are bound to while it is evaluated.
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'a> {
    pub request: &'a RequestContext,
    /// `%%root` (and bare field names in MongoDB rules).
    pub root: Option<&'a Document>,
    /// `%%prevRoot`
    pub prev_root: Option<&'a Document>,
    /// `%%this`
    pub this: Option<&'a Bson>,
    /// `%%prev`
    pub prev: Option<&'a Bson>,
}

impl<'a> Bindings<'a> {
    /// Bindings with only the request context (no document).
    pub fn request_only(request: &'a RequestContext) -> Self {
        Bindings {
            request,
            root: None,
            prev_root: None,
            this: None,
            prev: None,
        }
    }
}

/// Evaluating an expression failed; the decision it was part of denies.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A `%function` call failed or the host could not serve it.
    #[error("function `{name}` failed: {message}")]
    Function { name: String, message: String },
    /// A value operator got an argument of the wrong type or shape.
    #[error("{operator}: {message}")]
    BadArgument {
        operator: &'static str,
        message: String,
    },
    /// An operand that must be an array (`$in`, `$nin`, `$all`) was something else.
    #[error("`{operator}` needs an array, got {found}")]
    NotAnArray {
        operator: &'static str,
        found: String,
    },
    /// An evaluation limit was reached.
    #[error("evaluation limit reached: {0}")]
    Limit(String),
}

/// Evaluates `expr` under `bindings`. Logical operators short-circuit left to right (spec §5.2.8:
/// a `%function` after a decided clause is not called).
pub fn eval_expr(expr: &Expr, bindings: &Bindings<'_>) -> Result<bool, EvalError> {
    let _ = (expr, bindings);
    Err(EvalError::Limit("not implemented".into()))
}

/// Evaluates an operand to a value; `Ok(None)` means missing.
pub fn eval_operand(operand: &Operand, bindings: &Bindings<'_>) -> Result<Option<Bson>, EvalError> {
    let _ = (operand, bindings);
    Err(EvalError::Limit("not implemented".into()))
}
