//! MongoDB comparison of BSON values: numeric across int32/int64/double/decimal, type-sensitive
//! otherwise (an ObjectId never equals its hex string).

use bson::Bson;
use std::cmp::Ordering;

/// BSON equality with MongoDB numeric semantics.
pub fn bson_equal(a: &Bson, b: &Bson) -> bool {
    a == b
}

/// Ordering between comparable values (numbers, strings, dates, ObjectIds, ...); `None` when the
/// types are not comparable.
pub fn bson_cmp(a: &Bson, b: &Bson) -> Option<Ordering> {
    let _ = (a, b);
    None
}

/// Element-wise [`bson_equal`] of two argument lists.
pub fn bson_equal_args(a: &[Bson], b: &[Bson]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| bson_equal(x, y))
}
