//! Stage: case parsing. Input: a conformance case file (a JSON array, `case-format.md`). Output:
//! [`Case`] values, a serde mirror of the format with `deny_unknown_fields` at every level, so a
//! misspelt key is a load error rather than a silently ignored expectation.
//!
//! Values whose BSON type matters (documents, operands, function arguments) stay
//! `serde_json::Value` here, in MongoDB Extended JSON; [`super::context`] converts them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One conformance case: a question asked of the engine and the answer the spec gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique in its file.
    pub name: String,
    /// Where the expectation comes from.
    pub source: String,
    /// Starts with a tag such as `[documented]` or `[decision]`.
    pub notes: String,
    /// The configuration under test.
    pub rules: CaseRules,
    /// The `%%user` object; `null` or absent for pure configuration cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    /// The request context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<CaseRequest>,
    /// The stored document, the document being inserted, or the post-image of an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Value>,
    /// The pre-image of an update or a Sync write.
    #[serde(
        default,
        rename = "prevDocument",
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_document: Option<Value>,
    /// `call`: the store before the call, `"db.coll"` → its documents in natural order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<BTreeMap<String, Vec<Value>>>,
    /// `call`: the operation body an App Services client sends (`{"name": "find", "arguments":
    /// [{"database", "collection", ...}]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Value>,
    /// What is asked.
    pub action: Action,
    /// The answer; only the keys given are compared.
    pub expected: Expected,
}

/// Which rule system is in force (`rules.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `mongodb`: collection rules (roles, filters, schema) of a MongoDB data source.
    #[default]
    #[serde(rename = "mongodb")]
    MongoDb,
    /// `sync`: Flexible Sync sessions and uploaded changes.
    Sync,
    /// `pbs`: Partition-Based Sync read/write permissions of a partition.
    Pbs,
    /// `service`: a third-party service's rules (`actions` and `when`).
    Service,
    /// `function`: a function's `can_evaluate`.
    Function,
    /// `data_api`: collection rules reached through the Data API.
    DataApi,
}

/// `rules`: the configuration under test.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRules {
    /// Which rule system the case exercises.
    pub mode: Mode,
    /// A `rules.json` object (`database`, `collection`, `roles`, `filters`), or `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_rules: Option<Value>,
    /// A `default_rule.json` object, or `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_rule: Option<Value>,
    /// The collection's `schema.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// The expression of an `expression` case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<Value>,
    /// App-relative path → JSON content: an app directory to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<serde_json::Map<String, Value>>,
    /// Sync: `queryable_fields_names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queryable_fields: Option<Vec<String>>,
    /// Sync: collection name → queryable fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_queryable_fields: Option<BTreeMap<String, Vec<String>>>,
    /// Pre-2023 Flexible Sync: the synced collection named in `files`' `sync/config.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Partition-Based Sync `{read, write}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_permissions: Option<Value>,
    /// Service rules: `[{name, actions, when}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_rules: Option<Value>,
    /// Functions and Data API: the `can_evaluate` expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_evaluate: Option<Value>,
}

/// `request`: everything about the request apart from the user and the documents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    /// `operation`: the client's request (`kind`, `query`, `update`, `pipeline`, `projection`,
    /// `upsert`); it decides, for instance, whether an update without a pre-image is an upsert and
    /// what query a `filters` case plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// `%%values`: name → value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<serde_json::Map<String, Value>>,
    /// `%%environment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// `%%request`: `{httpMethod, remoteIPAddress, requestHeaders: {Name: [values]}, ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Value>,
    /// `%%args` for service rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// The service action name (service rules), or `search` for an Atlas Search request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `%%partition` (Partition-Based Sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Value>,
    /// `%function` mocks by function name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<BTreeMap<String, FunctionMocks>>,
    /// The client's projection (also accepted as `operation.projection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_projection: Option<Value>,
    /// Documents in the collection, for `filters` cases that expect `results`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_documents: Option<Vec<Value>>,
    /// Custom user data after the Sync session started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid_session_custom_data_change: Option<Value>,
}

