//! Stage: the paths an update writes, against the read rules (decision O17). Input: a policy,
//! a request context, a stored document and the update's target paths
//! ([`crate::mql::Update::targets`]). Output: the first path that the role the document is
//! assigned does not let the user read entirely, or none.
//!
//! An update that names a path the user cannot read is refused whatever is stored there:
//! otherwise its outcome would tell the stored value (a `$set` to the value already stored
//! changes nothing and passes; a `$push` onto a hidden number fails with MongoDB's error; an
//! `$unset` of a hidden field passes only when the field is absent).
//!
//! A path is readable when, walking it through the role's field rules as a read walks the
//! document (each rule sees `%%this` = `%%prev` = the stored value there, or nothing):
//! - some level on the way decides `read` or `write` true (the whole value below is readable);
//! - or the path ends at a field governed by nested rules whose stored value is readable
//!   entirely (its redaction is identical to it), or is absent (the write check then judges
//!   each part of what is created);
//! - through an array under nested rules, an index names one element, and `$`, `$[]` or
//!   `$[<id>]` every element (which ones the update touches can depend on hidden values, so
//!   all must be readable).
//!
//! Not readable: a level that decides neither and has no nested rules, or decides `false`; a
//! stored value that nested rules cannot look into (a number where they expect a document);
//! an array element named on a document, or a field name on an array (MongoDB fails those
//! updates, and the failure would tell the hidden value's type); no role, or a withheld
//! document. A rule that fails to evaluate is the error (the operation is refused).
//!
//! Values and types of hidden fields never change the answer; whether one exists can (a write
//! that would remove or overwrite it is refused by the write rules), as decision O17 says.

use bson::{Bson, Document};

use super::fields::{self, Inherited, Level, bind, decide, redact_value};
use super::read::{DocumentLevel, document_level};
use super::{Failure, Trace, roles};
use crate::context::RequestContext;
use crate::mql::{TargetPart, array_index};
use crate::rules::{CollectionPolicy, FieldPermissions};
use crate::value::Bindings;
use crate::value::compare::identical;
use crate::value::eval::WholeRoots;

/// The index in `targets` of the first path the user may not read in the stored `doc`, or
/// `None` when every one is readable (always, for the system user). Role selection and
/// bindings are a read's: `%%root` = `%%prevRoot` = `doc`.
pub fn first_unreadable(
    policy: &CollectionPolicy<'_>,
    request: &RequestContext,
    doc: &Document,
    targets: &[Vec<TargetPart>],
) -> Result<Option<usize>, Failure> {
    if request.is_system() || targets.is_empty() {
        return Ok(None);
    }
    let mut trace = Trace::new(request, false);
    let whole = WholeRoots::new();
    let bindings = Bindings::stored(request, doc, Some(&whole));
    let Some(role) = roles::select(policy.roles, &mut trace, &bindings)? else {
        return Ok(Some(0));
    };
    let inherited = match document_level(role, &bindings, &mut trace)? {
        DocumentLevel::Withheld => return Ok(Some(0)),
        DocumentLevel::Whole => return Ok(None),
        DocumentLevel::Fields(inherited) => inherited,
    };
    let mut walk = Walk {
        base: &bindings,
        trace: &mut trace,
    };
    for (i, path) in targets.iter().enumerate() {
        if !walk.in_level(Some(doc), path, "", inherited, Level::role(role))? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// One walk of target paths through a role's field rules.
struct Walk<'w, 'b> {
    base: &'w Bindings<'b>,
    trace: &'w mut Trace<'b>,
}

impl<'b> Walk<'_, 'b> {
    /// Whether `path` is readable at a level whose fields are those of `doc` (`None`: nothing
    /// is stored at this level). `prefix` is the dotted path to the level, for messages.
    fn in_level(
        &mut self,
        doc: Option<&'b Document>,
        path: &[TargetPart],
        prefix: &str,
        inherited: Inherited,
        level: Level<'_>,
    ) -> Result<bool, Failure> {
        let Some((head, rest)) = path.split_first() else {
            return Ok(true);
        };
        let TargetPart::Name(key) = head else {
            // An array element of a document: MongoDB fails the update.
            return Ok(false);
        };
        let here = fields::join(prefix, key);
        let value = doc.and_then(|d| d.get(key));
        let rule = level.tree.get(key);
        let empty = FieldPermissions::default();
        let perms = match rule {
            Some(rule) => &rule.permissions,
            None => level.tree.additional.as_ref().unwrap_or(&empty),
        };
        let bindings = bind(self.base, value, value);
        let decided = decide(perms, inherited, &bindings, self.trace, &here, true)?;
        if decided.read == Some(true) || decided.write == Some(true) {
            return Ok(true);
        }
        let fully_decided = decided.read.is_some() && decided.write.is_some();
        match rule {
            Some(rule) if !fully_decided && !rule.nested.is_empty() => {
                let read_from = match inherited.read {
                    Some(_) => level.read_from,
                    None => rule.permissions.read.as_ref().map(|r| &r.place),
                };
                let inner = Level {
                    tree: &rule.nested,
                    holder: &rule.place,
                    read_from,
                };
                self.in_value(value, rest, &here, decided, inner)
            }
            _ => Ok(false),
        }
    }

    /// Whether `path` is readable inside `value`, a value governed by nested rules (`None`:
    /// absent). An empty `path` names the whole value.
    fn in_value(
        &mut self,
        value: Option<&'b Bson>,
        path: &[TargetPart],
        here: &str,
        inherited: Inherited,
        level: Level<'_>,
    ) -> Result<bool, Failure> {
        let Some(value) = value else {
            return match path.first() {
                None => Ok(true),
                Some(TargetPart::Element) => Ok(false),
                Some(TargetPart::Name(_)) => self.in_level(None, path, here, inherited, level),
            };
        };
        let Some((head, rest)) = path.split_first() else {
            let kept = redact_value(value, inherited, self.base, self.trace, here, level)?;
            return Ok(kept.is_some_and(|kept| identical(&kept, value)));
        };
        match (value, head) {
            (Bson::Document(d), _) => self.in_level(Some(d), path, here, inherited, level),
            (Bson::Array(items), TargetPart::Element) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{here}.{i}");
                    if !self.in_value(Some(item), rest, &at, inherited, level)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            (Bson::Array(items), TargetPart::Name(name)) => match array_index(name) {
                Some(i) => {
                    let at = format!("{here}.{i}");
                    self.in_value(items.get(i), rest, &at, inherited, level)
                }
                None => Ok(false),
            },
            _ => Ok(false),
        }
    }
}
