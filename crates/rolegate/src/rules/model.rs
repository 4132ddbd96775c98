//! Stage: the validated rule set (the output of loading, the input of every evaluator).
//!
//! Input: built by the loader from the raw JSON files of an app directory (or one rule file).
//! Output: [`RuleSet`], immutable, `Send + Sync`; compiled into [`Rules`](crate::Rules).
//!
//! Permissions are three-valued: `None` means the key was absent (undefined), which is *not* the
//! same as `false` (spec §3.2, §12.1).
//!
//! Namespaces (issue 9, finding 3): `db.coll` without a data source resolves only when it is
//! unambiguous — exactly one data source's rule files name it, or none does and there is one
//! data source. Otherwise [`RuleSet::policy`] fails with [`NamespaceError::Ambiguous`], naming
//! every candidate as `data_source/db.coll`; it never falls back to the first data source.

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::Bson;

use crate::error::{Diagnostics, Place};
use crate::expr::{Expr, Operand};
use crate::limits::Limits;
use crate::schema::Schema;

/// An expression together with the place it came from (for explanations).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The parsed rule expression: `{"owner_id": "%%user.id"}`, `true`,
    /// `{"%%user.custom_data.isAdmin": true}`.
    pub expr: Expr,
    /// The file and JSON path of the expression (`roles[0].read`), for explanations and warnings.
    pub place: Place,
}

/// `document_filters` of a role.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocumentFilters {
    /// `document_filters.read`: the document may be read (through the role's read permissions)
    /// only when it, or `write`, holds. `None` when absent, which counts as true outside Sync.
    pub read: Option<Rule>,
    /// `document_filters.write`: the document may be written only when it holds (on an update,
    /// on both the stored document and the result); an open write gate opens the read gate too.
    /// `None` when absent, which counts as true outside Sync.
    pub write: Option<Rule>,
    /// Where the `document_filters` object is.
    pub place: Place,
}

/// `read`/`write` of a field rule or of `additional_fields` (both default to false).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldPermissions {
    /// `read`: the field may be read when it (or `write`) holds. `None` when absent.
    pub read: Option<Rule>,
    /// `write`: the field may be written, and read, when it holds. `None` when absent.
    pub write: Option<Rule>,
}

/// `fields.<name>`: permissions of one field and, recursively, of its embedded fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldRule {
    /// The field's own `read` and `write`.
    pub permissions: FieldPermissions,
    /// Nested `fields` and `additional_fields` of an embedded document.
    pub nested: FieldTree,
    /// Where the field's rule object is (`roles[0].fields.salary`).
    pub place: Place,
}

/// The `fields` map and `additional_fields` of one level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTree {
    /// Field name → rule, in file order. Names never contain `.` (rejected at load time, U15).
    pub fields: Vec<(String, FieldRule)>,
    /// `additional_fields`; `None` when the key is absent (behaves like `{}`: nothing readable).
    pub additional: Option<FieldPermissions>,
}

impl FieldTree {
    /// The rule of the field `name` at this level (a plain name, no dots); `None` when `fields`
    /// does not name it, so that `additional_fields` decides.
    pub fn get(&self, name: &str) -> Option<&FieldRule> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }

    /// True when the level has no field rule and no `additional_fields` key: no field of it
    /// is readable or writable through field-level rules.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.additional.is_none()
    }
}

/// A role: when it applies to a document (`apply_when`) and what it then allows (`read`,
/// `write`, `insert`, `delete`, `search`, document filters, field rules).
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// `name`: unique within its role list, at most 100 characters; reported as the outcome's
    /// `role`.
    pub name: String,
    /// `apply_when`; a missing key behaves as `{}` (U12).
    pub apply_when: Rule,
    /// `document_filters`: the read and write gates checked before the permissions; `None`
    /// when the key is absent (both gates open outside Sync).
    pub document_filters: Option<DocumentFilters>,
    /// Document-level `read`: true makes the whole document readable, an explicit false withholds
    /// it (field rules cannot reopen it), `None` (absent) leaves each field to `fields` and
    /// `additional_fields`.
    pub read: Option<Rule>,
    /// Document-level `write`: true makes every field writable (and readable), an explicit false
    /// denies every write even where a field rule says `write: true`, `None` (absent) leaves each
    /// written field to `fields` and `additional_fields`.
    pub write: Option<Rule>,
    /// `insert`: checked after every field of the new document is writable. Default true.
    pub insert: Option<Rule>,
    /// `delete`: checked after every field of the stored document is writable. Default true.
    pub delete: Option<Rule>,
    /// `search`: false withholds the role's documents from Atlas Search requests. Default true.
    pub search: Option<bool>,
    /// The field-level rules: `fields` and `additional_fields`.
    pub fields: FieldTree,
    /// Where the role's object is (`roles[1]` of its file).
    pub place: Place,
    /// Why the role is not Sync-compatible, when Sync is enabled and it is not:
    /// a session whose first matching role is incompatible cannot access the collection.
    pub sync_incompatible: Option<String>,
}