/// `request.environment`: `%%environment`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The environment's name (`%%environment.tag`: `development`, `production`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Its values (`%%environment.values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
}

/// One mocked result of a function: a call whose expanded arguments equal `args` returns `returns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionMock {
    /// The arguments, after expansion, that this mock answers (Extended JSON).
    #[serde(default)]
    pub args: Vec<Value>,
    /// What the call returns for them (Extended JSON).
    pub returns: Value,
}

/// The mocks of one function: one `{args, returns}` object, or a list of them (one per argument list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FunctionMocks {
    /// One result, for one argument list.
    One(FunctionMock),
    /// One result per argument list.
    Many(Vec<FunctionMock>),
}

impl FunctionMocks {
    /// The mocks as a slice.
    pub fn as_slice(&self) -> &[FunctionMock] {
        match self {
            FunctionMocks::One(m) => std::slice::from_ref(m),
            FunctionMocks::Many(v) => v,
        }
    }
}

/// `request.operation`: what kind of request is being made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// The MongoDB operation the client asked for.
    pub kind: OperationKind,
    /// The client's query (filter), a MongoDB query document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// The client's update document (update operators or a replacement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Value>,
    /// The client's aggregation pipeline (a `$search` stage makes the read a search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<Value>>,
    /// The client's projection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<Value>,
    /// Whether an update may insert when nothing matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upsert: Option<bool>,
}

impl Operation {
    /// True when the pipeline has a `$search` stage.
    pub fn is_search(&self) -> bool {
        self.pipeline
            .iter()
            .flatten()
            .any(|stage| stage.get("$search").is_some())
    }

    /// The client query: `query`, else the `$match` of the pipeline's first stage.
    pub fn client_query(&self) -> Option<&Value> {
        self.query.as_ref().or_else(|| {
            self.pipeline
                .as_ref()
                .and_then(|p| p.first())
                .and_then(|stage| stage.get("$match"))
        })
    }
}

/// `request.operation.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationKind {
    /// `find` (and `findOne`).
    Find,
    /// `count`.
    Count,
    /// `aggregate`.
    Aggregate,
    /// `insertOne` / `insertMany`.
    Insert,
    /// `updateOne` / `updateMany`.
    Update,
    /// `replaceOne`.
    Replace,
    /// `deleteOne` / `deleteMany`.
    Delete,
    /// An update with `upsert: true`.
    Upsert,
    /// `findOneAndUpdate`.
    FindOneAndUpdate,
}

/// `action`: what is asked of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `expression`: evaluate `rules.expression` against the request, with `document` as
    /// `%%root`; answers `result` (and `error`).
    Expression,
    /// `role_selection`: which role's `apply_when` holds first for the stored document
    /// (`prevDocument` when given, else `document`); answers `role`.
    RoleSelection,
    /// `read`: read `document` under the rules; answers `role`, `visible`, `fields` (the dotted
    /// paths the redacted document keeps) and `error`.
    Read,
    /// `search`: as `read`, for an Atlas Search request, where the role's `search` permission
    /// applies.
    Search,
    /// `insert`: insert `document`; answers `role`, `allowed`, `error`, `error_code`.
    Insert,
    /// `update`: replace `prevDocument` (the pre-image) with `document` (the post-image); answers
    /// as `insert`.
    Update,
    /// `delete`: delete the stored `document`; answers as `insert`.
    Delete,
    /// `filters`: plan a read (`request.operation`); answers `applied`, `query`, `projection`,
    /// and `results` over `request.collection_documents`.
    Filters,
    /// `validate_config`: do the rules load? Answers `valid`, and `reason` when they do not.
    ValidateConfig,
    /// `sync_session`: open a Flexible Sync session; answers `role`, `readable`, `writable`,
    /// `client_reset_on_next_session`.
    SyncSession,
    /// `sync_write`: an uploaded Sync write (`prevDocument` absent: a create); answers as
    /// `insert`.
    SyncWrite,
    /// `pbs`: Partition-Based Sync permissions for `request.partition`; answers `read`, `write`.
    Pbs,
    /// `service_rule`: may the third-party service action `request.action` run with
    /// `request.args`? Answers `allowed` (and `error`).
    ServiceRule,
    /// `can_evaluate`: may the function run for this request? Answers `allowed` (and `error`).
    CanEvaluate,
    /// `call`: run the whole operation `call` on an in-memory store holding `documents`;
    /// answers `result` (or `error` and `error_code`) and `after` (the store after the call).
    Call,
}

