//! BSON values at evaluation time: Extended JSON conversion ([`ejson`]), MongoDB comparison and
//! equality ([`compare`]), path lookup through documents and arrays ([`path`]), and the reference
//! evaluation of expressions against bindings ([`eval`]); MongoDB regular expressions on the
//! linear-time engine ([`regex`]).
//!
//! Pipeline position: [`crate::expr::Expr`] + [`Bindings`] ──[`eval::eval_expr`]──▶ `bool` (or an
//! [`EvalError`], which always denies).

pub mod compare;
pub mod ejson;
pub mod eval;
pub mod path;
pub(crate) mod quote;
pub(crate) mod regex;
#[cfg(test)]
mod tests;

pub use compare::{bson_equal, bson_equal_args};
pub use eval::{Bindings, EvalError, eval_expr, eval_operand};
