//! Stage: a write set as one transaction. Input: a [`WriteSet`] and a client. Output: every
//! change committed, or none (a [`StoreError`]).
//!
//! One client session runs one multi-document transaction (read concern `snapshot`, write
//! concern `majority`): each insert is an `insertOne`; each replace a `findOneAndReplace` and
//! each delete a `findOneAndDelete` whose filter holds the pre-image the rules decided on
//! ([`conditional_filter`]), with the pre-image they return checked byte for byte
//! ([`identical`]). The changes run in order, so each sees the ones before it. Any failure
//! aborts the transaction, so nothing of the set is written; a commit whose outcome is unknown
//! is retried (a commit is idempotent) a few times, then reported as a failure.
//!
//! A transaction also makes the byte check sound: the server answers a write to a document
//! another writer changed since the transaction's snapshot with a write conflict (code 112,
//! label `TransientTransactionError`), so the document the check saw is the one replaced.

use bson::{Bson, Document};
use mongodb::options::{ReadConcern, ReturnDocument, WriteConcern};
use mongodb::sync::{ClientSession, Collection};
use rolegate::ops::{Change, StoreError, WriteSet};

use crate::classify::{Class, class_of};
use crate::filter::{conditional_filter, identical, simple_collation};
use crate::store::MongoStore;

/// How many times a commit whose outcome is unknown is tried in all.
pub const COMMIT_ATTEMPTS: u32 = 3;

/// Applies `writes` all or nothing.
pub fn write_set(store: &MongoStore, writes: &WriteSet) -> Result<(), StoreError> {
    let Some(first) = writes.changes.first() else {
        return Ok(());
    };
    let coll = store.collection(&writes.namespace);
    let mut session = store
        .client()
        .start_session()
        .run()
        .map_err(|e| failed("starting a session", &e))?;
    session
        .start_transaction()
        .read_concern(ReadConcern::snapshot())
        .write_concern(WriteConcern::majority())
        .run()
        .map_err(|e| failed("starting a transaction", &e))?;
    for change in &writes.changes {
        if let Err(e) = apply(&coll, &mut session, change) {
            // Nothing is committed whether the abort succeeds or not (an unanswered
            // transaction times out on the server), so its own error adds nothing.
            let _ = session.abort_transaction().run();
            return Err(e);
        }
    }
    commit(&mut session, first.id())
}

/// Runs one change inside the session's transaction.
fn apply(
    coll: &Collection<Document>,
    session: &mut ClientSession,
    change: &Change,
) -> Result<(), StoreError> {
    let id = change.id();
    match change {
        Change::Insert(doc) => coll
            .insert_one(doc)
            .session(&mut *session)
            .run()
            .map(|_| ())
            .map_err(|e| store_error(&e, id)),
        Change::Replace { expected, document } => {
            let before = coll
                .find_one_and_replace(conditional_filter(expected), document)
                .collation(simple_collation())
                .return_document(ReturnDocument::Before)
                .session(&mut *session)
                .run()
                .map_err(|e| store_error(&e, id))?;
            check_pre_image(before.as_ref(), expected, id)
        }
        Change::Delete { expected } => {
            let before = coll
                .find_one_and_delete(conditional_filter(expected))
                .collation(simple_collation())
                .session(&mut *session)
                .run()
                .map_err(|e| store_error(&e, id))?;
            check_pre_image(before.as_ref(), expected, id)
        }
    }
}

/// The document a conditional write replaced or deleted (`None`: it matched nothing) must be
/// the very pre-image the rules decided on, else the write set is a conflict.
pub fn check_pre_image(
    before: Option<&Document>,
    expected: &Document,
    id: &Bson,
) -> Result<(), StoreError> {
    match before {
        Some(stored) if identical(stored, expected) => Ok(()),
        _ => Err(StoreError::Conflict { id: id.clone() }),
    }
}

/// Commits, retrying a commit whose outcome is unknown; `id` names the conflict if the
/// transaction was aborted under it.
fn commit(session: &mut ClientSession, id: &Bson) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        let Err(e) = session.commit_transaction().run() else {
            return Ok(());
        };
        match class_of(&e) {
            Class::UnknownCommit if attempt < COMMIT_ATTEMPTS => attempt += 1,
            Class::UnknownCommit => {
                return Err(failed("committing (the outcome is unknown)", &e));
            }
            Class::Conflict => return Err(StoreError::Conflict { id: id.clone() }),
            Class::DuplicateKey | Class::Other => return Err(failed("committing", &e)),
        }
    }
}

/// The store error for a driver error met while writing the document with `_id` `id`.
pub fn store_error(err: &mongodb::error::Error, id: &Bson) -> StoreError {
    match class_of(err) {
        Class::Conflict => StoreError::Conflict { id: id.clone() },
        Class::DuplicateKey => StoreError::DuplicateKey { id: id.clone() },
        Class::UnknownCommit | Class::Other => failed("writing", err),
    }
}

/// A failure with what the store was doing and the driver's message (the detailed view).
pub fn failed(doing: &str, err: &mongodb::error::Error) -> StoreError {
    StoreError::Failed(format!("MongoDB store, {doing}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, from_document};
    use mongodb::error::{CommandError, Error, ErrorKind, WriteError, WriteFailure};

    #[test]
    fn only_the_same_bytes_pass_the_pre_image_check() {
        let expected = doc! { "_id": 1, "n": 1, "tags": ["a"] };
        let id = Bson::Int32(1);
        assert_eq!(
            check_pre_image(Some(&expected.clone()), &expected, &id),
            Ok(())
        );
        for stored in [
            doc! { "_id": 1, "n": 1.0, "tags": ["a"] },
            doc! { "_id": 1, "n": 1_i64, "tags": ["a"] },
            doc! { "_id": 1, "tags": ["a"], "n": 1 },
            doc! { "_id": 1, "n": 1, "tags": ["a"], "x": null },
        ] {
            assert_eq!(
                check_pre_image(Some(&stored), &expected, &id),
                Err(StoreError::Conflict { id: id.clone() }),
                "{stored:?}"
            );
        }
        assert_eq!(
            check_pre_image(None, &expected, &id),
            Err(StoreError::Conflict { id: id.clone() })
        );
    }

    #[test]
    fn driver_errors_become_store_errors() {
        let id = Bson::String("k".into());
        let w: WriteError = from_document(doc! { "code": 11000, "errmsg": "E11000" }).unwrap();
        let dup = Error::from(ErrorKind::Write(WriteFailure::WriteError(w)));
        assert_eq!(
            store_error(&dup, &id),
            StoreError::DuplicateKey { id: id.clone() }
        );

        let c: CommandError =
            from_document(doc! { "code": 112, "codeName": "WriteConflict", "errmsg": "wc" })
                .unwrap();
        let conflict = Error::from(ErrorKind::Command(c));
        assert_eq!(
            store_error(&conflict, &id),
            StoreError::Conflict { id: id.clone() }
        );

        let c: CommandError =
            from_document(doc! { "code": 13, "codeName": "Unauthorized", "errmsg": "not allowed" })
                .unwrap();
        let denied = Error::from(ErrorKind::Command(c));
        match store_error(&denied, &id) {
            StoreError::Failed(m) => {
                assert!(m.contains("not allowed") && m.contains("writing"), "{m}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
