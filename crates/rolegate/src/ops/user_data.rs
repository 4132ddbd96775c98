//! Stage: the request context's custom user data, without I/O. Input: the app's custom user
//! data configuration (`auth/custom_user_data.json`, in the [`RuleSet`]) and a user id. Output:
//! the read that finds the user's document ([`custom_user_data_read`]), then the document that
//! becomes `%%user.custom_data` among those the store returned ([`pick_custom_user_data`]).
//! [`load_custom_user_data`] does both on a synchronous store.

use bson::{Bson, Document, doc, oid::ObjectId};

use crate::rules::RuleSet;

use super::store::{Namespace, Store, StoreError, StoreRead};

/// The read that finds `user_id`'s custom user data: the documents of the configured
/// collection whose `user_id_field` is the id as a string or, when the id is a hex ObjectId,
/// as that ObjectId. `None` when the app has no (enabled) custom user data.
pub fn custom_user_data_read(set: &RuleSet, user_id: &str) -> Option<StoreRead> {
    let config = set.custom_user_data.as_ref()?;
    let field = config.user_id_field.clone();
    let query = match ObjectId::parse_str(user_id) {
        Ok(oid) => doc! {field: {"$in": [user_id, oid]}},
        Err(_) => doc! {field: {"$eq": user_id}},
    };
    Some(StoreRead {
        namespace: Namespace::new(config.database.clone(), config.collection.clone()),
        query,
        projection: None,
    })
}

/// The custom user data among `docs` (as the store returned them, in natural order): a
/// document whose field holds the id as a string wins over one holding it as an ObjectId;
/// among several of one kind, the first inserted wins (App Services' documented rules).
pub fn pick_custom_user_data(
    set: &RuleSet,
    docs: Vec<Document>,
    user_id: &str,
) -> Option<Document> {
    let config = set.custom_user_data.as_ref()?;
    let is_string = |d: &Document| matches!(d.get(&config.user_id_field), Some(Bson::String(s)) if s == user_id);
    let first_string = docs.iter().position(is_string);
    let at = first_string.or_else(|| {
        let oid = ObjectId::parse_str(user_id).ok()?;
        docs.iter().position(
            |d| matches!(d.get(&config.user_id_field), Some(Bson::ObjectId(o)) if *o == oid),
        )
    })?;
    docs.into_iter().nth(at)
}

/// Looks up `user_id`'s custom user data in `store` (`Ok(None)`: none, or not enabled).
pub fn load_custom_user_data<S: Store + ?Sized>(
    set: &RuleSet,
    store: &mut S,
    user_id: &str,
) -> Result<Option<Document>, StoreError> {
    let Some(read) = custom_user_data_read(set, user_id) else {
        return Ok(None);
    };
    let docs = store.find(&read)?;
    Ok(pick_custom_user_data(set, docs, user_id))
}
