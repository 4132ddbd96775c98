//! Stage: Cedar (`cedar-policy`). Input: the policy text (`policies/w1.cedar`, or W3's
//! generated from the rule file, one `permit` per role), the user, and per document its raw
//! BSON. Output: per document, the decision (`Action::"read"`), or the readable fields (one
//! `Action::"readField"` authorization per leaf field, the field named in `context.field`).
//!
//! Built once per request: the principal entity and uid, the action uids, the `Context` of each
//! known field. Built once per document ([`Cedar::input`]): the resource entity (the attributes
//! the policies test, converted from BSON), the `Entities` store (principal + resource), and for
//! field-level the list of the document's leaf paths. No schema is passed when authorizing;
//! [`validate`] checks the policies against `policies/*.cedarschema` once.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use bson::{RawBsonRef, RawDocument};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, Response, RestrictedExpression, Schema, ValidationMode, Validator,
};
use serde_json::Value;

use crate::data;

/// Which document attributes the policies test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// W1: `owner` (from `owner_id`), `shared_with`, `public`.
    W1,
    /// W3: `team`; the principal has `group` (from `custom_data.group`).
    W3,
}

/// The W1 policy text.
pub fn w1_policies() -> String {
    data::read(&data::policy_dir().join("w1.cedar"))
}

/// The W3 policies, one `permit` per role of the rule file, in the role's order (which Cedar
/// ignores: every W3 role reads the whole document, so any matching role gives the same
/// answer). `apply_when` tests `%%user.custom_data.group` (a principal attribute) and document
/// fields (resource attributes) against string constants.
pub fn w3_policies(rules: &Value) -> String {
    let roles = rules["roles"].as_array().expect("roles");
    let mut out = String::with_capacity(roles.len() * 160);
    for role in roles {
        let name = role["name"].as_str().expect("role name");
        let mut tests = Vec::new();
        for (key, value) in role["apply_when"].as_object().expect("apply_when") {
            let constant = value.as_str().expect("a string constant");
            let test = match key.strip_prefix("%%user.custom_data.") {
                Some(attr) => format!("principal has {attr} && principal.{attr} == \"{constant}\""),
                None => format!("resource has {key} && resource.{key} == \"{constant}\""),
            };
            tests.push(test);
        }
        out.push_str(&format!(
            "@id(\"{name}\")\npermit (principal, action == Action::\"read\", resource is Document)\n\
             when {{ {} }};\n\n",
            tests.join(" && ")
        ));
    }
    out
}

/// Parses a policy set (timed as "load + compile": Cedar has no step after parsing).
pub fn parse(text: &str) -> PolicySet {
    PolicySet::from_str(text).unwrap_or_else(|e| panic!("Cedar policies: {e:?}"))
}

/// Validates `policies` against the schema `policies/<schema>` (strict mode); panics with the
/// validator's messages on failure.
pub fn validate(policies: &PolicySet, schema: &str) {
    let text = data::read(&data::policy_dir().join(schema));
    let (schema, _warnings) =
        Schema::from_cedarschema_str(&text).unwrap_or_else(|e| panic!("{schema}: {e:?}"));
    let result = Validator::new(schema).validate(policies, ValidationMode::Strict);
    assert!(
        result.validation_passed(),
        "Cedar validation failed: {:?}",
        result
            .validation_errors()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
}

/// Panics when a policy failed to evaluate: the equality check must not pass on silent errors.
fn no_errors(response: &Response) {
    let errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "Cedar evaluation errors: {errors:?}");
}

/// One document's inputs, built once per document.
pub struct DocInput {
    pub resource: EntityUid,
    pub entities: Entities,
    /// The document's leaf paths (field-level inputs only; empty otherwise).
    pub fields: Vec<String>,
}

/// A prepared Cedar authorizer for one user.
pub struct Cedar {
    pub policies: PolicySet,
    authorizer: Authorizer,
    shape: Shape,
    principal: Entity,
    principal_uid: EntityUid,
    read: EntityUid,
    read_field: EntityUid,
    user_type: EntityTypeName,
    doc_type: EntityTypeName,
    /// `{"field": <path>}` per known field path, built once.
    contexts: HashMap<String, Context>,
}

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

/// A field's context: `{"field": path}`.
pub fn field_context(path: &str) -> Context {
    Context::from_pairs([(
        "field".to_string(),
        RestrictedExpression::new_string(path.to_string()),
    )])
    .expect("context")
}

