//! Stage: the parts of a request context that a client's call to a MongoDB service adds, shared
//! by every host (`rolegate call`, `rolegate serve`). Input: the parsed operation, the data
//! source whose rules govern it, the `%%user` document and a store. Output: the `%%request`
//! document ([`call_request`]) and `%%user.custom_data` ([`attach_custom_data`]).
//!
//! * **`%%request`**: the host's own request document (HTTP details; empty without one) with
//!   `service` (the body's `service`, else the data source) and `action` (the body's `name`)
//!   set from the body, as App Services sets them for a call to its MongoDB service.
//! * **`%%user.custom_data`**: when the app enables custom user data
//!   (`auth/custom_user_data.json`) and the user document has no `custom_data`, the document of
//!   the configured collection whose `user_id_field` is the user's id
//!   ([`load_custom_user_data`]), or `{}` when there is none.

use bson::{Bson, Document};

use crate::rules::RuleSet;

use super::request::Operation;
use super::store::{Store, StoreError};
use super::user_data::load_custom_user_data;

/// `%%request` for a call: `base` (the host's request document, if any) with `service` and
/// `action` set from the operation (`service`: the body's, else `data_source`).
pub fn call_request(base: Option<&Document>, op: &Operation, data_source: &str) -> Document {
    let mut request = base.cloned().unwrap_or_default();
    request.insert("service", op.service().unwrap_or(data_source));
    request.insert("action", op.name());
    request
}

/// Where `%%user.custom_data` came from ([`attach_custom_data`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CustomDataSource {
    /// The app does not enable custom user data: nothing was added.
    NotEnabled,
    /// The user document already had `custom_data`: kept.
    Given,
    /// The user has no string `id`: not looked up, nothing added.
    NoStringId,
    /// The stored document whose `_id` is this (`Null` when it has none).
    Found(Bson),
    /// No stored document: `{}`.
    Missing,
}

/// Sets `user.custom_data` from `store` when the app enables custom user data and `user` has
/// none: the document of the configured collection whose `user_id_field` is the user's id,
/// or `{}` when there is none.
pub fn attach_custom_data<S: Store + ?Sized>(
    set: &RuleSet,
    store: &mut S,
    user: &mut Document,
) -> Result<CustomDataSource, StoreError> {
    if set.custom_user_data.is_none() {
        return Ok(CustomDataSource::NotEnabled);
    }
    if user.contains_key("custom_data") {
        return Ok(CustomDataSource::Given);
    }
    let Some(Bson::String(id)) = user.get("id").cloned() else {
        return Ok(CustomDataSource::NoStringId);
    };
    match load_custom_user_data(set, store, &id)? {
        Some(doc) => {
            let doc_id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            user.insert("custom_data", doc);
            Ok(CustomDataSource::Found(doc_id))
        }
        None => {
            user.insert("custom_data", Document::new());
            Ok(CustomDataSource::Missing)
        }
    }
}
