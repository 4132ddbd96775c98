//! Unknown keys: every builder checks the keys of the objects it reads against the keys it
//! knows.
//!
//! Stage: part of raw rule JSON → validated [`RuleSet`](crate::rules::RuleSet).
//! Input: a JSON object, its known keys, and the keys its builder reads itself.
//! Output: a warning `unknown-key` per other key in [`Diagnostics`], with a did-you-mean hint
//! (`document_filter` → `document_filters`), or the list of known keys when none is close.
//!
//! Unknown keys are *warnings*, not errors (a decision where the spec is silent): exported apps
//! carry keys rolegate does not use, and they must still load. The key is ignored, except for
//! two aliases that are read because ignoring them would *widen* access: `applyWhen` in a role
//! (see [`super::roles`]) and `project` in a filter (see [`super::filters`]).

use serde_json::{Map, Value};

use crate::error::{Diagnostic, Diagnostics, Place, did_you_mean};

/// The keys of a `{read, write}` pair (`document_filters`, `additional_fields`, Partition-Based
/// Sync permissions).
pub(super) const PERMISSION_KEYS: &[&str] = &["read", "write"];

/// Warns about every key of `map` not in `known` (with a did-you-mean hint). Keys in `skip`
/// are handled by the caller.
pub(super) fn unknown_keys(
    map: &Map<String, Value>,
    known: &[&str],
    skip: &[&str],
    what: &str,
    place: &Place,
    diags: &mut Diagnostics,
) {
    for key in map.keys() {
        if known.contains(&key.as_str()) || skip.contains(&key.as_str()) {
            continue;
        }
        let mut d = Diagnostic::warning(
            "unknown-key",
            place.key(key),
            format!("unknown key `{key}` in {what} is ignored"),
        );
        d = match did_you_mean(key, known) {
            Some(s) => d.with_hint(format!("did you mean `{s}`?")),
            None => d.with_hint(format!("known keys: {}", known_keys(known))),
        };
        diags.push(d);
    }
}

/// `known` as a hint: `` `a`, `b`, `c` ``.
fn known_keys(known: &[&str]) -> String {
    known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