/// A filter: when its `apply_when` holds for a request, its `query` is added to every read of
/// the collection and its `projection` narrows what the read returns. Filters never apply to
/// inserts or to Device Sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// `name`, reported in a query plan's `applied` list.
    pub name: String,
    /// `apply_when`: the filter applies to a request when it holds. It sees the request only
    /// (`%%user`, `%%request`, `%%values`, ...), never a document.
    pub apply_when: Rule,
    /// The query document; expansions in values are substituted per request.
    pub query: Operand,
    /// The projection document (literal).
    pub projection: bson::Document,
    /// Where the filter's object is (`filters[0]` of its file).
    pub place: Place,
}

/// Which rule file a role list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleSource {
    /// The collection's own `rules.json` (or legacy `<db>.<coll>.json`).
    Collection,
    /// The data source's `default_rule.json`.
    Default,
}

/// `rules.json` of one collection (roles, filters, schema).
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionRules {
    /// The name of the data source (linked cluster) the collection belongs to.
    pub data_source: String,
    /// The database name (`database` of the rule file).
    pub database: String,
    /// The collection name (`collection` of the rule file).
    pub collection: String,
    /// `roles`, in file order: the first whose `apply_when` holds is assigned. When empty, the
    /// data source's default roles apply instead.
    pub roles: Vec<Role>,
    /// `filters`, in file order. They replace the default rule's filters, even when empty.
    pub filters: Vec<Filter>,
    /// The collection's `schema.json`, validated on every write; `None` when it has none.
    pub schema: Option<Schema>,
    /// The rule file the collection's rules came from.
    pub place: Place,
}

/// `default_rule.json` of one data source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DefaultRule {
    /// The default roles, used by every collection of the data source without roles of its own.
    pub roles: Vec<Role>,
    /// The default filters, used by every collection of the data source without a rule file.
    pub filters: Vec<Filter>,
    /// Where `default_rule.json` is.
    pub place: Place,
}

/// One data source (a linked cluster): its default rule and its collections.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataSource {
    /// The data source's name (`mongodb-atlas` in most apps): the first part of
    /// `data_source/db.coll`.
    pub name: String,
    /// `default_rule.json`, when the data source has one.
    pub default_rule: Option<DefaultRule>,
    /// `(database, collection)` → rules.
    pub collections: BTreeMap<(String, String), CollectionRules>,
    /// Flexible Sync settings when Sync is enabled on this data source.
    pub sync: Option<SyncConfig>,
    /// Partition-Based Sync permissions when PBS is enabled on this data source.
    pub partition_sync: Option<PartitionPermissions>,
}

/// Flexible Sync configuration relevant to permissions: the queryable fields, which a Sync
/// role's document filters may use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncConfig {
    /// `queryable_fields_names`
    pub queryable_fields: Vec<String>,
    /// `collection_queryable_fields_names`: collection → fields.
    pub collection_queryable_fields: BTreeMap<String, Vec<String>>,
    /// Where the Sync configuration is.
    pub place: Place,
}

/// Partition-Based Sync `permissions`: evaluated once per user and partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionPermissions {
    /// `read`: evaluated once per user and partition (`%%partition`); the partition may be
    /// read when it, or `write`, holds.
    pub read: Rule,
    /// `write`: evaluated once per user and partition; the partition may be written when it
    /// holds.
    pub write: Rule,
}

/// A third-party service rule (deprecated App Services services): the actions it allows when `when`
/// is true.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRule {
    /// `name` of the rule.
    pub name: String,
    /// `actions`: the service actions (`post`, `send`, ...) the rule may allow.
    pub actions: Vec<String>,
    /// Missing `when` is true.
    pub when: Rule,
}

/// A function's configuration (`functions/config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    /// The function's name, as `%function` calls it.
    pub name: String,
    /// `private`: a private function cannot be called by clients directly, but rules may still
    /// call it.
    pub private: bool,
    /// `can_evaluate`; missing is true.
    pub can_evaluate: Option<Rule>,
}

/// A value from `values/<name>.json`.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueDef {
    /// A plain value.
    Plain(Bson),
    /// `from_secret: true`: the host supplies the secret named here.
    Secret {
        /// The name of the secret whose value the host supplies.
        secret_name: String,
    },
}

