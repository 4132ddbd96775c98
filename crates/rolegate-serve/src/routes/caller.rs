//! Stage: the rules' view of the user who calls. Input: the token's user id, the operation
//! (a `functions/call` action, or the `find` a `watch` stands for) and the HTTP part of
//! `%%request`. Output: the collection whose rules govern the operation and the request
//! context to decide it in: `%%user` (`{id, type, data, identities}` from the stored user,
//! `custom_data` from the app's data store, [`rolegate::ops::attach_custom_data`]), `%%request`
//! ([`rolegate::ops::call_request`], with `action` replaced when the caller says), the app's
//! `%%values` and `%%environment`. A disabled or deleted user is an `InvalidSession`.

use bson::{Document, oid::ObjectId};
use rolegate::ops::{Operation, attach_custom_data, call_request};
use rolegate::{Collection, RequestContext};

use crate::accounts;
use crate::data::Shared;
use crate::error::ApiError;
use crate::state::AppState;

/// The collection and request context of `op` called by `user_id` (`action`: the
/// `%%request.action` to record instead of the operation's name).
pub fn caller_context(
    state: &AppState,
    user_id: ObjectId,
    op: &Operation,
    http: &Document,
    action: Option<&str>,
) -> Result<(Collection, RequestContext), ApiError> {
    let stored = accounts::active_user(&state.store, user_id)?;
    let mut user = accounts::rule_user(&stored);
    attach_custom_data(state.rules.rule_set(), &mut Shared(&*state.data), &mut user)
        .map_err(|e| ApiError::internal(&format!("custom user data: {e}")))?;
    let collection = state
        .rules
        .operation_collection(op)
        .map_err(|e| ApiError::from_op(&e))?;
    let data_source = collection.policy().data_source.to_string();
    let mut request = call_request(Some(http), op, &data_source);
    if let Some(action) = action {
        request.insert("action", action);
    }
    let context = state
        .rules
        .context()
        .user(user)
        .request(request)
        .build()
        .map_err(|e| ApiError::internal(&format!("request context: {e}")))?;
    Ok((collection, context))
}