impl Cedar {
    /// The authorizer of `policies` for `user` (the `%%user` JSON); `fields` are the field paths
    /// whose contexts are built in advance.
    pub fn new(policies: PolicySet, shape: Shape, user: &Value, fields: &[String]) -> Cedar {
        let user_type = EntityTypeName::from_str("User").expect("type name");
        let doc_type = EntityTypeName::from_str("Document").expect("type name");
        let id = user["id"].as_str().expect("user id");
        let principal_uid = EntityUid::from_type_name_and_id(user_type.clone(), EntityId::new(id));
        let mut attrs = HashMap::new();
        if shape == Shape::W3
            && let Some(group) = user["custom_data"]["group"].as_str()
        {
            attrs.insert(
                "group".to_string(),
                RestrictedExpression::new_string(group.to_string()),
            );
        }
        let principal =
            Entity::new(principal_uid.clone(), attrs, HashSet::new()).expect("principal entity");
        Cedar {
            policies,
            authorizer: Authorizer::new(),
            shape,
            principal,
            principal_uid,
            read: uid(r#"Action::"read""#),
            read_field: uid(r#"Action::"readField""#),
            user_type,
            doc_type,
            contexts: fields
                .iter()
                .map(|f| (f.clone(), field_context(f)))
                .collect(),
        }
    }

    fn user(&self, id: &str) -> RestrictedExpression {
        RestrictedExpression::new_entity_uid(EntityUid::from_type_name_and_id(
            self.user_type.clone(),
            EntityId::new(id),
        ))
    }

    /// The resource entity and the entity store of one document; with `fields`, also its leaf
    /// paths. Attributes of other BSON types than the schema's are left out.
    pub fn input(&self, doc: &RawDocument, fields: bool) -> DocInput {
        let id = match doc.get("_id").ok().flatten() {
            Some(RawBsonRef::ObjectId(oid)) => oid.to_hex(),
            Some(RawBsonRef::String(s)) => s.to_string(),
            Some(RawBsonRef::Int64(i)) => i.to_string(),
            Some(RawBsonRef::Int32(i)) => i.to_string(),
            _ => String::new(),
        };
        let resource = EntityUid::from_type_name_and_id(self.doc_type.clone(), EntityId::new(id));
        let mut attrs = HashMap::with_capacity(3);
        match self.shape {
            Shape::W1 => {
                if let Ok(Some(RawBsonRef::String(owner))) = doc.get("owner_id") {
                    attrs.insert("owner".to_string(), self.user(owner));
                }
                match doc.get("shared_with") {
                    Ok(Some(RawBsonRef::Array(users))) => {
                        let set = users.into_iter().filter_map(|u| match u {
                            Ok(RawBsonRef::String(s)) => Some(self.user(s)),
                            _ => None,
                        });
                        attrs.insert(
                            "shared_with".to_string(),
                            RestrictedExpression::new_set(set),
                        );
                    }
                    Ok(Some(RawBsonRef::String(s))) => {
                        attrs.insert(
                            "shared_with".to_string(),
                            RestrictedExpression::new_set([self.user(s)]),
                        );
                    }
                    _ => {}
                }
                if let Ok(Some(RawBsonRef::Boolean(b))) = doc.get("public") {
                    attrs.insert("public".to_string(), RestrictedExpression::new_bool(b));
                }
            }
            Shape::W3 => {
                if let Ok(Some(RawBsonRef::String(team))) = doc.get("team") {
                    attrs.insert(
                        "team".to_string(),
                        RestrictedExpression::new_string(team.to_string()),
                    );
                }
            }
        }
        let entity = Entity::new(resource.clone(), attrs, HashSet::new()).expect("entity");
        let entities =
            Entities::from_entities([self.principal.clone(), entity], None).expect("entity store");
        DocInput {
            resource,
            entities,
            fields: if fields {
                data::leaf_paths(doc)
            } else {
                Vec::new()
            },
        }
    }

    /// One `read` authorization.
    fn read(&self, input: &DocInput) -> Response {
        let request = Request::new(
            self.principal_uid.clone(),
            self.read.clone(),
            input.resource.clone(),
            Context::empty(),
            None,
        )
        .expect("request");
        self.authorizer
            .is_authorized(&request, &self.policies, &input.entities)
    }

    /// Whether the user may read the document (a policy that fails to evaluate does not apply,
    /// as in any Cedar deployment; [`Cedar::decide_checked`] fails on it instead).
    pub fn decide(&self, input: &DocInput) -> bool {
        self.read(input).decision() == Decision::Allow
    }

    /// One `readField` authorization.
    fn field(&self, input: &DocInput, path: &str) -> Response {
        let context = match self.contexts.get(path) {
            Some(c) => c.clone(),
            None => field_context(path),
        };
        let request = Request::new(
            self.principal_uid.clone(),
            self.read_field.clone(),
            input.resource.clone(),
            context,
            None,
        )
        .expect("request");
        self.authorizer
            .is_authorized(&request, &self.policies, &input.entities)
    }

    /// The readable fields of the document: the indices in `input.fields` of the fields
    /// authorized, one authorization per field, pushed to `out`.
    pub fn readable(&self, input: &DocInput, out: &mut Vec<usize>) {
        out.clear();
        for (i, path) in input.fields.iter().enumerate() {
            if self.field(input, path).decision() == Decision::Allow {
                out.push(i);
            }
        }
    }

    /// [`Cedar::decide`], failing loudly on evaluation errors (for the equality check).
    pub fn decide_checked(&self, input: &DocInput) -> bool {
        let response = self.read(input);
        no_errors(&response);
        response.decision() == Decision::Allow
    }

    /// The readable field paths, sorted (`None` when none is readable), failing loudly on
    /// evaluation errors (for the equality check).
    pub fn readable_checked(&self, input: &DocInput) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for path in &input.fields {
            let response = self.field(input, path);
            no_errors(&response);
            if response.decision() == Decision::Allow {
                out.push(path.clone());
            }
        }
        out.sort();
        (!out.is_empty()).then_some(out)
    }
}