/// Everything loaded from an app directory or a single rule file: the validated rules of every
/// data source and service, with values, environments and functions, and the warnings found.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Data source name → its default rule, collection rules and Sync settings.
    pub data_sources: BTreeMap<String, DataSource>,
    /// Third-party service name → its rules.
    pub services: BTreeMap<String, Vec<ServiceRule>>,
    /// Function name → its configuration (`private`, `can_evaluate`).
    pub functions: BTreeMap<String, FunctionConfig>,
    /// Value name → its definition, read as `%%values.<name>`.
    pub values: BTreeMap<String, ValueDef>,
    /// Environment tag → `values` document.
    pub environments: BTreeMap<String, bson::Document>,
    /// The app's current environment (the root configuration's `environment`), which
    /// `%%environment` exposes unless a request selects another.
    pub environment: Option<String>,
    /// Where custom user data lives (`auth/custom_user_data.json`), when enabled.
    pub custom_user_data: Option<CustomUserData>,
    /// Warnings found while loading (errors make loading fail instead).
    pub warnings: Diagnostics,
    /// Where the rule set was loaded from.
    pub origin: Arc<str>,
    /// The limits it was loaded with; evaluators apply the evaluation-time ones
    /// ([`Limits::max_document_depth`], [`Limits::max_eval_steps`]).
    pub limits: Limits,
}

/// The custom user data configuration of an app (`auth/custom_user_data.json`): the document of
/// `database.collection` whose `user_id_field` equals the user's id is `%%user.custom_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomUserData {
    /// The data source (`mongo_service_name`).
    pub data_source: String,
    /// The database (`database_name`).
    pub database: String,
    /// The collection (`collection_name`).
    pub collection: String,
    /// The field holding the user's id (`user_id_field`).
    pub user_id_field: String,
    /// The function run when a user is created (`on_user_creation_function_name`), if any.
    pub on_user_creation: Option<String>,
}

/// The roles and filters that govern one collection, as [`RuleSet::policy`] chooses them (U1, U2,
/// U3).
#[derive(Debug, Clone)]
pub struct CollectionPolicy<'a> {
    /// The candidate roles, in order: the collection's own when it has any, else the default
    /// roles (possibly none, when every request of an ordinary user fails).
    pub roles: &'a [Role],
    /// Which rule file `roles` came from.
    pub role_source: RoleSource,
    /// The filters that may apply: the collection's when it has a rule file, else the default
    /// rule's.
    pub filters: &'a [Filter],
    /// The collection's schema, validated on writes; `None` when it has none.
    pub schema: Option<&'a Schema>,
    /// The data source's Flexible Sync settings, when Sync is enabled on it.
    pub sync: Option<&'a SyncConfig>,
    /// The data source whose rules these are.
    pub data_source: &'a str,
    /// The collection's name (Sync error messages call it the table).
    pub collection: String,
    /// Which role list of the rule set `roles` is: the identity [`Rules`](crate::Rules) keys the
    /// compiled program of the list by.
    pub roles_key: RolesKey,
}

/// The identity of one role list of a rule set: a data source's default roles or a
/// collection's own roles (or none at all). Assigned by [`RuleSet::policy`]; the compiled
/// programs of [`Rules`](crate::Rules) are built for every such list and looked up by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RolesKey {
    /// No role list (an empty one): nothing applies.
    None,
    /// `default_rule.json` of a data source.
    Default {
        /// The data source's name.
        data_source: Arc<str>,
    },
    /// The rules of one collection.
    Collection {
        /// The data source's name.
        data_source: Arc<str>,
        /// The database's name.
        database: Arc<str>,
        /// The collection's name.
        collection: Arc<str>,
    },
}

/// Why [`RuleSet::policy`] found no policy for a namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    /// The named data source does not exist.
    #[error("no data source `{0}`")]
    UnknownDataSource(String),
    /// The rule set has no data source at all.
    #[error("no data source with rules")]
    NoDataSource,
    /// No data source was named and more than one could govern the namespace.
    #[error("ambiguous: {} could govern it; name the data source (`{}`)", .candidates.join(", "), .candidates.join("` or `"))]
    Ambiguous {
        /// `data_source/db.coll` of every candidate.
        candidates: Vec<String>,
    },
}

