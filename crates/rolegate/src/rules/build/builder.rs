//! The app assembly: [`RuleSetBuilder`] collects the raw inputs of an app in any order and
//! builds them into a [`RuleSet`].
//!
//! Stage: raw rule JSON → validated [`RuleSet`].
//! Input: the JSON of each rule-bearing file as [`crate::config`] reads it (or single objects
//! from a conformance case), with the [`Place`] it came from.
//! Output: a [`RuleSet`] with its warnings, or [`LoadError`] with every diagnostic of every
//! input when any is an error.
//!
//! Decisions where the spec is silent:
//!
//! * A Sync configuration whose `state` is present and not `"enabled"` (`""`, `"disabled"`)
//!   has no effect; a second Sync configuration for one data source is ignored (warning).
//! * **Limits** ([`crate::limits`], set with [`RuleSetBuilder::set_limits`]): an input nested
//!   deeper than [`Limits::max_file_depth`] is refused when added (`limit-exceeded` at the JSON
//!   path of the first value too deep), before it is copied or built, so no input can exhaust
//!   the stack; [`RuleSetBuilder::finish`] checks every other load-time limit on the built rule
//!   set ([`check_rule_set`]) and stores the limits in [`RuleSet::limits`].

use std::collections::BTreeMap;
use std::sync::Arc;

use bson::Document;
use serde_json::{Map, Value};

use super::data_source::{
    CollectionInput, DataSourceInput, build_data_source, is_datalake_type, is_mongodb_type,
};
use super::functions::{
    FunctionCheck, build_function_config, check_function_uses, collect_data_source_functions,
    rule_functions,
};
use super::services::build_service_rule;
use super::shared::{as_array, as_object, optional_string};
use super::sync::{LegacySyncInput, build_partition_permissions, build_sync_config};
use super::values::{build_environment, build_value};
use crate::error::{Diagnostic, Diagnostics, LoadError, Place};
use crate::limits::{Limits, check_rule_set, depth_error, json_too_deep};
use crate::rules::model::{
    CustomUserData, FunctionConfig, Rule, RuleSet, ServiceRule, SyncConfig, ValueDef,
};

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// What an undefined `%function` name is.
    pub function_check: FunctionCheck,
}

/// Assembles a [`RuleSet`] from raw JSON inputs given in any order; see the module example.
///
/// Rule files (collection rules, default rules, schemas) are kept raw and built in
/// [`finish`](Self::finish), once every data source's Sync settings are known. Everything else
/// is built when added. Diagnostics of every input are collected; `finish` fails when any is an
/// error.
#[derive(Debug)]
pub struct RuleSetBuilder {
    origin: Arc<str>,
    options: BuildOptions,
    data_sources: BTreeMap<String, DataSourceInput>,
    services: BTreeMap<String, Vec<ServiceRule>>,
    functions: BTreeMap<String, FunctionConfig>,
    values: BTreeMap<String, ValueDef>,
    environments: BTreeMap<String, Document>,
    environment: Option<String>,
    custom_user_data: Option<CustomUserData>,
    /// `%function` uses outside rule files (PBS permissions, service rules, `can_evaluate`).
    function_uses: Vec<(String, Place)>,
    limits: Limits,
    diags: Diagnostics,
}

impl RuleSetBuilder {
    /// A builder for a rule set loaded from `origin` (a path, or a name for inline input).
    pub fn new(origin: impl Into<Arc<str>>, options: BuildOptions) -> Self {
        RuleSetBuilder {
            origin: origin.into(),
            options,
            data_sources: BTreeMap::new(),
            services: BTreeMap::new(),
            functions: BTreeMap::new(),
            values: BTreeMap::new(),
            environments: BTreeMap::new(),
            environment: None,
            custom_user_data: None,
            function_uses: Vec::new(),
            limits: Limits::default(),
            diags: Diagnostics::default(),
        }
    }

    /// Sets the limits the inputs are checked against ([`Limits::default`] unless set); call it
    /// before adding inputs. An input nested deeper than [`Limits::max_file_depth`] is refused
    /// when added (never copied or built); every other limit is checked by
    /// [`finish`](Self::finish).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// False (with a `limit-exceeded` error) when `json` nests deeper than the limits allow.
    fn admit(&mut self, json: &Value, place: &Place) -> bool {
        let max = self.limits.effective_file_depth();
        match json_too_deep(json, max, place) {
            None => true,
            Some(at) => {
                self.diags.push(depth_error(at, max));
                false
            }
        }
    }

