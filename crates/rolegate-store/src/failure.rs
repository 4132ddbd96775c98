//! Stage: error reporting. Input: a failure of redb, of the file system or of BSON decoding,
//! and what the store was doing. Output: [`StoreError::Failed`] with both (the detailed view, for
//! logs: the operations turn it into a generic client error).

use std::fmt::Display;

use rolegate::ops::StoreError;

/// A store failure: `doing` (what the store was doing) and the underlying reason.
pub fn failed(doing: &str, reason: impl Display) -> StoreError {
    StoreError::Failed(format!("embedded store: {doing}: {reason}"))
}

/// A closure for `map_err` that reports `doing` with the error it gets.
pub fn during<E: Display>(doing: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| failed(doing, e)
}

/// Runs `f`, turning a panic inside it into [`StoreError::Failed`]. redb checks its file, but
/// some corruptions of it still reach a slice index or an assertion inside redb; the store
/// reports them as failures (the panic message also goes to the panic hook, stderr by default).
/// A build with `panic = "abort"` aborts instead.
pub fn guarded<T>(doing: &str, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(failed(
                doing,
                format!("the database failed (a corrupt file?): {reason}"),
            ))
        }
    }
}
