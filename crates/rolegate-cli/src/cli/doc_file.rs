//! Stage: reading a file of documents to import. Input: a path (`-` is stdin) holding Extended
//! JSON documents, one per line (JSON Lines), or one JSON array of documents. Output: the
//! documents, each with its place (`line N`, or `[i]` in an array), each with an `_id` (a new
//! ObjectId first when it has none, as `mongoimport` does) — or every problem at once: each bad
//! line (not UTF-8, not JSON, not a document, an `_id` that is an array, a regular expression or
//! undefined, which MongoDB refuses), and each group of lines whose `_id`s are equal (MongoDB's
//! equality: `1` and `1.0` are one `_id`).

use std::cmp::Ordering;
use std::path::Path;

use bson::{Bson, Document, oid::ObjectId};
use rolegate::mql::{bson_equal, sort_value_cmp};
use rolegate::testing::to_document;
use serde_json::Value;

use super::inputs::{json_lines_and_problems, read_bytes, read_json_text, shown};
use super::report::Problem;
use super::{CliError, Exit};

/// One document of the file, with its place.
pub struct Placed {
    /// `line N` (JSON Lines) or `[i]` (an array).
    pub place: Place,
    /// The document, with an `_id`.
    pub doc: Document,
}

/// Where a document is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The 1-based line of a JSON Lines file.
    Line(usize),
    /// The 0-based index in a JSON array.
    Index(usize),
}

impl Place {
    /// `line 3` or `[2]`.
    pub fn text(self) -> String {
        match self {
            Place::Line(n) => format!("line {n}"),
            Place::Index(i) => format!("[{i}]"),
        }
    }

    /// A problem at this place of `file`.
    pub fn problem(self, code: &str, message: impl Into<String>, file: &str) -> Problem {
        let p = Problem::error(code, message).in_file(file);
        match self {
            Place::Line(n) => p.at_line(n),
            Place::Index(i) => p.at_path(format!("[{i}]")),
        }
    }
}

/// Reads the documents of `path`: a JSON array ([`is_array_file`]), else JSON Lines. Every
/// problem is reported (exit 3).
pub fn read_documents(path: &Path) -> Result<Vec<Placed>, CliError> {
    let file = shown(path);
    let bytes = read_bytes(path)?;
    let (values, mut problems): (Vec<(Place, Value)>, Vec<Problem>) = if is_array_file(&bytes) {
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            CliError::input(
                Problem::error(
                    "invalid-utf8",
                    format!("not valid UTF-8 at byte {}", e.valid_up_to()),
                )
                .in_file(file.clone()),
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let items = match read_json_text(text, &file)? {
            Value::Array(items) => items,
            other => vec![other],
        };
        let values = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Place::Index(i), v))
            .collect();
        (values, Vec::new())
    } else {
        let (lines, problems) = json_lines_and_problems(&bytes, &file);
        let values = lines
            .into_iter()
            .map(|(n, v)| (Place::Line(n), v))
            .collect();
        (values, problems)
    };
    if values.is_empty() && problems.is_empty() {
        return Err(CliError::input(
            Problem::error("empty-input", "holds no documents").in_file(file),
        ));
    }
    let mut docs = Vec::with_capacity(values.len());
    for (place, value) in values {
        match to_document(&value, "") {
            Ok(doc) => match with_id(doc) {
                Ok(doc) => docs.push(Placed { place, doc }),
                Err(why) => problems.push(place.problem("invalid-id", why, &file)),
            },
            Err(e) => problems.push(place.problem("invalid-document", e.message, &file)),
        }
    }
    problems.extend(duplicates(&docs, &file));
    if problems.is_empty() {
        Ok(docs)
    } else {
        // Line order for JSON Lines (stable: array problems keep their order).
        problems.sort_by_key(|p| p.line);
        Err(CliError::new(Exit::Input, problems))
    }
}

/// Whether `bytes` hold one JSON array rather than JSON Lines: the first character (after a
/// byte order mark and blanks) is `[`, and the first line is not a whole JSON value followed by
/// more lines (a JSON Lines file whose first line is an array, which is then a bad line).
fn is_array_file(bytes: &[u8]) -> bool {
    let bytes = bytes
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(bytes);
    let Some(at) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
        return false;
    };
    let rest = bytes.get(at..).unwrap_or_default();
    if rest.first() != Some(&b'[') {
        return false;
    }
    let mut lines = rest.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let more = lines.any(|l| !l.iter().all(u8::is_ascii_whitespace));
    !more || serde_json::from_slice::<Value>(first).is_err()
}

