//! BSON values at evaluation time: Extended JSON conversion ([`ejson`]), MongoDB comparison and
//! equality ([`compare`]), path lookup through documents and arrays ([`path`]), and the reference
//! evaluation of expressions against bindings ([`eval`]).
//!
//! Pipeline position: [`crate::expr::Expr`] + [`Bindings`] ──[`eval::eval_expr`]──▶ `bool` (or an
//! [`EvalError`], which always denies).

pub mod compare;
pub mod ejson;
pub mod eval;
pub mod path;
pub(crate) mod quote;

pub use compare::{bson_cmp, bson_equal, bson_equal_args};
pub use ejson::{bson_from_json, bson_to_json, document_from_json};
pub use eval::{
    Bindings, EvalError, Semantics, WholeRoots, eval_expr, eval_expr_with, eval_operand,
};
pub use path::{lookup, lookup_in_document};