    /// `json` as an object when it is admitted ([`admit`](Self::admit)) and is one; `None`
    /// (with the error) otherwise.
    fn admit_object<'a>(
        &mut self,
        json: &'a Value,
        what: &str,
        place: &Place,
    ) -> Option<&'a Map<String, Value>> {
        if !self.admit(json, place) {
            return None;
        }
        as_object(json, what, place, &mut self.diags)
    }

    /// Adds a diagnostic found outside the builder (e.g. a file that is not valid JSON).
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// Diagnostics collected so far.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.diags
    }

    fn ds(&mut self, name: &str) -> &mut DataSourceInput {
        self.data_sources.entry(name.to_string()).or_default()
    }

    /// Declares data source `name` (so that it exists even without rules).
    pub fn add_data_source(&mut self, name: &str) {
        self.ds(name);
    }

    /// Marks data source `name` as a Data Federation (`datalake`) source: it has no rules
    /// (spec §1.3); rule files found for it are ignored with a warning.
    pub fn mark_datalake(&mut self, name: &str, place: Place) {
        self.ds(name).datalake = Some(place);
    }

    /// Enables Flexible Sync on data source `data_source` with these settings (roles of that
    /// data source are then parsed with the Sync sites and checked for Sync compatibility).
    pub fn set_sync(&mut self, data_source: &str, sync: SyncConfig) {
        self.try_set_sync(data_source, sync);
    }

    /// [`set_sync`](Self::set_sync); false (with a warning) when the data source already has one.
    fn try_set_sync(&mut self, data_source: &str, sync: SyncConfig) -> bool {
        let ds = self.ds(data_source);
        if let Some(old) = &ds.sync {
            let place = sync.place.clone();
            let old_place = old.place.clone();
            self.diags.warning(
                "duplicate-sync-config",
                place,
                format!(
                    "data source `{data_source}` already has a Sync configuration ({old_place}); \
                     this one is ignored"
                ),
            );
            return false;
        }
        ds.sync = Some(sync);
        true
    }

    /// Enables Partition-Based Sync on `data_source` with `permissions` (`{read, write}`).
    pub fn set_partition_permissions(
        &mut self,
        data_source: &str,
        permissions: &Value,
        place: Place,
    ) {
        if !self.admit(permissions, &place) {
            return;
        }
        let perms = build_partition_permissions(permissions, &place, &mut self.diags);
        self.note_functions(&perms.read);
        self.note_functions(&perms.write);
        let ds = self.ds(data_source);
        if ds.partition.is_some() {
            self.diags.warning(
                "duplicate-sync-config",
                place,
                format!(
                    "data source `{data_source}` already has Partition-Based Sync permissions; \
                     these are ignored"
                ),
            );
            return;
        }
        ds.partition = Some(perms);
    }

    /// Adds a Sync configuration as `sync/config.json` holds it: `service_name` names the data
    /// source (`default_data_source` when absent). Flexible (`type: "flexible"`, queryable
    /// fields, pre-2023 `permissions`) or Partition-Based (`partition.permissions`). A sync
    /// whose `state` is present and not `"enabled"` has no effect.
    pub fn add_sync_config(&mut self, json: &Value, default_data_source: &str, place: Place) {
        let Some(m) = self.admit_object(json, "a Sync configuration", &place) else {
            return;
        };
        let data_source = match optional_string(m, "service_name", &place, &mut self.diags) {
            Some(s) if !s.is_empty() => s,
            _ => default_data_source.to_string(),
        };
        self.add_sync_for(&data_source, m, place);
    }

    fn add_sync_for(&mut self, data_source: &str, m: &Map<String, Value>, place: Place) {
        let enabled = match m.get("state") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s == "enabled",
            Some(_) => false,
        };
        if !enabled {
            return;
        }
        let kind = m.get("type").and_then(Value::as_str);
        if let Some(partition) = m.get("partition").filter(|_| kind != Some("flexible")) {
            let p = place.key("partition");
            match partition.get("permissions") {
                Some(perms) => {
                    self.set_partition_permissions(data_source, perms, p.key("permissions"))
                }
                None => self.diags.warning(
                    "missing-key",
                    p,
                    "Partition-Based Sync has no `permissions`; every partition is denied",
                ),
            }
            return;
        }
        let flexible = kind == Some("flexible")
            || [
                "queryable_fields_names",
                "collection_queryable_fields_names",
                "permissions",
            ]
            .iter()
            .any(|k| m.contains_key(*k));
        if !flexible {
            return;
        }
        let sync = build_sync_config(&Value::Object(m.clone()), &place, &mut self.diags);
        if !self.try_set_sync(data_source, sync) {
            return;
        }
        if let Some(perms) = m.get("permissions") {
            let database = optional_string(m, "database_name", &place, &mut self.diags)
                .filter(|s| !s.is_empty());
            self.ds(data_source).legacy_sync = Some(LegacySyncInput {
                permissions: perms.clone(),
                database,
                place: place.key("permissions"),
            });
        }
    }

    /// Adds a data source's `config.json` (`data_sources/<ds>/config.json`): `type: "datalake"`
    /// marks a source without rules; `config.sync` / `config.flexible_sync` enable Sync.
    pub fn add_data_source_config(&mut self, data_source: &str, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        // The data source exists even when its configuration is not an object.
        self.ds(data_source);
        let Some(m) = as_object(json, "a data source configuration", &place, &mut self.diags)
        else {
            return;
        };
        if let Some(t) = m.get("type").and_then(Value::as_str)
            && is_datalake_type(t)
        {
            self.mark_datalake(data_source, place.clone());
        }
        self.embedded_sync(data_source, m, &place);
    }

    /// Adds a legacy service's `config.json` (`services/<svc>/config.json`). A MongoDB service
    /// (`type` `mongodb`, `mongodb-atlas`, `mongodb-datalake`) is a data source, with optional
    /// `config.sync` (Partition-Based Sync) or `config.flexible_sync`; any other `type` is a
    /// third-party service (whose rules are added with [`add_service_rule`](Self::add_service_rule)).
    pub fn add_service_config(&mut self, service: &str, json: &Value, place: Place) {
        let Some(m) = self.admit_object(json, "a service configuration", &place) else {
            return;
        };
        match m.get("type").and_then(Value::as_str) {
            Some(t) if is_datalake_type(t) => self.mark_datalake(service, place.clone()),
            Some(t) if is_mongodb_type(t) => self.add_data_source(service),
            Some(_) => {
                self.services.entry(service.to_string()).or_default();
                return;
            }
            None => {}
        }
        self.embedded_sync(service, m, &place);
    }

    fn embedded_sync(&mut self, data_source: &str, m: &Map<String, Value>, place: &Place) {
        let Some(config) = m.get("config").and_then(Value::as_object) else {
            return;
        };
        let p = place.key("config");
        for key in ["sync", "flexible_sync"] {
            if let Some(Value::Object(sync)) = config.get(key) {
                let mut sync = sync.clone();
                if key == "flexible_sync" && !sync.contains_key("type") {
                    sync.insert("type".into(), Value::String("flexible".into()));
                }
                self.add_sync_for(data_source, &sync, p.key(key));
            }
        }
    }

    /// Adds a collection rule file (`rules.json` or a legacy `<db>.<coll>.json`) of
    /// `data_source`; `namespace` is `(database, collection)` from its path, if known.
    pub fn add_collection_rules(
        &mut self,
        data_source: &str,
        namespace: Option<(&str, &str)>,
        json: &Value,
        place: Place,
    ) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some(entry) = self.collection_entry(data_source, namespace, |c| c.rules.is_none()) {
            entry.rules = Some((json.clone(), place));
        }
    }

    /// Adds a collection's `schema.json` (merged into its rule object as `schema`; a collection
    /// with a schema and no rule file has a rule object without roles).
    pub fn add_collection_schema(
        &mut self,
        data_source: &str,
        database: &str,
        collection: &str,
        json: &Value,
        place: Place,
    ) {
        if !self.admit(json, &place) {
            return;
        }
        let ns = Some((database, collection));
        if let Some(entry) = self.collection_entry(data_source, ns, |c| c.schema.is_none()) {
            entry.schema = Some((json.clone(), place));
        }
    }

    /// The pending collection with this path namespace whose slot is `free`, or a new one.
    /// Inputs without a path namespace never merge.
    fn collection_entry(
        &mut self,
        data_source: &str,
        namespace: Option<(&str, &str)>,
        free: fn(&CollectionInput) -> bool,
    ) -> Option<&mut CollectionInput> {
        let ns = namespace.map(|(d, c)| (d.to_string(), c.to_string()));
        let ds = self.ds(data_source);
        let existing = ds
            .collections
            .iter()
            .position(|c| ns.is_some() && c.namespace == ns && free(c));
        let index = match existing {
            Some(i) => i,
            None => {
                ds.collections.push(CollectionInput {
                    namespace: ns,
                    rules: None,
                    schema: None,
                });
                ds.collections.len().saturating_sub(1)
            }
        };
        ds.collections.get_mut(index)
    }

    /// Adds a data source's `default_rule.json` (a second one for the same data source is an
    /// error).
    pub fn add_default_rule(&mut self, data_source: &str, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let ds = self.ds(data_source);
        if let Some((_, old)) = &ds.default_rule {
            let old = old.clone();
            self.diags.error(
                "duplicate-default-rule",
                place,
                format!("data source `{data_source}` already has a default rule ({old})"),
            );
            return;
        }
        ds.default_rule = Some((json.clone(), place));
    }

    /// Adds a third-party service rule of `service`.
    pub fn add_service_rule(
        &mut self,
        service: &str,
        json: &Value,
        name_hint: Option<&str>,
        place: Place,
    ) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some(rule) = build_service_rule(json, name_hint, &place, &mut self.diags) {
            self.note_functions(&rule.when);
            self.services
                .entry(service.to_string())
                .or_default()
                .push(rule);
        }
    }

    /// Adds one function configuration (`functions/<name>/config.json`).
    pub fn add_function_config(&mut self, json: &Value, name_hint: Option<&str>, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some(f) = build_function_config(json, name_hint, &place, &mut self.diags) {
            self.add_function(f);
        }
    }

    /// Adds `functions/config.json` (an array of function configurations).
    pub fn add_functions_config(&mut self, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let Some(items) = as_array(json, "`functions/config.json`", &place, &mut self.diags) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            self.add_function_config(item, None, place.index(i));
        }
    }

    /// Adds a validated function configuration (replacing one of the same name).
    pub fn add_function(&mut self, function: FunctionConfig) {
        if let Some(r) = &function.can_evaluate {
            self.note_functions(r);
        }
        self.functions.insert(function.name.clone(), function);
    }

    /// Declares that function `name` exists (its source was found) without a configuration.
    pub fn add_function_source(&mut self, name: &str) {
        self.functions
            .entry(name.to_string())
            .or_insert_with(|| FunctionConfig {
                name: name.to_string(),
                private: false,
                can_evaluate: None,
            });
    }

    /// Adds a value file; `name_hint` is its file name.
    pub fn add_value(&mut self, json: &Value, name_hint: Option<&str>, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some((name, def)) = build_value(json, name_hint, &place, &mut self.diags) {
            self.values.insert(name, def);
        }
    }

    /// Adds an environment file for environment `tag`.
    pub fn add_environment(&mut self, tag: &str, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        let values = build_environment(json, &place, &mut self.diags);
        self.environments.insert(tag.to_string(), values);
    }

    /// Adds the root configuration (`realm_config.json`, ...): the app's environment.
    pub fn add_app_config(&mut self, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        if let Some(tag) = super::app::build_app_environment(json, &place, &mut self.diags) {
            self.environment = Some(tag);
        }
    }

    /// Adds `auth/custom_user_data.json`.
    pub fn add_custom_user_data(&mut self, json: &Value, place: Place) {
        if !self.admit(json, &place) {
            return;
        }
        self.custom_user_data = super::app::build_custom_user_data(json, &place, &mut self.diags);
    }

    fn note_functions(&mut self, rule: &Rule) {
        rule_functions(rule, &mut self.function_uses);
    }

    /// Builds everything added and returns the rule set, or every diagnostic when any is an
    /// error.
    pub fn finish(mut self) -> Result<RuleSet, LoadError> {
        let mut diags = std::mem::take(&mut self.diags);
        let mut data_sources = BTreeMap::new();
        for (name, input) in std::mem::take(&mut self.data_sources) {
            let ds = build_data_source(&name, input, &mut diags);
            data_sources.insert(name, ds);
        }

        // %function uses must name functions of the app.
        let mut uses = std::mem::take(&mut self.function_uses);
        for ds in data_sources.values() {
            collect_data_source_functions(ds, &mut uses);
        }
        check_function_uses(
            uses,
            &self.functions,
            self.options.function_check,
            &mut diags,
        );

        let set = RuleSet {
            data_sources,
            services: self.services,
            functions: self.functions,
            values: self.values,
            environments: self.environments,
            environment: self.environment,
            custom_user_data: self.custom_user_data,
            warnings: Diagnostics::default(),
            origin: self.origin,
            limits: self.limits,
        };
        diags.extend(check_rule_set(&set, &self.limits));
        if diags.has_errors() {
            return Err(LoadError { diagnostics: diags });
        }
        Ok(RuleSet {
            warnings: diags,
            ..set
        })
    }
}