/// `doc` with an `_id` (a new ObjectId first when it has none); an `_id` MongoDB refuses is an
/// error.
fn with_id(doc: Document) -> Result<Document, String> {
    match doc.get("_id") {
        None => {
            let mut out = Document::new();
            out.insert("_id", ObjectId::new());
            out.extend(doc);
            Ok(out)
        }
        Some(Bson::Array(_)) => Err("an `_id` cannot be an array".to_string()),
        Some(Bson::RegularExpression(_)) => {
            Err("an `_id` cannot be a regular expression".to_string())
        }
        Some(Bson::Undefined) => Err("an `_id` cannot be undefined".to_string()),
        Some(_) => Ok(doc),
    }
}

/// One problem per group of documents with equal `_id`s (sorted in MongoDB's total order, so
/// equal `_id`s are neighbours: n log n).
fn duplicates(docs: &[Placed], file: &str) -> Vec<Problem> {
    let id = |i: usize| docs.get(i).and_then(|p| p.doc.get("_id"));
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by(|&a, &b| match (id(a), id(b)) {
        (Some(x), Some(y)) => sort_value_cmp(x, y),
        _ => Ordering::Equal,
    });
    let mut problems = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let first = order.get(i).copied().unwrap_or(0);
        let mut group = vec![first];
        let mut j = i + 1;
        while let Some(&next) = order.get(j) {
            match (id(first), id(next)) {
                (Some(x), Some(y)) if bson_equal(x, y) => group.push(next),
                _ => break,
            }
            j += 1;
        }
        group.sort_unstable();
        if let Some((&head, rest)) = group.split_first()
            && let Some(first) = docs.get(head)
        {
            let shown_id = id(head).map_or_else(String::new, ToString::to_string);
            for later in rest.iter().filter_map(|&k| docs.get(k)) {
                problems.push(later.place.problem(
                    "duplicate-id",
                    format!(
                        "duplicate `_id` {shown_id}: the same `_id` as {}",
                        first.place.text()
                    ),
                    file,
                ));
            }
        }
        i = j;
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{Decimal128, doc};
    use proptest::prelude::*;

    fn placed(ids: &[Bson]) -> Vec<Placed> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Placed {
                place: Place::Line(i + 1),
                doc: doc! {"_id": id.clone()},
            })
            .collect()
    }

    /// `_id`s from a small domain where MongoDB's equality crosses types: `1`, `1_i64`, `1.0`
    /// and `Decimal128("1")` are one `_id`; NaN is one; `0.0` and `-0.0` are one.
    fn an_id() -> impl Strategy<Value = Bson> {
        prop_oneof![
            (0..3_i32).prop_map(Bson::Int32),
            (0..3_i64).prop_map(Bson::Int64),
            (0..6_i32).prop_map(|n| Bson::Double(f64::from(n) / 2.0)),
            Just(Bson::Double(f64::NAN)),
            Just(Bson::Double(-0.0)),
            (0..3_u8).prop_map(|n| Bson::Decimal128(n.to_string().parse::<Decimal128>().unwrap())),
            (0..3_u8).prop_map(|n| Bson::String(n.to_string())),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
            (0..2_i32).prop_map(|n| Bson::Document(doc! {"k": n})),
        ]
    }

    proptest! {
        /// Exactly the documents whose `_id` equals an earlier one's are reported, each once,
        /// naming the first document with that `_id` (the oracle compares every pair).
        #[test]
        fn duplicates_are_the_later_equal_ids(ids in proptest::collection::vec(an_id(), 0..24)) {
            let docs = placed(&ids);
            let problems = duplicates(&docs, "f");
            let mut expected = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                if let Some(first) = ids.iter().take(i).position(|x| bson_equal(x, id)) {
                    expected.push((i + 1, format!("line {}", first + 1)));
                }
            }
            let mut got: Vec<(usize, String)> = problems
                .iter()
                .map(|p| {
                    let first = p.message.rsplit("the same `_id` as ").next().unwrap_or("");
                    (p.line.unwrap_or(0), first.to_string())
                })
                .collect();
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn ids_mongodb_refuses_and_missing_ids() {
        assert!(with_id(doc! {"_id": [1]}).is_err());
        assert!(with_id(doc! {"_id": Bson::Undefined}).is_err());
        let given = with_id(doc! {"a": 1}).unwrap();
        assert_eq!(given.keys().collect::<Vec<_>>(), ["_id", "a"]);
        assert!(given.get_object_id("_id").is_ok());
    }

    #[test]
    fn array_files_and_json_lines() {
        assert!(is_array_file(b"[{\"_id\": 1}]"));
        assert!(is_array_file(
            b"\xef\xbb\xbf  [\n{\"_id\": 1},\n{\"_id\": 2}\n]\n"
        ));
        assert!(
            is_array_file(b"[{\"_id\": 1},\n"),
            "a broken array is still an array"
        );
        assert!(!is_array_file(b"{\"_id\": 1}\n[1]\n"));
        assert!(
            !is_array_file(b"[1]\n{\"_id\": 1}\n"),
            "JSON Lines whose first line is bad"
        );
        assert!(!is_array_file(b""));
    }
}
