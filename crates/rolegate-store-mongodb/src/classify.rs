//! Stage: what a driver error means for the store. Input: an error of the MongoDB driver (its
//! server error codes and error labels). Output: a [`Class`]: a conflict to retry from the read,
//! a duplicate key, a commit whose outcome is unknown, or a failure.
//!
//! The rules, from the transactions part of the MongoDB manual and the server's error codes:
//!
//! * the label `UnknownTransactionCommitResult` on a commit: the server may or may not have
//!   committed; the commit (idempotent) is retried, never the transaction;
//! * the label `TransientTransactionError`, or code 112 (`WriteConflict`): a concurrent write
//!   (or a failover, a lost connection) aborted the transaction; nothing was written, so the
//!   operation may start again from its read: [`Class::Conflict`];
//! * code 11000 (`DuplicateKey`; 11001 is its legacy twin): a unique index refused the write;
//! * anything else is a failure, reported with the driver's message.

use std::error::Error as _;

use mongodb::error::{
    Error, ErrorKind, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT, WriteFailure,
};

/// The server's code for a write conflict between transactions.
pub const WRITE_CONFLICT: i32 = 112;
/// The server's codes for a duplicate key in a unique index.
pub const DUPLICATE_KEY: [i32; 2] = [11000, 11001];

/// What an error means for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The transaction met a concurrent write or a transient failure; nothing was written.
    Conflict,
    /// A unique index refused the write; nothing was written.
    DuplicateKey,
    /// The commit's outcome is unknown; retry the commit.
    UnknownCommit,
    /// Any other error.
    Other,
}

/// The class of an error with these server `codes` and labels (`has_label` answers for one).
pub fn classify(codes: &[i32], has_label: impl Fn(&str) -> bool) -> Class {
    if has_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) {
        Class::UnknownCommit
    } else if has_label(TRANSIENT_TRANSACTION_ERROR) || codes.contains(&WRITE_CONFLICT) {
        Class::Conflict
    } else if codes.iter().any(|c| DUPLICATE_KEY.contains(c)) {
        Class::DuplicateKey
    } else {
        Class::Other
    }
}

/// The class of a driver error.
pub fn class_of(err: &Error) -> Class {
    classify(&codes_of(err), |label| err.contains_label(label))
}

/// The server codes an error carries: its command error, write error or write-concern error,
/// and those of the errors it wraps (a bounded walk: the driver nests a few at most).
pub fn codes_of(err: &Error) -> Vec<i32> {
    let mut codes = Vec::new();
    let mut current: Option<&Error> = Some(err);
    for _ in 0..8 {
        let Some(e) = current else { break };
        codes.extend(own_codes(&e.kind));
        current = e.source().and_then(|s| s.downcast_ref::<Error>());
    }
    codes
}

/// The codes of one error kind.
fn own_codes(kind: &ErrorKind) -> Vec<i32> {
    match kind {
        ErrorKind::Command(c) => vec![c.code],
        ErrorKind::Write(WriteFailure::WriteError(w)) => vec![w.code],
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => vec![w.code],
        ErrorKind::InsertMany(m) => m
            .write_errors
            .iter()
            .flatten()
            .map(|w| w.code)
            .chain(m.write_concern_error.iter().map(|w| w.code))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{Document, doc, from_document};
    use mongodb::error::{CommandError, WriteConcernError, WriteError};

    fn labels(list: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |l| list.contains(&l)
    }

    fn command_error(fields: Document) -> Error {
        let c: CommandError = from_document(fields).unwrap();
        Error::from(ErrorKind::Command(c))
    }

    #[test]
    fn codes_and_labels_classify() {
        assert_eq!(classify(&[112], labels(&[])), Class::Conflict);
        assert_eq!(
            classify(&[251], labels(&["TransientTransactionError"])),
            Class::Conflict
        );
        assert_eq!(
            classify(&[], labels(&["TransientTransactionError"])),
            Class::Conflict
        );
        assert_eq!(classify(&[11000], labels(&[])), Class::DuplicateKey);
        assert_eq!(classify(&[11001], labels(&[])), Class::DuplicateKey);
        assert_eq!(
            classify(&[50], labels(&["UnknownTransactionCommitResult"])),
            Class::UnknownCommit
        );
        assert_eq!(classify(&[2], labels(&[])), Class::Other);
        assert_eq!(classify(&[], labels(&[])), Class::Other);
        assert_eq!(
            classify(&[20], labels(&["RetryableWriteError"])),
            Class::Other
        );
    }

    #[test]
    fn a_transient_label_wins_over_a_duplicate_key() {
        // Two transactions inserting one `_id`: the loser's error is transient; re-reading
        // then finds the winner's document (a duplicate key on the next try).
        assert_eq!(
            classify(&[11000], labels(&["TransientTransactionError"])),
            Class::Conflict
        );
        // An unknown commit result is never taken for a conflict: retrying the whole
        // transaction could apply it twice.
        assert_eq!(
            classify(
                &[112],
                labels(&[
                    "UnknownTransactionCommitResult",
                    "TransientTransactionError"
                ])
            ),
            Class::UnknownCommit
        );
    }

    #[test]
    fn driver_command_errors_classify_by_code() {
        let conflict = command_error(doc! {
            "code": 112, "codeName": "WriteConflict", "errmsg": "write conflict",
        });
        assert_eq!(codes_of(&conflict), vec![112]);
        assert_eq!(class_of(&conflict), Class::Conflict);

        let bad = command_error(doc! { "code": 2, "codeName": "BadValue", "errmsg": "unknown op" });
        assert_eq!(class_of(&bad), Class::Other);
        assert!(bad.to_string().contains("unknown op"), "{bad}");
    }

    #[test]
    fn driver_write_errors_classify_by_code() {
        let w: WriteError = from_document(doc! {
            "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key error",
        })
        .unwrap();
        let dup = Error::from(ErrorKind::Write(WriteFailure::WriteError(w)));
        assert_eq!(codes_of(&dup), vec![11000]);
        assert_eq!(class_of(&dup), Class::DuplicateKey);
    }

    #[test]
    fn driver_labels_classify() {
        // The driver keeps a write-concern error's labels on the error itself.
        let wce: WriteConcernError = from_document(doc! {
            "code": 91, "codeName": "ShutdownInProgress", "errmsg": "shutting down",
            "errorLabels": ["TransientTransactionError"],
        })
        .unwrap();
        let e = Error::from(ErrorKind::Write(WriteFailure::WriteConcernError(wce)));
        assert!(e.contains_label(TRANSIENT_TRANSACTION_ERROR));
        assert_eq!(class_of(&e), Class::Conflict);

        let wce: WriteConcernError = from_document(doc! {
            "code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication",
            "errorLabels": ["UnknownTransactionCommitResult"],
        })
        .unwrap();
        let e = Error::from(ErrorKind::Write(WriteFailure::WriteConcernError(wce)));
        assert_eq!(class_of(&e), Class::UnknownCommit);
    }

    #[test]
    fn errors_without_codes_are_failures() {
        let io = Error::from(ErrorKind::from(std::io::Error::other("connection reset")));
        assert!(codes_of(&io).is_empty());
        assert_eq!(class_of(&io), Class::Other);
    }
}
