//! Rule expressions (spec §5): the AST ([`ast`]), the nom parser for expansion strings
//! ([`expansion`]), the JSON → AST parser with load-time context checks ([`parse`]), and the
//! canonical JSON rendering of an expression ([`display`]).
//!
//! Pipeline position: `serde_json::Value` (rule file) ──[`parse::parse_expr`]──▶ [`Expr`].

pub mod ast;
pub mod display;
pub mod expansion;
pub mod parse;
#[cfg(test)]
mod tests;

pub use ast::{
    BitTest, CmpOp, Dependency, ElemMatch, Expansion, Expr, Op, Operand, Predicate, RegexSpec,
    Root, TypeSpec,
};
pub use parse::{Dialect, Site, parse_expr, parse_operand, parse_query};