impl RuleSet {
    /// The policy of `database.collection` in data source `data_source`: collection roles when
    /// it has any, else the default roles (no fallback when collection roles exist but none
    /// applies, U1; a rule object with zero roles falls back, U2); collection filters when the
    /// collection has a rule object, else the default filters (U3).
    ///
    /// Without a data source the namespace must be unambiguous: the one
    /// data source whose rule files name `database.collection`; when none names it, the only
    /// data source there is. Two data sources naming it, or none naming it among several data
    /// sources, is [`NamespaceError::Ambiguous`] with every candidate as
    /// `data_source/db.coll` — never the first one's default rule.
    pub fn policy(
        &self,
        data_source: Option<&str>,
        database: &str,
        collection: &str,
    ) -> Result<CollectionPolicy<'_>, NamespaceError> {
        let key = (database.to_string(), collection.to_string());
        let ds = match data_source {
            Some(name) => self
                .data_sources
                .get(name)
                .ok_or_else(|| NamespaceError::UnknownDataSource(name.to_string()))?,
            None => {
                let naming: Vec<&DataSource> = self
                    .data_sources
                    .values()
                    .filter(|ds| ds.collections.contains_key(&key))
                    .collect();
                let candidates: Vec<&DataSource> = if naming.is_empty() {
                    self.data_sources.values().collect()
                } else {
                    naming
                };
                match candidates.as_slice() {
                    [] => return Err(NamespaceError::NoDataSource),
                    [one] => *one,
                    many => {
                        return Err(NamespaceError::Ambiguous {
                            candidates: many
                                .iter()
                                .map(|ds| format!("{}/{database}.{collection}", ds.name))
                                .collect(),
                        });
                    }
                }
            }
        };
        let key = (database.to_string(), collection.to_string());
        let policy = Self::policy_of(ds, &key, |role_source, roles| {
            RolesKey::of(&ds.name, database, collection, role_source, roles)
        });
        Ok(policy)
    }

    /// The policy of `key` (database, collection) in data source `data_source`, resolved
    /// before (by [`RuleSet::policy`]): no namespace search, no allocation beyond the
    /// collection's name; `roles_key` is the key that resolution found, reused. `None` when
    /// the data source is gone (it cannot be, the rule set being immutable).
    pub(crate) fn policy_in(
        &self,
        data_source: &str,
        key: &(String, String),
        roles_key: &RolesKey,
    ) -> Option<CollectionPolicy<'_>> {
        let ds = self.data_sources.get(data_source)?;
        Some(Self::policy_of(ds, key, |_, _| roles_key.clone()))
    }

    /// The policy of collection `key` in `ds`: its own roles, or the default rule's.
    fn policy_of<'s>(
        ds: &'s DataSource,
        key: &(String, String),
        roles_key: impl FnOnce(RoleSource, &[Role]) -> RolesKey,
    ) -> CollectionPolicy<'s> {
        let coll = ds.collections.get(key);
        let default = ds.default_rule.as_ref();
        let (roles, role_source) = match coll {
            Some(c) if !c.roles.is_empty() => (c.roles.as_slice(), RoleSource::Collection),
            _ => (
                default.map(|d| d.roles.as_slice()).unwrap_or(&[]),
                RoleSource::Default,
            ),
        };
        let roles_key = roles_key(role_source, roles);
        let filters = match (coll, default) {
            (Some(c), _) => c.filters.as_slice(),
            (None, Some(d)) => d.filters.as_slice(),
            (None, None) => &[],
        };
        CollectionPolicy {
            data_source: &ds.name,
            roles,
            role_source,
            filters,
            schema: coll.and_then(|c| c.schema.as_ref()),
            sync: ds.sync.as_ref(),
            collection: key.1.clone(),
            roles_key,
        }
    }
}

impl<'a> CollectionPolicy<'a> {
    /// No roles, filters or schema: every decision under it denies.
    pub(crate) fn nothing(collection: &str) -> CollectionPolicy<'a> {
        CollectionPolicy {
            data_source: "",
            roles: &[],
            role_source: RoleSource::Default,
            filters: &[],
            schema: None,
            sync: None,
            collection: collection.to_string(),
            roles_key: RolesKey::None,
        }
    }
}

impl RolesKey {
    /// The key of `roles`, found for `database.collection` in data source `data_source` with
    /// `source`.
    pub fn of(
        data_source: &str,
        database: &str,
        collection: &str,
        source: RoleSource,
        roles: &[Role],
    ) -> RolesKey {
        match source {
            _ if roles.is_empty() => RolesKey::None,
            RoleSource::Default => RolesKey::Default {
                data_source: data_source.into(),
            },
            RoleSource::Collection => RolesKey::Collection {
                data_source: data_source.into(),
                database: database.into(),
                collection: collection.into(),
            },
        }
    }
}
