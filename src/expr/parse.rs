//! Stage: JSON → expression AST. Input: a `serde_json::Value` from a rule file (Extended JSON
//! allowed in literals) and where it sits ([`Site`], [`Dialect`], [`Place`]). Output: an [`Expr`],
//! with every problem pushed to [`Diagnostics`] (all of them, not just the first).
//!
//! Context rules are checked here, at load time: an expansion that the site cannot use is an error
//! in the words of spec §8 (`do not know how to expand '%%root'`).

use crate::error::{Diagnostics, Place};
use crate::expr::{Expr, Operand};

/// What bare field names mean (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// MongoDB rules: a bare name is `%%root.<name>`.
    MongoDb,
    /// Third-party service rules: a bare name is `%%args.<name>`.
    Service,
}

/// Where an expression appears; decides which expansions it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    /// A role's `apply_when` (non-Sync): everything but `%%this`/`%%prev`/`%%args`/`%%partition`.
    RoleApplyWhen,
    /// A role's `read`/`write`/`insert`/`delete` or `document_filters.*` (non-Sync).
    RolePermission,
    /// `fields.*.read/write`, `additional_fields.*` (non-Sync): also `%%this`/`%%prev`.
    FieldPermission,
    /// A schema node's `validate`: also `%%this`/`%%prev`.
    SchemaValidate,
    /// A filter's `apply_when`: no document expansions, no bare fields.
    FilterApplyWhen,
    /// A filter's `query` values: no document expansions.
    FilterQuery,
    /// A role's `apply_when` when Sync is enabled: `%%user`, `%%values`, `%%environment`,
    /// `%function`, value operators; nothing that reads the document.
    SyncApplyWhen,
    /// `document_filters`, `insert`, `delete` in Sync: bare (queryable) fields, `%%user`,
    /// `%%values`, `%%environment`; no `%function`.
    SyncRule,
    /// Partition-Based Sync `read`/`write`: `%%user`, `%%partition`, `%%values`, `%%environment`, `%function`.
    PartitionPermission,
    /// A service rule's `when`: `%%args`, `%%user`, `%%request`, `%%values`, `%%environment`, `%function`.
    ServiceWhen,
    /// A function's or endpoint's `can_evaluate`: `%%user`, `%%request`, `%%values`,
    /// `%%environment`, `%%args`, `%function`.
    CanEvaluate,
    /// A stand-alone expression (conformance `expression` cases): every root is allowed.
    Any,
}

/// Parses a rule expression (a JSON boolean or an expression document).
pub fn parse_expr(
    value: &serde_json::Value,
    dialect: Dialect,
    site: Site,
    place: &Place,
    diags: &mut Diagnostics,
) -> Expr {
    let _ = (value, dialect, site, place);
    diags.error(
        "unsupported",
        place.clone(),
        "expression parser not implemented",
    );
    Expr::Bool(false)
}

/// Parses a value position (literal, expansion, container, value operator).
pub fn parse_operand(
    value: &serde_json::Value,
    dialect: Dialect,
    site: Site,
    place: &Place,
    diags: &mut Diagnostics,
) -> Operand {
    let _ = (value, dialect, site, place);
    diags.error(
        "unsupported",
        place.clone(),
        "operand parser not implemented",
    );
    Operand::Literal(bson::Bson::Null)
}

/// Parses a MongoDB query document (a client query or a merged filter query, after expansion
/// substitution): bare fields are document fields, strings are literals, only MongoDB (`$`)
/// operators, including `$and`/`$or`/`$nor` at the top level.
pub fn parse_query(query: &bson::Document, place: &Place, diags: &mut Diagnostics) -> Expr {
    let _ = query;
    diags.error("unsupported", place.clone(), "query parser not implemented");
    Expr::Bool(false)
}
