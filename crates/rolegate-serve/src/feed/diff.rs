//! Stage: the update description of an `update` change event. Input: a document's pre-image and
//! post-image. Output: the paths whose values changed or appeared ([`Diff::updated`]) and the
//! paths that disappeared ([`Diff::removed`]), each as its list of field names (never joined
//! with dots here: a field name may itself contain a dot).
//!
//! Sub-documents present on both sides are compared field by field; anything else (arrays,
//! scalars, a sub-document replaced by another type) is one value: a changed array is reported
//! whole, as MongoDB does for an array it cannot describe element by element. An explicit
//! stack, not recursion: nesting cannot overflow the stack (stored documents are within the
//! rules' depth limit, which bounds the paths' lengths).

use bson::{Bson, Document};

/// A path: the field names from the top of the document down.
pub type Path = Vec<String>;

/// What an update changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// The paths whose value changed or that appeared, sorted.
    pub updated: Vec<Path>,
    /// The paths that disappeared, sorted.
    pub removed: Vec<Path>,
}

/// The difference between `pre` and `post`.
pub fn diff(pre: &Document, post: &Document) -> Diff {
    let mut out = Diff::default();
    let mut stack: Vec<(Path, &Document, &Document)> = vec![(Vec::new(), pre, post)];
    while let Some((prefix, before, after)) = stack.pop() {
        let at = |key: &str| {
            let mut path = prefix.clone();
            path.push(key.to_string());
            path
        };
        for (key, value) in after {
            match (before.get(key), value) {
                (Some(Bson::Document(b)), Bson::Document(a)) => stack.push((at(key), b, a)),
                (Some(b), a) if b == a => {}
                _ => out.updated.push(at(key)),
            }
        }
        for key in before.keys() {
            if !after.contains_key(key) {
                out.removed.push(at(key));
            }
        }
    }
    out.updated.sort();
    out.removed.sort();
    out
}

/// The value at `path` in `doc` (through sub-documents only), if any.
pub fn lookup<'d>(doc: &'d Document, path: &[String]) -> Option<&'d Bson> {
    let (first, rest) = path.split_first()?;
    let mut value = doc.get(first)?;
    for key in rest {
        match value {
            Bson::Document(d) => value = d.get(key)?,
            _ => return None,
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use bson::doc;

    fn paths(list: &[&[&str]]) -> Vec<Path> {
        list.iter()
            .map(|p| p.iter().map(ToString::to_string).collect())
            .collect()
    }

    #[test]
    fn changed_added_and_removed_paths() {
        let pre = doc! {"_id": 1, "a": 1, "d": {"x": 1, "y": 2, "z": {"k": 1}}, "arr": [1, 2], "gone": true};
        let post = doc! {"_id": 1, "a": 2, "d": {"x": 1, "z": {"k": 2}, "w": 3}, "arr": [1, 2, 3], "new": "n"};
        let d = diff(&pre, &post);
        assert_eq!(
            d.updated,
            paths(&[&["a"], &["arr"], &["d", "w"], &["d", "z", "k"], &["new"]])
        );
        assert_eq!(d.removed, paths(&[&["d", "y"], &["gone"]]));
        assert_eq!(diff(&pre, &pre), Diff::default());
    }

    #[test]
    fn a_type_change_is_one_value_and_dotted_names_stay_whole() {
        let d = diff(&doc! {"a": {"b": 1}, "x.y": 1}, &doc! {"a": 5, "x.y": 2});
        assert_eq!(d.updated, paths(&[&["a"], &["x.y"]]));
        assert!(d.removed.is_empty());
        let doc = doc! {"a": {"b": {"c": 7}}, "x.y": 1};
        assert_eq!(
            lookup(&doc, &paths(&[&["a", "b", "c"]])[0]),
            Some(&Bson::Int32(7))
        );
        assert_eq!(lookup(&doc, &paths(&[&["x.y"]])[0]), Some(&Bson::Int32(1)));
        assert_eq!(lookup(&doc, &paths(&[&["x", "y"]])[0]), None);
        assert_eq!(lookup(&doc, &[]), None);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut pre = doc! {"v": 1};
        let mut post = doc! {"v": 2};
        for _ in 0..1000 {
            pre = doc! {"n": pre};
            post = doc! {"n": post};
        }
        let d = diff(&pre, &post);
        assert_eq!(d.updated.len(), 1);
        assert_eq!(d.updated[0].len(), 1001);
    }
}
