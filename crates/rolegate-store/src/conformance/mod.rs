//! Stage: store conformance. Input: a way to make fresh, empty stores. Output: a pass, or a
//! panic naming every check that failed and why.
//!
//! The checks any [`Store`] must pass to sit behind rolegate's operations: the embedded store
//! runs them in `tests/conformance.rs`, and any other store (one on MongoDB, for instance) runs
//! the same ones with [`run_all`] or one by one from [`CHECKS`]. Each check starts from an empty
//! store and uses only the [`Store`] trait; the names it uses are ones MongoDB accepts too (dots
//! and Unicode in collection names, Unicode in database names: no `$`, `/` or `.` in a database
//! name).
//!
//! What they fix, beyond "what is written is read back":
//!
//! * documents come back **byte for byte** (types, key order, `-0.0`) and in **natural order**
//!   (insertion order; a replacement keeps its place, a re-insert goes last);
//! * queries and projections mean what they mean in MongoDB (dotted paths, arrays, numbers
//!   equal across types, `{_id: 2.0}` finds `_id: 2`); an invalid query is an error;
//! * `_id`s are unique by MongoDB's equality (`1`, `NumberLong(1)`, `1.0`, `NumberDecimal("1.00")`
//!   and `-0.0` vs `0` are duplicates; `"1"`, an ObjectId's hex string, a reordered document are
//!   not);
//! * replaces and deletes apply only on an identical pre-image ([`StoreError::Conflict`]
//!   otherwise, also when the document is gone); a write set is all or nothing and its changes
//!   see the ones before them;
//! * databases and collections are isolated.

#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a conformance check reports a failure by panicking, as a test does"
)]

mod namespaces;
mod reads;
mod support;
mod writes;

use std::panic::{AssertUnwindSafe, catch_unwind};

use rolegate::ops::Store;
#[cfg(doc)]
use rolegate::ops::StoreError;

/// One conformance check: its name and the function that runs it on an empty store (it panics
/// with the reason when the store fails it).
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// What the check checks, as a test name.
    pub name: &'static str,
    /// Runs the check on an empty store.
    pub run: fn(&mut dyn Store),
}

/// Every check, in the order [`run_all`] runs them.
pub const CHECKS: &[Check] = &[
    Check {
        name: "round_trip_keeps_types_and_key_order",
        run: reads::round_trip_keeps_types_and_key_order,
    },
    Check {
        name: "natural_order_is_insertion_order",
        run: reads::natural_order_is_insertion_order,
    },
    Check {
        name: "queries_select_as_mongodb",
        run: reads::queries_select_as_mongodb,
    },
    Check {
        name: "projections_apply",
        run: reads::projections_apply,
    },
    Check {
        name: "empty_query_selects_all",
        run: reads::empty_query_selects_all,
    },
    Check {
        name: "invalid_query_is_an_error",
        run: reads::invalid_query_is_an_error,
    },
    Check {
        name: "duplicate_ids_are_refused",
        run: writes::duplicate_ids_are_refused,
    },
    Check {
        name: "replace_needs_the_current_document",
        run: writes::replace_needs_the_current_document,
    },
    Check {
        name: "delete_needs_the_current_document",
        run: writes::delete_needs_the_current_document,
    },
    Check {
        name: "write_sets_are_all_or_nothing",
        run: writes::write_sets_are_all_or_nothing,
    },
    Check {
        name: "changes_see_earlier_changes",
        run: writes::changes_see_earlier_changes,
    },
    Check {
        name: "namespaces_are_isolated",
        run: namespaces::namespaces_are_isolated,
    },
    Check {
        name: "odd_names_work",
        run: namespaces::odd_names_work,
    },
];

/// Runs every check of [`CHECKS`], each on a fresh store from `make`, and panics at the end
/// with the name and reason of each check that failed (a failed check does not stop the
/// others).
pub fn run_all<S: Store>(mut make: impl FnMut() -> S) {
    let mut failures = Vec::new();
    for check in CHECKS {
        let mut store = make();
        let outcome = catch_unwind(AssertUnwindSafe(|| (check.run)(&mut store)));
        if let Err(payload) = outcome {
            let reason = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "(no message)".to_string());
            failures.push(format!("{}: {reason}", check.name));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} store-conformance checks failed:\n{}",
            failures.len(),
            CHECKS.len(),
            failures.join("\n")
        );
    }
}