impl Action {
    /// The spelling used in case files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Expression => "expression",
            Action::RoleSelection => "role_selection",
            Action::Read => "read",
            Action::Search => "search",
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Filters => "filters",
            Action::ValidateConfig => "validate_config",
            Action::SyncSession => "sync_session",
            Action::SyncWrite => "sync_write",
            Action::Pbs => "pbs",
            Action::ServiceRule => "service_rule",
            Action::CanEvaluate => "can_evaluate",
            Action::Call => "call",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `expected`: the answer. Every key is optional; a runner compares only the keys given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// `expression`: a boolean; `call`: the operation's result in Extended JSON (compared
    /// type-exactly). A `null` is a value (`findOne` found nothing), which differs from absent.
    #[serde(
        default,
        deserialize_with = "present_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub result: Option<Value>,
    /// `role_selection`, `sync_session`: a role name or `null` (no role). Absent ≠ `null`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub role: Option<Option<String>>,
    /// `read`, `search`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    /// `read`, `search`: dotted field paths the redacted document keeps (compared as a set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// writes, `service_rule`, `can_evaluate`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// What an expected error is about (only its presence is compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Compared exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `filters`: names of the applied filters, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Vec<String>>,
    /// `filters`: the merged query (compared exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// `filters`: the merged projection (compared ignoring key order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<Value>,
    /// `filters`: `collection_documents` after the query and projection, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<Value>>,
    /// `validate_config`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
    /// `validate_config`: what the load error is about (only its presence is compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `sync_session`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readable: Option<bool>,
    /// `sync_session`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable: Option<bool>,
    /// `sync_session`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_reset_on_next_session: Option<bool>,
    /// `pbs`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<bool>,
    /// `pbs`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<bool>,
    /// `call`: the store after the call, `"db.coll"` → its documents in natural order; a
    /// namespace left out must hold what `documents` gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<BTreeMap<String, Vec<Value>>>,
}

/// Deserializes a key that is present (possibly `null`) as `Some(..)`; `default` makes an absent
/// key `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Deserializes a JSON value that is present (possibly `null`) as `Some(..)`; `default` makes an
/// absent key `None`.
fn present_value<'de, D>(deserializer: D) -> Result<Option<Value>, D::Error>
where
    D: Deserializer<'de>,
{
    Value::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_null_differs_from_absent() {
        let e: Expected = serde_json::from_str(r#"{"role": null}"#).unwrap();
        assert_eq!(e.role, Some(None));
        let e: Expected = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(e.role, None);
    }

    #[test]
    fn result_null_differs_from_absent() {
        let e: Expected = serde_json::from_str(r#"{"result": null}"#).unwrap();
        assert_eq!(e.result, Some(Value::Null));
        let e: Expected = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(e.result, None);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(serde_json::from_str::<Expected>(r#"{"visble": true}"#).is_err());
        assert!(serde_json::from_str::<CaseRequest>(r#"{"valus": {}}"#).is_err());
    }

    #[test]
    fn operation_kinds_parse() {
        let op: Operation =
            serde_json::from_str(r#"{"kind": "findOneAndUpdate", "upsert": true}"#).unwrap();
        assert_eq!(op.kind, OperationKind::FindOneAndUpdate);
        let op: Operation = serde_json::from_str(
            r#"{"kind": "aggregate", "pipeline": [{"$search": {}}, {"$match": {"a": 1}}]}"#,
        )
        .unwrap();
        assert!(op.is_search());
        assert_eq!(op.client_query(), None);
    }
}
