//! Stage: output of BSON values. Input: a value (an operation's result, a stored document).
//! Output: its **canonical** Extended JSON on one line (`{"$numberInt": "5"}`, `{"$date":
//! {"$numberLong": "..."}}`, `{"$oid": "..."}`): every BSON type survives the round trip, so
//! the output can be read back as it was stored. A value nested deeper than [`MAX_DEPTH`]
//! levels is refused (checked without recursion) rather than converted, since the conversion
//! recurses; stores refuse documents deeper than 100 levels, so stored values never are.

use bson::Bson;

use super::CliError;
use super::report::Problem;

/// The deepest value printed.
pub const MAX_DEPTH: usize = 200;

/// The canonical Extended JSON of `value`, on one line.
pub fn canonical(value: &Bson) -> Result<String, CliError> {
    if too_deep(value, MAX_DEPTH) {
        return Err(CliError::input(Problem::error(
            "too-deep",
            format!("a value nested deeper than {MAX_DEPTH} levels cannot be printed"),
        )));
    }
    Ok(value.clone().into_canonical_extjson().to_string())
}

/// Whether `value` nests documents and arrays deeper than `max` levels (a code-with-scope's
/// scope counting as a level), without recursion.
fn too_deep(value: &Bson, max: usize) -> bool {
    let mut stack: Vec<(&Bson, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Bson>> = match v {
            Bson::Document(d) => Box::new(d.values()),
            Bson::Array(a) => Box::new(a.iter()),
            Bson::JavaScriptCodeWithScope(c) => Box::new(c.scope.values()),
            _ => continue,
        };
        if depth + 1 > max {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{DateTime, doc, oid::ObjectId};

    #[test]
    fn canonical_forms() {
        let oid = ObjectId::parse_str("671000000000000000000001").unwrap();
        let v = Bson::Array(vec![Bson::Document(doc! {
            "_id": oid, "n": 5, "l": 5_i64, "d": 1.5, "at": DateTime::from_millis(0),
        })]);
        assert_eq!(
            canonical(&v).unwrap(),
            r#"[{"_id":{"$oid":"671000000000000000000001"},"n":{"$numberInt":"5"},"l":{"$numberLong":"5"},"d":{"$numberDouble":"1.5"},"at":{"$date":{"$numberLong":"0"}}}]"#
        );
    }

    #[test]
    fn too_deep_values_are_refused() {
        let mut v = Bson::Int32(1);
        for _ in 0..MAX_DEPTH {
            v = Bson::Array(vec![v]);
        }
        assert!(canonical(&v).is_ok());
        let deeper = Bson::Document(doc! {"a": v});
        assert!(canonical(&deeper).is_err());
    }
}
