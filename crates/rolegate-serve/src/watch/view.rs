//! Stage: what one watcher sees of each change. Input: a [`Watcher`] (the collection's rules,
//! the user's request context built once when the stream opened, the client's selector) and the
//! feed's [`FeedEvent`]s. Output: per event, the change event document to send, or nothing.
//!
//! The read rules decide on the stored images, exactly as a `find` without a query or a
//! projection would ([`PreparedRequest::query_plan`] with neither, then
//! [`PreparedRequest::read_for`] on the stored document: the filters' queries, the role, the
//! field rules, the filters' projections):
//!
//! * `insert`, `update`, `replace`: sent only when the post-image is visible; `fullDocument` is
//!   its view. An update or replacement whose view is the same before and after (only hidden
//!   fields changed) is not sent. An update's `updatedFields` keep the paths whose value in the
//!   view changed (or every path the view has, when the pre-image was not visible), with the
//!   view's values (a changed sub-document arrives redacted); its `removedFields` keep the
//!   paths the view had before and has no more.
//! * `delete`: sent only when the pre-image was visible; it carries no document.
//! * `documentKey` is `{_id}` from the view (`{}` when the role hides `_id`).
//! * Then the client's selector: `ids` keeps the events whose `documentKey._id` is one of them;
//!   `filter` is matched on the event as the user gets it, so a condition on a hidden field
//!   meets it missing.
//!
//! An event the user may not see leaves no trace: nothing is sent, nothing counted. The event's
//! `_id` (the resume token) and `clusterTime` increment count this stream's events only, so
//! their gaps cannot tell how many changes the user did not see. A rule that fails to evaluate
//! withholds the image (fail closed).

use std::cell::Cell;

use bson::{Bson, Document, Timestamp, doc};
use rolegate::mql::bson_equal;
use rolegate::ops::Namespace;
use rolegate::{Collection, EvalError, PreparedRequest, QueryPlan, RequestContext};

use crate::error::ApiError;
use crate::feed::diff::{Path, lookup};
use crate::feed::{ChangeKind, FeedEvent};

use super::request::Selector;

/// One stream's user, collection and selector.
#[derive(Debug)]
pub struct Watcher {
    collection: Collection,
    context: RequestContext,
    namespace: Namespace,
    selector: Selector,
}

/// A [`Watcher`]'s prepared request and read plan, made once per stream.
#[derive(Debug)]
pub struct Session<'w> {
    request: PreparedRequest<'w, 'w>,
    plan: QueryPlan,
    watcher: &'w Watcher,
    /// How many events this stream has sent.
    sent: Cell<u32>,
}

impl Watcher {
    /// A watcher of `namespace` under `collection`'s rules, as the user of `context`. Refused
    /// (before any stream starts) when the rules cannot plan a read for this user.
    pub fn new(
        collection: Collection,
        context: RequestContext,
        namespace: Namespace,
        selector: Selector,
    ) -> Result<Watcher, ApiError> {
        let watcher = Watcher {
            collection,
            context,
            namespace,
            selector,
        };
        watcher.session()?;
        Ok(watcher)
    }

    /// The prepared request and plan to decide events with.
    pub fn session(&self) -> Result<Session<'_>, ApiError> {
        let request = self.collection.prepare(&self.context);
        let plan = request
            .query_plan(None, None)
            .map_err(|e| ApiError::from_op(&e.into()))?;
        Ok(Session {
            request,
            plan,
            watcher: self,
            sent: Cell::new(0),
        })
    }
}

impl Session<'_> {
    /// The view of a stored document, as a `find` returns it; `None` when withheld.
    fn seen(&self, stored: &Document) -> Option<Document> {
        let read = self.request.read_for(&self.plan, stored);
        if read.selected && read.outcome.visible {
            read.outcome.document
        } else {
            None
        }
    }

    /// The change event this stream sends for `event`, or `None`. An error when the client's
    /// filter fails to evaluate on the (redacted) event.
    pub fn view(&self, event: &FeedEvent) -> Result<Option<Document>, EvalError> {
        let watcher = self.watcher;
        if event.namespace != watcher.namespace {
            return Ok(None);
        }
        let post = match event.kind {
            ChangeKind::Delete => None,
            _ => match event.post.as_ref().and_then(|d| self.seen(d)) {
                Some(view) => Some(view),
                None => return Ok(None),
            },
        };
        let pre = match event.kind {
            ChangeKind::Insert => None,
            ChangeKind::Delete | ChangeKind::Update | ChangeKind::Replace => {
                event.pre.as_ref().and_then(|d| self.seen(d))
            }
        };
        if post.is_some() && post == pre {
            // Only hidden fields changed: to this user, nothing happened.
            return Ok(None);
        }
        let Some(keyed) = post.as_ref().or(pre.as_ref()) else {
            return Ok(None);
        };
        let document_key = match keyed.get("_id") {
            Some(id) => doc! {"_id": id.clone()},
            None => Document::new(),
        };
        let number = self.sent.get().saturating_add(1);
        let mut out = doc! {
            "_id": {"_data": format!("{number:016X}")},
            "operationType": event.kind.as_str(),
            "clusterTime": Bson::Timestamp(Timestamp {
                time: event.cluster_time.time,
                increment: number,
            }),
        };
        let description = match (&event.diff, &post) {
            (Some(diff), Some(post)) if event.kind == ChangeKind::Update => {
                Some(describe(&diff.updated, &diff.removed, post, pre.as_ref()))
            }
            _ => None,
        };
        if let Some(full) = post {
            out.insert("fullDocument", full);
        }
        out.insert(
            "ns",
            doc! {"db": &watcher.namespace.database, "coll": &watcher.namespace.collection},
        );
        out.insert("documentKey", document_key);
        if let Some(description) = description {
            out.insert("updateDescription", description);
        }
        let selected = match &watcher.selector {
            Selector::All => true,
            Selector::Ids(ids) => match out
                .get_document("documentKey")
                .ok()
                .and_then(|k| k.get("_id"))
            {
                Some(id) => ids.iter().any(|i| bson_equal(i, id)),
                None => false,
            },
            Selector::Filter(filter) => filter.matches(&out)?,
        };
        if selected {
            self.sent.set(number);
        }
        Ok(selected.then_some(out))
    }
}

/// `updateDescription` as the user's views tell it: the updated paths whose value in the
/// post-image's view differs from the pre-image's view (all present ones when the pre-image
/// was not visible), with the post view's values; the removed paths the pre view had and the
/// post view has not.
fn describe(
    updated: &[Path],
    removed: &[Path],
    post: &Document,
    pre: Option<&Document>,
) -> Document {
    let mut fields = Document::new();
    for path in updated {
        if let Some(value) = lookup(post, path)
            && pre.and_then(|pre| lookup(pre, path)) != Some(value)
        {
            fields.insert(path.join("."), value.clone());
        }
    }
    let gone: Vec<Bson> = match pre {
        Some(pre) => removed
            .iter()
            .chain(updated)
            .filter(|path| lookup(pre, path).is_some() && lookup(post, path).is_none())
            .map(|path| Bson::String(path.join(".")))
            .collect(),
        None => Vec::new(),
    };
    doc! {"updatedFields": fields, "removedFields": gone}
}
