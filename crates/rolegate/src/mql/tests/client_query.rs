//! The client-query check as embedders reach it (`mql::check_client_query`).

#![allow(clippy::unwrap_used, clippy::panic)]

use bson::{Bson, doc};

use crate::mql::check_client_query;
use crate::query::PlanError;

#[test]
fn allowed_operators_pass_and_refused_ones_are_named() {
    let ok =
        doc! {"fullDocument.status": {"$in": ["todo", "doing"]}, "$or": [{"a": {"$exists": true}}]};
    assert!(check_client_query(&ok, 32).is_ok());
    for (query, operator) in [
        (doc! {"$where": "true"}, "$where"),
        (doc! {"a": {"$regex": "x"}}, "$regex"),
        (
            doc! {"a": Bson::RegularExpression(bson::Regex { pattern: "x".into(), options: String::new() })},
            "$regex",
        ),
        (doc! {"$expr": {"$eq": [1, 1]}}, "$expr"),
    ] {
        match check_client_query(&query, 32) {
            Err(PlanError::OperatorNotAllowed { operator: o, .. }) => assert_eq!(o, operator),
            other => panic!("{query}: {other:?}"),
        }
    }
    let mut deep = doc! {"a": 1};
    for _ in 0..40 {
        deep = doc! {"$and": [deep]};
    }
    assert!(check_client_query(&deep, 32).is_err());
}
